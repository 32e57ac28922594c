"""Progress of long work (calibration, schedule search, QEMU runs) on stderr, without spamming logs.

On a terminal the line is redrawn in place (at most every 0.2 s); otherwise only coarse steps are
printed (each quarter of the work), and only for work of at least COARSE_MIN_TOTAL items, so test
logs and CI output stay quiet.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

COARSE_MIN_TOTAL = 32
REDRAW_S = 0.2


def log(msg: str) -> None:
    """One line of progress or notes on stderr (standard output stays for results)."""
    print(msg, file=sys.stderr, flush=True)


class Progress:
    """Callable progress(done, total) printing ``label done/total`` to ``stream``."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._quarter = 0

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        if self.tty:
            now = time.monotonic()
            if done < total and now - self._last < REDRAW_S:
                return
            self._last = now
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{self.label} {done}/{total}{end}")
            self.stream.flush()
            return
        quarter = 4 * done // total
        if total >= COARSE_MIN_TOTAL and quarter > self._quarter:
            self._quarter = quarter
            self.stream.write(f"{self.label} {done}/{total}\n")
            self.stream.flush()

"""Firmware built right after a compile: its measured flash and RAM go into report.json, and an image
that does not fit the board fails the compile."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcuc.codegen.firmware import FIRMWARE_KINDS
from mcuc.compiler import Compiled
from mcuc.progress import log
from mcuc.report import write_report
from mcuc.targets.build import have_arm_toolchain
from mcuc.targets.elfsize import measure_firmware


def build_and_measure(outdir: Path, compiled: Compiled,
                      progress: Callable[[str], None] = log) -> dict[str, Any] | None:
    """For a firmware board: build the firmware, put its measured size into report.json (``measured``) and
    return it; MCUCError if it does not fit. None for the host board, or without the ARM toolchain.

    Called by write_project on the new OUTDIR before the previous one is deleted, so that a failure here
    (mcuc.project) removes the new OUTDIR and keeps the previous one.
    """
    if compiled.board.kind not in FIRMWARE_KINDS:
        return None
    if not have_arm_toolchain():
        progress(f"note: firmware for '{compiled.board.name}' not built (needs cmake and arm-none-eabi-gcc); "
                 "report.json has no measured sizes")
        return None
    progress(f"building firmware for {compiled.board.name} ...")
    measured = measure_firmware(outdir, compiled.board, compiled.report.weights_bytes, compiled.options.flash)
    compiled.report.measured.update(measured)
    write_report(outdir, compiled.report)
    return measured

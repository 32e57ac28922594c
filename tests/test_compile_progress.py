"""compile's patch-schedule search reports progress on a terminal only, as `mcuc search` does."""
from __future__ import annotations

import io
import re
import sys

import pytest

from mcuc.compiler import CompileOptions, compile_model
from mcuc.zoo import DEMO_CALIB, DEMO_ONNX


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_patch_search_progress_on_tty_only(tty: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    err = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    opts = CompileOptions(calib=str(DEMO_CALIB), calib_samples=2, schedule="patch", max_overhead=0.5)
    compile_model(str(DEMO_ONNX), opts)
    text = err.getvalue()
    if tty:
        steps = re.findall(r"\r  searching patch schedules \(split x grid\) (\d+)/(\d+)", text)
        assert steps and steps[-1][0] == steps[-1][1]  # redrawn in place, ending at total/total
        assert text.split("searching patch schedules")[-1].split("\n")[0].endswith(f"{steps[-1][1]}/{steps[-1][1]}")
    else:
        assert "searching patch schedules" not in text
    assert "schedule: patch split" in text

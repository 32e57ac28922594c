"""Test-session rules: with CI=true, a missing tool the suite needs fails the run instead of skipping tests.

Locally a test that needs QEMU, the ARM toolchain, cmake or the TFLite reference interpreters skips (with its
reason printed: ``-rs``). In CI (``CI=true``, set by .ci/run) such a skip would hide that a whole class of
tests never ran, so the session refuses to start without them and any skip naming one of them is a failure.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

# what CI must have: (what it is, how a missing one is found)
REQUIRED_TOOLS = {
    "qemu-system-arm (QEMU)": lambda: shutil.which("qemu-system-arm") is not None,
    "arm-none-eabi-gcc (ARM toolchain)": lambda: shutil.which("arm-none-eabi-gcc") is not None,
    "cmake": lambda: shutil.which("cmake") is not None,
    "tflite-micro (TFLite Micro reference)": lambda: importlib.util.find_spec("tflite_micro") is not None,
    "ai-edge-litert (LiteRT reference)": lambda: importlib.util.find_spec("ai_edge_litert") is not None,
}
# a skip whose reason matches this is a missing required tool
REQUIRED_SKIP = re.compile(r"qemu|arm-none-eabi|arm toolchain|cmake|tflite|litert", re.IGNORECASE)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_tools() -> list[str]:
    return [name for name, present in REQUIRED_TOOLS.items() if not present()]


def pytest_sessionstart(session: pytest.Session) -> None:
    if in_ci():
        missing = missing_tools()
        if missing:
            pytest.exit(f"CI=true but {', '.join(missing)} missing: install them (make sysdeps, "
                        "pip install -e '.[dev]'); in CI these tests may not skip", returncode=1)


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_required_skip(report: Any) -> None:
    if in_ci() and report.skipped and REQUIRED_SKIP.search(_skip_reason(report)):
        report.outcome = "failed"
        report.longrepr = f"CI=true: skipped for a missing required tool, which CI does not allow: " \
                          f"{_skip_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    _fail_required_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_required_skip(outcome.get_result())  # type: ignore[attr-defined]

"""Memory profile of a compiled model: report.json rendered as a terminal table, JSON or one HTML page.

Everything shown comes from report.json, whose memory numbers the compiler has checked against the
simulated replay of the schedule (mcuc.memsim), so the profile of an output directory and of a
fresh compile are the same document.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcuc.profile.html import render_html
from mcuc.profile.text import peak_index, render_text

FORMATS = ("text", "json", "html")
PROFILE_TEXT_FILE = "profile.txt"
PROFILE_HTML_FILE = "report.html"


def render(report: dict[str, Any], fmt: str) -> str:
    """The profile of ``report`` in ``fmt`` (text, json or html)."""
    if fmt == "text":
        return render_text(report)
    if fmt == "json":
        return json.dumps(report, indent=1) + "\n"
    if fmt == "html":
        return render_html(report)
    raise ValueError(f"unknown profile format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_profiles(report: dict[str, Any], outdir: Path) -> list[Path]:
    """Write profile.txt and report.html next to report.json; return their paths."""
    out = []
    for name, fmt in ((PROFILE_TEXT_FILE, "text"), (PROFILE_HTML_FILE, "html")):
        path = Path(outdir) / name
        path.write_text(render(report, fmt))
        out.append(path)
    return out


__all__ = ["FORMATS", "PROFILE_HTML_FILE", "PROFILE_TEXT_FILE", "peak_index", "render", "render_html", "render_text",
           "write_profiles"]

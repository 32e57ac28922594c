"""Refresh docs/profile.png: the demo model's report.html (the README's Memory profile command) in headless Chromium.

The page is checked as tests/test_report_browser.py checks it (no console errors, every SVG drawn) before the
full-page screenshot is written.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from mcuc.cli import main as mcuc_main
from mcuc.profile.browser import check_page
from mcuc.zoo import DEMO_CALIB, DEMO_ONNX

OUT = Path(__file__).resolve().parent.parent / "docs" / "profile.png"


def main() -> None:
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "demo"
        if mcuc_main(["compile", str(DEMO_ONNX), "--calib", str(DEMO_CALIB), "--sram", "26k", "--schedule", "auto",
                      "--max-overhead", "0.5", "-o", str(out)]):
            sys.exit(1)
        page = check_page(out / "report.html")
    if page.errors or not all(s["width"] > 0 and s["height"] > 0 for s in page.svgs):
        sys.exit(f"report.html did not render cleanly: {page.errors or page.svgs}")
    OUT.write_bytes(page.screenshot_png)
    print(f"wrote {OUT} ({page.page_width}x{page.page_height} CSS px, {len(page.svgs)} SVG plots, no console errors)")


if __name__ == "__main__":
    main()

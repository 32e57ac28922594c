"""report.html in a real browser (headless Chromium): no console errors, every SVG plot drawn with a size, a
screenshot that is not blank, and arena-layout labels that fit their boxes with the full name on hover."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image

from mcuc.cli import main
from mcuc.profile.browser import check_page
from mcuc.profile.html import short_label
from mcuc.zoo import DEMO_CALIB, DEMO_ONNX

# the command docs/profile.png shows (README, Memory profile)
DOC_ARGS = ["--calib", str(DEMO_CALIB), "--sram", "26k", "--schedule", "auto", "--max-overhead", "0.5"]


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["compile", str(DEMO_ONNX), *DOC_ARGS, "-o", str(out)]) == 0
    html = out / "report.html"
    page = check_page(html)
    assert page.errors == []
    assert len(page.svgs) == 3  # memory over ops, arena layout, flash by layer
    for svg in page.svgs:
        assert svg["width"] > 100 and svg["height"] > 100 and svg["shapes"] > 10, svg
    img = Image.open(io.BytesIO(page.screenshot_png)).convert("RGB")
    assert img.size[0] >= 1100 and img.size[1] == page.page_height > 1000
    px = np.asarray(img).reshape(-1, 3)
    assert (px.min(axis=1) < 200).mean() > 0.03  # ink on the page, not a white sheet
    assert len(np.unique(px[::7], axis=0)) > 50  # charts in colour, not one flat fill
    text = html.read_text()
    groups = re.findall(r'<g class="buf">(.*?)</g>', text)
    labels = 0
    for group in groups:  # every buffer box: its full name on hover, a label made by short_label or none
        name = re.match(r"<title>(.*?):", group)
        label = re.search(r"<text[^>]*>(.*?)</text>", group)
        assert name
        if label:
            labels += 1
            assert "_output" not in label.group(1) and len(label.group(1)) <= len(name.group(1))
    assert len(groups) > 10 and labels > 5


def test_short_label() -> None:
    name = "/features/features.1/conv/conv.1/conv.1.1/BatchNormalization_output_0"
    assert short_label(name, 40) == "features.1/conv.1.1/BatchNorm"
    assert short_label(name, 20) == "conv.1.1/BatchNorm"
    assert short_label(name, 9) == "BatchNorm"
    assert short_label(name, 6) == "Batch…"
    assert short_label("input", 20) == "input"
    assert short_label("/features/features.2/conv/conv.0/conv.0.2/Clip_output_0@p1", 12) == "Clip@p1"

"""mcuc profile (text, json, html), the profiles compile writes, the does-not-fit message and progress output."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from mcuc.cli import main
from mcuc.compiler import CompileOptions, compile_model
from mcuc.profile import peak_index, render
from mcuc.progress import COARSE_MIN_TOTAL, Progress

DEMO = Path(__file__).resolve().parent.parent / "mcuc" / "zoo" / "data" / "demo_fmnist.onnx"
CALIB = DEMO.with_name("demo_calib.npy")


def _quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def layer_report() -> dict:
    return compile_model(str(DEMO), CompileOptions(calib=str(CALIB), calib_samples=4), progress=_quiet).report.as_dict()


@pytest.fixture(scope="module")
def patch_report() -> dict:
    opts = CompileOptions(calib=str(CALIB), calib_samples=4, schedule="patch", split=13, patch_grid=(1, 2))
    return compile_model(str(DEMO), opts, progress=_quiet).report.as_dict()


def _rows(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if re.match(r"^\s*\d+ [* ][P ] ", ln)]


def test_text_table_marks_peak_and_columns(layer_report: dict) -> None:
    text = render(layer_report, "text")
    rows = _rows(text)
    assert len(rows) == len(layer_report["ops"])
    peak = peak_index(layer_report)
    assert [i for i, r in enumerate(rows) if r.split()[1].startswith("*")] == [peak]
    o = layer_report["ops"][peak]
    row = rows[peak]
    assert f"{o['live_bytes']:,}" in row and f"{o['macs']:,}" in row and o["op"] in row
    assert "x".join(map(str, o["output_shape"])) in row
    assert f"{len(o['live_tensors'])}  " in row
    assert "live tensors" in text and "scratch" in text and "no overlaps" in text
    assert not any(" P " in r[:8] for r in rows)  # no patch stage in a layer schedule


def test_text_marks_patch_stage(patch_report: dict) -> None:
    rows = _rows(render(patch_report, "text"))
    stage = patch_report["stage_ops"]
    assert stage > 0
    assert all(r[4:8].strip().endswith("P") for r in rows[:stage])
    assert not any(r[4:8].strip().endswith("P") for r in rows[stage:])


def test_report_profile_fields_are_consistent(patch_report: dict) -> None:
    rep = patch_report
    sizes = {b["name"]: b["size"] for b in rep["buffers"]}
    for i, o in enumerate(rep["ops"]):
        assert sum(sizes[t] for t in o["live_tensors"]) == o["live_bytes"]
        assert o["arena_extent_bytes"] <= rep["arena_bytes"]
        live = [b for b in rep["buffers"] if b["first"] <= i <= b["last"] and b["size"]]
        assert sorted(b["name"] for b in live) == sorted(o["live_tensors"])
    assert max(o["arena_extent_bytes"] for o in rep["ops"]) == rep["simulated"]["high_water_bytes"]
    assert len(rep["layer_live_bytes"]) == rep["schedule"]["split_layer"] + len(rep["ops"]) - rep["stage_ops"]
    assert rep["simulated"]["problems"] == []


def test_json_is_the_report(layer_report: dict) -> None:
    assert json.loads(render(layer_report, "json")) == json.loads(json.dumps(layer_report))


def test_html_is_self_contained_with_three_charts(patch_report: dict) -> None:
    html = render(patch_report, "html")
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 3
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert re.findall(r"https?://[^\"']+", html) == ["http://www.w3.org/2000/svg"] * 3  # SVG namespace only
    # the arena layout draws one rectangle per non-empty buffer, titled with its offset and lifetime
    for b in patch_report["buffers"]:
        if b["size"]:
            assert f"{b['size']:,} B at offset {b['offset']:,}, ops {b['first']}..{b['last']}" in html
    assert "layer-based: bytes live" in html and "chosen patch schedule" in html
    assert "Flash by layer" in html and "patch stage" in html


def test_cli_profile_model_and_outdir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["compile", str(DEMO), "--calib", str(CALIB), "-o", str(out)]) == 0
    assert (out / "report.html").read_text().count("<svg") == 3
    assert _rows((out / "profile.txt").read_text())
    capsys.readouterr()
    assert main(["profile", str(out)]) == 0
    assert capsys.readouterr().out == (out / "profile.txt").read_text()
    assert main(["profile", str(out), "--format", "json", "-o", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text()) == json.loads((out / "report.json").read_text())
    assert main(["profile", str(DEMO), "--calib", str(CALIB), "--format", "html", "-o", str(tmp_path / "p.html")]) == 0
    assert (tmp_path / "p.html").read_text().count("<svg") == 3
    assert main(["profile", str(tmp_path)]) == 1
    assert "is not a compiled mcuc project" in capsys.readouterr().err


def test_does_not_fit_names_peak_contributors_and_alternatives(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main(["compile", str(DEMO), "--calib", str(CALIB), "--sram", "20k", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: model needs 32,768 B of SRAM but the budget is 20,480 B (12,288 B over)")
    assert "peak at op 11 '/features/features.4/conv/conv.1/conv.1.0/Conv' (conv2d, 30,720 B live" in err
    assert "largest '/features/features.4/conv/conv.0/conv.0.2/Clip_output_0' 24,576 B" in err
    assert "would fit:" in err and "no patch schedule" in err
    assert "an input of about 24x24 instead of 32x32" in err
    assert "board stm32f411 (128 KiB SRAM)" in err
    assert not out.exists()


def test_does_not_fit_suggests_the_patch_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["compile", str(DEMO), "--calib", str(CALIB), "--sram", "27k", "--max-overhead", "0.5", "-o",
            str(tmp_path / "o")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: model needs 32,768 B")
    assert "would fit: the peak-setting ops fused into row pipelines (16,992 B peak, no extra MACs: --schedule fused)" \
        in err, err
    assert re.search(r"; patch split \d+ grid \d+x\d+ \([\d,]+ B peak, \+[\d.]+% MACs: --schedule patch "
                     r"--split \d+ --patch-grid \d+ \d+\)", err), err
    # and the suggested flags do fit
    flags = re.search(r"--schedule patch --split (\d+) --patch-grid (\d+) (\d+)", err)
    assert flags is not None
    assert main([*args[:-2], "--schedule", "patch", "--split", flags[1], "--patch-grid", flags[2], flags[3],
                 "-o", str(tmp_path / "p")]) == 0


def test_does_not_fit_after_patch_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(DEMO), "--calib", str(CALIB), "--sram", "12k", "--schedule", "auto",
                 "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len([ln for ln in err if ln.startswith("error:")]) == 1
    assert "no patch schedule within 20% MAC overhead (searched)" in err[-1] and "peak at op 11" in err[-1]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_quiet_in_logs_and_live_on_a_terminal() -> None:
    log = io.StringIO()
    p = Progress("calibration", log)
    for i in range(1, 9):
        p(i, 8)
    assert log.getvalue() == ""  # small jobs print nothing when stderr is not a terminal
    n = 4 * COARSE_MIN_TOTAL
    p = Progress("samples", log)
    for i in range(1, n + 1):
        p(i, n)
    assert log.getvalue().splitlines() == [f"samples {n * k // 4}/{n}" for k in range(1, 5)]
    tty = _Tty()
    p = Progress("samples", tty)
    for i in range(1, 4):
        p(i, 3)
    assert tty.getvalue().startswith("\rsamples 1/3") and tty.getvalue().endswith("\rsamples 3/3\n")

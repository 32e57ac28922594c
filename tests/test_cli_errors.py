"""Bad input gets one 'error: ...' line, exit code 1, no traceback and no output directory."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mcuc.cli import main
from tests.onnx_models import conv_model


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    return code, errors[0] if errors else ""


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory) -> str:
    return conv_model(str(tmp_path_factory.mktemp("m") / "small.onnx"))


def test_missing_model(tmp_path, capsys):
    out = tmp_path / "out"
    code, msg = run_cli(["compile", str(tmp_path / "nope.onnx"), "-o", str(out)], capsys)
    assert code == 1 and "does not exist" in msg and "nope.onnx" in msg
    assert not out.exists()


def test_truncated_onnx(tmp_path, small_onnx, capsys):
    data = Path(small_onnx).read_bytes()
    bad = tmp_path / "trunc.onnx"
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    code, msg = run_cli(["compile", str(bad), "-o", str(out)], capsys)
    assert code == 1 and "trunc.onnx" in msg, msg
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]  # no temporary directory left behind either


def test_unknown_op(tmp_path, capsys):
    path = conv_model(str(tmp_path / "m.onnx"), op_extra="Hardmax")
    code, msg = run_cli(["compile", path, "-o", str(tmp_path / "out")], capsys)
    assert code == 1 and "Hardmax" in msg and "extra0" in msg and "Conv" in msg, msg


def test_unknown_board(small_onnx, tmp_path, capsys):
    code, msg = run_cli(["compile", small_onnx, "--board", "esp99", "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and "unknown board 'esp99'" in msg and "host" in msg
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("size", ["12q", "k", "1.5", "5T"])
def test_bad_size(small_onnx, tmp_path, capsys, size):
    code, msg = run_cli(["compile", small_onnx, "--sram", size, "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and "bad size" in msg and size in msg


def test_does_not_fit(tmp_path, capsys):
    path = conv_model(str(tmp_path / "big.onnx"), cin=3, cout=32, size=48)
    out = tmp_path / "out"
    code, msg = run_cli(["compile", path, "--sram", "16k", "-o", str(out)], capsys)
    assert code == 1 and "budget is 16,384 B" in msg and "over" in msg and "conv0" in msg, msg
    assert not out.exists()


def test_missing_calibration(small_onnx, tmp_path, capsys):
    code, msg = run_cli(["compile", small_onnx, "--calib", str(tmp_path / "c.npy"), "-o", str(tmp_path / "o")],
                        capsys)
    assert code == 1 and "c.npy" in msg and "does not exist" in msg


def test_run_on_non_project(tmp_path, capsys):
    code, msg = run_cli(["run", str(tmp_path), "--input", "x.npy", "--output", "y.npy"], capsys)
    assert code == 1 and "not a compiled mcuc project" in msg


def test_subprocess_error_has_no_traceback(tmp_path):
    exe = Path(sys.executable).parent / "mcuc"
    proc = subprocess.run([str(exe), "compile", str(tmp_path / "missing.onnx")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_output_naming_an_existing_file(small_onnx, tmp_path, capsys):
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    code, msg = run_cli(["compile", small_onnx, "-o", str(target)], capsys)
    assert code == 1 and "existing file" in msg and "report.txt" in msg
    assert target.read_text() == "keep me" and sorted(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("size", ["", "-5k", "-1", "0"])
def test_empty_or_negative_sram_is_an_error(small_onnx, tmp_path, capsys, size):
    """--sram '' once meant the board's default, and a negative size must be an error (exit 1), not a flag."""
    code, msg = run_cli(["compile", small_onnx, "--sram", size, "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and "bad size" in msg
    assert not (tmp_path / "o").exists()


def test_out_of_memory_is_one_error_line(small_onnx, tmp_path, capsys, monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr("mcuc.cli.compile_model", exhausted)
    code, msg = run_cli(["compile", small_onnx, "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and "out of memory" in msg

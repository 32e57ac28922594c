"""Measured firmware size: flash and static RAM from the ELF in report.json, and images that do not fit."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mcuc.boards import load_board
from mcuc.cli import main
from mcuc.targets.build import have_arm_toolchain
from mcuc.targets.elfsize import elf_sizes, fit_problems
from tests.onnx_models import conv_model

pytestmark = pytest.mark.skipif(not have_arm_toolchain(), reason="needs arm-none-eabi-gcc and cmake")


def compile_cli(model: str, board: str, out: Path, capsys, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["compile", model, "--board", board, "-o", str(out), *extra])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def arm_size(elf: Path) -> tuple[int, int, int]:
    """text, data, bss as arm-none-eabi-size (Berkeley format) reports them: an independent reading."""
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return text, data, bss


@pytest.mark.parametrize("board", ["stm32h7", "qemu-mps2-an386"])
def test_measured_sizes_in_report(tmp_path, capsys, board):
    model = conv_model(str(tmp_path / "m.onnx"), cin=8, cout=32, size=24)
    out = tmp_path / "out"
    rc, stdout, _ = compile_cli(model, board, out, capsys)
    assert rc == 0
    assert "static RAM" in stdout and "flash" in stdout
    rep = json.loads((out / "report.json").read_text())
    m = rep["measured"]
    b = load_board(board)
    assert m["board"] == board
    assert m["arena_bytes"] == rep["arena_bytes"]
    assert m["flash_bytes"] >= rep["weights_bytes"]
    assert rep["predicted_flash_bytes"] >= rep["weights_bytes"]
    assert m["stack_bytes"] == b.extra["stack_bytes"]
    assert m["ram_bytes"] == m["data_bytes"] + m["bss_bytes"] + m["stack_bytes"]
    assert m["bss_bytes"] >= m["arena_bytes"]
    assert m["flash_bytes"] <= b.flash_bytes and m["ram_bytes"] <= b.sram_bytes
    assert sum(m["ram_regions"].values()) == m["ram_bytes"]
    elf = out / m["elf"]
    text, data, bss = arm_size(elf)
    assert (m["flash_bytes"], m["data_bytes"], m["bss_bytes"]) == (text + data, data, bss)
    assert fit_problems(elf_sizes(elf, b), b) == []


def test_no_build_flag(tmp_path, capsys):
    model = conv_model(str(tmp_path / "m.onnx"))
    out = tmp_path / "out"
    rc, stdout, _ = compile_cli(model, "stm32f411", out, capsys, "--no-build")
    assert rc == 0
    assert "measured" not in json.loads((out / "report.json").read_text())
    assert not list(out.glob("build-*"))
    assert "static RAM" not in stdout


def test_flash_overflow_is_one_line_error(tmp_path, capsys):
    # 256 x 288 x 3 x 3 int8 weights = 663,552 B: the arena (a 4x4 image) fits stm32f411's 128 KB SRAM
    # budget, the weights do not fit its 512 KB of flash. The predicted image is refused before any build.
    model = conv_model(str(tmp_path / "big.onnx"), cin=256, cout=288, size=4)
    out = tmp_path / "out"
    rc, stdout, err = compile_cli(model, "stm32f411", out, capsys)
    assert rc == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "model does not fit board 'stm32f411' as its linker script places memory: predicted flash image" \
        in lines[0]
    assert "exceeds the 524,288 B of flash region 'flash'" in lines[0]
    assert "building firmware" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))


def test_ram_region_overflow_is_one_line_error(tmp_path, capsys):
    # The arena (8x128x128 in + 26x128x128 out = 557,056 B) is within stm32h7's 640 KB of SRAM but not
    # within its 512 KB AXI SRAM, where the linker script puts .bss; the stack lives in the DTCM.
    model = conv_model(str(tmp_path / "ram.onnx"), cin=8, cout=26, size=128)
    out = tmp_path / "out"
    rc, _, err = compile_cli(model, "stm32h7", out, capsys)
    assert rc == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "model needs 573,440 B of SRAM but the budget is 540,672 B (32,768 B over; board 'stm32h7': " \
        "524,288 B axi_sram for .data, .bss and the arena + 16,384 B stack in dtcm)" in lines[0]
    assert "building firmware" not in err
    assert not out.exists()

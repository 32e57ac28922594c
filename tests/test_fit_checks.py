"""Fit checks as the linker places memory: the arena in the data region of the board's linker script, the stack it
reserves counted in the peak, flash against the board and --flash; refused with one 'error:' line, no traceback
and no output directory, whether or not the ARM toolchain is installed (--no-build)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcuc.boards import load_board
from mcuc.cli import main
from mcuc.compiler import CompileOptions, assemble, fit_problems, quantized_graph
from mcuc.memsim import simulate
from mcuc.schedule.base import layer_schedule
from tests.onnx_models import conv_model


def compile_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = main(["compile", *args])
    err = capsys.readouterr().err
    return code, [ln for ln in err.splitlines() if ln.startswith("error:")], err


@pytest.fixture(scope="module")
def wide_onnx(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Arena 8x128x128 in + 26x128x128 out = 557,056 B: within stm32h7's 640 KiB of SRAM, beyond its 512 KiB
    AXI SRAM where the linker script places .data, .bss and the arena."""
    return conv_model(str(tmp_path_factory.mktemp("m") / "wide.onnx"), cin=8, cout=26, size=128)


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Arena 3x16x16 in + 8x16x16 out = 2,816 B; 216 B of weights."""
    return conv_model(str(tmp_path_factory.mktemp("m") / "small.onnx"))


def test_arena_beyond_data_region_refused_without_build(wide_onnx: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    b = load_board("stm32h7")
    assert sum(int(r["size"]) for r in b.extra["sram"]) == 640 * 1024  # what the board has ...
    assert b.sram_bytes == 512 * 1024 + 16 * 1024  # ... and what a model can use: AXI SRAM + the stack in DTCM
    out = tmp_path / "out"
    code, errors, err = compile_cli([wide_onnx, "--board", "stm32h7", "--no-build", "-o", str(out)], capsys)
    assert code == 1 and len(errors) == 1, err
    assert "Traceback" not in err
    assert errors[0].startswith("error: model needs 573,440 B of SRAM but the budget is 540,672 B (32,768 B over; "
                                "board 'stm32h7': 524,288 B axi_sram for .data, .bss and the arena + 16,384 B stack "
                                "in dtcm)")
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    # the whole 640 KiB cannot be asked for either
    code, errors, err = compile_cli([wide_onnx, "--board", "stm32h7", "--sram", "640k", "--no-build", "-o", str(out)],
                                    capsys)
    assert code == 1 and len(errors) == 1 and "Traceback" not in err
    assert errors[0] == ("error: --sram 655,360 exceeds the 540,672 B of SRAM a model can use on board 'stm32h7' "
                         "(524,288 B axi_sram for .data, .bss and the arena + 16,384 B stack in dtcm); pass a smaller "
                         "budget or another board")
    assert not out.exists()


def test_replay_region_overflow_counts(wide_onnx: str) -> None:
    """memsim's exceeds_region is a refusal of its own, with the stack at the top of a shared region."""
    qg, _ = quantized_graph(wide_onnx, CompileOptions(calib_samples=1), progress=lambda _m: None)
    h7 = load_board("stm32h7")
    c = assemble(layer_schedule(qg).plan(), h7, CompileOptions(board="stm32h7"))
    assert c.report.arena_bytes == 557_056 and c.report.simulated["exceeds_region"]
    assert fit_problems(c.report, h7) == [
        "the arena (557,056 B) exceeds SRAM region 'axi_sram' (524,288 B), where the linker places .data, .bss "
        "and the arena, by 32,768 B"]
    # stm32f746: 320 KiB SRAM holds the arena and, at its top, the 16 KiB stack
    sched = layer_schedule(qg).plan()
    f746 = load_board("stm32f746")
    mem = sched.planned
    assert not simulate(sched.graph, mem, load_board("qemu-mps2-an386")).exceeds_region
    assert simulate(sched.graph, mem, f746).exceeds_region
    mem_fits = type(mem)(**{**mem.__dict__, "arena_bytes": f746.data_region.size - f746.stack_bytes})
    mem_over = type(mem)(**{**mem.__dict__, "arena_bytes": f746.data_region.size - f746.stack_bytes + 16})
    assert not simulate(sched.graph, mem_fits, f746).exceeds_region
    assert simulate(sched.graph, mem_over, f746).exceeds_region


def test_flash_budget_refuses(small_onnx: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    # predicted flash = 216 B weights + op arrays + 12 KiB code estimate: within 16 KiB, beyond 12 KiB
    code, errors, err = compile_cli([small_onnx, "--board", "stm32f411", "--flash", "12k", "--no-build", "-o",
                                     str(out)], capsys)
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("error: model does not fit board 'stm32f411' as its linker script places memory: "
                                "predicted flash image ")
    assert "exceeds the 12,288 B of the --flash budget by " in errors[0]
    assert not out.exists()
    # the same on the host, where no firmware is ever built
    code, errors, _ = compile_cli([small_onnx, "--flash", "12k", "-o", str(out)], capsys)
    assert code == 1 and "exceeds the 12,288 B of the --flash budget" in errors[0]
    assert not out.exists()
    assert main(["compile", small_onnx, "--board", "stm32f411", "--flash", "16k", "--no-build", "-o",
                 str(out)]) == 0
    # a budget beyond the board's flash region
    code, errors, _ = compile_cli([small_onnx, "--board", "stm32f411", "--flash", "1M", "--no-build", "-o",
                                   str(tmp_path / "o2")], capsys)
    assert code == 1 and errors[0] == ("error: --flash 1,048,576 exceeds the 524,288 B of flash region 'flash' on "
                                       "board 'stm32f411'; pass a smaller budget or another board")


@pytest.mark.parametrize(("board", "stack"), [("stm32f746", 16384), ("nrf52840", 8192), ("qemu-mps2-an386", 65536),
                                              ("host", 2048)])
def test_stack_reservation_in_peak(small_onnx: str, tmp_path: Path, board: str, stack: int) -> None:
    """peak_sram_bytes counts the stack the board's linker script reserves (board.yaml stack_bytes), the host the
    2 KiB estimate of one inference. Kernels without scratch, so the arena is the same on every core."""
    out = tmp_path / "out"
    assert main(["compile", small_onnx, "--board", board, "--kernels", "small", "--no-build", "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["arena_bytes"] == 2816
    assert rep["stack_bytes"] == stack == load_board(board).stack_bytes
    assert rep["stack_estimate_bytes"] == 2048
    assert rep["peak_sram_bytes"] == 2816 + stack


def test_stack_reservation_decides_the_fit(small_onnx: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A budget the arena and a 2 KiB estimate would fit, but not the arena and the 16 KiB the board reserves."""
    out = tmp_path / "out"
    code, errors, err = compile_cli([small_onnx, "--board", "stm32f746", "--sram", "10k", "--no-build", "-o",
                                     str(out)], capsys)
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("error: model needs 19,200 B of SRAM but the budget is 10,240 B (8,960 B over); ")
    assert not out.exists()

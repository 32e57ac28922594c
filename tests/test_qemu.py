"""Firmware for the boards in mcuc/boards/: QEMU runs bit-exact with the int8 reference, real boards build."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mcuc.boards import linker_aliases, list_boards, load_board
from mcuc.codegen.firmware import emit_firmware_support, firmware_config, toolchain_file
from mcuc.errors import MCUCError
from mcuc.execute import run_int8
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.ops import verify
from mcuc.targets import qemu as qemu_target

QEMU_BOARDS = ["qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps3-an547"]
MCU_BOARDS = ["stm32h7", "stm32f746"]
HAVE_ARM_GCC = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("cmake") is not None
needs_arm_gcc = pytest.mark.skipif(not HAVE_ARM_GCC, reason="needs arm-none-eabi-gcc and cmake")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="needs qemu-system-arm")


def tiny_graph() -> Graph:
    """conv2d 3x3/2 (with a clamped activation) -> reshape -> fully_connected: int8, NHWC."""
    rng = np.random.default_rng(0)
    g = Graph(layout="NHWC")

    def pq(s: float, z: int) -> QuantParams:
        return QuantParams(np.array([s]), np.array([z]))

    g.add_tensor(Tensor("x", (1, 9, 9, 3), "int8", pq(0.05, 3)))
    g.inputs = ["x"]
    g.const("w", rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8),
            QuantParams(rng.uniform(0.001, 0.01, 8), np.zeros(8), axis=0))
    g.const("b", rng.integers(-1000, 1000, 8).astype(np.int32))
    g.add_tensor(Tensor("y", (1, 5, 5, 8), "int8", pq(0.1, -5)))
    g.nodes.append(Node("conv2d", "c0", ["x", "w", "b"], ["y"],
                        dict(strides=(2, 2), pads=(1, 1, 1, 1), dilations=(1, 1), groups=1,
                             act_min=-5, act_max=127)))
    g.add_tensor(Tensor("yr", (1, 200), "int8", pq(0.1, -5)))
    g.nodes.append(Node("reshape", "r0", ["y"], ["yr"], dict(shape=(1, 200))))
    g.const("w2", rng.integers(-127, 128, (10, 200)).astype(np.int8),
            QuantParams(rng.uniform(0.001, 0.01, 10), np.zeros(10), axis=0))
    g.const("b2", rng.integers(-1000, 1000, 10).astype(np.int32))
    g.add_tensor(Tensor("z", (1, 10), "int8", pq(0.2, 1)))
    g.nodes.append(Node("fully_connected", "fc", ["yr", "w2", "b2"], ["z"], dict(act_min=-128, act_max=127)))
    g.outputs = ["z"]
    verify(g, quantized=True)
    return g


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, Graph]:
    from mcuc.compiler import CompileOptions, assemble
    from mcuc.project import write_project
    from mcuc.schedule.base import layer_schedule

    g = tiny_graph()
    compiled = assemble(layer_schedule(g).plan("best"), load_board("host"), CompileOptions())
    return write_project(compiled, str(tmp_path_factory.mktemp("fw") / "proj")), g


def _memory_regions(linker_script: Path) -> set[tuple[int, int]]:
    text = linker_script.read_text()
    return {(int(o, 0), int(n, 0)) for o, n in
            re.findall(r"ORIGIN\s*=\s*(0x[0-9A-Fa-f]+|\d+)\s*,\s*LENGTH\s*=\s*(0x[0-9A-Fa-f]+|\d+)", text)}


def test_board_yaml_matches_linker_script():
    boards = [b for b in list_boards() if b.kind != "host"]
    assert {b.name for b in boards} >= set(QEMU_BOARDS + MCU_BOARDS + ["stm32f411", "nrf52840"])
    for b in boards:
        firmware_config(b)
        regions = _memory_regions(b.path / "linker.ld")
        declared = [*b.extra["sram"], b.extra["flash"]]
        for r in declared:
            assert (int(r["origin"]), int(r["size"])) in regions, f"{b.name}: {r['name']} not in linker.ld"
        # SRAM a model can use is where the linker script puts .data/.bss (the arena) and the stack, not the sum of
        # every region; flash is the region code and weights go to
        aliases = linker_aliases(b.path / "linker.ld")
        assert b.data_region.name.upper() == aliases["DATA_REGION"].upper()
        assert b.stack_region.name.upper() == aliases["STACK_REGION"].upper()
        assert b.stack_bytes == int(b.extra["stack_bytes"])
        separate_stack = 0 if b.stack_in_data_region else b.stack_bytes
        assert b.sram_bytes == b.data_region.size + separate_stack <= sum(int(r["size"]) for r in b.extra["sram"])
        assert b.flash_bytes == int(b.extra["flash"]["size"]) == b.text_region.size


def test_board_sizes():
    kib = 1024
    # stm32h7: the 512 KiB AXI SRAM holds .data, .bss and the arena, its 128 KiB DTCM only the 16 KiB stack
    expect = {"stm32h7": (528 * kib, 2048 * kib), "stm32f746": (320 * kib, 1024 * kib),
              "stm32f411": (128 * kib, 512 * kib), "nrf52840": (256 * kib, 1024 * kib)}
    for name, (sram, flash) in expect.items():
        b = load_board(name)
        assert (b.sram_bytes, b.flash_bytes, b.kind) == (sram, flash, "mcu")
    for name in QEMU_BOARDS:
        assert load_board(name).kind == "qemu"


@needs_arm_gcc
@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_qemu_matches_int8_reference(project, board):
    outdir, g = project
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, size=(4, *g.tensors["x"].shape[1:]), dtype=np.int8)
    got = qemu_target.run_qemu(outdir, board, x.reshape(4, -1), out_bytes=10)
    want = np.concatenate([run_int8(g, {"x": x[i:i + 1]})["z"].reshape(1, -1) for i in range(4)])
    np.testing.assert_array_equal(got, want)


@needs_arm_gcc
@pytest.mark.parametrize("board", MCU_BOARDS)
def test_mcu_firmware_builds(project, board):
    outdir, _ = project
    elf = qemu_target.build_firmware(outdir, board)
    for suffix in (".hex", ".bin"):
        assert elf.with_suffix(suffix).stat().st_size > 0
    flags = (outdir / f"build-{board}" / "CMakeFiles" / "mcuc_model.dir" / "flags.make").read_text()
    for flag in ("-mcpu=cortex-m7", "-mfloat-abi=hard", "-O2", "-Wall", "-Wextra", "-Werror"):
        assert flag in flags
    assert "-O3" not in flags
    attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(elf)], capture_output=True, text=True).stdout
    assert "Cortex-M7" in attrs or "7E-M" in attrs


@needs_arm_gcc
def test_flash_without_tool_names_it(project):
    outdir, _ = project
    qemu_target.build_firmware(outdir, "stm32h7")
    cmake = shutil.which("cmake")
    assert cmake is not None
    env = {"PATH": "/nonexistent", **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    proc = subprocess.run([cmake, "--build", str(outdir / "build-stm32h7"), "--target", "flash"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "needs 'openocd', which is not installed" in out


def test_qemu_errors(project, monkeypatch):
    outdir, _ = project
    with pytest.raises(MCUCError, match="does not run under QEMU"):
        qemu_target.build_qemu(outdir, "stm32h7")
    with pytest.raises(MCUCError, match="firmware needs a board of kind"):
        emit_firmware_support(outdir, [load_board("host")])
    real_which = shutil.which
    monkeypatch.setattr(qemu_target.shutil, "which",
                        lambda name: None if name == "qemu-system-arm" else real_which(name))
    with pytest.raises(MCUCError, match="needs 'qemu-system-arm', which is not installed"):
        qemu_target.run_qemu(outdir, QEMU_BOARDS[0], np.zeros((1, 243), np.int8), 10)


@needs_arm_gcc
@needs_qemu
def test_qemu_timeout_and_exit_status(project):
    outdir, _ = project
    with pytest.raises(MCUCError, match="did not finish within"):
        qemu_target.run_qemu(outdir, QEMU_BOARDS[0], np.zeros((1, 243), np.int8), 10, timeout_s=0.001)
    with pytest.raises(MCUCError, match="exit 3"):  # a truncated sample: the runner exits with 3
        qemu_target.run_qemu(outdir, QEMU_BOARDS[0], np.zeros((1, 100), np.int8), 10)
    assert toolchain_file(outdir, load_board(QEMU_BOARDS[0])).exists()


@needs_arm_gcc
@needs_qemu
def test_qemu_fault_is_reported(project, tmp_path):
    """A fault ends the run at once with a message (startup's fault handler), not with a timeout."""
    outdir, _ = project
    broken = tmp_path / "broken"
    shutil.copytree(outdir, broken, ignore=shutil.ignore_patterns("build-*"))
    main_c = broken / "main.c"
    text = main_c.read_text()
    main_c.write_text(text.replace("    if (argc != 3) {", '    __asm__ volatile("udf #0");\n    if (argc != 3) {', 1))
    with pytest.raises(MCUCError, match="fault exception"):
        qemu_target.run_qemu(broken, QEMU_BOARDS[0], np.zeros((1, 243), np.int8), 10, timeout_s=30)

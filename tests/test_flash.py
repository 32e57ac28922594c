"""`mcuc flash`: the exact command per board, build when needed, plain errors without a tool or a probe, QEMU
boards refused, the CMake flash target on the same code, and pyOCD target names that pyOCD knows."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from pyocd.target import TARGET

from mcuc.boards import list_boards
from mcuc.cli import main
from mcuc.zoo import DEMO_CALIB, DEMO_ONNX

HAVE_ARM = all(subprocess.run(["which", t], capture_output=True).returncode == 0
               for t in ("cmake", "arm-none-eabi-gcc"))


def test_pyocd_target_names_are_pyocds() -> None:
    checked = 0
    for b in list_boards():
        tool = b.extra.get("flash_tool") or {}
        if tool.get("program") == "pyocd":
            args = [str(a) for a in tool["args"]]
            target = args[args.index("-t") + 1]
            assert target in TARGET, f"{b.name}: pyOCD has no target '{target}'"
            checked += 1
        if b.kind == "mcu":
            assert tool.get("connect") and tool.get("install") and tool.get("probe_args"), b.name
    assert checked >= 1


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("flash")
    out = {}
    for board in ("nrf52840", "stm32f746", "qemu-mps2-an386"):
        out[board] = d / board
        assert main(["compile", str(DEMO_ONNX), "--calib", str(DEMO_CALIB), "--board", board, "--no-build",
                     "-o", str(out[board])]) == 0
    return out


def test_dry_run_prints_the_command(compiled: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["flash", str(compiled["nrf52840"]), "--dry-run", "--probe", "0006831"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# the firmware is built first")
    cmd = shlex.split(lines[-1])
    hex_path = str(compiled["nrf52840"] / "build-nrf52840" / "mcuc_firmware.hex")
    assert cmd[-6:] == ["flash", "-t", "nrf52840", "--uid", "0006831", hex_path]
    assert main(["flash", str(compiled["stm32f746"]), "--dry-run"]) == 0
    elf = str(compiled["stm32f746"] / "build-stm32f746" / "mcuc_firmware.elf")
    assert shlex.split(capsys.readouterr().out.splitlines()[-1]) == [
        "openocd", "-f", "interface/stlink.cfg", "-f", "target/stm32f7x.cfg", "-c", f"program {elf} verify reset exit"]


def test_qemu_board_has_nothing_to_flash(compiled: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flash", str(compiled["qemu-mps2-an386"])]) == 1
    err = capsys.readouterr().err
    assert "emulated by QEMU: there is nothing to flash" in err and "--target qemu" in err and err.count("\n") == 1


@pytest.mark.skipif(not HAVE_ARM, reason="needs cmake and arm-none-eabi-gcc (make sysdeps)")
def test_no_probe_says_what_to_connect(compiled: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # pyOCD (installed with the dev extra) finds no probe on this machine: the build happens, then the error
    assert main(["flash", str(compiled["nrf52840"])]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: no debug probe found for board 'nrf52840': connect the nRF52840-DK")
    assert (compiled["nrf52840"] / "build-nrf52840" / "mcuc_firmware.hex").exists()
    # OpenOCD: missing, then present but without a probe (a stand-in printing what OpenOCD prints)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    if subprocess.run(["which", "openocd"], capture_output=True).returncode != 0:
        assert main(["flash", str(compiled["stm32f746"])]) == 1
        assert "needs 'openocd', which is not installed: apt-get install openocd" in capsys.readouterr().err
    fake = tmp_path / "openocd"
    fake.write_text("#!/bin/sh\necho 'Error: open failed' >&2\nexit 1\n")
    fake.chmod(0o755)
    assert main(["flash", str(compiled["stm32f746"])]) == 1
    err = capsys.readouterr().err
    assert "no debug probe found for board 'stm32f746'" in err and "ST-LINK USB port (CN14)" in err


@pytest.mark.skipif(not HAVE_ARM, reason="needs cmake and arm-none-eabi-gcc (make sysdeps)")
def test_cmake_flash_target_runs_mcuc_flash(compiled: dict[str, Path], tmp_path: Path) -> None:
    out = compiled["nrf52840"]
    build = tmp_path / "fw"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run(["cmake", "-S", str(out), "-B", str(build),
                    f"-DCMAKE_TOOLCHAIN_FILE={out / 'boards' / 'nrf52840' / 'toolchain.cmake'}"],
                   check=True, capture_output=True, env=env)
    r = subprocess.run(["cmake", "--build", str(build), "--target", "flash"], capture_output=True, text=True, env=env)
    assert r.returncode != 0
    assert "error: no debug probe found for board 'nrf52840'" in r.stdout + r.stderr

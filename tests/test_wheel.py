"""An installed wheel of mcuc compiles and verifies outside the repository, with its own data files.

The wheel is built from a copy of the package sources, installed into a fresh venv that reaches
the running environment's dependencies through a .pth file (no network), and run from a directory
outside the repository. The venv's site-packages comes first on its path and the running
environment's .pth files are not processed there, so the repository's editable mcuc cannot stand
in for the wheel: the test checks which mcuc ran.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("pip") is None, reason="building a wheel needs pip")


def _env() -> dict[str, str]:
    """The environment without anything that would put the repository on the path or reach a package index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
    return env


def _run(cmd: list[str | Path], cwd: Path) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _build_wheel(tmp: Path) -> Path:
    """Build the wheel from a copy of pyproject.toml and mcuc/, so no build output lands in the repository."""
    src = tmp / "src"
    src.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", src / "pyproject.toml")
    shutil.copytree(ROOT / "mcuc", src / "mcuc", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation", "--no-index",
          "-w", dist], cwd=tmp)
    (wheel,) = dist.glob("mcuc-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A venv without pip that sees the running environment's packages; the wheel installed into it."""
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).strip())
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "mcuc_test_deps.pth").write_text("".join(f"{p}\n" for p in deps))
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--ignore-installed", wheel], cwd=tmp)
    return venv


def test_wheel_compiles_and_verifies_outside_the_repository(tmp_path: Path) -> None:
    venv = _fresh_venv(tmp_path, _build_wheel(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    python, mcuc = venv / "bin" / "python", venv / "bin" / "mcuc"

    where = _run([python, "-c", "import mcuc, mcuc.zoo, mcuc.codegen.firmware as f, mcuc.targets.qemu as q; "
                  "print(mcuc.__file__); print(mcuc.zoo.DATA_DIR); print(q.PLUGIN_SOURCE.is_file())"], cwd=work)
    package, data, plugin = where.splitlines()
    assert Path(package).resolve().is_relative_to(venv.resolve()), f"mcuc came from {package}, not the wheel in {venv}"
    assert Path(data).resolve().is_relative_to(venv.resolve())
    assert plugin == "True"

    # every board is listed, and every firmware board's files (common/, linker.ld, toolchain template) are there
    boards = _run([mcuc, "boards"], cwd=work)
    for name in ("host", "qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps3-an547", "stm32f746", "nrf52840"):
        assert name in boards
    _run([python, "-c", "from mcuc.boards import list_boards; from mcuc.codegen.firmware import "
          "FIRMWARE_KINDS, emit_firmware_support; "
          "emit_firmware_support('fw', [b for b in list_boards() if b.kind in FIRMWARE_KINDS])"], cwd=work)
    assert (work / "fw" / "boards" / "common" / "startup.c").is_file()
    assert (work / "fw" / "boards" / "qemu-mps3-an547" / "toolchain.cmake").is_file()

    data_dir = Path(data)
    _run([mcuc, "compile", data_dir / "demo_fmnist.onnx", "--board", "host", "--calib", data_dir / "demo_calib.npy",
          "-o", "out"], cwd=work)
    assert (work / "out" / "runtime" / "src" / "mcuc_conv2d_s8.c").is_file()
    assert (work / "out" / "runtime" / "src" / "mcuc_internal.h").is_file()  # the kernels' private helpers
    out = _run([mcuc, "verify", "out", "--target", "host", "--samples", "4"], cwd=work)
    assert any(line.startswith("PASS: 4 samples") for line in out.splitlines()), out

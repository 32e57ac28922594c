"""Build a compiled project as firmware for a QEMU board and run it under qemu-system-arm.

The firmware is the same file-driven runner as on the host (main.c); QEMU's semihosting passes it
argv and serves its fopen/fread/fwrite from QEMU's working directory, a temporary directory here.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mcuc.boards import Board, load_board
from mcuc.codegen.firmware import emit_firmware_support, toolchain_file
from mcuc.errors import MCUCError
from mcuc.targets.host import _run

QEMU = "qemu-system-arm"
DEFAULT_TIMEOUT_S = 120.0


def _board(board: Board | str) -> Board:
    return load_board(board) if isinstance(board, str) else board


def build_firmware(outdir: Path, board: Board | str) -> Path:
    """Configure and build OUTDIR as firmware for ``board`` in OUTDIR/build-<board>; return the ELF.

    Board files and the toolchain file are added to OUTDIR first if the compile did not write them.
    """
    b = _board(board)
    outdir = Path(outdir)
    for tool in ("cmake", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            raise MCUCError(f"building firmware for '{b.name}' needs '{tool}', which is not installed: "
                            "apt-get install --no-install-recommends cmake gcc-arm-none-eabi "
                            "libnewlib-arm-none-eabi (or run 'make sysdeps')")
    emit_firmware_support(outdir, [b])
    bdir = outdir / f"build-{b.name}"
    _run(["cmake", "-S", str(outdir), "-B", str(bdir), "-DCMAKE_BUILD_TYPE=Release",
          f"-DCMAKE_TOOLCHAIN_FILE={toolchain_file(outdir, b)}"], f"cmake configure for board {b.name}")
    _run(["cmake", "--build", str(bdir), "-j", "2"], f"firmware build for board {b.name}")
    elf = bdir / "mcuc_firmware.elf"
    if not elf.exists():
        raise MCUCError(f"firmware build for board {b.name} produced no ELF at {elf}")
    return elf


def build_qemu(outdir: Path, board: Board | str) -> Path:
    """Build the firmware of QEMU board ``board`` (kind: qemu); return the ELF path."""
    b = _board(board)
    if b.kind != "qemu":
        raise MCUCError(f"board '{b.name}' does not run under QEMU (kind: {b.kind}); choose a qemu-* board "
                        "(see 'mcuc boards')")
    return build_firmware(outdir, b)


def qemu_command(board: Board, elf: Path, args: list[str]) -> list[str]:
    """The qemu-system-arm command line that boots ``elf`` on ``board`` with semihosting argv ``args``."""
    q = board.extra["qemu"]
    for a in args:
        if "," in a or " " in a:
            raise MCUCError(f"semihosting argument '{a}' must not contain ',' or spaces")
    sh = ",".join(["enable=on", "target=native", *(f"arg={a}" for a in args)])
    return [QEMU, "-M", str(q["machine"]), "-cpu", str(q["cpu"]), "-nographic", "-monitor", "none",
            "-serial", "none", "-semihosting-config", sh, "-kernel", str(elf)]


def run_qemu(outdir: Path, board: Board | str, samples: np.ndarray, out_bytes: int,
             timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """Run int8 ``samples`` (N x input bytes) through the firmware under QEMU; return N x out_bytes int8."""
    b = _board(board)
    if shutil.which(QEMU) is None:
        raise MCUCError(f"running on board '{b.name}' needs '{QEMU}', which is not installed: "
                        "apt-get install --no-install-recommends qemu-system-arm (or run 'make sysdeps')")
    elf = build_qemu(outdir, b)
    with tempfile.TemporaryDirectory(prefix="mcuc-qemu-") as td:
        np.ascontiguousarray(samples, dtype=np.int8).tofile(Path(td) / "in.bin")
        cmd = qemu_command(b, elf.resolve(), ["mcuc_firmware", "in.bin", "out.bin"])
        try:
            proc = subprocess.run(cmd, cwd=td, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as e:
            raise MCUCError(f"QEMU ({b.name}) did not finish within {timeout_s:.0f} s; the firmware may be "
                            "stuck (a fault loops forever without semihosting) or the model is too slow "
                            "for the emulator: " + " ".join(cmd)) from e
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
            raise MCUCError(f"firmware under QEMU ({b.name}) failed (exit {proc.returncode}): "
                            + (" | ".join(tail) or "no output"))
        out = Path(td) / "out.bin"
        if not out.exists():
            raise MCUCError(f"firmware under QEMU ({b.name}) wrote no output file; its output: "
                            + (proc.stdout + proc.stderr).strip())
        data = np.fromfile(out, dtype=np.int8)
    n = samples.shape[0]
    if data.size != n * out_bytes:
        raise MCUCError(f"firmware under QEMU ({b.name}) wrote {data.size} bytes, expected {n * out_bytes}")
    return data.reshape(n, out_bytes)

"""Firmware builds: a compiled OUTDIR configured and built with CMake and the ARM toolchain for one board."""
from __future__ import annotations

import shutil
from pathlib import Path

from mcuc.boards import Board, load_board
from mcuc.codegen.firmware import emit_firmware_support, toolchain_file
from mcuc.errors import MCUCError
from mcuc.targets.host import _run


def board_of(board: Board | str) -> Board:
    """A board given by name or already loaded."""
    return load_board(board) if isinstance(board, str) else board


def have_arm_toolchain() -> bool:
    """True when cmake and arm-none-eabi-gcc are installed (firmware can be built)."""
    return all(shutil.which(t) is not None for t in ("cmake", "arm-none-eabi-gcc"))


def firmware_build_dir(outdir: Path, board: Board, profile: bool = False, unchecked: bool = False) -> Path:
    """OUTDIR/build-<board>, with -profile (profile marks) or -unchecked (link kept when too big) variants."""
    suffix = ("-profile" if profile else "") + ("-unchecked" if unchecked else "")
    return Path(outdir) / f"build-{board.name}{suffix}"


def build_firmware(outdir: Path, board: Board | str, profile: bool = False, unchecked: bool = False) -> Path:
    """Configure and build OUTDIR as firmware for ``board`` in OUTDIR/build-<board>; return the ELF.

    Board files and the toolchain file are added to OUTDIR first if the compile did not write them.
    ``profile`` builds with profile marks around every op (see profile_qemu); ``unchecked`` keeps the
    ELF even when it overflows the board's memories, so that its size can be measured.
    """
    b = board_of(board)
    outdir = Path(outdir).resolve()
    for tool in ("cmake", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            raise MCUCError(f"building firmware for '{b.name}' needs '{tool}', which is not installed: "
                            "apt-get install --no-install-recommends cmake gcc-arm-none-eabi "
                            "libnewlib-arm-none-eabi (or run 'make sysdeps')")
    emit_firmware_support(outdir, [b])
    bdir = firmware_build_dir(outdir, b, profile, unchecked)
    _run(["cmake", "-S", str(outdir), "-B", str(bdir), "-DCMAKE_BUILD_TYPE=Release",
          f"-DCMAKE_TOOLCHAIN_FILE={toolchain_file(outdir, b)}", f"-DMCUC_PROFILE={'ON' if profile else 'OFF'}",
          f"-DMCUC_LINK_UNCHECKED={'ON' if unchecked else 'OFF'}"], f"cmake configure for board {b.name}")
    _run(["cmake", "--build", str(bdir), "-j", "2"], f"firmware build for board {b.name}")
    elf = bdir / "mcuc_firmware.elf"
    if not elf.exists():
        raise MCUCError(f"firmware build for board {b.name} produced no ELF at {elf}")
    return elf

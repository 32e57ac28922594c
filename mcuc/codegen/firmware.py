"""Firmware support in a compiled project: board files, shared startup and a CMake toolchain file.

``emit_firmware_support(outdir, boards)`` makes OUTDIR buildable as firmware for each board:

    OUTDIR/boards/common/          startup.c, sections.ld, firmware.cmake (shared)
    OUTDIR/boards/<name>/          board.yaml, linker.ld (copied) and toolchain.cmake (rendered)

Configure with ``-DCMAKE_TOOLCHAIN_FILE=OUTDIR/boards/<name>/toolchain.cmake``; the generated
CMakeLists.txt then builds ``mcuc_firmware.elf`` instead of the host runner.
"""
from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mcuc.boards import BOARDS_DIR, Board
from mcuc.codegen.render import HEADER, environment
from mcuc.errors import MCUCError

COMMON_FILES = ("startup.c", "sections.ld", "firmware.cmake")
FIRMWARE_KINDS = ("qemu", "mcu")
_UNSAFE_CMAKE = ('"', "|", ";", "$", "\\")


@dataclass(frozen=True)
class FirmwareConfig:
    """The parts of board.yaml a firmware build needs, checked once."""

    cpu_flags: list[str]
    stack_bytes: int
    semihosting: bool
    binary_image: bool
    flash_program: str  # the real board's flash tool (mcuc/flash.py runs it)


def firmware_config(board: Board) -> FirmwareConfig:
    """Read and check the firmware fields of ``board``; raise MCUCError naming what is wrong."""
    where = str(board.path / "board.yaml")
    if board.kind not in FIRMWARE_KINDS:
        raise MCUCError(f"board '{board.name}' is a {board.kind} board; firmware needs a board of kind "
                        f"{' or '.join(FIRMWARE_KINDS)}")
    data = board.extra
    flags = data.get("cpu_flags")
    if not isinstance(flags, list) or not flags or not all(isinstance(f, str) for f in flags):
        raise MCUCError(f"{where}: 'cpu_flags' must be a non-empty list of gcc flags (e.g. [-mcpu=cortex-m4])")
    if not (board.path / "linker.ld").exists():
        raise MCUCError(f"board '{board.name}' has no linker script (expected {board.path / 'linker.ld'})")
    tool = data.get("flash_tool") or {}
    semihosting = bool(data.get("semihosting", board.kind == "qemu"))
    if board.kind == "qemu":
        qemu = data.get("qemu") or {}
        if not qemu.get("machine") or not qemu.get("cpu"):
            raise MCUCError(f"{where}: a QEMU board needs 'qemu: {{machine: ..., cpu: ...}}'")
        if not semihosting:
            raise MCUCError(f"{where}: QEMU boards run with semihosting (set 'semihosting: true')")
    elif not tool.get("program"):
        raise MCUCError(f"{where}: a real board needs 'flash_tool: {{program: openocd|pyocd, args: [...]}}'")
    for text in flags:
        if any(c in text for c in _UNSAFE_CMAKE):
            raise MCUCError(f"{where}: '{text}' contains one of {' '.join(_UNSAFE_CMAKE)}, "
                            "which cannot be passed through CMake safely")
    return FirmwareConfig(cpu_flags=list(flags), stack_bytes=int(data.get("stack_bytes", 8192)),
                          semihosting=semihosting, binary_image=bool(data.get("binary_image", True)),
                          flash_program=str(tool.get("program", "")))


def toolchain_file(outdir: Path, board: Board) -> Path:
    """Where emit_firmware_support puts the CMake toolchain file of ``board``."""
    return Path(outdir) / "boards" / board.name / "toolchain.cmake"


def emit_firmware_support(outdir: Path, boards: Sequence[Board]) -> list[Path]:
    """Copy the shared and per-board firmware files into OUTDIR; return each board's toolchain file.

    Idempotent: calling it again (e.g. for another QEMU board after compile) only adds or refreshes
    files under OUTDIR/boards/.
    """
    outdir = Path(outdir)
    common = outdir / "boards" / "common"
    common.mkdir(parents=True, exist_ok=True)
    for name in COMMON_FILES:
        shutil.copy2(BOARDS_DIR / "common" / name, common / name)
    template = environment().get_template("toolchain.cmake.j2")
    written = []
    for board in boards:
        cfg = firmware_config(board)
        bdir = outdir / "boards" / board.name
        bdir.mkdir(parents=True, exist_ok=True)
        for name in ("board.yaml", "linker.ld"):
            shutil.copy2(board.path / name, bdir / name)
        path = toolchain_file(outdir, board)
        path.write_text(template.render(
            header=HEADER, board=board, cpu_flags=cfg.cpu_flags, stack_bytes=cfg.stack_bytes,
            semihosting=cfg.semihosting, binary_image=cfg.binary_image, python=sys.executable))
        written.append(path)
    return written

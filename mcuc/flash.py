"""Programming a compiled project's firmware into a real board: `mcuc flash` and the CMake `flash` target.

The board's ``flash_tool`` (board.yaml) names the program (pyOCD or OpenOCD), its arguments with the image
placeholders ``{elf}``, ``{hex}``, ``{bin}``, where a probe serial goes (``{probe_args}``, filled from
``probe_args`` with ``{probe}`` when ``--probe ID`` is given), what to install and what to connect. The firmware
is built first when it is missing or older than the generated sources. QEMU and host boards have nothing to
flash. ``python -m mcuc.flash`` is what the generated CMake project's ``flash`` target runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mcuc.boards import Board, load_board
from mcuc.errors import MCUCError
from mcuc.progress import log
from mcuc.report import read_report
from mcuc.targets.build import build_firmware, firmware_build_dir

SOURCES = ("model.c", "weights.c", "main.c", "model.h", "weights.h", "CMakeLists.txt")
# what the tools print when no probe answers (pyOCD checks before it starts, OpenOCD only fails)
NO_PROBE_PATTERNS = ("open failed", "no device found", "unable to find", "no connected debug probes",
                     "no stlink", "libusb_open() failed", "error: couldn't find a matching", "no probe")


@dataclass(frozen=True)
class FlashPlan:
    """The command that programs the board, and whether the firmware must be built first."""

    board: Board
    command: list[str]
    elf: Path
    needs_build: bool
    connect: str  # what the user connects, from board.yaml
    install: str

    def shell(self) -> str:
        return shlex.join(self.command)


def flash_board(outdir: Path, board_name: str | None = None) -> Board:
    """The board OUTDIR was compiled for (or ``board_name``, the board a firmware build of OUTDIR targets), if it
    can be flashed; MCUCError saying what to do otherwise."""
    if not (Path(outdir) / "report.json").exists():
        raise MCUCError(f"'{outdir}' is not a compiled mcuc project (no report.json); run 'mcuc compile' first")
    board = load_board(board_name or str(read_report(Path(outdir)).get("board", "")))
    if board.kind == "qemu":
        raise MCUCError(f"board '{board.name}' is emulated by QEMU: there is nothing to flash; run the firmware "
                        f"with 'mcuc run {outdir} --target qemu', or compile for a real board (see 'mcuc boards')")
    if board.kind != "mcu":
        raise MCUCError(f"board '{board.name}' is the native build: there is nothing to flash; run it with "
                        f"'mcuc run {outdir}', or compile for a real board (--board, see 'mcuc boards')")
    return board


def plan_flash(outdir: Path, probe: str | None = None, elf: Path | None = None,
               board_name: str | None = None) -> FlashPlan:
    """The flash command for OUTDIR's board (``probe``: the probe's serial number / unique id)."""
    outdir = Path(outdir)
    board = flash_board(outdir, board_name)
    tool = board.extra.get("flash_tool") or {}
    where = board.path / "board.yaml"
    program, args = str(tool.get("program", "")), [str(a) for a in tool.get("args", [])]
    if not program or not args:
        raise MCUCError(f"{where}: 'flash_tool' needs 'program' and 'args'")
    built = elf is not None
    if elf is None:
        elf = firmware_build_dir(outdir, board) / "mcuc_firmware.elf"
    newest = max((outdir / s).stat().st_mtime for s in SOURCES if (outdir / s).exists())
    needs_build = not built and (not elf.exists() or elf.stat().st_mtime < newest)
    images = {"{elf}": str(elf), "{hex}": str(elf.with_suffix(".hex")), "{bin}": str(elf.with_suffix(".bin"))}
    probe_args = [str(a).replace("{probe}", probe) for a in tool.get("probe_args", [])] if probe else []
    if probe and not probe_args:
        raise MCUCError(f"{where}: the flash tool of board '{board.name}' has no 'probe_args', so --probe cannot "
                        "select a probe; connect only one probe and leave --probe out")
    command = _program_command(program)
    for a in args:
        if a == "{probe_args}":
            command.extend(probe_args)
            continue
        for k, v in images.items():
            a = a.replace(k, v)
        command.append(a)
    return FlashPlan(board, command, elf, needs_build, str(tool.get("connect", "the board's debug probe over USB")),
                     str(tool.get("install", f"install {program}")))


def flash(outdir: Path, probe: str | None = None, dry_run: bool = False, elf: Path | None = None,
          board_name: str | None = None, out: Callable[[str], None] = print,
          progress: Callable[[str], None] = log) -> FlashPlan:
    """Build if needed and program the board; with ``dry_run`` only print the command."""
    plan = plan_flash(outdir, probe, elf, board_name)
    if dry_run:
        if plan.needs_build:
            out(f"# the firmware is built first ({plan.elf} is missing or older than the sources)")
        out(plan.shell())
        return plan
    program = str(plan.board.extra["flash_tool"]["program"])
    if shutil.which(plan.command[0]) is None:
        raise MCUCError(f"flashing board '{plan.board.name}' needs '{program}', which is not installed: "
                        f"{plan.install}")
    if plan.needs_build:
        progress(f"building firmware for {plan.board.name} ...")
        build_firmware(Path(outdir), plan.board)
    if program == "pyocd" and not probe:
        _require_pyocd_probe(plan)
    progress(f"flashing {plan.board.name}: {plan.shell()}")
    proc = subprocess.run(plan.command, capture_output=True, text=True)
    text = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        if any(p in text.lower() for p in NO_PROBE_PATTERNS):
            raise MCUCError(f"no debug probe found for board '{plan.board.name}' ({program} says: "
                            f"{_last_line(text)}): connect {plan.connect}, then run 'mcuc flash' again")
        raise MCUCError(f"{program} failed (exit {proc.returncode}) flashing board '{plan.board.name}': "
                        f"{_last_line(text)}; is {plan.connect} connected and the board powered?")
    if text:
        progress(text)
    out(f"flashed {plan.board.name} with {plan.elf.name}")
    return plan


def _program_command(program: str) -> list[str]:
    """How to start the flash tool: from PATH, or pyOCD through this interpreter (pip installs it beside mcuc,
    which puts it on PATH only inside an activated environment)."""
    if shutil.which(program) is None and program == "pyocd" and importlib.util.find_spec("pyocd") is not None:
        return [sys.executable, "-m", "pyocd"]
    return [program]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _require_pyocd_probe(plan: FlashPlan) -> None:
    """pyOCD can list the probes itself: say plainly that none is connected before flashing starts."""
    try:
        from pyocd.probe.aggregator import DebugProbeAggregator  # optional: pip install mcuc[flash]
    except ImportError:
        return  # the pyocd program without its Python package on this interpreter: let it report
    if not DebugProbeAggregator.get_all_connected_probes():
        raise MCUCError(f"no debug probe found for board '{plan.board.name}': connect {plan.connect}, then run "
                        "'mcuc flash' again ('pyocd list' shows the probes pyOCD sees)")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mcuc.flash OUTDIR [--elf ELF] [--board B] [--probe ID] [--dry-run]``: what the CMake ``flash``
    target runs (with the ELF it just built); the same code as ``mcuc flash``."""
    ap = argparse.ArgumentParser(prog="python -m mcuc.flash", description=main.__doc__)
    ap.add_argument("outdir")
    ap.add_argument("--elf", type=Path, help="firmware ELF built by the CMake project")
    ap.add_argument("--board", help="the board of that build  [default: the compile's board]")
    ap.add_argument("--probe", help="serial number / unique id of the debug probe")
    ap.add_argument("--dry-run", action="store_true", help="print the command only")
    a = ap.parse_args(argv)
    try:
        flash(Path(a.outdir), a.probe or None, a.dry_run, a.elf, a.board)
    except MCUCError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

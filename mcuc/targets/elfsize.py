"""Measured size of a firmware ELF: flash image and static RAM, read with pyelftools.

Classification follows the section flags, as `arm-none-eabi-size` does:
  flash = allocated sections with file contents (vectors, code, rodata/weights, unwind tables)
          plus the load image of writable data (.data is copied from flash at reset)
  RAM   = writable allocated sections (.data, .bss with the activation arena) plus the main stack
          reservation (the linker symbol __mcuc_stack_bytes, from board.yaml stack_bytes)
The arena is the size of the ``mcuc_arena`` symbol, which must equal report.json's arena_bytes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile

from mcuc.boards import Board
from mcuc.errors import MCUCError
from mcuc.targets.build import build_firmware

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
ARENA_SYMBOL = "mcuc_arena"
STACK_SYMBOL = "__mcuc_stack_bytes"
STACK_TOP_SYMBOL = "__stack_top__"


@dataclass(frozen=True)
class ElfSizes:
    """Sizes in bytes of one firmware image."""

    board: str
    flash_bytes: int  # text + rodata + .data load image
    ram_bytes: int  # data + bss + stack reservation
    text_bytes: int  # read-only allocated sections (code, weights, vectors)
    data_bytes: int  # initialised writable data (in flash and in RAM)
    bss_bytes: int  # zero-initialised data, including the arena
    arena_bytes: int  # size of the mcuc_arena symbol
    stack_bytes: int  # main stack reservation
    ram_regions: dict[str, int]  # bytes used per board SRAM region (sections by address, stack in its region)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _symbols(elf: Any) -> dict[str, Any]:
    symtab = elf.get_section_by_name(".symtab")
    if symtab is None:
        raise MCUCError("firmware ELF has no symbol table (was it stripped?)")
    return {s.name: s for s in symtab.iter_symbols() if s.name}


def _region_of(board: Board, addr: int) -> str | None:
    for r in board.extra.get("sram", []):
        if int(r["origin"]) <= addr < int(r["origin"]) + int(r["size"]):
            return str(r["name"])
    return None


def elf_sizes(elf_path: Path, board: Board) -> ElfSizes:
    """Measure ``elf_path`` (an mcuc firmware for ``board``)."""
    text = data = bss = 0
    regions = {str(r["name"]): 0 for r in board.extra.get("sram", [])}
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        for sec in elf.iter_sections():
            flags, size = int(sec["sh_flags"]), int(sec["sh_size"])
            if not flags & SHF_ALLOC or size == 0:
                continue
            if flags & SHF_WRITE:
                if sec["sh_type"] == "SHT_NOBITS":
                    bss += size
                else:
                    data += size
                region = _region_of(board, int(sec["sh_addr"]))
                if region is not None:
                    regions[region] += size
            else:
                text += size
        syms = _symbols(elf)
    if ARENA_SYMBOL not in syms:
        raise MCUCError(f"firmware ELF {elf_path} has no '{ARENA_SYMBOL}' symbol")
    stack = int(syms[STACK_SYMBOL]["st_value"]) if STACK_SYMBOL in syms else 0
    if STACK_TOP_SYMBOL in syms and stack:
        region = _region_of(board, int(syms[STACK_TOP_SYMBOL]["st_value"]) - 1)
        if region is not None:
            regions[region] += stack
    return ElfSizes(board=board.name, flash_bytes=text + data, ram_bytes=data + bss + stack, text_bytes=text,
                    data_bytes=data, bss_bytes=bss, arena_bytes=int(syms[ARENA_SYMBOL]["st_size"]),
                    stack_bytes=stack, ram_regions=regions)


def symbol_range(elf_path: Path, name: str) -> tuple[int, int]:
    """[start, end) address of function ``name`` in ``elf_path`` (Thumb bit cleared)."""
    with open(elf_path, "rb") as f:
        syms = _symbols(ELFFile(f))
    if name not in syms:
        raise MCUCError(f"firmware ELF {elf_path} has no symbol '{name}'")
    start = int(syms[name]["st_value"]) & ~1
    return start, start + max(int(syms[name]["st_size"]), 2)


def fit_problems(sizes: ElfSizes, board: Board, flash_budget: int | None = None) -> list[str]:
    """What of the measured image does not fit ``board``: flash (and ``flash_budget``, --flash), then each SRAM
    region; empty if it fits."""
    problems = []
    for limit, name in ((board.flash_bytes, "flash"), (flash_budget, "the --flash budget")):
        if limit is not None and sizes.flash_bytes > limit:
            problems.append(f"flash image {sizes.flash_bytes:,} B exceeds the {limit:,} B of {name} by "
                            f"{sizes.flash_bytes - limit:,} B")
            break
    for r in board.extra.get("sram", []):
        used, size = sizes.ram_regions.get(str(r["name"]), 0), int(r["size"])
        if used > size:
            problems.append(f"RAM region '{r['name']}' needs {used:,} B (data + bss + stack) but has {size:,} B")
    if sizes.ram_bytes > board.sram_bytes:
        problems.append(f"static RAM {sizes.ram_bytes:,} B exceeds the {board.sram_bytes:,} B of SRAM")
    return problems


def does_not_fit_message(sizes: ElfSizes, board: Board, weights_bytes: int,
                         flash_budget: int | None = None) -> str:
    """One line: why the firmware image does not fit ``board`` and what to do about it."""
    problems = fit_problems(sizes, board, flash_budget)
    return (f"firmware for board '{board.name}' does not fit: {'; '.join(problems)} (weights {weights_bytes:,} B, "
            f"arena {sizes.arena_bytes:,} B); use a board with more memory, a smaller model or input resolution")


def measured_report(sizes: ElfSizes, elf_path: Path) -> dict[str, Any]:
    """The ``measured`` entry of report.json."""
    d = sizes.as_dict()
    d["elf"] = str(elf_path)
    return d


LINKER_OVERFLOW_MARKERS = ("will not fit in region", "overflowed by", "ld: mcuc:")


def measure_firmware(outdir: Path, board: Board, weights_bytes: int,
                     flash_budget: int | None = None) -> dict[str, Any]:
    """Build OUTDIR's firmware for ``board``, measure it and check that it fits; return report["measured"].

    When the linker rejects an image that overflows the board, the image is linked again without the
    check (build-<board>-unchecked) so that the error can say by how much it does not fit.
    """
    outdir = Path(outdir).resolve()
    try:
        elf = build_firmware(outdir, board)
    except MCUCError as e:
        if not any(m in str(e) for m in LINKER_OVERFLOW_MARKERS):
            raise
        elf = build_firmware(outdir, board, unchecked=True)
        sizes = elf_sizes(elf, board)
        if not fit_problems(sizes, board, flash_budget):
            raise
        raise MCUCError(does_not_fit_message(sizes, board, weights_bytes, flash_budget)) from None
    sizes = elf_sizes(elf, board)
    if fit_problems(sizes, board, flash_budget):
        raise MCUCError(does_not_fit_message(sizes, board, weights_bytes, flash_budget))
    return measured_report(sizes, elf.relative_to(outdir) if elf.is_relative_to(outdir) else elf)


def size_summary(measured: dict[str, Any], report: dict[str, Any]) -> str:
    """Lines printed after compile: measured flash and RAM beside the predicted values."""
    static = measured["data_bytes"] + measured["bss_bytes"]
    return (f"firmware {measured['board']} ({measured['elf']}):\n"
            f"  flash        {measured['flash_bytes']:>10,} B  (predicted {report['predicted_flash_bytes']:,} B: "
            f"weights + op arrays + code estimate)\n"
            f"  static RAM   {measured['ram_bytes']:>10,} B  (data + bss {static:,}"
            f" B + stack {measured['stack_bytes']:,} B; predicted peak {report['peak_sram_bytes']:,} B)")

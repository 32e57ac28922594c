"""Boards are data: <name>/board.yaml beside this module describes core, memories and how to run or flash.

Where the firmware's memory goes is read from the board's linker script (``linker.ld``), the file the
linker itself follows: its ``REGION_ALIAS`` lines name the region of code and weights (TEXT_REGION),
of ``.data``, ``.bss`` and the activation arena (DATA_REGION) and of the stack (STACK_REGION). The fit
checks of a compile use these regions, so a model is refused exactly when the linker would refuse it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mcuc.errors import MCUCError

BOARDS_DIR = Path(__file__).resolve().parent
# ISA features a board may name in its `isa` list; codegen picks kernel variants that need them
# (mcuc.ops.KernelVariant.isa): "dsp" = Armv7E-M DSP/SIMD (Cortex-M4, M7, M55), "mve" = Helium (M55).
ISA_FEATURES = ("dsp", "mve")
# The stack one inference needs (invoke + kernel frames; no kernel recurses or uses VLAs), measured under
# QEMU by tests/test_memsim.py. A board without a linker script (the host) reserves this much in the peak.
STACK_ESTIMATE_BYTES = 2048
LINKER_ALIASES = ("TEXT_REGION", "DATA_REGION", "STACK_REGION")


@dataclass(frozen=True)
class MemoryRegion:
    """A memory region of the board: [origin, origin + size)."""

    name: str
    origin: int
    size: int


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    sram_bytes: int  # SRAM a model can use as the linker places it: the data region + a stack in a region of its own
    flash_bytes: int  # the region code and weights are linked into
    kind: str  # "host" | "qemu" | "mcu"
    isa: tuple[str, ...] = ()  # ISA features of the core (ISA_FEATURES) that kernel variants may use
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path = BOARDS_DIR
    stack_bytes: int = STACK_ESTIMATE_BYTES  # main stack the linker script reserves (board.yaml stack_bytes)
    data_region: MemoryRegion = MemoryRegion("ram", 0, 0)  # .data, .bss (the arena), heap
    stack_region: MemoryRegion = MemoryRegion("ram", 0, 0)  # the top stack_bytes of it
    text_region: MemoryRegion = MemoryRegion("flash", 0, 0)  # code, weights, the .data load image
    linked: bool = False  # built with a linker script of ours (firmware boards), not by the host's toolchain

    @property
    def stack_in_data_region(self) -> bool:
        return self.stack_region == self.data_region

    @property
    def arena_room_bytes(self) -> int:
        """Bytes of the data region left for .data and .bss (the arena) once the stack has its share."""
        return self.data_region.size - (self.stack_bytes if self.stack_in_data_region else 0)

    def placement(self) -> str:
        """Where the linker puts the model's memory, for messages."""
        data = f"{self.data_region.size:,} B {self.data_region.name} for .data, .bss and the arena"
        if self.stack_in_data_region:
            return f"{data}, {self.stack_bytes:,} B of it reserved for the stack"
        return f"{data} + {self.stack_bytes:,} B stack in {self.stack_region.name}"


def list_boards() -> list[Board]:
    """Every board with a board.yaml under BOARDS_DIR, sorted by name."""
    return [load_board(p.name) for p in sorted(BOARDS_DIR.iterdir()) if (p / "board.yaml").exists()]


def _region(r: Any, default_name: str) -> MemoryRegion:
    if isinstance(r, dict):
        return MemoryRegion(str(r.get("name", default_name)), int(r.get("origin", 0)), int(r["size"]))
    return MemoryRegion(default_name, 0, int(r))


def linker_aliases(linker_script: Path) -> dict[str, str]:
    """``REGION_ALIAS("ALIAS", MEMORY)`` lines of a linker script: alias -> memory region name."""
    text = re.sub(r"/\*.*?\*/", "", linker_script.read_text(), flags=re.S)
    return dict(re.findall(r'REGION_ALIAS\(\s*"(\w+)"\s*,\s*(\w+)\s*\)', text))


def load_board(name: str) -> Board:
    path = BOARDS_DIR / name / "board.yaml"
    if not path.exists():
        known = ", ".join(p.name for p in sorted(BOARDS_DIR.iterdir()) if (p / "board.yaml").exists())
        raise MCUCError(f"unknown board '{name}': choose one of {known} (see 'mcuc boards')")
    data = yaml.safe_load(path.read_text())
    try:
        isa = tuple(str(f) for f in data.get("isa") or ())
        unknown = [f for f in isa if f not in ISA_FEATURES]
        if unknown:
            raise ValueError(f"unknown ISA feature(s) {', '.join(unknown)} (known: {', '.join(ISA_FEATURES)})")
        sram = [_region(r, "ram") for r in data.get("sram", [])]
        flash = _region(data.get("flash", 0), "flash")
        regions = {r.name.lower(): r for r in [*sram, flash]}
        if "vector_memory" in data:
            vec = _region(data["vector_memory"], "vectors")
            regions[vec.name.lower()] = vec
        script = path.parent / "linker.ld"
        if script.exists():
            aliases = linker_aliases(script)
            placed = {}
            for alias in LINKER_ALIASES:
                if alias not in aliases:
                    raise ValueError(f"{script} has no REGION_ALIAS(\"{alias}\", ...)")
                if aliases[alias].lower() not in regions:
                    raise ValueError(f"{script} places {alias} in '{aliases[alias]}', which board.yaml does not "
                                     "declare")
                placed[alias] = regions[aliases[alias].lower()]
            text, data_r, stack_r = placed["TEXT_REGION"], placed["DATA_REGION"], placed["STACK_REGION"]
            stack = int(data["stack_bytes"])
        else:  # the host: its own toolchain links the program
            text, data_r, stack_r, stack = flash, sram[0], sram[0], STACK_ESTIMATE_BYTES
        usable = data_r.size + (0 if stack_r == data_r else min(stack, stack_r.size))
        return Board(name=name, description=data.get("description", ""), core=data["core"],
                     sram_bytes=usable, flash_bytes=text.size, kind=data.get("kind", "mcu"),
                     isa=isa, extra=data, path=path.parent, stack_bytes=stack, data_region=data_r,
                     stack_region=stack_r, text_region=text, linked=script.exists())
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise MCUCError(f"board file {path} is malformed ({type(e).__name__}: {e}); "
                        f"see {BOARDS_DIR / 'README.md'} for the schema") from e

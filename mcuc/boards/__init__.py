"""Boards are data: <name>/board.yaml beside this module describes core, memories and how to run or flash."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mcuc.errors import MCUCError

BOARDS_DIR = Path(__file__).resolve().parent
# ISA features a board may name in its `isa` list; codegen picks kernel variants that need them
# (mcuc.ops.KernelVariant.isa): "dsp" = Armv7E-M DSP/SIMD (Cortex-M4, M7, M55), "mve" = Helium (M55).
ISA_FEATURES = ("dsp", "mve")


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    sram_bytes: int
    flash_bytes: int
    kind: str  # "host" | "qemu" | "mcu"
    isa: tuple[str, ...] = ()  # ISA features of the core (ISA_FEATURES) that kernel variants may use
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path = BOARDS_DIR


def list_boards() -> list[Board]:
    """Every board with a board.yaml under BOARDS_DIR, sorted by name."""
    return [load_board(p.name) for p in sorted(BOARDS_DIR.iterdir()) if (p / "board.yaml").exists()]


def load_board(name: str) -> Board:
    path = BOARDS_DIR / name / "board.yaml"
    if not path.exists():
        known = ", ".join(p.name for p in sorted(BOARDS_DIR.iterdir()) if (p / "board.yaml").exists())
        raise MCUCError(f"unknown board '{name}': choose one of {known} (see 'mcuc boards')")
    data = yaml.safe_load(path.read_text())
    try:
        sram = sum(int(r["size"]) for r in data.get("sram", []))
        flash = data.get("flash", 0)
        flash_bytes = int(flash["size"]) if isinstance(flash, dict) else int(flash)
        isa = tuple(str(f) for f in data.get("isa") or ())
        unknown = [f for f in isa if f not in ISA_FEATURES]
        if unknown:
            raise ValueError(f"unknown ISA feature(s) {', '.join(unknown)} (known: {', '.join(ISA_FEATURES)})")
        return Board(name=name, description=data.get("description", ""), core=data["core"],
                     sram_bytes=sram, flash_bytes=flash_bytes, kind=data.get("kind", "mcu"), isa=isa,
                     extra=data, path=path.parent)
    except (KeyError, TypeError, ValueError) as e:
        raise MCUCError(f"board file {path} is malformed ({type(e).__name__}: {e}); "
                        f"see {BOARDS_DIR / 'README.md'} for the schema") from e

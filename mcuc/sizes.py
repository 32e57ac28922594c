"""Parsing of byte sizes given on the command line ('320k', '1M', '327680')."""
from __future__ import annotations

import re

from mcuc.errors import MCUCError

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2}


def parse_size(text: str) -> int:
    """Bytes from '320k', '320K', '320KiB', '1M', '327680'; k = 1024 bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise MCUCError(f"bad size '{text}': use a byte count or k/M suffix, e.g. 320k, 1M, 327680")
    value = float(m.group(1)) * _UNITS[unit]
    if value != int(value) or value <= 0:
        raise MCUCError(f"bad size '{text}': must be a positive whole number of bytes")
    return int(value)


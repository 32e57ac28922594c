"""Parsing of byte sizes ('320k', '1M', '327680') and counts ('300M' MACs) given on the command line."""
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



def parse_count(text: str) -> float:
    """A count with a decimal suffix: '300M', '1.2G', '5e6' -> a number (k = 1000, unlike sizes)."""
    t = text.strip().upper()
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(t[-1:], 1.0)
    try:
        return float(t[:-1] if scale != 1.0 else t) * scale
    except ValueError as e:
        raise MCUCError(f"bad MAC count {text!r}: use e.g. 300M") from e

"""Build mcuc/runtime_c sources into a shared library for ctypes-based kernel parity tests."""
from __future__ import annotations

import ctypes
import hashlib
import subprocess
from pathlib import Path

from mcuc import RUNTIME_DIR as RUNTIME

ROOT = Path(__file__).resolve().parents[1]
CFLAGS = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]


def build_shared(sources: list[str], tmp_root: Path | None = None) -> ctypes.CDLL:
    """Compile mcuc/runtime_c/src/<name>.c for each name in ``sources`` into one .so and load it.

    The library is cached under build/ctypes by a hash of the sources' contents and headers.
    """
    srcs = [Path(s) if Path(s).is_absolute() else RUNTIME / "src" / (s if s.endswith(".c") else s + ".c")
            for s in sources]
    h = hashlib.sha256()
    for p in sorted(srcs) + sorted((RUNTIME / "include").glob("*.h")) + sorted((RUNTIME / "src").glob("*.h")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    out_dir = (tmp_root or ROOT / "build" / "ctypes")
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / f"libmcuc_{h.hexdigest()[:16]}.so"
    if not lib.exists():
        tmp = lib.with_suffix(".tmp.so")
        subprocess.run(["cc", *CFLAGS, "-I", str(RUNTIME / "include"), *map(str, srcs), "-o", str(tmp)],
                       check=True)
        tmp.rename(lib)
    return ctypes.CDLL(str(lib))

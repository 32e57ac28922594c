"""Build a compiled project with the host C compiler (CMake) and run its file-driven runner."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mcuc.errors import MCUCError


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise MCUCError(f"{what} needs '{cmd[0]}', which is not installed (run 'make sysdeps')") from e
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise MCUCError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))
    return proc


def build_host(outdir: Path, sanitize: bool = True) -> Path:
    """Configure and build OUTDIR's host CMake project; return the runner executable."""
    if shutil.which("cmake") is None:
        raise MCUCError("building for the host needs cmake: apt-get install --no-install-recommends cmake")
    bdir = outdir / ("build-host-asan" if sanitize else "build-host")
    _run(["cmake", "-S", str(outdir), "-B", str(bdir), "-DCMAKE_BUILD_TYPE=Release",
          f"-DMCUC_SANITIZE={'ON' if sanitize else 'OFF'}"], "cmake configure")
    _run(["cmake", "--build", str(bdir), "-j", "2"], "host build")
    exe = bdir / "mcuc_runner"
    if not exe.exists():
        raise MCUCError(f"host build produced no runner at {exe}")
    return exe


def run_host(outdir: Path, samples: np.ndarray, out_bytes: int, sanitize: bool = True) -> np.ndarray:
    """Run int8 ``samples`` (N x input bytes) through the host runner; return N x out_bytes int8."""
    exe = build_host(outdir, sanitize)
    with tempfile.TemporaryDirectory() as td:
        fin, fout = Path(td) / "in.bin", Path(td) / "out.bin"
        np.ascontiguousarray(samples, dtype=np.int8).tofile(fin)
        _run([str(exe), str(fin), str(fout)], "host runner")
        data = np.fromfile(fout, dtype=np.int8)
    n = samples.shape[0]
    if data.size != n * out_bytes:
        raise MCUCError(f"host runner wrote {data.size} bytes, expected {n * out_bytes}")
    return data.reshape(n, out_bytes)

"""C kernels form pointers only to elements inside their buffers (no out-of-bounds pointer arithmetic).

Forming a pointer outside an array is undefined behaviour even if it is never read; it is caught here by
placing the input at a low address, where such a pointer wraps below 0 and UBSan's pointer-overflow check
reports it."""
from __future__ import annotations

import subprocess

from tests.cbuild import RUNTIME


def test_pool_kernels_form_no_pointer_before_a_padded_input(tmp_path):
    exe = tmp_path / "pool_low_address"
    subprocess.run(["cc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror",
                    "-fsanitize=undefined,pointer-overflow", "-fno-sanitize-recover=all",
                    "-I", str(RUNTIME / "include"), str(RUNTIME / "tests" / "pool_low_address.c"),
                    str(RUNTIME / "src" / "mcuc_maxpool_s8.c"), str(RUNTIME / "src" / "mcuc_avgpool_s8.c"),
                    "-o", str(exe)], check=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "runtime error" not in run.stderr, run.stdout + run.stderr
    assert "pool low address ok" in run.stdout

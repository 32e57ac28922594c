"""Build a compiled project as firmware for a QEMU board and run it under qemu-system-arm.

The firmware is the same file-driven runner as on the host (main.c); QEMU's semihosting passes it
argv and serves its fopen/fread/fwrite from QEMU's working directory, a temporary directory here.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mcuc.boards import Board
from mcuc.errors import MCUCError
from mcuc.targets.build import board_of, build_firmware
from mcuc.targets.elfsize import symbol_range
from mcuc.targets.host import _run

QEMU = "qemu-system-arm"
DEFAULT_TIMEOUT_S = 120.0


def build_qemu(outdir: Path, board: Board | str) -> Path:
    """Build the firmware of QEMU board ``board`` (kind: qemu); return the ELF path."""
    b = board_of(board)
    if b.kind != "qemu":
        raise MCUCError(f"board '{b.name}' does not run under QEMU (kind: {b.kind}); choose a qemu-* board "
                        "(see 'mcuc boards')")
    return build_firmware(outdir, b)


def qemu_command(board: Board, elf: Path, args: list[str]) -> list[str]:
    """The qemu-system-arm command line that boots ``elf`` on ``board`` with semihosting argv ``args``."""
    q = board.extra["qemu"]
    for a in args:
        if "," in a or " " in a:
            raise MCUCError(f"semihosting argument '{a}' must not contain ',' or spaces")
    sh = ",".join(["enable=on", "target=native", *(f"arg={a}" for a in args)])
    return [QEMU, "-M", str(q["machine"]), "-cpu", str(q["cpu"]), "-nographic", "-monitor", "none",
            "-serial", "none", "-semihosting-config", sh, "-kernel", str(elf)]


def _run_elf(b: Board, elf: Path, samples: np.ndarray, out_bytes: int, timeout_s: float,
             qemu_args: list[str], workdir: Path) -> np.ndarray:
    """Boot ``elf`` under QEMU in ``workdir`` with int8 ``samples`` as in.bin; return N x out_bytes int8."""
    return _run_elf_checked(b, elf, samples, out_bytes, timeout_s, qemu_args, workdir)[0]


# The runner's memory-check line (mcuc/codegen/templates/main.c.j2, MCUC_ARENA_GUARDS builds).
_MEMCHECK = re.compile(r"mcuc: memcheck stack_used=(\d+) stack_reserved=(\d+) invoke_stack=(\d+) "
                       r"guards=(intact|corrupted)")
_GUARDS_BROKEN = "mcuc: memcheck guards=corrupted"


def parse_memcheck(stdout: str) -> dict[str, Any] | None:
    """The runner's memory check: stack high-water marks and the arena guards; None if the firmware
    printed none (built without MCUC_ARENA_GUARDS)."""
    m = _MEMCHECK.search(stdout)
    if m is None:
        return None
    used, reserved, invoke, guards = m.groups()
    return {"stack_used_bytes": int(used), "stack_reserved_bytes": int(reserved), "invoke_stack_bytes": int(invoke),
            "arena_guards_intact": guards == "intact"}


def _run_elf_checked(b: Board, elf: Path, samples: np.ndarray, out_bytes: int, timeout_s: float,
                     qemu_args: list[str], workdir: Path) -> tuple[np.ndarray, dict[str, Any] | None]:
    """As _run_elf, and the runner's memory check (parse_memcheck) from the firmware's output."""
    data, stdout = _boot(b, elf, samples, out_bytes, timeout_s, qemu_args, workdir)
    return data, parse_memcheck(stdout)


def _boot(b: Board, elf: Path, samples: np.ndarray, out_bytes: int, timeout_s: float,
          qemu_args: list[str], workdir: Path, runner_args: tuple[str, ...] = ()) -> tuple[np.ndarray, str]:
    """Boot ``elf`` once on all ``samples``; return N x out_bytes int8 outputs and the firmware's stdout."""
    if shutil.which(QEMU) is None:
        raise MCUCError(f"running on board '{b.name}' needs '{QEMU}', which is not installed: "
                        "apt-get install --no-install-recommends qemu-system-arm (or run 'make sysdeps')")
    np.ascontiguousarray(samples, dtype=np.int8).tofile(workdir / "in.bin")
    cmd = [*qemu_command(b, elf.resolve(), ["mcuc_firmware", "in.bin", "out.bin", *runner_args]), *qemu_args]
    try:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise MCUCError(f"QEMU ({b.name}) did not finish within {timeout_s:.0f} s; the firmware may be "
                        "stuck (a fault loops forever without semihosting) or the model is too slow "
                        "for the emulator: " + " ".join(cmd)) from e
    if _GUARDS_BROKEN in proc.stdout:
        raise MCUCError(f"firmware under QEMU ({b.name}) overwrote the guard words around the activation arena "
                        f"({proc.stdout.strip().splitlines()[-1]}): a kernel wrote outside its tensors")
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise MCUCError(f"firmware under QEMU ({b.name}) failed (exit {proc.returncode}): "
                        + (" | ".join(tail) or "no output"))
    out = workdir / "out.bin"
    if not out.exists():
        raise MCUCError(f"firmware under QEMU ({b.name}) wrote no output file; its output: "
                        + (proc.stdout + proc.stderr).strip())
    data = np.fromfile(out, dtype=np.int8)
    n = samples.shape[0]
    if data.size != n * out_bytes:
        raise MCUCError(f"firmware under QEMU ({b.name}) wrote {data.size} bytes, expected {n * out_bytes}")
    return data.reshape(n, out_bytes), proc.stdout


_MEMCHECK_EACH = re.compile(r"mcuc: memcheck sample=(\d+) invoke_stack=(\d+) guards=intact")


def soak_qemu(outdir: Path, board: Board | str, samples: np.ndarray, out_bytes: int,
              timeout_s: float) -> tuple[np.ndarray, list[int], dict[str, Any]]:
    """Run all ``samples`` in ONE QEMU boot of the firmware, with the runner's memory check after each.

    Returns the N x out_bytes int8 outputs, each sample's own invoke stack depth in bytes (the stack is
    painted again before every sample) and the run's final memory check (parse_memcheck). A broken guard
    block stops the firmware and raises MCUCError naming the sample.
    """
    b = board_of(board)
    elf = build_qemu(outdir, b)
    with tempfile.TemporaryDirectory(prefix="mcuc-soak-") as td:
        data, stdout = _boot(b, elf, samples, out_bytes, timeout_s, [], Path(td), ("memcheck-each",))
    per_sample = {int(m.group(1)): int(m.group(2)) for m in _MEMCHECK_EACH.finditer(stdout)}
    final = parse_memcheck(stdout)
    n = samples.shape[0]
    if final is None or sorted(per_sample) != list(range(n)):
        raise MCUCError(f"firmware under QEMU ({b.name}) printed {len(per_sample)} per-sample memory checks for "
                        f"{n} samples; is the project compiled by this version of mcuc?")
    return data, [per_sample[i] for i in range(n)], final


def run_qemu(outdir: Path, board: Board | str, samples: np.ndarray, out_bytes: int,
             timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """Run int8 ``samples`` (N x input bytes) through the firmware under QEMU; return N x out_bytes int8."""
    b = board_of(board)
    if shutil.which(QEMU) is None:
        raise MCUCError(f"running on board '{b.name}' needs '{QEMU}', which is not installed: "
                        "apt-get install --no-install-recommends qemu-system-arm (or run 'make sysdeps')")
    return run_qemu_checked(outdir, b, samples, out_bytes, timeout_s)[0]


QEMU_CHUNK_SAMPLES = 64  # samples per QEMU boot when a run is split to show progress


def run_qemu_checked(outdir: Path, board: Board | str, samples: np.ndarray, out_bytes: int,
                     timeout_s: float = DEFAULT_TIMEOUT_S,
                     progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, dict[str, Any] | None]:
    """As run_qemu, and the firmware's memory check (parse_memcheck; worst stack over all samples).

    With ``progress``, more than QEMU_CHUNK_SAMPLES samples run in chunks of that many (one QEMU boot
    each) and progress(done, total) is called after each chunk.
    """
    b = board_of(board)
    if shutil.which(QEMU) is None:
        raise MCUCError(f"running on board '{b.name}' needs '{QEMU}', which is not installed: "
                        "apt-get install --no-install-recommends qemu-system-arm (or run 'make sysdeps')")
    elf = build_qemu(outdir, b)
    n = samples.shape[0]
    step = QEMU_CHUNK_SAMPLES if progress is not None and n > QEMU_CHUNK_SAMPLES else max(n, 1)
    outs, checks = [], []
    with tempfile.TemporaryDirectory(prefix="mcuc-qemu-") as td:
        for start in range(0, max(n, 1), step):
            out, check = _run_elf_checked(b, elf, samples[start:start + step], out_bytes, timeout_s, [], Path(td))
            outs.append(out)
            if check is not None:
                checks.append(check)
            if progress is not None:
                progress(min(start + step, n), n)
    memcheck = None
    if checks:
        memcheck = {"board": b.name, **{k: max(c[k] for c in checks) for k in ("stack_used_bytes",
                                                                             "stack_reserved_bytes",
                                                                             "invoke_stack_bytes")},
                    "arena_guards_intact": all(c["arena_guards_intact"] for c in checks)}
    return np.concatenate(outs, axis=0), memcheck


# Instruction counting: a TCG plugin of ours (qemu_insn_plugin.c) counts every executed guest
# instruction and records the running count at each call of mcuc_profile_mark(). Per inference the
# firmware makes NUM_OPS + 3 marks: the runner before invoke, model.c before each op and after the
# last, the runner after invoke. So with counts c[0..NUM_OPS+2]:
#   total      = c[NUM_OPS+2] - c[0]   (the whole mcuc_model_invoke() call)
#   per_op[i]  = c[i+2] - c[i+1]       (op i, plus the 2-instruction call site of the next mark)
#   overhead   = total - sum(per_op)   (invoke's prologue/epilogue and the first and last mark call)
# The mark function's own instructions are not counted.
PLUGIN_SOURCE = Path(__file__).resolve().parent / "qemu_insn_plugin.c"
MARK_SYMBOL = "mcuc_profile_mark"


def build_insn_plugin(dest_dir: Path) -> Path:
    """Compile the instruction-count plugin with the host C compiler into ``dest_dir``; return the .so."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise MCUCError("counting instructions under QEMU needs a host C compiler for the QEMU plugin: "
                        "apt-get install --no-install-recommends gcc")
    so = Path(dest_dir) / "mcuc_insn_plugin.so"
    if not so.exists() or so.stat().st_mtime < PLUGIN_SOURCE.stat().st_mtime:
        so.parent.mkdir(parents=True, exist_ok=True)
        _run([cc, "-shared", "-fPIC", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", str(so),
              str(PLUGIN_SOURCE)], "building the QEMU instruction-count plugin")
    return so


def profile_qemu(outdir: Path, board: Board | str, sample: np.ndarray, out_bytes: int, num_ops: int,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[np.ndarray, dict[str, Any]]:
    """Run one int8 ``sample`` (1 x input bytes) on a profile build; return its output and instruction counts.

    The counts are {"board", "total", "per_op": [instructions of op i], "overhead"} with
    total == sum(per_op) + overhead exactly (see the comment above for what each covers).
    """
    b = board_of(board)
    if b.kind != "qemu":
        raise MCUCError(f"board '{b.name}' does not run under QEMU (kind: {b.kind}); choose a qemu-* board")
    elf = build_firmware(outdir, b, profile=True)
    plugin = build_insn_plugin(Path(outdir) / "build-qemu-plugin")
    lo, hi = symbol_range(elf, MARK_SYMBOL)
    sample = np.asarray(sample).reshape(1, -1)
    with tempfile.TemporaryDirectory(prefix="mcuc-qemu-") as td:
        counts_file = Path(td) / "counts.txt"
        out = _run_elf(b, elf, sample, out_bytes, timeout_s,
                       ["-plugin", f"{plugin},mark={lo:#x},mark_end={hi:#x},out={counts_file}"], Path(td))
        if not counts_file.exists():
            raise MCUCError(f"the QEMU instruction-count plugin wrote no counts ({b.name})")
        lines = counts_file.read_text().split("\n")
    marks = [int(ln.split()[1]) for ln in lines if ln.startswith("mark ")]
    if any(ln.startswith("error") for ln in lines) or len(marks) != num_ops + 3:
        raise MCUCError(f"profile run on {b.name} recorded {len(marks)} marks, expected {num_ops + 3} "
                        f"({num_ops} ops); is the project compiled by this version of mcuc?")
    per_op = [marks[i + 2] - marks[i + 1] for i in range(num_ops)]
    total = marks[-1] - marks[0]
    return out, {"board": b.name, "total": total, "per_op": per_op, "overhead": total - sum(per_op)}

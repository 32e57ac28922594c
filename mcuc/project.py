"""The compile output directory: written atomically, reloaded by run/verify/profile."""
from __future__ import annotations

import pickle
import shutil
import tempfile
from pathlib import Path

from mcuc.codegen import emit_project
from mcuc.errors import MCUCError
from mcuc.ir import Graph
from mcuc.report import REPORT_FILE, read_report, write_report

GRAPH_FILE = "mcuc_graph.pkl"


def write_project(compiled, outdir: str) -> Path:
    """Emit the C project into a temporary sibling directory, then move it into place.

    A failure part-way leaves no half-written OUTDIR behind; an existing OUTDIR is replaced
    only once the new one is complete.
    """
    out = Path(outdir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        emit_project(compiled, tmp)
        with open(tmp / GRAPH_FILE, "wb") as f:
            pickle.dump(compiled.graph, f)
        write_report(tmp, compiled.report)
        if out.exists():
            if not (out / REPORT_FILE).exists() and any(out.iterdir()):
                raise MCUCError(f"output directory '{out}' exists and is not an mcuc project; "
                                "choose another -o or remove it")
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_project(outdir: str) -> tuple[Graph, dict]:
    out = Path(outdir)
    if not (out / GRAPH_FILE).exists():
        raise MCUCError(f"'{outdir}' is not a compiled mcuc project (no {GRAPH_FILE}); run 'mcuc compile' first")
    with open(out / GRAPH_FILE, "rb") as f:
        g = pickle.load(f)
    return g, read_report(out)

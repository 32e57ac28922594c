"""The compile output directory: written atomically, reloaded by run/verify/profile.

The int8 graph is stored as data, never as pickle, so a project directory someone sends you cannot run code
when it is loaded: ``mcuc_graph.json`` holds the structure (tensors, nodes, attributes, quantization
parameters, metadata) and ``mcuc_graph.npz`` (read with ``allow_pickle=False``) the constant arrays.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mcuc.codegen import emit_project
from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.report import REPORT_FILE, read_report, write_report

GRAPH_FILE = "mcuc_graph.json"
ARRAYS_FILE = "mcuc_graph.npz"
OLD_GRAPH_FILE = "mcuc_graph.pkl"  # written by earlier versions; never loaded (unpickling can run code)
FORMAT_VERSION = 1


def write_project(compiled: Any, outdir: str, finish: Callable[[Path], None] | None = None) -> Path:
    """Emit the C project into a temporary sibling directory, then move it into place.

    A failure part-way leaves no half-written OUTDIR behind. ``finish`` (e.g. the firmware build) runs on the
    new OUTDIR in place; if it fails, the new OUTDIR is removed and the previous one, if any, is put back. The
    previous OUTDIR is deleted only once everything succeeded.
    """
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise MCUCError(f"output '{out}' is an existing file, not a directory; choose another -o")
    if out.is_dir() and not (out / REPORT_FILE).exists() and any(out.iterdir()):
        raise MCUCError(f"output directory '{out}' exists and is not an mcuc project; choose another -o or remove it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise MCUCError(f"cannot create output directory '{out}': {e.strerror or e}") from e
    previous: Path | None = None
    try:
        emit_project(compiled, tmp)
        save_graph(compiled.graph, tmp)
        write_report(tmp, compiled.report)
        if out.exists():
            previous = Path(tempfile.mkdtemp(prefix=f".{out.name}.previous.", dir=out.parent))
            previous.rmdir()
            out.rename(previous)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if previous is not None and not out.exists():
            previous.rename(out)
        raise
    if finish is not None:
        try:
            finish(out)
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)
            if previous is not None:
                previous.rename(out)
            raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    return out


def load_project(outdir: str) -> tuple[Graph, dict]:
    out = Path(outdir)
    if not (out / GRAPH_FILE).exists():
        if (out / OLD_GRAPH_FILE).exists():
            raise MCUCError(f"'{outdir}' was compiled by an older mcuc ({OLD_GRAPH_FILE}, which mcuc does not load: "
                            "unpickling can run code); compile the model again")
        raise MCUCError(f"'{outdir}' is not a compiled mcuc project (no {GRAPH_FILE}); run 'mcuc compile' first")
    return load_graph(out), read_report(out)


# ---- the graph as JSON + .npz ------------------------------------------------------------------------------


def save_graph(g: Graph, directory: Path) -> None:
    """Write ``g`` as GRAPH_FILE (structure) and ARRAYS_FILE (constants and any array inside attributes)."""
    arrays: dict[str, np.ndarray] = {}

    def array_ref(a: np.ndarray) -> dict[str, Any]:
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(a)
        return {"__array__": key}

    def enc(v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, np.ndarray):
            return array_ref(v)
        if isinstance(v, np.generic):
            return {"__scalar__": v.dtype.str, "value": v.item()}
        if isinstance(v, tuple):
            return {"__tuple__": [enc(x) for x in v]}
        if isinstance(v, list):
            return [enc(x) for x in v]
        if isinstance(v, dict):
            return {"__dict__": [[enc(k), enc(x)] for k, x in v.items()]}
        if isinstance(v, QuantParams):
            return {"__quant__": [array_ref(v.scale), array_ref(v.zero_point), v.axis]}
        if isinstance(v, Node):
            return {"__node__": [v.op, v.name, list(v.inputs), list(v.outputs), enc(v.attrs)]}
        raise TypeError(f"cannot store a {type(v).__name__} in {GRAPH_FILE}")

    doc = {
        "format": "mcuc-graph", "version": FORMAT_VERSION, "layout": g.layout, "inputs": list(g.inputs),
        "outputs": list(g.outputs), "meta": enc(g.meta),
        "tensors": [{"name": t.name, "shape": [int(d) for d in t.shape], "dtype": t.dtype, "quant": enc(t.quant),
                     "data": None if t.data is None else array_ref(t.data)} for t in g.tensors.values()],
        "nodes": [{"op": n.op, "name": n.name, "inputs": list(n.inputs), "outputs": list(n.outputs),
                   "attrs": enc(n.attrs)} for n in g.nodes],
    }
    (directory / GRAPH_FILE).write_text(json.dumps(doc))
    np.savez(directory / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]


def load_graph(directory: Path) -> Graph:
    """Read the graph save_graph wrote; MCUCError if the files are not such a graph."""
    from mcuc.ops import verify

    where = directory / GRAPH_FILE
    try:
        doc = json.loads(where.read_text())
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if doc.get("format") != "mcuc-graph" or doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"format {doc.get('format')!r} version {doc.get('version')!r}")
        g = _decode_graph(doc, arrays)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, zipfile.BadZipFile) as e:
        raise MCUCError(f"'{where}' is not a graph this mcuc wrote ({e.__class__.__name__}: {e}); "
                        "compile the model again") from e
    verify(g, quantized=True)
    return g


def _decode_graph(doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Graph:
    def dec(v: Any) -> Any:
        if isinstance(v, list):
            return [dec(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "__array__" in v:
            return arrays[v["__array__"]]
        if "__scalar__" in v:
            return np.dtype(v["__scalar__"]).type(v["value"])
        if "__tuple__" in v:
            return tuple(dec(x) for x in v["__tuple__"])
        if "__dict__" in v:
            return {dec(k): dec(x) for k, x in v["__dict__"]}
        if "__quant__" in v:
            scale, zp, axis = v["__quant__"]
            return QuantParams(dec(scale), dec(zp), None if axis is None else int(axis))
        if "__node__" in v:
            op, name, ins, outs, attrs = v["__node__"]
            return Node(str(op), str(name), [str(i) for i in ins], [str(o) for o in outs], dec(attrs))
        raise ValueError(f"unknown value {sorted(v)}")

    g = Graph(layout=str(doc["layout"]), inputs=[str(i) for i in doc["inputs"]],
              outputs=[str(o) for o in doc["outputs"]], meta=dec(doc["meta"]))
    for t in doc["tensors"]:
        quant = dec(t["quant"])
        if quant is not None and not isinstance(quant, QuantParams):
            raise ValueError(f"tensor '{t['name']}' has quantization {quant!r}")
        data = dec(t["data"])
        g.add_tensor(Tensor(str(t["name"]), tuple(int(d) for d in t["shape"]), str(t["dtype"]), quant, data))
    for n in doc["nodes"]:
        attrs = dec(n["attrs"])
        if not isinstance(attrs, dict):
            raise ValueError(f"node '{n['name']}' has attributes {attrs!r}")
        g.nodes.append(Node(str(n["op"]), str(n["name"]), [str(i) for i in n["inputs"]],
                            [str(o) for o in n["outputs"]], attrs))
    if not isinstance(g.meta, dict):
        raise ValueError("meta is not a mapping")
    return g

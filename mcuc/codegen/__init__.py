"""C code generation: renders templates/*.j2 (beside this module) into a self-contained CMake project."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from mcuc import RUNTIME_DIR
from mcuc.codegen.firmware import FIRMWARE_KINDS, emit_firmware_support
from mcuc.codegen.render import HEADER, environment
from mcuc.errors import MCUCError
from mcuc.memory import op_scratch_bytes, scratch_key, streamed_inputs
from mcuc.ops import Arg, CExpr, Lowered

CTYPES = {"int8": "int8_t", "int32": "int32_t", "uint32": "uint32_t", "uint8": "uint8_t", "int16": "int16_t",
          "int64": "int64_t"}


def format_array(data: np.ndarray, per_line: int = 24) -> str:
    """Comma-separated C initializer body of a flat integer array, wrapped for readability."""
    flat = np.asarray(data).reshape(-1)
    if flat.size == 0:
        return "0"
    items = [str(int(v)) if flat.dtype.kind == "i" else f"{int(v)}u" for v in flat.tolist()]
    return ",\n    ".join(", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line))


def c_init(value: Any, resolve) -> str:
    """C initializer for a struct value: dict -> designated fields, list -> braces, int -> literal."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f".{k} = {c_init(v, resolve)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "{ " + ", ".join(c_init(v, resolve) for v in value) + " }"
    if isinstance(value, CExpr):
        return resolve(value.text)
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    raise MCUCError(f"cannot emit C initializer for {type(value).__name__}")


class _Emitter:
    def __init__(self, compiled) -> None:
        self.c = compiled
        self.g = compiled.schedule.graph
        self.mem = compiled.schedule.planned
        self.streamed = streamed_inputs(self.g)
        self.const_names: dict[str, str] = {}
        self.weights: list[dict[str, Any]] = []
        self.array_symbols: dict[tuple[str, bytes], str] = {}  # identical per-op arrays emitted once

    def const_symbol(self, name: str) -> str:
        if name not in self.const_names:
            t = self.g.tensors[name]
            assert t.data is not None
            sym = f"mcuc_c{len(self.const_names)}"
            self.const_names[name] = sym
            ctype = CTYPES.get(str(t.data.dtype))
            if ctype is None:
                raise MCUCError(f"constant '{name}' has unsupported dtype {t.data.dtype}")
            self.weights.append({"symbol": sym, "ctype": ctype, "size": max(int(t.data.size), 1),
                                 "comment": f"{name} {t.dtype}{list(t.shape)}", "body": format_array(t.data)})
        return self.const_names[name]

    def tensor_expr(self, name: str) -> str:
        t = self.g.tensors[name]
        if t.is_const:
            return self.const_symbol(name)
        if name in self.streamed:
            return "NULL"  # delivered row by row through the reader passed to mcuc_model_invoke_streamed
        ctype = CTYPES[t.dtype]
        off = self.mem.offsets[name]
        # a uint8 camera image is passed to kernels as the arena's bytes (mcuc_pixels_s8 reads them as uint8)
        return f"({ctype} *)(mcuc_arena + {off})" if ctype not in ("int8_t", "uint8_t") else f"(mcuc_arena + {off})"

    def op_context(self, index: int, low: Lowered) -> dict[str, Any]:
        prefix = f"mcuc_op{index}"
        arrays = []
        for j, arr in enumerate(low.arrays):
            key = (arr.ctype, np.ascontiguousarray(arr.data).tobytes())
            sym = self.array_symbols.get(key, f"{prefix}_a{j}")
            if key not in self.array_symbols:
                self.array_symbols[key] = sym
                self.weights.append({"symbol": sym, "ctype": arr.ctype, "size": max(int(arr.data.size), 1),
                                     "comment": f"{low.node.name}: {arr.ctype}[{arr.data.size}]",
                                     "body": format_array(arr.data)})
            arrays.append(sym)

        snames = [f"{prefix}_s{j}" for j in range(len(low.structs))]

        def resolve(text: str) -> str:
            if text.startswith("@&struct"):  # the address of an op-local struct (a pointer field)
                return "&" + snames[int(text[8:])]
            if text.startswith("@struct"):
                return snames[int(text[7:])]
            if text.startswith("@array"):
                return arrays[int(text[6:])]
            if text.startswith("@tensor:"):
                return self.tensor_expr(text[8:])
            return text

        structs = []
        for j, st in enumerate(low.structs):
            is_array = st.ctype.endswith("[]")
            decl = f"static const {st.ctype[:-2]} {snames[j]}[]" if is_array else f"static const {st.ctype} {snames[j]}"
            structs.append({"decl": decl, "name": snames[j], "ref": snames[j] if is_array else "&" + snames[j],
                            "init": c_init(st.value, resolve)})

        def arg(a: Arg) -> str:
            if a.kind == "tensor":
                return self.tensor_expr(a.value)
            if a.kind == "struct":
                return str(structs[a.value]["ref"])
            if a.kind == "array":
                return arrays[a.value]
            if a.kind == "int":
                return str(int(a.value))
            if a.kind == "reader":
                return "read_rows"
            if a.kind == "reader_ctx":
                return "read_ctx"
            if a.kind == "null":
                return "NULL"
            if a.kind == "scratch":
                key = scratch_key(low.node)
                return f"(mcuc_arena + {self.mem.offsets[key]})" if key in self.mem.offsets else "NULL"
            raise MCUCError(f"unknown argument kind {a.kind}")

        n = low.node
        func = low.func  # the variant chosen for the node (mcuc/passes/kernels.py), already in its lowering
        args = [arg(a) for a in low.args]
        # A kernel with scratch has a _get_buffer_size companion taking its params (the first argument);
        # model.c built with MCUC_CHECK_BUFFER_SIZES compares it with the bytes planned here.
        scratch = any(a.kind == "scratch" for a in low.args)
        buffer_size = {"func": func + "_get_buffer_size", "params": args[0],
                       "bytes": op_scratch_bytes(self.g, n)} if scratch else None
        return {"index": index, "name": n.name, "op": n.op, "func": func, "args": args, "structs": structs,
                "buffer_size": buffer_size,
                "shape": "x".join(map(str, self.g.tensors[(n.outputs or n.inputs[-1:])[0]].shape))}

    def io(self, name: str, layout: str) -> dict[str, Any]:
        t = self.g.tensors[name]
        io = {"name": name, "shape": list(t.shape), "bytes": t.nbytes, "expr": self.tensor_expr(name),
              "layout": layout, "ctype": CTYPES[t.dtype], "pixels": None,
              "row_bytes": t.nbytes // t.shape[1] if len(t.shape) > 1 and t.shape[1] else t.nbytes,
              "streamed": name in self.streamed}
        if t.quant is None:  # a camera image (mcuc/pixels.py): uint8, normalised by the model itself
            pix = dict(self.c.graph.meta["pixel_input"])
            pix["mean"] = ", ".join(f"{v:g}" for v in pix["mean"])
            pix["std"] = ", ".join(f"{v:g}" for v in pix["std"])
            io["pixels"] = pix
            io["layout"] = pix["layout"].upper()
            return io
        return {**io, "scale": repr(float(t.quant.s)), "zero_point": t.quant.zp}


def emit_project(compiled, outdir: Path) -> None:
    """Write model.h/model.c/weights.h/weights.c/main.c/CMakeLists.txt and the runtime into outdir."""
    em = _Emitter(compiled)
    g = compiled.graph
    steps = compiled.schedule.lowered()
    ops = []
    for i, low in enumerate(steps):
        if low.func:
            ops.append(em.op_context(i, low))
    layout = g.layout
    inputs = [em.io(n, layout) for n in g.inputs]
    outputs = [em.io(n, layout) for n in g.outputs]
    name = Path(str(g.meta.get("source", "model"))).stem
    runtime_sources = sorted(p.name for p in (RUNTIME_DIR / "src").glob("*.c"))
    # a camera-input model takes uint8 pixels (mcuc/pixels.py); every other model int8
    input_ctype = "uint8_t" if {io["ctype"] for io in inputs} == {"uint8_t"} else "int8_t"
    ctx = {"header": HEADER, "model_name": name, "input_ctype": input_ctype,
           "arena_bytes": max(int(em.mem.arena_bytes), 16),
           "ops": ops, "inputs": inputs, "outputs": outputs, "weights": em.weights,
           "runtime_sources": runtime_sources, "board": compiled.board.name, "streamed": bool(em.streamed)}
    env = environment()
    for tpl, out in (("model.h.j2", "model.h"), ("model.c.j2", "model.c"), ("weights.h.j2", "weights.h"),
                     ("weights.c.j2", "weights.c"), ("main.c.j2", "main.c"),
                     ("CMakeLists.txt.j2", "CMakeLists.txt")):
        (outdir / out).write_text(env.get_template(tpl).render(**ctx))
    rt = outdir / "runtime"
    shutil.copytree(RUNTIME_DIR / "include", rt / "include")
    shutil.copytree(RUNTIME_DIR / "src", rt / "src")
    if compiled.board.kind in FIRMWARE_KINDS:
        emit_firmware_support(outdir, [compiled.board])

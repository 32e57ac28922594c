"""Fuzz harness for the model loaders: mutated .onnx/.tflite files through `mcuc compile`, then a bit-exact check.

Every mutant must end one of two ways: exit 0 and a C build (host compiler, ASan + UBSan) whose outputs equal the
int8 reference on extreme and random inputs; or exit 1 with exactly one ``error:`` line on stderr, no traceback
and no output directory left behind. Anything else (a traceback, a signal, a hang, a C build that fails, a
sanitizer report, a differing output) is a finding.

Mutants run in worker processes (``python -m tests.fuzz_harness worker``) that call ``mcuc.cli.main`` in-process
one mutant after another; the parent kills and restarts a worker that dies or exceeds the time limit, so a crash
in native code or a hang is recorded instead of taking the campaign down. `tests/test_fuzz.py` runs a seeded slice
of 300 mutants, `bench/fuzz.py` long campaigns.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import resource
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
TFLITE_DIR = ROOT / "tests" / "data" / "tflite"
DEMO_MODEL = ROOT / "mcuc" / "zoo" / "data" / "demo_fmnist.onnx"

OK, ERROR = "compiled and verified", "clean error"
FAILURES = ("traceback", "bad error report", "output left behind", "signal", "hang", "C build failed",
            "sanitizer or runner failure", "differs from reference", "reference failed", "verify crashed")

INTERESTING_INTS = [0, -1, 1, 2, 3, 7, 127, 128, -128, 255, 256, 1000, 65535, 2**31 - 1, 2**31, -2**31, 2**62,
                    -2**62, 2**63 - 1, -2**63]
# Sizes a dimension is set to: boundaries and impossible values. Not sizes like 65535 that make a valid model
# whose honest compile takes minutes (a slow compile is not a loader fault, and it would be counted as a hang).
INTERESTING_DIMS = [0, 1, 2, 3, 5, 7, 2**31 - 1, 2**31, 2**62, 2**63 - 1]
INTERESTING_FLOATS = [0.0, -0.0, math.nan, math.inf, -math.inf, 1e-45, 1e-40, 1e-38, -1.0, -1e-3, 1e38, 3e38,
                      1e-12, 1e12, 1.0, 0.5]


# ---- seed models ---------------------------------------------------------------------------------------------


def _save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _init(name: str, a: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a), name)


def mixed_float_model(path: Path) -> Path:
    """A small float model with most op kinds of the ONNX reader: conv, BN, clip, pools, depthwise, residual add,
    concat, mul, sigmoid, hard-swish, transpose, pad, reshape, gemm, softmax."""
    rng = np.random.default_rng(1)
    c = 4
    inits = [
        _init("w0", rng.normal(0, 0.4, (c, 3, 3, 3)).astype(np.float32)),
        _init("b0", rng.normal(0, 0.1, (c,)).astype(np.float32)),
        _init("bn_s", rng.uniform(0.5, 1.5, (c,)).astype(np.float32)),
        _init("bn_b", rng.normal(0, 0.1, (c,)).astype(np.float32)),
        _init("bn_m", rng.normal(0, 0.1, (c,)).astype(np.float32)),
        _init("bn_v", rng.uniform(0.5, 1.5, (c,)).astype(np.float32)),
        _init("wd", rng.normal(0, 0.4, (c, 1, 3, 3)).astype(np.float32)),
        _init("bd", rng.normal(0, 0.1, (c,)).astype(np.float32)),
        _init("lo", np.array(0.0, np.float32)), _init("hi", np.array(6.0, np.float32)),
        _init("k", rng.uniform(0.5, 1.5, (1, 2 * c, 1, 1)).astype(np.float32)),
        _init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
        _init("shape", np.array([1, -1], np.int64)),
        _init("wf", rng.normal(0, 0.2, (5, 2 * c * 9)).astype(np.float32)),
        _init("bf", rng.normal(0, 0.1, (5,)).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], strides=[1, 1], name="conv0"),
        helper.make_node("BatchNormalization", ["c0", "bn_s", "bn_b", "bn_m", "bn_v"], ["n0"], epsilon=1e-5,
                         name="bn0"),
        helper.make_node("Clip", ["n0", "lo", "hi"], ["r0"], name="clip0"),
        helper.make_node("MaxPool", ["r0"], ["p0"], kernel_shape=[2, 2], strides=[2, 2], name="pool0"),
        helper.make_node("Conv", ["p0", "wd", "bd"], ["d0"], pads=[1, 1, 1, 1], group=c, dilations=[1, 1],
                         name="dw0"),
        helper.make_node("Add", ["d0", "p0"], ["a0"], name="add0"),
        helper.make_node("HardSwish", ["a0"], ["h0"], name="hswish0"),
        helper.make_node("Sigmoid", ["a0"], ["s0"], name="sig0"),
        helper.make_node("Concat", ["h0", "s0"], ["cat0"], axis=1, name="cat0"),
        helper.make_node("Mul", ["cat0", "k"], ["m0"], name="mul0"),
        helper.make_node("Pad", ["m0", "pads"], ["pd0"], mode="constant", name="pad0"),
        helper.make_node("AveragePool", ["pd0"], ["ap0"], kernel_shape=[2, 2], strides=[2, 2], name="avg0"),
        helper.make_node("Transpose", ["ap0"], ["t0"], perm=[0, 1, 3, 2], name="tr0"),
        helper.make_node("Reshape", ["t0", "shape"], ["f0"], name="flat0"),
        helper.make_node("Gemm", ["f0", "wf", "bf"], ["g0"], transB=1, name="fc0"),
        helper.make_node("Softmax", ["g0"], ["y"], axis=-1, name="softmax0"),
    ]
    graph = helper.make_graph(nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def qdq_model(path: Path, uint8: bool = False) -> Path:
    """A QDQ model as onnxruntime writes them: quantized activations (int8 or uint8), per-channel int8 conv
    weights and int32 biases behind DequantizeLinear, a per-tensor int8 Gemm."""
    rng = np.random.default_rng(2)
    zdt = np.uint8 if uint8 else np.int8
    off = 128 if uint8 else 0
    c = 6
    sx, sc, sr, sp, sy = 0.02, 0.05, 0.03, 0.02, 0.1
    sw = rng.uniform(0.005, 0.02, c).astype(np.float32)
    sfw = np.float32(0.01)
    inits = [
        _init("sx", np.array(sx, np.float32)), _init("zx", np.array(off + 3, zdt)),
        _init("wq", rng.integers(-127, 128, (c, 3, 3, 3)).astype(np.int8)), _init("sw", sw),
        _init("zw", np.zeros(c, np.int8)),
        _init("bq", rng.integers(-2000, 2000, c).astype(np.int32)), _init("sb", (sx * sw).astype(np.float32)),
        _init("zb", np.zeros(c, np.int32)),
        _init("sc", np.array(sc, np.float32)), _init("zc", np.array(off - 10, zdt)),
        _init("sr", np.array(sr, np.float32)), _init("zr", np.array(off - 128, zdt)),
        _init("sp", np.array(sp, np.float32)), _init("zp", np.array(off - 100, zdt)),
        _init("fwq", rng.integers(-127, 128, (c, 4)).astype(np.int8)), _init("sfw", np.array(sfw, np.float32)),
        _init("zfw", np.array(0, np.int8)),
        _init("fbq", rng.integers(-500, 500, 4).astype(np.int32)), _init("sfb", np.array(sp * sfw, np.float32)),
        _init("sy", np.array(sy, np.float32)), _init("zy", np.array(off + 5, zdt)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"], name="q_x"),
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["w"], axis=0, name="dq_w"),
        helper.make_node("DequantizeLinear", ["bq", "sb", "zb"], ["b"], axis=0, name="dq_b"),
        helper.make_node("Conv", ["xd", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("QuantizeLinear", ["c", "sc", "zc"], ["cq"], name="q_c"),
        helper.make_node("DequantizeLinear", ["cq", "sc", "zc"], ["cd"], name="dq_c"),
        helper.make_node("Relu", ["cd"], ["r"], name="relu0"),
        helper.make_node("QuantizeLinear", ["r", "sr", "zr"], ["rq"], name="q_r"),
        helper.make_node("DequantizeLinear", ["rq", "sr", "zr"], ["rd"], name="dq_r"),
        helper.make_node("GlobalAveragePool", ["rd"], ["p"], name="gap"),
        helper.make_node("QuantizeLinear", ["p", "sp", "zp"], ["pq"], name="q_p"),
        helper.make_node("DequantizeLinear", ["pq", "sp", "zp"], ["pd"], name="dq_p"),
        helper.make_node("Flatten", ["pd"], ["f"], name="flat"),
        helper.make_node("DequantizeLinear", ["fwq", "sfw", "zfw"], ["fw"], name="dq_fw"),
        helper.make_node("DequantizeLinear", ["fbq", "sfb"], ["fb"], name="dq_fb"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], name="fc0"),
        helper.make_node("QuantizeLinear", ["g", "sy", "zy"], ["gq"], name="q_y"),
        helper.make_node("DequantizeLinear", ["gq", "sy", "zy"], ["y"], name="dq_y"),
    ]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def write_seeds(directory: Path) -> list[Path]:
    """The seed models, written into ``directory``: the demo model, small generated float and QDQ ONNX models and
    the .tflite test models."""
    from tests.onnx_models import conv_model

    directory.mkdir(parents=True, exist_ok=True)
    seeds = [Path(conv_model(str(directory / "conv.onnx"), cin=2, cout=4, size=8)),
             mixed_float_model(directory / "mixed.onnx"), qdq_model(directory / "qdq_int8.onnx"),
             qdq_model(directory / "qdq_uint8.onnx", uint8=True)]
    shutil.copy(DEMO_MODEL, directory / "demo_fmnist.onnx")
    seeds.append(directory / "demo_fmnist.onnx")
    for p in sorted(TFLITE_DIR.glob("*.tflite")):
        shutil.copy(p, directory / p.name)
        seeds.append(directory / p.name)
    return seeds


# ---- byte-level mutations ------------------------------------------------------------------------------------


def mutate_bytes(data: bytes, rng: np.random.Generator, donor: bytes) -> tuple[bytes, str]:
    """One of: flip bits, overwrite bytes with boundary values, truncate, splice in a chunk of ``donor``, insert
    random bytes, delete a chunk."""
    b = bytearray(data)
    kind = str(rng.choice(["flip", "overwrite", "truncate", "splice", "insert", "delete"]))
    n = len(b)
    if n == 0:
        return bytes(rng.integers(0, 256, 16, dtype=np.uint8)), "random"
    if kind == "flip":
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(0, n))
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == "overwrite":
        i = int(rng.integers(0, n))
        value = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00\x80\x7f", b"\x00\x00\xc0\x7f", b"\xff\xff\xff\x7f",
                 b"\x01\x00\x00\x00"][int(rng.integers(0, 8))]
        b[i:i + len(value)] = value
    elif kind == "truncate":
        del b[int(rng.integers(0, n)):]
    elif kind == "splice":
        i = int(rng.integers(0, n))
        j = int(rng.integers(0, max(len(donor), 1)))
        k = int(rng.integers(1, 64))
        b[i:i + k] = donor[j:j + k]
    elif kind == "insert":
        i = int(rng.integers(0, n + 1))
        b[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 32)), dtype=np.uint8))
    else:
        i = int(rng.integers(0, n))
        del b[i:i + int(rng.integers(1, 64))]
    return bytes(b), f"bytes:{kind}"


# ---- ONNX structure-aware mutations --------------------------------------------------------------------------


def _pick(rng: np.random.Generator, seq: list[Any]) -> Any:
    return seq[int(rng.integers(0, len(seq)))]


def _interesting_int(rng: np.random.Generator) -> int:
    return int(_pick(rng, INTERESTING_INTS)) if rng.random() < 0.7 else int(rng.integers(-5, 20))


def _interesting_float(rng: np.random.Generator) -> float:
    return float(_pick(rng, INTERESTING_FLOATS)) if rng.random() < 0.8 else float(rng.normal(0, 10))


def _value_infos(m: onnx.ModelProto) -> list[Any]:
    return list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info)


def _qdq_operands(m: onnx.ModelProto, index: int) -> list[str]:
    """Initializer names used as operand ``index`` (1 scale, 2 zero point) of Q/DQ nodes."""
    inits = {i.name for i in m.graph.initializer}
    return sorted({n.input[index] for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                   and len(n.input) > index and n.input[index] in inits})


def _set_init(m: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    for k, t in enumerate(m.graph.initializer):
        if t.name == name:
            m.graph.initializer[k].CopyFrom(numpy_helper.from_array(value, name))
            return


def _init_array(m: onnx.ModelProto, name: str) -> np.ndarray:
    return next(numpy_helper.to_array(t) for t in m.graph.initializer if t.name == name)


def _m_dim(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    vis = [v for v in _value_infos(m) if v.type.HasField("tensor_type") and len(v.type.tensor_type.shape.dim)]
    if not vis:
        return "dim:none"
    v = _pick(rng, vis)
    dims = v.type.tensor_type.shape.dim
    d = dims[int(rng.integers(0, len(dims)))]
    r = rng.random()
    if r < 0.15:
        d.dim_param = "n"
        return f"dim:{v.name}:symbolic"
    value = int(_pick(rng, INTERESTING_DIMS)) if r < 0.8 else int(rng.integers(0, 40))
    d.dim_value = value
    return f"dim:{v.name}:{value}"


def _m_init_dtype(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    if not m.graph.initializer:
        return "init_dtype:none"
    t = _pick(rng, list(m.graph.initializer))
    code = int(_pick(rng, list(range(0, 24)) + [99, 1000]))
    t.data_type = code
    return f"init_dtype:{t.name}:{code}"


def _m_raw_length(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    if not m.graph.initializer:
        return "raw_len:none"
    t = _pick(rng, list(m.graph.initializer))
    try:
        arr = numpy_helper.to_array(t)
    except Exception:
        return "raw_len:unreadable"
    raw = numpy_helper.from_array(arr, t.name).raw_data
    delta = int(_pick(rng, [-1, 1, -4, 4, -len(raw), len(raw), 3]))
    raw = raw[:max(len(raw) + delta, 0)] if delta < 0 else raw + bytes(delta)
    t.ClearField("float_data")
    t.ClearField("int32_data")
    t.ClearField("int64_data")
    t.raw_data = raw
    return f"raw_len:{t.name}:{delta:+d}"


def _m_init_values(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    if not m.graph.initializer:
        return "init_values:none"
    t = _pick(rng, list(m.graph.initializer))
    try:
        arr = numpy_helper.to_array(t).copy()
    except Exception:
        return "init_values:unreadable"
    if arr.size == 0:
        return "init_values:empty"
    flat = arr.reshape(-1)
    idx = rng.integers(0, flat.size, int(rng.integers(1, flat.size + 1)))
    if arr.dtype.kind == "f":
        flat[idx] = _interesting_float(rng)
    elif arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        flat[idx] = int(np.clip(_interesting_int(rng), info.min, info.max))
    else:
        return "init_values:other"
    _set_init(m, t.name, arr)
    return f"init_values:{t.name}"


def _m_init_remove(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    if not m.graph.initializer:
        return "init_remove:none"
    k = int(rng.integers(0, len(m.graph.initializer)))
    name = m.graph.initializer[k].name
    del m.graph.initializer[k]
    return f"init_remove:{name}"


def _m_attr_value(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    attrs = [(n, a) for n in m.graph.node for a in n.attribute]
    if not attrs:
        return "attr:none"
    n, a = _pick(rng, attrs)
    if a.type == onnx.AttributeProto.INT:
        a.i = _interesting_int(rng)
    elif a.type == onnx.AttributeProto.INTS and len(a.ints):
        a.ints[int(rng.integers(0, len(a.ints)))] = _interesting_int(rng)
    elif a.type == onnx.AttributeProto.FLOAT:
        a.f = _interesting_float(rng)
    elif a.type == onnx.AttributeProto.FLOATS and len(a.floats):
        a.floats[int(rng.integers(0, len(a.floats)))] = _interesting_float(rng)
    elif a.type == onnx.AttributeProto.STRING:
        a.s = _pick(rng, [b"", b"SAME_UPPER", b"VALID", b"reflect", b"tanh", b"\xff\xfe"])
    else:
        return f"attr:{n.name}:{a.name}:untouched"
    return f"attr:{n.name}:{a.name}"


def _m_attr_structure(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    """Remove an attribute, empty its value, give it a mismatching type, or add one a node may read."""
    nodes = list(m.graph.node)
    if not nodes:
        return "attr_struct:none"
    n = _pick(rng, nodes)
    r = rng.random()
    if r < 0.3 and len(n.attribute):
        k = int(rng.integers(0, len(n.attribute)))
        name = n.attribute[k].name
        del n.attribute[k]
        return f"attr_remove:{n.name}:{name}"
    if r < 0.55 and len(n.attribute):
        a = n.attribute[int(rng.integers(0, len(n.attribute)))]
        for f in ("i", "f", "s", "t", "ints", "floats", "strings"):
            a.ClearField(f)  # type: ignore[arg-type]
        return f"attr_empty:{n.name}:{a.name}"
    if r < 0.75 and len(n.attribute):
        a = n.attribute[int(rng.integers(0, len(n.attribute)))]
        a.type = int(_pick(rng, [0, 1, 2, 3, 4, 6, 7, 8, 99]))  # type: ignore[assignment]
        return f"attr_type:{n.name}:{a.name}:{a.type}"
    name = str(_pick(rng, ["group", "dilations", "strides", "pads", "kernel_shape", "axis", "epsilon", "ceil_mode",
                           "auto_pad", "transA", "transB", "alpha", "perm", "count_include_pad", "keepdims"]))
    for k, a in enumerate(n.attribute):
        if a.name == name:
            del n.attribute[k]
            break
    kind = rng.random()
    if kind < 0.4:
        n.attribute.append(helper.make_attribute(name, _interesting_int(rng)))
    elif kind < 0.7:
        n.attribute.append(helper.make_attribute(name, [_interesting_int(rng) for _ in range(int(rng.integers(0, 5)))]))
    elif kind < 0.85:
        n.attribute.append(helper.make_attribute(name, _interesting_float(rng)))
    else:
        n.attribute.append(helper.make_attribute(name, str(_pick(rng, ["SAME_LOWER", "VALID", "x", ""]))))
    return f"attr_add:{n.name}:{name}"


def _m_rewire(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    """A node reads its own output or a later node's output (a cycle), or a name nobody produces."""
    nodes = list(m.graph.node)
    cands = [(i, n) for i, n in enumerate(nodes) if len(n.input)]
    if not cands:
        return "rewire:none"
    i, n = _pick(rng, cands)
    k = int(rng.integers(0, len(n.input)))
    r = rng.random()
    if r < 0.4:
        j = int(rng.integers(i, len(nodes)))
        n.input[k] = nodes[j].output[0]
        return f"cycle:{n.name}:{k}<-{nodes[j].name}"
    if r < 0.7:
        n.input[k] = "dangling_" + str(int(rng.integers(0, 100)))
        return f"dangling:{n.name}:{k}"
    other = _pick(rng, [x for x in [*(t.name for t in m.graph.initializer), *(v.name for v in m.graph.input), ""]])
    n.input[k] = other
    return f"rewire:{n.name}:{k}<-{other or 'empty'}"


def _m_outputs(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    outs = m.graph.output
    r = rng.random()
    if r < 0.35 and len(outs):
        del outs[int(rng.integers(0, len(outs)))]
        return "outputs:remove_one"
    if r < 0.5:
        del outs[:]
        return "outputs:remove_all"
    if r < 0.75 and len(outs):
        outs[int(rng.integers(0, len(outs)))].name = "renamed_" + str(int(rng.integers(0, 10)))
        return "outputs:renamed"
    names = [o for n in m.graph.node for o in n.output] + [v.name for v in m.graph.input] + \
            [t.name for t in m.graph.initializer]
    if not names:
        return "outputs:none"
    name = _pick(rng, names)
    outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return f"outputs:add:{name}"


def _m_qdq_scale(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    names = _qdq_operands(m, 1)
    if not names:
        return _m_init_values(m, rng)
    name = _pick(rng, names)
    arr = _init_array(m, name).astype(np.float32).copy()
    flat = arr.reshape(-1)
    value = _pick(rng, [0.0, math.inf, -math.inf, math.nan, 1e-45, 1e-40, -0.1, 1e38, 1e-30, 3e38])
    idx = int(rng.integers(0, flat.size)) if flat.size else 0
    if flat.size:
        flat[idx] = value
    _set_init(m, name, arr)
    return f"qdq_scale:{name}:{value}"


def _m_qdq_zero_point(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    names = _qdq_operands(m, 2)
    if not names:
        return "qdq_zp:none"
    name = _pick(rng, names)
    arr = _init_array(m, name)
    r = rng.random()
    if r < 0.25:
        _m_init_remove_named(m, name)
        return f"qdq_zp:{name}:deleted"
    value = int(_pick(rng, [200, -200, 1000, -1000, 2**31 - 1, -2**31, 2**62, -2**62, 127, -128, 255]))
    dtype = _pick(rng, [np.int32, np.int64, np.int16, np.uint16]) if r < 0.8 else arr.dtype
    info = np.iinfo(dtype)
    new = np.full(arr.shape, int(np.clip(value, info.min, info.max)), dtype=dtype)
    _set_init(m, name, new)
    return f"qdq_zp:{name}:{np.dtype(dtype).name}:{value}"


def _m_init_remove_named(m: onnx.ModelProto, name: str) -> None:
    for k, t in enumerate(m.graph.initializer):
        if t.name == name:
            del m.graph.initializer[k]
            return


def _m_nodes(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    """Delete, duplicate or retype a node, or make a DequantizeLinear read its own output."""
    nodes = m.graph.node
    if not len(nodes):
        return "nodes:none"
    k = int(rng.integers(0, len(nodes)))
    r = rng.random()
    if r < 0.3:
        name = nodes[k].name
        del nodes[k]
        return f"node_delete:{name}"
    if r < 0.45:
        nodes.insert(k, nodes[k])
        return f"node_dup:{nodes[k].name}"
    if r < 0.8:
        op = str(_pick(rng, ["Conv", "Gemm", "MatMul", "Relu", "Add", "Mul", "MaxPool", "AveragePool", "Reshape",
                             "Concat", "Softmax", "Transpose", "Flatten", "Identity", "QuantizeLinear",
                             "DequantizeLinear", "BatchNormalization", "Pad", "Slice", "Split", "Gather",
                             "LayerNormalization", "ReduceMean", "Div", "Sub", "Sqrt", "Pow", "Unsqueeze"]))
        old = nodes[k].op_type
        nodes[k].op_type = op
        return f"node_op:{nodes[k].name}:{old}->{op}"
    dqs = [n for n in nodes if n.op_type == "DequantizeLinear"] or list(nodes)
    n = _pick(rng, dqs)
    n.input[0] = n.output[0]
    return f"self_alias:{n.name}"


def _m_types(m: onnx.ModelProto, rng: np.random.Generator) -> str:
    """A graph input or output of another element type, or another opset."""
    if rng.random() < 0.25:
        v = int(_pick(rng, [1, 7, 12, 13, 17, 20, 21, 22]))
        m.opset_import[0].version = v
        return f"opset:{v}"
    vis = [v for v in list(m.graph.input) + list(m.graph.output) if v.type.HasField("tensor_type")]
    if not vis:
        return "types:none"
    v = _pick(rng, vis)
    code = int(_pick(rng, list(range(0, 24)) + [99]))
    v.type.tensor_type.elem_type = code
    return f"io_type:{v.name}:{code}"


ONNX_MUTATORS: list[tuple[Callable[[onnx.ModelProto, np.random.Generator], str], float]] = [
    (_m_dim, 1.0), (_m_init_dtype, 0.7), (_m_raw_length, 0.8), (_m_init_values, 1.2), (_m_init_remove, 0.5),
    (_m_attr_value, 1.5), (_m_attr_structure, 1.0), (_m_rewire, 0.8), (_m_outputs, 0.7), (_m_qdq_scale, 1.2),
    (_m_qdq_zero_point, 1.0), (_m_nodes, 0.8), (_m_types, 0.5),
]


def mutate_onnx(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    m = onnx.ModelProto()
    m.ParseFromString(data)
    funcs, weights = zip(*ONNX_MUTATORS, strict=True)
    p = np.asarray(weights) / sum(weights)
    what = []
    for _ in range(1 + int(rng.random() < 0.3) + int(rng.random() < 0.1)):
        what.append(funcs[int(rng.choice(len(funcs), p=p))](m, rng))
    return m.SerializeToString(), "+".join(what)


# ---- TFLite structure-aware mutations ------------------------------------------------------------------------


def _tfl_schema() -> Any:
    from ai_edge_litert import schema_py_generated as s

    return s


def _t_tensor(model: Any, rng: np.random.Generator) -> str:
    sg = model.subgraphs[0]
    if not sg.tensors:
        return "tensor:none"
    k = int(rng.integers(0, len(sg.tensors)))
    t = sg.tensors[k]
    r = rng.random()
    if r < 0.25:
        t.type = int(_pick(rng, list(range(0, 18)) + [99]))
        return f"tensor_type:{k}:{t.type}"
    if r < 0.55:
        shape = list(t.shape) if t.shape is not None else []
        if shape and rng.random() < 0.7:
            shape[int(rng.integers(0, len(shape)))] = int(_pick(rng, [-1, -2**31, *INTERESTING_DIMS[:7]]))
        elif shape and rng.random() < 0.5:
            shape.pop(int(rng.integers(0, len(shape))))
        else:
            shape.append(int(rng.integers(0, 4)))
        t.shape = shape
        return f"tensor_shape:{k}:{shape}"
    if r < 0.75:
        t.buffer = int(_pick(rng, [0, len(model.buffers) - 1, len(model.buffers), len(model.buffers) + 7,
                                   int(rng.integers(0, max(len(model.buffers), 1)))]))
        return f"tensor_buffer:{k}:{t.buffer}"
    q = t.quantization
    if q is None or q.scale is None or not len(q.scale):
        t.quantization = None
        return f"quant_removed:{k}"
    what = rng.random()
    if what < 0.35:
        scale = list(q.scale)
        scale[int(rng.integers(0, len(scale)))] = _pick(rng, [0.0, math.inf, -math.inf, math.nan, 1e-45, -0.5,
                                                              1e38, 1e-30, 3e38, 1e10])
        q.scale = scale
        return f"quant_scale:{k}"
    if what < 0.65:
        zp = list(q.zeroPoint) if q.zeroPoint is not None else [0] * len(q.scale)
        if zp:
            zp[int(rng.integers(0, len(zp)))] = int(_pick(rng, [200, -200, 1000, 2**31 - 1, -2**31, 2**62, -2**62,
                                                                127, -128]))
        q.zeroPoint = zp
        return f"quant_zp:{k}"
    if what < 0.85:
        n = int(_pick(rng, [0, 1, 2, 3, len(q.scale) + 1]))
        q.scale = [float(q.scale[0])] * n
        q.zeroPoint = [int(q.zeroPoint[0]) if q.zeroPoint is not None and len(q.zeroPoint) else 0] * n
        return f"quant_len:{k}:{n}"
    q.quantizedDimension = int(_pick(rng, [-1, 1, 2, 3, 4, 99]))
    return f"quant_dim:{k}:{q.quantizedDimension}"


def _t_operator(model: Any, rng: np.random.Generator) -> str:
    sg = model.subgraphs[0]
    if not sg.operators:
        return "op:none"
    k = int(rng.integers(0, len(sg.operators)))
    op = sg.operators[k]
    r = rng.random()
    ntensors = len(sg.tensors or [])
    if r < 0.3:
        ins = list(op.inputs)
        if ins:
            ins[int(rng.integers(0, len(ins)))] = int(_pick(rng, [-1, 0, ntensors - 1, ntensors, ntensors + 5,
                                                                  int(rng.integers(0, max(ntensors, 1)))]))
        op.inputs = ins
        return f"op_inputs:{k}:{ins}"
    if r < 0.4:
        outs = list(op.outputs)
        if outs:
            outs[0] = int(_pick(rng, [-1, 0, ntensors, int(rng.integers(0, max(ntensors, 1)))]))
        op.outputs = outs
        return f"op_outputs:{k}:{outs}"
    if r < 0.55:
        op.opcodeIndex = int(_pick(rng, [len(model.operatorCodes), len(model.operatorCodes) + 3, 0,
                                         int(rng.integers(0, len(model.operatorCodes)))]))
        return f"op_opcode_index:{k}:{op.opcodeIndex}"
    if r < 0.65:
        sg.operators.pop(k)
        return f"op_delete:{k}"
    if r < 0.72:
        j = int(rng.integers(0, len(sg.operators)))
        sg.operators[k], sg.operators[j] = sg.operators[j], sg.operators[k]
        return f"op_swap:{k}:{j}"
    o = op.builtinOptions
    fields = [f for f in ("strideH", "strideW", "dilationHFactor", "dilationWFactor", "padding",
                          "fusedActivationFunction", "filterHeight", "filterWidth", "axis", "depthMultiplier",
                          "beta", "adjX", "adjY", "beginMask", "endMask", "shrinkAxisMask", "batchDims",
                          "keepDims", "alignCorners", "halfPixelCenters", "newAxisMask", "ellipsisMask")
              if o is not None and hasattr(o, f)]
    if not fields:
        return f"op_options:{k}:none"
    f = _pick(rng, fields)
    if f == "beta":
        setattr(o, f, _interesting_float(rng))
    elif f in ("adjX", "adjY", "keepDims", "alignCorners", "halfPixelCenters"):
        setattr(o, f, not bool(getattr(o, f)))
    else:
        setattr(o, f, int(_pick(rng, [0, -1, 1, 2, 3, 5, 99, 127, 1000, 2**31 - 1, -2**31])))
    return f"op_option:{k}:{f}={getattr(o, f)}"


def _t_opcode(model: Any, rng: np.random.Generator) -> str:
    codes = model.operatorCodes
    if not codes:
        return "opcode:none"
    k = int(rng.integers(0, len(codes)))
    v = int(_pick(rng, [0, 1, 3, 4, 9, 14, 17, 18, 22, 25, 28, 32, 40, 49, 98, 126, 150, 200, 1000, -1]))
    if rng.random() < 0.7:
        codes[k].builtinCode = v
    else:
        codes[k].deprecatedBuiltinCode = int(np.clip(v, -128, 127))
    return f"opcode:{k}:{v}"


def _t_buffer(model: Any, rng: np.random.Generator) -> str:
    bufs = [i for i, b in enumerate(model.buffers or []) if b.data is not None and len(b.data)]
    if not bufs:
        return "buffer:none"
    k = _pick(rng, bufs)
    data = np.asarray(model.buffers[k].data, dtype=np.uint8).copy()
    r = rng.random()
    if r < 0.4:
        data = data[:max(len(data) + int(_pick(rng, [-1, -4, -len(data) // 2, -len(data)])), 0)]
    elif r < 0.6:
        data = np.concatenate([data, np.zeros(int(_pick(rng, [1, 4, 16])), np.uint8)])
    else:
        # int32 biases and int8 weights set to extremes
        fill = _pick(rng, [struct.pack("<i", 2**31 - 1), struct.pack("<i", -2**31), b"\x7f", b"\x80",
                           struct.pack("<f", math.nan)])
        reps = len(data) // len(fill)
        if reps:
            data = np.frombuffer(fill * reps, np.uint8).copy()
    model.buffers[k].data = data
    return f"buffer_data:{k}:{len(data)}"


def _t_io(model: Any, rng: np.random.Generator) -> str:
    sg = model.subgraphs[0]
    ntensors = len(sg.tensors or [])
    if rng.random() < 0.5:
        outs = list(sg.outputs)
        if outs and rng.random() < 0.5:
            outs.pop(int(rng.integers(0, len(outs))))
        else:
            outs.append(int(_pick(rng, [0, ntensors, -1, int(rng.integers(0, max(ntensors, 1)))])))
        sg.outputs = outs
        return f"sg_outputs:{outs}"
    ins = list(sg.inputs)
    if ins and rng.random() < 0.5:
        ins.pop(0)
    else:
        ins.append(int(_pick(rng, [0, ntensors, -1, int(rng.integers(0, max(ntensors, 1)))])))
    sg.inputs = ins
    return f"sg_inputs:{ins}"


TFLITE_MUTATORS: list[tuple[Callable[[Any, np.random.Generator], str], float]] = [
    (_t_tensor, 2.5), (_t_operator, 2.0), (_t_opcode, 0.6), (_t_buffer, 1.0), (_t_io, 0.6),
]


def mutate_tflite(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    import flatbuffers

    s = _tfl_schema()
    model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))
    funcs, weights = zip(*TFLITE_MUTATORS, strict=True)
    p = np.asarray(weights) / sum(weights)
    what = []
    for _ in range(1 + int(rng.random() < 0.3) + int(rng.random() < 0.1)):
        what.append(funcs[int(rng.choice(len(funcs), p=p))](model, rng))
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output()), "+".join(what)


# ---- mutants -------------------------------------------------------------------------------------------------


@dataclass
class Mutant:
    index: int
    seed_model: str
    mutation: str
    suffix: str
    data: bytes


SEED_WEIGHTS = {"demo_fmnist.onnx": 0.6, "conv.onnx": 1.0, "mixed.onnx": 1.6, "qdq_int8.onnx": 1.6,
                "qdq_uint8.onnx": 1.0}


def make_mutant(seeds: list[Path], campaign: int, index: int) -> Mutant:
    """Mutant ``index`` of campaign ``campaign``: deterministic in both (and in the seed files)."""
    rng = np.random.default_rng([campaign, index])
    w = np.array([SEED_WEIGHTS.get(p.name, 0.45) for p in seeds])
    seed = seeds[int(rng.choice(len(seeds), p=w / w.sum()))]
    data = seed.read_bytes()
    for _attempt in range(5):
        try:
            if rng.random() < 0.3:
                donor = seeds[int(rng.integers(0, len(seeds)))].read_bytes()
                mutated, what = mutate_bytes(data, rng, donor)
            elif seed.suffix == ".onnx":
                mutated, what = mutate_onnx(data, rng)
            else:
                mutated, what = mutate_tflite(data, rng)
        except Exception as e:  # a mutation the serializer itself refuses: draw another
            what = f"unserializable({e.__class__.__name__})"
            continue
        if mutated != data:
            return Mutant(index, seed.name, what, seed.suffix, mutated)
    return Mutant(index, seed.name, "bytes:truncate-fallback", seed.suffix, data[: len(data) // 2])


# ---- checking one mutant (inside a worker) -------------------------------------------------------------------

_RUNTIME_LIBS: dict[str, Path] = {}
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def _unlimited() -> None:
    """In a compiler or runner child: lift the worker's address-space limit (ASan reserves a large shadow)."""
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _runtime_lib(project: Path, cache: Path) -> Path:
    """The project's C runtime compiled once (with the sanitizers) into a static library, cached by content."""
    h = hashlib.sha256()
    for p in sorted((project / "runtime").rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(project)).encode())
            h.update(p.read_bytes())
    key = h.hexdigest()[:16]
    if key in _RUNTIME_LIBS and _RUNTIME_LIBS[key].exists():
        return _RUNTIME_LIBS[key]
    lib = cache / f"libmcuc_runtime_{key}.a"
    if not lib.exists():
        objdir = Path(tempfile.mkdtemp(dir=cache))
        objs = []
        for src in sorted((project / "runtime" / "src").glob("*.c")):
            obj = objdir / (src.stem + ".o")
            subprocess.run(["cc", *CFLAGS, "-I", str(project / "runtime" / "include"), "-c", str(src), "-o", str(obj)],
                           check=True, capture_output=True, preexec_fn=_unlimited)
            objs.append(str(obj))
        tmp = objdir / "lib.a"
        subprocess.run(["ar", "rcs", str(tmp), *objs], check=True, capture_output=True)
        os.replace(tmp, lib)
        shutil.rmtree(objdir, ignore_errors=True)
    _RUNTIME_LIBS[key] = lib
    return lib


def verify_inputs(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """int8 samples for the bit-exact check: every element -128, every element 127, alternating, two random."""
    n = int(np.prod(shape[1:], dtype=np.int64))
    alt = np.where(np.arange(n) % 2 == 0, 127, -128).astype(np.int8)
    rows = [np.full(n, -128, np.int8), np.full(n, 127, np.int8), alt,
            rng.integers(-128, 128, n, dtype=np.int8), rng.integers(-128, 128, n, dtype=np.int8)]
    return np.stack(rows).reshape((len(rows), *shape[1:]))


def verify_project(outdir: Path, cache: Path) -> tuple[str, str]:
    """Build OUTDIR's model with the host compiler under ASan and UBSan, as `mcuc verify --target host` does but
    with the runtime compiled once per campaign and -O2 for CMake Release's -O3 (the sanitizer checks are the
    same), run it on extreme and random inputs and compare every output element with the int8 reference."""
    from mcuc.execute import run_int8
    from mcuc.project import load_project

    g, _ = load_project(str(outdir))
    exe = outdir / "fuzz_runner"
    lib = _runtime_lib(outdir, cache)
    proc = subprocess.run(["cc", *CFLAGS, "-I", str(outdir), "-I", str(outdir / "runtime" / "include"),
                           str(outdir / "model.c"), str(outdir / "weights.c"), str(outdir / "main.c"), str(lib),
                           "-o", str(exe)], capture_output=True, text=True, preexec_fn=_unlimited)
    if proc.returncode != 0:
        return "C build failed", (proc.stdout + proc.stderr)[-2000:]
    rng = np.random.default_rng(0)
    xs = {name: verify_inputs(g.tensors[name].shape, rng) for name in g.inputs}
    samples = len(next(iter(xs.values())))
    fin, fout = outdir / "fuzz_in.bin", outdir / "fuzz_out.bin"
    np.concatenate([xs[name].reshape(samples, -1) for name in g.inputs], axis=1).tofile(fin)
    proc = subprocess.run([str(exe), str(fin), str(fout)], capture_output=True, text=True, timeout=60,
                          preexec_fn=_unlimited)
    if proc.returncode != 0:
        return "sanitizer or runner failure", (proc.stdout + proc.stderr)[-2000:]
    out_bytes = sum(g.tensors[o].nbytes for o in g.outputs)
    raw = np.fromfile(fout, dtype=np.int8)
    if raw.size != samples * out_bytes:
        return "sanitizer or runner failure", f"runner wrote {raw.size} bytes, expected {samples * out_bytes}"
    raw = raw.reshape(samples, out_bytes)
    for i in range(samples):
        try:
            ref = run_int8(g, {name: x[i:i + 1] for name, x in xs.items()})
        except Exception:
            return "reference failed", traceback.format_exc()[-2000:]
        pos = 0
        for o in g.outputs:
            size = g.tensors[o].size
            got = raw[i, pos:pos + size]
            want = np.asarray(ref[o]).reshape(-1)
            pos += size
            if not np.array_equal(got, want):
                diff = int(np.abs(got.astype(np.int32) - want.astype(np.int32)).max())
                return "differs from reference", f"sample {i} output '{o}': max |diff| {diff} LSB"
    return OK, ""


def check_compile(model: Path, workdir: Path, cache: Path, verify: bool = True) -> dict[str, Any]:
    """`mcuc compile MODEL --board host -o OUT` in this process, judged as a user would judge it."""
    from mcuc.cli import main

    workdir.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    out = workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    before = set(os.listdir(workdir))
    err, std = io.StringIO(), io.StringIO()
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
                code = main(["compile", str(model), "--board", "host", "-o", str(out)])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:  # noqa: BLE001  (this is what the harness looks for)
            return {"outcome": "traceback", "detail": traceback.format_exc()[-3000:]}
        caught = [f"{w.category.__name__}: {w.message} ({Path(w.filename).name}:{w.lineno})" for w in ws]
    lines = err.getvalue().strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    result: dict[str, Any] = {"warnings": caught}
    if code == 1:
        left = set(os.listdir(workdir)) - before
        if out.exists() or left:
            return {**result, "outcome": "output left behind", "detail": f"{sorted(left)} {errors}"}
        if len(errors) != 1 or "Traceback" in err.getvalue():
            return {**result, "outcome": "bad error report", "detail": err.getvalue()[-2000:]}
        return {**result, "outcome": ERROR, "detail": errors[0]}
    if code != 0:
        return {**result, "outcome": "bad error report", "detail": f"exit {code}: {err.getvalue()[-2000:]}"}
    if not verify:
        return {**result, "outcome": OK, "detail": "not verified"}
    try:
        outcome, detail = verify_project(out, cache)
    except BaseException:  # noqa: BLE001
        return {**result, "outcome": "verify crashed", "detail": traceback.format_exc()[-3000:]}
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {**result, "outcome": outcome, "detail": detail}


def worker_main(workdir: Path, cache: Path, memory_limit: int) -> None:
    """Read mutant paths (one JSON object a line) on stdin, write one JSON result a line on the original stdout.

    Everything else the checked code prints goes to /dev/null, so results cannot be interleaved with it.
    """
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, hard))
    workdir.mkdir(parents=True, exist_ok=True)
    for line in sys.stdin:
        job = json.loads(line)
        t0 = time.monotonic()
        res = check_compile(Path(job["path"]), workdir, cache, job.get("verify", True))
        res["seconds"] = round(time.monotonic() - t0, 3)
        res["id"] = job["id"]
        proto.write(json.dumps(res) + "\n")


# ---- the campaign (parent side) ------------------------------------------------------------------------------


class Worker:
    """One worker process; restarted after it dies or hangs."""

    def __init__(self, root: Path, cache: Path, memory_limit: int) -> None:
        self.root, self.cache, self.memory_limit = root, cache, memory_limit
        self.proc: subprocess.Popen | None = None
        self.count = 0

    def start(self) -> subprocess.Popen:
        self.count += 1
        wd = self.root / f"w{self.count}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        log = open(self.root / f"w{self.count}.log", "wb")  # noqa: SIM115  (kept open for the process)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz_harness", "worker", str(wd), str(self.cache), str(self.memory_limit)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(ROOT), env=env)
        return self.proc

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self.start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            return self._died(proc)
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            proc.kill()
            proc.wait()
            self.proc = None
            return {"outcome": "hang", "detail": f"no result within {timeout:.0f} s"}
        line = proc.stdout.readline()
        if not line:
            return self._died(proc)
        return json.loads(line)

    def _died(self, proc: subprocess.Popen) -> dict[str, Any]:
        code = proc.wait()
        self.proc = None
        return {"outcome": "signal", "detail": f"worker exited with status {code}"}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Totals:
    mutants: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_seed: dict[str, Counter] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def failures(self) -> int:
        return sum(v for k, v in self.outcomes.items() if k not in (OK, ERROR))

    def add(self, m: Mutant, res: dict[str, Any]) -> None:
        self.mutants += 1
        self.outcomes[res["outcome"]] += 1
        self.by_seed.setdefault(m.seed_model, Counter())[res["outcome"]] += 1
        for w in res.get("warnings", []):
            self.warnings[w] += 1
        if res["outcome"] not in (OK, ERROR):
            self.findings.append({"index": m.index, "seed": m.seed_model, "mutation": m.mutation, **res})

    def summary(self) -> str:
        lines = [f"mutants {self.mutants}: clean errors {self.outcomes[ERROR]}, compiled and verified "
                 f"{self.outcomes[OK]}, crashes {sum(self.outcomes[k] for k in FAILURES if k != 'hang')}, "
                 f"hangs {self.outcomes['hang']} ({self.seconds:.0f} s)"]
        for k in FAILURES:
            if self.outcomes[k]:
                lines.append(f"  {k}: {self.outcomes[k]}")
        return "\n".join(lines)


def mutants(seeds: list[Path], campaign: int, count: int, start: int = 0) -> Iterator[Mutant]:
    for i in range(start, start + count):
        yield make_mutant(seeds, campaign, i)


def run_campaign(count: int, campaign: int = 0, jobs: int = 1, timeout: float = 60.0, workdir: Path | None = None,
                 verify: bool = True, memory_limit: int = 4 << 30, keep: Path | None = None,
                 progress: Callable[[Totals], None] | None = None, start: int = 0) -> Totals:
    """Generate and check ``count`` mutants with ``jobs`` worker processes; ``keep`` receives every finding's
    mutant file."""
    root = Path(tempfile.mkdtemp(prefix="mcuc-fuzz-", dir=workdir))
    try:
        seeds = write_seeds(root / "seeds")
        cache = root / "cache"
        cache.mkdir()
        totals = Totals()
        lock = threading.Lock()
        todo = iter(range(start, start + count))
        t0 = time.monotonic()

        def loop(k: int) -> None:
            worker = Worker(root / f"job{k}", cache, memory_limit)
            (root / f"job{k}").mkdir()
            mdir = root / f"mutants{k}"
            mdir.mkdir()
            try:
                while True:
                    with lock:
                        i = next(todo, None)
                    if i is None:
                        return
                    m = make_mutant(seeds, campaign, i)
                    path = mdir / f"mutant{i}{m.suffix}"
                    path.write_bytes(m.data)
                    res = worker.run({"id": i, "path": str(path), "verify": verify}, timeout)
                    with lock:
                        totals.add(m, res)
                        if keep is not None and res["outcome"] not in (OK, ERROR):
                            keep.mkdir(parents=True, exist_ok=True)
                            shutil.copy(path, keep / path.name)
                        if progress is not None:
                            totals.seconds = time.monotonic() - t0
                            progress(totals)
                    path.unlink()
            finally:
                worker.stop()

        threads = [threading.Thread(target=loop, args=(k,)) for k in range(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        totals.seconds = time.monotonic() - t0
        return totals
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "worker":
        worker_main(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: python -m tests.fuzz_harness worker WORKDIR CACHE MEMORY_LIMIT")

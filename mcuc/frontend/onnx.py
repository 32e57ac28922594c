"""ONNX reader: parse a float or QDQ .onnx model into a float NCHW Graph with every shape known.

Anything the compiler cannot run is rejected here with a one-line MCUCError naming the node,
so later stages never see an op or shape they do not understand. Subgraphs computing constants
(the legacy torch exporter's Shape/Gather/Unsqueeze/Concat chains feeding Reshape) are folded
with numpy. QuantizeLinear/DequantizeLinear pairs on activations are removed and their
parameters kept as ``Tensor.quant``; dequantized constant weights become float constants that
remember their per-channel parameters, so the quantizer can reuse the model's own scales.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper as nph

from mcuc.errors import MCUCError
from mcuc.frontend import model_file
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.ops import infer_shapes
from mcuc.reference import resize as rresize

MIN_OPSET, MAX_OPSET = 13, 20

SUPPORTED_OPS = (
    "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Clip", "HardSwish", "HardSigmoid",
    "Sigmoid", "LeakyRelu", "PRelu", "Add", "Sub", "Mul", "GlobalAveragePool", "AveragePool", "MaxPool", "Flatten",
    "Reshape", "Concat", "Softmax", "Pad", "Identity", "Dropout", "Transpose", "Squeeze",
    "Unsqueeze", "QuantizeLinear", "DequantizeLinear", "Constant",
    "LayerNormalization", "Gelu", "Erf", "Div", "Pow", "Sqrt", "ReduceMean", "Slice", "Gather", "Split",
    "Resize",
)

_ONNX_FLOAT = 1


def load_onnx(path: str) -> Graph:
    """Read ``path`` and return a float Graph (layout NCHW, batch 1, shapes filled)."""
    p = model_file(path)
    try:
        model = onnx.load(str(p))
    except Exception as e:  # protobuf raises DecodeError, RuntimeWarning-derived and others
        raise MCUCError(f"'{path}' is not a valid ONNX model (cannot parse the protobuf: "
                        f"{e.__class__.__name__}); re-export it") from e
    if len(model.graph.node) == 0 and len(model.graph.output) == 0:
        raise MCUCError(f"'{path}' is not a valid ONNX model (empty graph); re-export it")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise MCUCError(f"'{path}' declares no default-domain opset; "
                        f"mcuc reads opsets {MIN_OPSET}-{MAX_OPSET}")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise MCUCError(f"'{path}' uses ONNX opset {opset}; mcuc reads opsets {MIN_OPSET}-{MAX_OPSET} "
                        f"(re-export with opset_version={MIN_OPSET})")
    _check_text(model, path)
    if len(model.graph.output) == 0:
        raise MCUCError(f"'{path}' declares no graph outputs; re-export it with its outputs")
    return _Importer(model, opset).run()


def _check_text(model: Any, path: str) -> None:
    """Every name and op type must be text: protobuf hands out bytes for a string that is not valid UTF-8."""
    g = model.graph
    texts = [v.name for v in (*g.input, *g.output, *g.value_info, *g.initializer)]
    for n in g.node:
        texts += [n.op_type, n.name, n.domain, *n.input, *n.output, *(a.name for a in n.attribute)]
    if any(not isinstance(t, str) for t in texts):
        raise MCUCError(f"'{path}' is not a valid ONNX model (a name or op type is not valid UTF-8); re-export it")


# ---------------------------------------------------------------------------------------------
# attribute / constant helpers


def _schema(node: Any, opset: int) -> Any:
    """The ONNX schema of ``node`` at ``opset``, else its latest one (mcuc also reads ops newer than the model's
    opset, such as LayerNormalization at opset 13); None for an op ONNX does not define."""
    for version in (opset, MAX_OPSET):
        try:
            return onnx.defs.get_schema(node.op_type, version, node.domain or "")
        except onnx.defs.SchemaError:
            continue
    return None


def _attrs(node: Any, schema: Any = None) -> dict[str, Any]:
    """The node's attributes as Python values; each must carry a value of the type its schema declares."""
    out = {}
    for a in node.attribute:
        want = schema.attributes[a.name].type if schema is not None and a.name in schema.attributes else None
        if want is not None and int(a.type) != int(want):
            raise MCUCError(f"{node.op_type} node '{node.name}': attribute '{a.name}' has type "
                            f"{onnx.AttributeProto.AttributeType.Name(a.type) if a.type in range(15) else a.type}, "
                            f"the ONNX schema wants {want.name}")
        try:
            out[a.name] = onnx.helper.get_attribute_value(a)
        except ValueError as e:
            raise MCUCError(f"{node.op_type} node '{node.name}': attribute '{a.name}' has no value") from e
    if schema is not None:
        missing = [k for k, v in schema.attributes.items() if v.required and k not in out]
        if missing:
            raise MCUCError(f"{node.op_type} node '{node.name}' lacks the required attribute '{missing[0]}'")
    return out


def _check_arity(node: Any, schema: Any) -> None:
    """Required inputs present and not empty, no more inputs or outputs than the op has."""
    from onnx.defs import OpSchema

    ins, outs = list(node.input), list(node.output)
    if len(ins) > schema.max_input or len(outs) > schema.max_output or len(outs) < schema.min_output:
        raise MCUCError(f"{node.op_type} node '{node.name}' has {len(ins)} inputs and {len(outs)} outputs; ONNX "
                        f"allows {schema.min_input}-{schema.max_input} inputs and {schema.min_output}-"
                        f"{schema.max_output} outputs")
    for k, formal in enumerate(schema.inputs):
        if formal.option == OpSchema.FormalParameterOption.Single and (k >= len(ins) or not ins[k]):
            raise MCUCError(f"{node.op_type} node '{node.name}' lacks its required input {k} ('{formal.name}')")
    if not outs or not outs[0]:
        raise MCUCError(f"{node.op_type} node '{node.name}' has no output name")


def _window_attr(node: Any, a: dict[str, Any], key: str, default: tuple[int, ...], minimum: int) -> tuple[int, ...]:
    """A per-spatial-axis attribute (strides, dilations, pads, kernel_shape): the right count of int32 values."""
    v = _as_tuple(a.get(key, default))
    if len(v) != len(default) or min(v) < minimum or max(v) > 2**31 - 1:
        raise MCUCError(f"{node.op_type} node '{node.name}' has {key} {list(v)}; mcuc needs {len(default)} values "
                        f"from {minimum} to 2^31-1 (2-D operators)")
    return v


def _axis(node: Any, value: Any, rank: int, what: str = "axis") -> int:
    """An ONNX axis (negative counts from the end) checked against ``rank``, as a non-negative index."""
    v = int(value)
    if not -rank <= v < rank:
        raise MCUCError(f"{node.op_type} node '{node.name}': {what} {v} is out of range for a tensor of rank {rank}")
    return v % rank


def _as_tuple(v: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in v)


def _quant_from(scale: np.ndarray, zp: np.ndarray | None, axis: int | None, ndim: int) -> QuantParams:
    """QuantParams from ONNX Q/DQ operands; uint8 zero points shift by -128 to the int8 equivalent."""
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    z = np.zeros(s.shape, dtype=np.int64) if zp is None else np.asarray(zp).astype(np.int64).reshape(-1)
    if zp is not None and np.asarray(zp).dtype == np.uint8:
        z = z - 128
    if s.size == 1:
        return QuantParams(s, np.broadcast_to(z, s.shape).copy(), None)
    ax = (axis if axis is not None else 1) % max(ndim, 1)
    return QuantParams(s, np.broadcast_to(z, s.shape).copy(), ax)


def _dequantize(x: np.ndarray, scale: np.ndarray, zp: np.ndarray | None, axis: int) -> np.ndarray:
    s = np.asarray(scale, dtype=np.float64)
    z = np.zeros_like(s) if zp is None else np.asarray(zp, dtype=np.float64)
    if s.size > 1:
        shape = [1] * x.ndim
        shape[axis % x.ndim] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    with np.errstate(over="ignore"):  # values beyond float32 become inf, refused where they are used
        return ((x.astype(np.float64) - z) * s).astype(np.float32)


def _quantize(x: np.ndarray, scale: np.ndarray, zp: np.ndarray | None, axis: int) -> np.ndarray:
    dtype = np.int8 if zp is None else np.asarray(zp).dtype
    s = np.asarray(scale, dtype=np.float64)
    z = np.zeros_like(s) if zp is None else np.asarray(zp, dtype=np.float64)
    if s.size > 1:
        shape = [1] * x.ndim
        shape[axis % x.ndim] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / s) + z, info.min, info.max).astype(dtype)


def _slice(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, axes: np.ndarray | None = None,
           steps: np.ndarray | None = None) -> np.ndarray:
    ax = list(range(len(starts))) if axes is None else [int(a) % data.ndim for a in axes]
    st = [1] * len(starts) if steps is None else [int(s) for s in steps]
    idx = [slice(None)] * data.ndim
    for a, s, e, k in zip(ax, starts, ends, st, strict=False):
        idx[a] = slice(int(s), int(e), k)
    return data[tuple(idx)]


def _unsqueeze(x: np.ndarray, axes: np.ndarray) -> np.ndarray:
    rank = x.ndim + len(axes)
    out = x
    for a in sorted(int(a) % rank for a in axes):
        out = np.expand_dims(out, a)
    return out


def _np_reshape(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    return x.reshape(_resolve_reshape(x.shape, [int(s) for s in shape], "constant"))


def _resolve_reshape(src: tuple[int, ...], spec: list[int], name: str) -> tuple[int, ...]:
    """ONNX Reshape target (0 copies the input dim, -1 is inferred) as a concrete shape."""
    out = [src[i] if d == 0 else d for i, d in enumerate(spec)]
    total = int(np.prod(src, dtype=np.int64))
    if out.count(-1) > 1:
        raise MCUCError(f"Reshape '{name}' has more than one -1 in its target shape {spec}")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise MCUCError(f"Reshape '{name}' cannot reshape {src} to {spec}")
        out[out.index(-1)] = total // known
    if int(np.prod(out, dtype=np.int64)) != total:
        raise MCUCError(f"Reshape '{name}' cannot reshape {src} to {spec}")
    return tuple(int(d) for d in out)


def _onnx_dtype(code: int) -> np.dtype:
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(code))
    except (KeyError, TypeError, ValueError) as e:
        raise MCUCError(f"unknown ONNX element type {code}") from e


# element types mcuc reads from initializers and Constant nodes
_READABLE_TYPES = {"FLOAT", "DOUBLE", "FLOAT16", "INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64",
                   "UINT64", "BOOL"}


def _read_tensor(t: Any, what: str) -> np.ndarray:
    """A TensorProto as numpy; MCUCError when its type is one mcuc does not read or its data does not match
    its dims."""
    kind = onnx.TensorProto.DataType.Name(t.data_type) if t.data_type in onnx.TensorProto.DataType.values() else None
    if kind not in _READABLE_TYPES:
        raise MCUCError(f"{what} has element type {kind or t.data_type}, which mcuc does not read "
                        f"(it reads {', '.join(sorted(_READABLE_TYPES)).lower()})")
    if t.data_location == onnx.TensorProto.EXTERNAL:
        raise MCUCError(f"{what} keeps its data in an external file that was not loaded; "
                        "save the model with its data inside")
    dims = [int(d) for d in t.dims]
    if min(dims, default=0) < 0:
        raise MCUCError(f"{what} has negative dimensions {dims}")
    count = int(np.prod(dims, dtype=object)) if dims else 1
    if t.HasField("raw_data"):
        want = count * _onnx_dtype(t.data_type).itemsize
        if len(t.raw_data) != want:
            raise MCUCError(f"{what} holds {len(t.raw_data)} bytes of raw data, its type and dims {dims} need "
                            f"{want}; the file is corrupt, re-export it")
    try:
        return np.asarray(nph.to_array(t))
    except ValueError as e:  # typed data fields of the wrong length
        raise MCUCError(f"{what} does not hold {count} values for its dims {dims}: {e}") from e


def _cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A constant Cast; float values that the integer type cannot hold are an error, not numpy's garbage."""
    if dtype.kind in "iu" and x.dtype.kind == "f":
        info = np.iinfo(dtype)
        if not np.all(np.isfinite(x)) or (x.size and (x.min() < info.min or x.max() > info.max)):
            raise MCUCError(f"a constant Cast to {dtype} of values outside its range")
    return x.astype(dtype)


def _tensor_value(v: Any) -> np.ndarray:
    """An attribute's tensor value (a TensorProto from onnx.helper, or already an array) as numpy."""
    if isinstance(v, np.ndarray):
        return v
    return _read_tensor(v, "a tensor attribute")


# numpy evaluators for nodes whose inputs are all constant: (inputs, attrs) -> outputs
_FOLDERS: dict[str, Callable[[list[Any], dict[str, Any]], list[np.ndarray]]] = {
    "Identity": lambda i, a: [i[0]],
    "Shape": lambda i, a: [np.array(np.shape(i[0]), dtype=np.int64)[a.get("start", 0):a.get("end")]],
    "Cast": lambda i, a: [_cast(np.asarray(i[0]), _onnx_dtype(a["to"]))],
    "Gather": lambda i, a: [np.take(i[0], i[1].astype(np.int64), axis=a.get("axis", 0))],
    "Unsqueeze": lambda i, a: [_unsqueeze(i[0], i[1] if len(i) > 1 else np.array(a["axes"]))],
    "Squeeze": lambda i, a: [np.squeeze(i[0], axis=tuple(int(x) for x in i[1]))
                             if len(i) > 1 and i[1] is not None else np.squeeze(i[0])],
    "Concat": lambda i, a: [np.concatenate([np.atleast_1d(x) for x in i], axis=a["axis"])],
    "Reshape": lambda i, a: [_np_reshape(i[0], i[1])],
    "Flatten": lambda i, a: [i[0].reshape(int(np.prod(i[0].shape[:a.get("axis", 1)])), -1)],
    "Transpose": lambda i, a: [np.transpose(i[0], a.get("perm"))],
    "Slice": lambda i, a: [_slice(*i)],
    "Add": lambda i, a: [np.asarray(i[0] + i[1]).astype(i[0].dtype)],
    "Sub": lambda i, a: [np.asarray(i[0] - i[1]).astype(i[0].dtype)],
    "Mul": lambda i, a: [np.asarray(i[0] * i[1]).astype(i[0].dtype)],
    "Div": lambda i, a: [np.asarray(i[0] // i[1] if i[0].dtype.kind == "i" else i[0] / i[1])
                         .astype(i[0].dtype)],
    "Neg": lambda i, a: [-i[0]],
    "Sqrt": lambda i, a: [np.sqrt(i[0])],
    "Floor": lambda i, a: [np.floor(i[0])],
    "Ceil": lambda i, a: [np.ceil(i[0])],
    "Equal": lambda i, a: [np.equal(i[0], i[1])],
    "Where": lambda i, a: [np.where(i[0], i[1], i[2])],
    "ConstantOfShape": lambda i, a: [np.full(tuple(int(x) for x in i[0]),
                                             _tensor_value(a["value"]).reshape(-1)[0] if "value" in a
                                             else np.float32(0))],
    "Range": lambda i, a: [np.arange(i[0], i[1], i[2]).astype(np.asarray(i[0]).dtype)],
    "ReduceProd": lambda i, a: [np.prod(i[0], keepdims=bool(a.get("keepdims", 1)),
                                        axis=None if "axes" not in a else tuple(a["axes"]))],
    "QuantizeLinear": lambda i, a: [_quantize(i[0], i[1], i[2] if len(i) > 2 else None,
                                              a.get("axis", 1))],
    "DequantizeLinear": lambda i, a: [_dequantize(i[0], i[1], i[2] if len(i) > 2 else None,
                                                  a.get("axis", 1))],
    "Relu": lambda i, a: [np.maximum(i[0], 0).astype(i[0].dtype)],
    "Expand": lambda i, a: [np.broadcast_to(i[0], np.broadcast_shapes(np.shape(i[0]), tuple(int(d) for d in i[1])))
                            .copy()],
    "Pow": lambda i, a: [np.power(i[0], i[1]).astype(i[0].dtype)],
}


class _Importer:
    """One conversion: walks the (topologically ordered) ONNX nodes once."""

    def __init__(self, model: Any, opset: int = MIN_OPSET) -> None:
        self.model = model
        self.opset = opset
        self.g = Graph(layout="NCHW")
        self.consts: dict[str, np.ndarray] = {i.name: _read_tensor(i, f"initializer '{i.name}'")
                                              for i in model.graph.initializer}
        self.const_quant: dict[str, QuantParams] = {}
        self.alias: dict[str, str] = {}  # removed Identity-like tensors -> the tensor they equal
        self.qdq = False

    # ---- tensor plumbing ----------------------------------------------------------------
    def name(self, n: str) -> str:
        seen = {n}
        while n in self.alias:
            n = self.alias[n]
            if n in seen:
                raise MCUCError(f"tensor '{n}' is defined through itself (a Q/DQ or Identity cycle); "
                                "the graph is not a DAG, re-export it")
            seen.add(n)
        return n

    def is_const(self, n: str) -> bool:
        return self.name(n) in self.consts

    def const(self, n: str) -> np.ndarray:
        name = self.name(n)
        if name not in self.consts:
            raise MCUCError(f"'{n}' is used as a constant but no initializer or Constant node defines it")
        return self.consts[name]

    def shape(self, n: str) -> tuple[int, ...]:
        n = self.name(n)
        if n in self.consts:
            return tuple(self.consts[n].shape)
        if n not in self.g.tensors:
            raise MCUCError(f"'{n}' is read before any node produces it (a dangling name or a cycle)")
        return self.g.tensors[n].shape

    def use(self, n: str, node_name: str) -> str:
        """Graph tensor name for ONNX value ``n``, materialising constants as float32 tensors."""
        n = self.name(n)
        if n in self.g.tensors:
            return n
        if n in self.consts:
            data = np.ascontiguousarray(self.consts[n])
            if data.dtype != np.float32:
                if data.dtype.kind not in "fiu":
                    raise MCUCError(f"node '{node_name}' uses constant '{n}' of type {data.dtype}")
                data = data.astype(np.float32)
            self.g.add_tensor(Tensor(n, tuple(data.shape), "float32", self.const_quant.get(n), data))
            return n
        raise MCUCError(f"node '{node_name}' reads '{n}', which no earlier node produces")

    def emit(self, op: str, name: str, inputs: list[str], output: str, **attrs: Any) -> str:
        node = Node(op, name, [self.use(i, name) for i in inputs], [output], attrs)
        shape = infer_shapes(node, self.g)[0]
        if len(shape) == 0:
            raise MCUCError(f"node '{name}' ({op}) computes a scalar; mcuc needs activations of rank 1 or more")
        self.g.add_tensor(Tensor(output, tuple(int(d) for d in shape)))
        self.g.nodes.append(node)
        return output

    def fresh(self, base: str) -> str:
        n = self.g.unique_name(base)
        while n in self.consts:
            n = self.g.unique_name(n + "_")
        return n

    # ---- driver ---------------------------------------------------------------------------
    def run(self) -> Graph:
        graph = self.model.graph
        for inp in graph.input:
            if inp.name in self.consts:
                continue
            self.add_input(inp)
        if not self.g.inputs:
            raise MCUCError("the ONNX model has no non-constant input")
        for i, node in enumerate(graph.node):
            if not node.name:
                node.name = f"{node.op_type}_{i}"
            self.convert(node)
        for out in graph.output:
            self.add_output(out.name)
        g = self.g
        for name in g.inputs:
            dims = g.tensors[name].shape
            if len(dims) > 1 and dims[0] != 1:
                raise MCUCError(f"model input '{name}' has batch size {dims[0]}; mcuc compiles batch 1 (mcuc run "
                                "takes N samples one after another): re-export with batch size 1 or a symbolic batch")
        g.meta["qdq"] = self.qdq
        if self.qdq:
            _restore_removed_relus(g)
        g.meta["source"] = "onnx"
        g.prune()
        return g

    def add_input(self, inp: Any) -> None:
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type"):
            raise MCUCError(f"model input '{inp.name}' is not a tensor; mcuc needs float32 tensor inputs")
        if tt.elem_type != _ONNX_FLOAT:
            raise MCUCError(f"model input '{inp.name}' has element type "
                            f"{_onnx_dtype(tt.elem_type).name}; mcuc needs float32 inputs")
        if not tt.HasField("shape"):
            raise MCUCError(f"model input '{inp.name}' has no declared shape; re-export with a fixed input shape")
        dims: list[int] = []
        for k, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 2**31 - 1:
                raise MCUCError(f"model input '{inp.name}' has dimension {k} of {d.dim_value}; sizes must fit int32")
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif k == 0:
                dims.append(1)  # symbolic batch: mcuc compiles batch 1
            else:
                label = d.dim_param or "?"
                raise MCUCError(f"model input '{inp.name}' has dynamic dimension {k} ('{label}'); "
                                "mcuc needs fixed sizes except the batch: re-export with a fixed input shape")
        if not dims:
            raise MCUCError(f"model input '{inp.name}' is a scalar; mcuc needs inputs of rank 1 or more")
        self.g.add_tensor(Tensor(inp.name, tuple(dims)))
        self.g.inputs.append(inp.name)

    def add_output(self, onnx_name: str) -> None:
        """Declare a graph output, renaming the internal tensor so the model's output names survive."""
        src = self.name(onnx_name)
        if src in self.consts and src not in self.g.tensors:
            raise MCUCError(f"model output '{onnx_name}' is a constant; mcuc needs computed outputs")
        if src not in self.g.tensors:
            raise MCUCError(f"model output '{onnx_name}' is never produced")
        if src != onnx_name and onnx_name not in self.g.tensors and src not in self.g.inputs \
                and src not in self.g.outputs:
            _rename(self.g, src, onnx_name)
            self.alias[src] = onnx_name
            self.alias.pop(onnx_name, None)
            src = onnx_name
        self.g.outputs.append(src)

    def convert(self, node: Any) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            self.unsupported(node)
        schema = _schema(node, self.opset)
        if schema is not None:
            _check_arity(node, schema)
        a = _attrs(node, schema)
        if op == "Constant":
            self.consts[node.output[0]] = self.constant_value(node, a)
            return
        ins = list(node.input)
        if op == "Shape" and ins and not self.is_const(ins[0]):
            shp = np.array(self.shape(ins[0]), dtype=np.int64)
            self.consts[node.output[0]] = shp[a.get("start", 0):a.get("end", len(shp))]
            return
        if op in ("QuantizeLinear", "DequantizeLinear"):
            self.qdq = True
            self.check_qdq(node, ins, a)
        if op in _FOLDERS and all(i == "" or self.is_const(i) for i in ins):
            vals = [self.const(i) if i else None for i in ins]
            while vals and vals[-1] is None:
                vals.pop()
            try:
                outs = _FOLDERS[op](vals, a)
            except MCUCError:
                raise
            except Exception as e:
                raise MCUCError(f"cannot evaluate constant {op} node '{node.name}': {e}") from e
            for o, v in zip(node.output, outs, strict=False):
                self.consts[o] = np.asarray(v)
            if op == "DequantizeLinear":
                self.record_weight_quant(node, vals, a)
            return
        handler = getattr(self, "op_" + op, None)
        if handler is None:
            self.unsupported(node)
        else:
            handler(node, ins, a)

    def unsupported(self, node: Any) -> None:
        dom = f" (domain '{node.domain}')" if node.domain not in ("", "ai.onnx") else ""
        raise MCUCError(f"unsupported ONNX op '{node.op_type}'{dom} in node '{node.name}'; "
                        f"supported ops: {', '.join(SUPPORTED_OPS)}")

    def constant_value(self, node: Any, a: dict[str, Any]) -> np.ndarray:
        if "value" in a:
            return _read_tensor(a["value"], f"Constant node '{node.name}'")
        for key, dt in (("value_float", np.float32), ("value_int", np.int64)):
            if key in a:
                return np.array(a[key], dtype=dt)
        for key, dt in (("value_floats", np.float32), ("value_ints", np.int64)):
            if key in a:
                return np.array(list(a[key]), dtype=dt)
        raise MCUCError(f"Constant node '{node.name}' has an unsupported value kind {sorted(a)}")

    def record_weight_quant(self, node: Any, vals: list[Any], a: dict[str, Any]) -> None:
        """A dequantized int8 weight remembers its (per-channel) parameters; int32 biases do not."""
        q = vals[0]
        if np.asarray(q).dtype in (np.int8, np.uint8):
            zp = vals[2] if len(vals) > 2 else None
            self.const_quant[node.output[0]] = _quant_from(vals[1], zp, a.get("axis", 1), np.asarray(q).ndim)

    def single_output(self, node: Any) -> str:
        extra = [o for o in node.output[1:] if o]
        if extra:
            graph = self.model.graph
            used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
            if any(o in used for o in extra):
                raise MCUCError(f"{node.op_type} node '{node.name}' uses its optional extra outputs; "
                                "mcuc supports only the first output")
        return node.output[0]

    def need_const(self, node: Any, n: str, what: str) -> np.ndarray:
        if not n or not self.is_const(n):
            raise MCUCError(f"{node.op_type} node '{node.name}': {what} must be a constant")
        return self.const(n)

    def need_ints(self, node: Any, n: str, what: str) -> np.ndarray:
        """A constant integer operand (a shape, axes, pads, slice bounds, indices)."""
        v = np.asarray(self.need_const(node, n, what))
        if v.dtype.kind not in "iu":
            raise MCUCError(f"{node.op_type} node '{node.name}': {what} must be integers, got {v.dtype}")
        return v

    def check_qdq(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        """Q/DQ parameters mcuc can compute with: constant, finite, positive, normal float32 scales; int8/uint8
        zero points (an int32 bias's zero point 0) of the scale's length; a per-axis scale as long as its axis."""
        where = f"{node.op_type} '{node.name}'"
        scale = np.asarray(self.need_const(node, ins[1], "the scale"))
        if scale.dtype.kind != "f" or scale.size == 0 or scale.ndim > 1:
            raise MCUCError(f"{where}: scale must be a float scalar or vector, got {scale.dtype} {scale.shape}")
        s = scale.astype(np.float64).reshape(-1)
        bad = ~(np.isfinite(s) & (s >= np.finfo(np.float32).tiny) & (s <= np.finfo(np.float32).max))
        if bad.any():
            raise MCUCError(f"{where}: scale {float(s[bad][0])!r} is not a finite positive normal float32; "
                            "quantization needs scales > 0 (re-quantize the model)")
        x_shape = self.shape(ins[0])
        if s.size > 1:
            axis = int(a.get("axis", 1))
            if not -len(x_shape) <= axis < len(x_shape) or x_shape[axis] != s.size:
                raise MCUCError(f"{where}: {s.size} scales along axis {axis} of a tensor of shape {x_shape}")
        if len(ins) > 2 and ins[2]:
            zp = np.asarray(self.need_const(node, ins[2], "the zero point"))
            if zp.shape != scale.shape and not (zp.size == 1 and scale.size == 1):  # () and (1,): one value each
                raise MCUCError(f"{where}: zero point shape {zp.shape} differs from scale shape {scale.shape}")
            if zp.dtype == np.int32 and node.op_type == "DequantizeLinear":
                if np.any(zp != 0):
                    raise MCUCError(f"{where}: an int32 (bias) zero point must be 0, got {zp.reshape(-1)[0]}")
            elif zp.dtype not in (np.int8, np.uint8):
                raise MCUCError(f"{where}: zero point of type {zp.dtype}; mcuc reads int8/uint8 Q/DQ "
                                "(and int32 biases with zero point 0)")
        if node.op_type == "DequantizeLinear" and self.is_const(ins[0]):
            q = self.const(ins[0])
            if q.dtype not in (np.int8, np.uint8, np.int32):
                raise MCUCError(f"{where} dequantizes a {q.dtype} constant; mcuc reads int8/uint8 weights and "
                                "int32 biases")
            if len(ins) > 2 and ins[2] and self.const(ins[2]).dtype != q.dtype:
                raise MCUCError(f"{where}: zero point type {self.const(ins[2]).dtype} differs from the quantized "
                                f"data's {q.dtype}")

    # ---- op converters --------------------------------------------------------------------
    def op_QuantizeLinear(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        x = self.name(ins[0])
        scale = self.need_const(node, ins[1], "scale")
        zp = self.need_const(node, ins[2], "the zero point") if len(ins) > 2 and ins[2] else None
        if np.asarray(scale).size != 1:
            raise MCUCError(f"QuantizeLinear '{node.name}' quantizes an activation per channel; "
                            "mcuc needs per-tensor activation quantization")
        if zp is not None and np.asarray(zp).dtype not in (np.int8, np.uint8):
            raise MCUCError(f"QuantizeLinear '{node.name}' produces {np.asarray(zp).dtype}; "
                            "mcuc reads int8/uint8 QDQ")
        t = self.g.tensors[self.use(x, node.name)]
        t.quant = _quant_from(scale, zp, None, len(t.shape))
        self.alias[node.output[0]] = x

    def op_DequantizeLinear(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.alias[node.output[0]] = self.name(ins[0])

    def op_Identity(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.emit("identity", node.name, [ins[0]], node.output[0])

    def op_Dropout(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.emit("identity", node.name, [ins[0]], self.single_output(node))

    def op_Conv(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        x = ins[0]
        w = self.need_const(node, ins[1], "the weight")
        if len(self.shape(x)) != 4 or w.ndim != 4:
            raise MCUCError(f"Conv node '{node.name}' is not 2-D (input {self.shape(x)}); "
                            "mcuc supports Conv2d only")
        kh, kw = w.shape[2:]
        strides = _window_attr(node, a, "strides", (1, 1), 1)
        dil = _window_attr(node, a, "dilations", (1, 1), 1)
        pads = self.pads(node, a, self.shape(x)[2:], (kh, kw), strides, dil)
        inputs = [x, ins[1]]
        if len(ins) > 2 and ins[2]:
            self.need_const(node, ins[2], "the bias")
            inputs.append(ins[2])
        else:
            inputs.append(self.const_name(node.name + "_bias", np.zeros(w.shape[0], dtype=np.float32)))
        self.emit("conv2d", node.name, inputs, node.output[0], strides=strides, pads=pads, dilations=dil,
                  groups=int(a.get("group", 1)), act=None)

    def pads(self, node: Any, a: dict[str, Any], size: tuple[int, ...], k: tuple[int, int],
             strides: tuple[int, ...], dil: tuple[int, ...]) -> tuple[int, int, int, int]:
        """Explicit (top, left, bottom, right) pads, resolving auto_pad; each smaller than the (dilated) window,
        so that every output reads at least one input element."""
        p = self.explicit_pads(node, a, size, k, strides, dil)
        extent = [d * (kk - 1) + 1 for kk, d in zip(k, dil, strict=True)]
        if max(p[0], p[2]) >= extent[0] or max(p[1], p[3]) >= extent[1]:
            raise MCUCError(f"{node.op_type} node '{node.name}' pads {list(p)} reach beyond its {k[0]}x{k[1]} window "
                            f"(dilations {list(dil)}); mcuc supports pads smaller than the window")
        return p

    def explicit_pads(self, node: Any, a: dict[str, Any], size: tuple[int, ...], k: tuple[int, int],
                      strides: tuple[int, ...], dil: tuple[int, ...]) -> tuple[int, int, int, int]:
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode(errors="replace") if isinstance(auto, bytes) else str(auto)
        if auto in ("NOTSET", ""):
            p = _window_attr(node, a, "pads", (0, 0, 0, 0), 0)
            return (p[0], p[1], p[2], p[3])
        if auto == "VALID":
            return (0, 0, 0, 0)
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            raise MCUCError(f"{node.op_type} node '{node.name}' has unknown auto_pad '{auto}'")
        lo_hi = []
        for n_in, kk, s, d in zip(size, k, strides, dil, strict=True):
            out = -(-n_in // s)
            total = max((out - 1) * s + d * (kk - 1) + 1 - n_in, 0)
            small = total // 2
            lo_hi.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return (lo_hi[0][0], lo_hi[1][0], lo_hi[0][1], lo_hi[1][1])

    def const_name(self, base: str, data: np.ndarray, quant: QuantParams | None = None) -> str:
        n = self.fresh(base)
        self.consts[n] = data
        if quant is not None:
            self.const_quant[n] = quant
        return n

    def fc(self, node: Any, x: str, w: np.ndarray, wq: QuantParams | None, b: np.ndarray, out: str) -> None:
        wn = self.const_name(node.name + "_weight", np.ascontiguousarray(w, dtype=np.float32), wq)
        bn = self.const_name(node.name + "_bias", np.ascontiguousarray(b, dtype=np.float32))
        self.emit("fully_connected", node.name, [x, wn, bn], out, act=None)

    def op_Gemm(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        if int(a.get("transA", 0)):
            raise MCUCError(f"Gemm node '{node.name}' has transA=1; mcuc supports transA=0 only")
        if len(self.shape(ins[0])) != 2:
            raise MCUCError(f"Gemm node '{node.name}' input is not 2-D: {self.shape(ins[0])}")
        w = self.need_const(node, ins[1], "B (the weight)").astype(np.float32)
        wq = self.const_quant.get(self.name(ins[1]))
        if not int(a.get("transB", 0)):
            w = w.T
            if wq is not None and wq.axis is not None:
                wq = QuantParams(wq.scale, wq.zero_point, 1 - wq.axis)
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        if alpha != 1.0:
            w = w * np.float32(alpha)
            keep = wq is not None and alpha > 0
            wq = QuantParams(wq.scale * alpha, wq.zero_point, wq.axis) if wq is not None and keep else None
        o = w.shape[0]
        if len(ins) > 2 and ins[2]:
            c = self.need_const(node, ins[2], "C (the bias)").astype(np.float32)
            if c.size not in (1, o):
                raise MCUCError(f"Gemm node '{node.name}' bias C of shape {c.shape} is not per output")
            b = np.broadcast_to(c.reshape(-1), (o,)) * np.float32(beta)
        else:
            b = np.zeros(o, dtype=np.float32)
        self.fc(node, ins[0], w, wq, b, node.output[0])

    def op_MatMul(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        ranks = (len(self.shape(ins[0])), len(self.shape(ins[1])))
        if not self.is_const(ins[0]) and not self.is_const(ins[1]) and min(ranks) >= 2 and max(ranks) >= 3:
            self.emit("batch_matmul", node.name, [ins[0], ins[1]], node.output[0])
            return
        if not self.is_const(ins[1]) or self.const(ins[1]).ndim != 2:
            raise MCUCError(f"MatMul node '{node.name}' needs a constant 2-D second input; "
                            "mcuc supports MatMul as a fully connected layer, or as a batched product of "
                            f"two activations of rank 3-4 (got ranks {ranks[0]} and {ranks[1]})")
        w = self.const(ins[1]).astype(np.float32).T
        wq = self.const_quant.get(self.name(ins[1]))
        if wq is not None and wq.axis is not None:
            wq = QuantParams(wq.scale, wq.zero_point, 1 - wq.axis)
        self.fc(node, ins[0], w, wq, np.zeros(w.shape[0], dtype=np.float32), node.output[0])

    def op_BatchNormalization(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        if int(a.get("training_mode", 0)):
            raise MCUCError(f"BatchNormalization '{node.name}' is in training mode; "
                            "export the model in eval mode")
        shp = self.shape(ins[0])
        for i, what in zip(ins[1:5], ("scale", "bias", "mean", "var"), strict=True):
            v = self.need_const(node, i, what)
            if len(shp) < 2 or v.shape != (shp[1],):
                raise MCUCError(f"BatchNormalization '{node.name}': {what} of shape {v.shape} for an input of shape "
                                f"{shp}; it needs one value per channel")
        self.emit("batchnorm", node.name, ins[:5], self.single_output(node),
                  epsilon=float(a.get("epsilon", 1e-5)))

    def unary(self, op: str, node: Any, ins: list[str], **attrs: Any) -> None:
        self.emit(op, node.name, [ins[0]], node.output[0], **attrs)

    def op_Relu(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.unary("relu", node, ins)

    def op_Sigmoid(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.unary("sigmoid", node, ins)

    def op_HardSwish(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.unary("hardswish", node, ins)

    def op_HardSigmoid(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.unary("hardsigmoid", node, ins, alpha=float(a.get("alpha", 0.2)), beta=float(a.get("beta", 0.5)))

    def op_LeakyRelu(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.unary("leaky_relu", node, ins, alpha=float(a.get("alpha", 0.01)))

    def op_PRelu(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        """The slope broadcasts against the input (a constant [C, 1, 1] per channel, or one value)."""
        self.emit("prelu", node.name, [ins[0], ins[1]], node.output[0])

    def op_Clip(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        lo = a.get("min")
        hi = a.get("max")
        if len(ins) > 1 and ins[1]:
            lo = self.need_const(node, ins[1], "min")
        if len(ins) > 2 and ins[2]:
            hi = self.need_const(node, ins[2], "max")
        attrs: dict[str, float] = {}
        for key, v in (("lo", lo), ("hi", hi)):
            if v is not None:
                if np.asarray(v).size != 1 or np.isnan(float(np.asarray(v).reshape(-1)[0])):
                    raise MCUCError(f"Clip node '{node.name}': bound {key} must be one number, got {v!r}")
                attrs[key] = float(np.asarray(v).reshape(-1)[0])
        if attrs.get("lo", -np.inf) > attrs.get("hi", np.inf):
            raise MCUCError(f"Clip node '{node.name}' has min {attrs['lo']} > max {attrs['hi']}")
        if attrs == {"lo": 0.0}:
            self.unary("relu", node, ins)
        else:
            self.unary("clip", node, ins, **attrs)

    def binary(self, op: str, node: Any, ins: list[str]) -> None:
        self.emit(op, node.name, [ins[0], ins[1]], node.output[0], act=None)

    def op_Add(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.binary("add", node, ins)

    def op_Sub(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.binary("sub", node, ins)

    def op_Mul(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.binary("mul", node, ins)

    def op_GlobalAveragePool(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        shp = self.shape(ins[0])
        if len(shp) != 4:
            raise MCUCError(f"GlobalAveragePool '{node.name}' needs a 4-D input, got {shp}")
        self.emit("avgpool", node.name, [ins[0]], node.output[0], kernel=(shp[2], shp[3]), strides=(1, 1),
                  pads=(0, 0, 0, 0))

    def pool_common(self, node: Any, ins: list[str], a: dict[str, Any]) -> tuple[Any, ...]:
        shp = self.shape(ins[0])
        k = _as_tuple(a["kernel_shape"])
        if len(shp) != 4 or len(k) != 2:
            raise MCUCError(f"{node.op_type} '{node.name}' is not 2-D (input {shp}); "
                            "mcuc supports 2-D pooling only")
        k = _window_attr(node, a, "kernel_shape", (1, 1), 1)
        strides = _window_attr(node, a, "strides", (1, 1), 1)
        dil = _window_attr(node, a, "dilations", (1, 1), 1)
        if dil != (1, 1):
            raise MCUCError(f"{node.op_type} '{node.name}' uses dilations {dil}; "
                            "mcuc supports dilation 1 only")
        pads = self.pads(node, a, shp[2:], (k[0], k[1]), strides, dil)
        ceil = (0, 0)
        if int(a.get("ceil_mode", 0)):
            ceil = _ceil_mode_extension((shp[2], shp[3]), (k[0], k[1]), (strides[0], strides[1]), pads)
        return (k[0], k[1]), strides, pads, ceil

    def op_MaxPool(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        k, s, p, (eh, ew) = self.pool_common(node, ins, a)
        self.emit("maxpool", node.name, [ins[0]], self.single_output(node), kernel=k, strides=s,
                  pads=(p[0], p[1], p[2] + eh, p[3] + ew))

    def op_AveragePool(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        k, s, p, (eh, ew) = self.pool_common(node, ins, a)
        x = ins[0]
        if int(a.get("count_include_pad", 0)) and any(p):
            # zero padding counted in the mean == explicit zero Pad then an unpadded average (the ceil_mode
            # extension stays outside the padded input, so it is not counted, as in onnxruntime)
            padded = self.fresh(node.output[0] + "_padded")
            self.emit("pad", node.name + "_pad", [x], padded,
                      pads=[(0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])], value=0.0)
            x, p = padded, (0, 0, 0, 0)
        self.emit("avgpool", node.name, [x], node.output[0], kernel=k, strides=s,
                  pads=(p[0], p[1], p[2] + eh, p[3] + ew))

    def op_Resize(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        """Nearest or linear resize of H and W of a 4-D input with scales or sizes (roi only matters for the
        tf_crop_and_resize mode, which is refused)."""
        def text(key: str, default: str) -> str:
            v = a.get(key, default)
            return v.decode() if isinstance(v, bytes) else str(v)

        what = f"Resize '{node.name}'"
        shp = self.shape(ins[0])
        mode, coord = text("mode", "nearest"), text("coordinate_transformation_mode", "half_pixel")
        nearest_mode = text("nearest_mode", "round_prefer_floor")
        if len(shp) != 4:
            raise MCUCError(f"{what} resizes a {len(shp)}-D input; mcuc resizes H and W of 4-D (N, C, H, W) inputs")
        if mode not in ("nearest", "linear"):
            raise MCUCError(f"{what} uses mode '{mode}'; mcuc supports nearest and linear")
        if coord not in rresize.ONNX_COORDS:
            raise MCUCError(f"{what} uses coordinate_transformation_mode '{coord}'; mcuc supports "
                            f"{', '.join(rresize.ONNX_COORDS)}")
        if mode == "nearest" and nearest_mode not in rresize.NEAREST_MODES:
            raise MCUCError(f"{what} uses nearest_mode '{nearest_mode}'; mcuc supports "
                            f"{', '.join(rresize.NEAREST_MODES)}")
        if int(a.get("antialias", 0)) or int(a.get("exclude_outside", 0)):
            raise MCUCError(f"{what} uses antialias or exclude_outside; mcuc supports neither")
        axes = [int(x) % 4 for x in a.get("axes", range(4))]
        f32 = np.float32
        sizes = self.const(ins[3]) if len(ins) > 3 and ins[3] and self.is_const(ins[3]) else None
        scales = self.const(ins[2]) if len(ins) > 2 and ins[2] and self.is_const(ins[2]) else None
        if sizes is not None and sizes.size:
            if text("keep_aspect_ratio_policy", "stretch") != "stretch":
                raise MCUCError(f"{what} uses keep_aspect_ratio_policy "
                                f"'{text('keep_aspect_ratio_policy', '')}'; mcuc supports stretch")
            out = list(shp)
            for ax, v in zip(axes, sizes.reshape(-1), strict=True):
                out[ax] = int(v)
            scale = [f32(o) / f32(i) for o, i in zip(out, shp, strict=True)]
        elif scales is not None and scales.size:
            scale = [f32(1.0)] * 4
            for ax, v in zip(axes, scales.reshape(-1), strict=True):
                scale[ax] = f32(v)
            out = [int(s * f32(i)) for s, i in zip(scale, shp, strict=True)]  # onnxruntime: (int64)(scale * in)
        else:
            raise MCUCError(f"{what} needs constant scales or sizes")
        if out[:2] != list(shp[:2]) or scale[0] != 1 or scale[1] != 1:
            raise MCUCError(f"{what} resizes the batch or channel axis ({shp} -> {tuple(out)}); "
                            "mcuc resizes H and W only")
        if min(out) < 1:
            raise MCUCError(f"{what} gives an empty output {tuple(out)}")
        self.emit("resize", node.name, [ins[0]], node.output[0], size=(out[2], out[3]), mode=mode, rule="onnx",
                  coord=coord, nearest_mode=nearest_mode, scales=(float(scale[2]), float(scale[3])))

    def reshape_to(self, node: Any, x: str, shape: tuple[int, ...]) -> None:
        self.emit("reshape", node.name, [x], node.output[0], shape=tuple(int(d) for d in shape))

    def op_Flatten(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        shp = self.shape(ins[0])
        axis = _axis(node, a.get("axis", 1), len(shp) + 1) if len(shp) else 0
        self.reshape_to(node, ins[0], (int(np.prod(shp[:axis], dtype=np.int64)),
                                       int(np.prod(shp[axis:], dtype=np.int64))))

    def op_Reshape(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        spec = [int(s) for s in self.need_ints(node, ins[1], "the target shape").reshape(-1)]
        if int(a.get("allowzero", 0)) and 0 in spec:
            raise MCUCError(f"Reshape '{node.name}' uses allowzero=1 with a 0 in its shape")
        self.reshape_to(node, ins[0], _resolve_reshape(self.shape(ins[0]), spec, node.name))

    def op_Squeeze(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        shp = self.shape(ins[0])
        if len(ins) > 1 and ins[1]:
            axes = {_axis(node, x, len(shp), "axes") for x in self.need_ints(node, ins[1], "axes").reshape(-1)}
        else:
            axes = {i for i, d in enumerate(shp) if d == 1}
        self.reshape_to(node, ins[0], tuple(d for i, d in enumerate(shp) if i not in axes))

    def op_Unsqueeze(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        axes = self.need_ints(node, ins[1], "axes").reshape(-1)
        self.reshape_to(node, ins[0], _unsqueeze(np.empty(self.shape(ins[0]), dtype=np.int8), axes).shape)

    def op_Concat(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        rank = len(self.shape(ins[0]))
        self.emit("concat", node.name, [i for i in ins if i], node.output[0], axis=_axis(node, a["axis"], rank))

    def op_Softmax(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        rank = len(self.shape(ins[0]))
        self.emit("softmax", node.name, [ins[0]], node.output[0], axis=_axis(node, a.get("axis", -1), rank))

    def op_Transpose(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        rank = len(self.shape(ins[0]))
        perm = tuple(int(p) for p in a.get("perm", range(rank - 1, -1, -1)))
        self.emit("transpose", node.name, [ins[0]], node.output[0], perm=perm)

    def op_Pad(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        mode = a.get("mode", b"constant")
        mode = mode.decode(errors="replace") if isinstance(mode, bytes) else str(mode)
        if mode != "constant":
            raise MCUCError(f"Pad node '{node.name}' uses mode '{mode}'; mcuc supports constant padding only")
        rank = len(self.shape(ins[0]))
        raw = [int(p) for p in self.need_ints(node, ins[1], "pads").reshape(-1)]
        axes = list(range(rank))
        if len(ins) > 3 and ins[3]:
            axes = [_axis(node, x, rank, "axes") for x in self.need_ints(node, ins[3], "axes").reshape(-1)]
        if len(raw) != 2 * len(axes) or min(raw) < 0:
            raise MCUCError(f"Pad node '{node.name}' has unsupported pads {raw}")
        pads = [(0, 0)] * rank
        for j, ax in enumerate(axes):
            pads[ax] = (raw[j], raw[j + len(axes)])
        value = 0.0
        if len(ins) > 2 and ins[2]:
            value = float(np.asarray(self.need_const(node, ins[2], "constant_value")).reshape(-1)[0])
        self.emit("pad", node.name, [ins[0]], node.output[0], pads=pads, value=value)

    # ---- transformer ops ------------------------------------------------------------------
    def op_LayerNormalization(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        rank = len(self.shape(ins[0]))
        axis = _axis(node, a.get("axis", -1), rank)
        if axis != rank - 1:
            raise MCUCError(f"LayerNormalization '{node.name}' normalises from axis {axis} of rank {rank}; "
                            "mcuc supports the last axis only")
        c = self.shape(ins[0])[-1]
        for i, what in ((1, "scale"), (2, "bias")):
            if len(ins) > i and ins[i] and self.need_const(node, ins[i], f"the {what}").size not in (1, c):
                raise MCUCError(f"LayerNormalization '{node.name}': {what} of shape {self.const(ins[i]).shape} for "
                                f"{c} channels")
        gamma = np.broadcast_to(self.need_const(node, ins[1], "the scale").astype(np.float32).reshape(-1), (c,))
        beta = np.zeros(c, np.float32)
        if len(ins) > 2 and ins[2]:
            beta = np.broadcast_to(self.need_const(node, ins[2], "the bias").astype(np.float32).reshape(-1), (c,))
        gn = self.const_name(node.name + "_gamma", np.ascontiguousarray(gamma))
        bn = self.const_name(node.name + "_beta", np.ascontiguousarray(beta))
        self.emit("layernorm", node.name, [ins[0], gn, bn], self.single_output(node),
                  epsilon=float(a.get("epsilon", 1e-5)))

    def op_Gelu(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        approx = a.get("approximate", b"none")
        approx = approx.decode(errors="replace") if isinstance(approx, bytes) else str(approx)
        if approx != "none":
            raise MCUCError(f"Gelu '{node.name}' uses approximate='{approx}'; mcuc supports the exact (erf) GELU")
        self.unary("gelu", node, ins)

    def op_Erf(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.unary("erf", node, ins)

    def op_Sqrt(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        self.unary("sqrt", node, ins)

    def op_Pow(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        e = np.asarray(self.need_const(node, ins[1], "the exponent"))
        if e.size != 1:
            raise MCUCError(f"Pow '{node.name}' needs a scalar exponent, got shape {e.shape}")
        self.unary("pow", node, ins, exponent=float(e.reshape(-1)[0]))

    def op_Div(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        if self.is_const(ins[1]):
            d = self.const(ins[1]).astype(np.float64)
            if np.any(d == 0):
                raise MCUCError(f"Div '{node.name}' divides by a constant containing 0")
            r = self.const_name(node.name + "_reciprocal", (1.0 / d).astype(np.float32))
            self.emit("mul", node.name, [ins[0], r], node.output[0], act=None)
            return
        self.binary("div", node, ins)

    def op_ReduceMean(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        rank = len(self.shape(ins[0]))
        axes_v = a.get("axes")
        if len(ins) > 1 and ins[1]:
            axes_v = self.need_ints(node, ins[1], "axes").reshape(-1)
        if axes_v is None or len(axes_v) == 0:
            if int(a.get("noop_with_empty_axes", 0)):
                self.emit("identity", node.name, [ins[0]], node.output[0])
                return
            axes_v = list(range(rank))
        axes = tuple(sorted({_axis(node, x, rank, "axes") for x in axes_v}))
        self.emit("mean", node.name, [ins[0]], node.output[0], axes=axes, keepdims=bool(int(a.get("keepdims", 1))))

    def slice_node(self, name: str, x: str, out: str, bounds: dict[int, tuple[int, int, int]]) -> None:
        """Emit a slice of ``x`` with (start, end, step) on the axes in ``bounds`` (python semantics)."""
        shp = self.shape(x)
        starts, ends, steps = [], [], []
        for ax, d in enumerate(shp):
            r = range(d)[slice(*bounds.get(ax, (0, d, 1)))]
            s, e, k = r.start, r.stop, r.step
            starts.append(int(s))
            ends.append(int(max(e, s)))
            steps.append(int(k))
        self.emit("slice", name, [x], out, starts=tuple(starts), ends=tuple(ends), steps=tuple(steps))

    def op_Slice(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        rank = len(self.shape(ins[0]))
        starts = self.need_ints(node, ins[1], "starts").reshape(-1)
        ends = self.need_ints(node, ins[2], "ends").reshape(-1)
        axes = np.arange(len(starts))
        if len(ins) > 3 and ins[3]:
            axes = self.need_ints(node, ins[3], "axes").reshape(-1)
        steps = np.ones(len(starts), dtype=np.int64)
        if len(ins) > 4 and ins[4]:
            steps = self.need_ints(node, ins[4], "steps").reshape(-1)
        if np.any(steps <= 0):
            raise MCUCError(f"Slice '{node.name}' has a step <= 0; mcuc supports positive steps only")
        bounds = {_axis(node, ax, rank, "axes"): (int(max(min(s, 2**62), -2**62)), int(max(min(e, 2**62), -2**62)),
                                                  int(k))
                  for ax, s, e, k in zip(axes, starts, ends, steps, strict=True)}
        self.slice_node(node.name, ins[0], node.output[0], bounds)

    def op_Gather(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        shp = self.shape(ins[0])
        axis = _axis(node, a.get("axis", 0), len(shp))
        idx = np.asarray(self.need_ints(node, ins[1], "the indices")).astype(np.int64)
        flat = [int(i) % shp[axis] if -shp[axis] <= i < shp[axis] else -1 for i in idx.reshape(-1)]
        if -1 in flat or not flat:
            raise MCUCError(f"Gather '{node.name}': indices {idx.tolist()} out of range for axis {axis} of {shp}")
        out_shape = tuple(shp[:axis]) + tuple(idx.shape) + tuple(shp[axis + 1:])
        if idx.ndim == 1:
            self.emit("gather", node.name, [ins[0]], node.output[0], axis=axis, indices=tuple(flat))
            return
        mid = self.fresh(node.output[0] + "_gathered")
        self.emit("gather", node.name, [ins[0]], mid, axis=axis, indices=tuple(flat))
        self.reshape_to(node, mid, out_shape)

    def op_Split(self, node: Any, ins: list[str], a: dict[str, Any]) -> None:
        shp = self.shape(ins[0])
        axis = _axis(node, a.get("axis", 0), len(shp))
        outs = list(node.output)
        if len(ins) > 1 and ins[1]:
            sizes = [int(v) for v in self.need_ints(node, ins[1], "split").reshape(-1)]
        elif "split" in a:
            sizes = [int(v) for v in a["split"]]
        else:
            n = int(a.get("num_outputs", len(outs)))
            chunk = -(-shp[axis] // n)
            sizes = [min(chunk, shp[axis] - i * chunk) for i in range(n)]
        if len(sizes) != len(outs) or sum(sizes) != shp[axis] or min(sizes) < 1:
            raise MCUCError(f"Split '{node.name}' sizes {sizes} do not split axis {axis} of {shp} "
                            f"into {len(outs)} parts")
        start = 0
        for k, (out, size) in enumerate(zip(outs, sizes, strict=True)):
            if out:
                self.slice_node(f"{node.name}_{k}", ins[0], out, {axis: (start, start + size, 1)})
            start += size


def _ceil_mode_extension(size: tuple[int, int], k: tuple[int, int], strides: tuple[int, int],
                         pads: tuple[int, int, int, int]) -> tuple[int, int]:
    """ceil_mode=1 as extra bottom and right padding, in rows and columns, that the pool kernels skip.

    The output length is onnxruntime's: ceil((in + pads - k) / stride) + 1, less one when that last
    window would start past the input and its leading padding. The extension is what makes the floor
    rule give that length; taps in it are never read, so max and average see only real (and, with
    count_include_pad, explicitly padded) elements.
    """
    ext = []
    for n, kk, s, lo, hi in zip(size, k, strides, pads[:2], pads[2:], strict=True):
        span = n + lo + hi - kk
        if span < 0:
            ext.append(0)  # the window does not fit; the shape rule reports it
            continue
        out = -(-span // s) + 1
        if (out - 1) * s >= n + lo:
            out -= 1
        ext.append(max((out - 1) * s - span, 0))
    return ext[0], ext[1]


def _restore_removed_relus(g: Graph) -> None:
    """Make the float graph clamp where the QDQ model's int8 range does.

    onnxruntime's QDQ quantizer deletes a Relu/Clip after Conv/Gemm/Add when the output's
    quantized range already starts at 0 (zero point -128); the float graph would otherwise lose
    that activation. A clip to the representable range [0, 255 * scale] is what the QDQ model
    computes, and quantizes to a no-op clamp.
    """
    for n in g.nodes:
        if n.op not in ("conv2d", "fully_connected", "add", "sub") or n.attrs.get("act") is not None:
            continue
        q = g.tensors[n.outputs[0]].quant
        if q is not None and q.per_tensor and q.zp == -128:
            n.attrs.update(act="clip", act_lo=0.0, act_hi=float(q.s * 255.0))


def _rename(g: Graph, old: str, new: str) -> None:
    """Rename tensor ``old`` to ``new`` everywhere in ``g``."""
    t = g.tensors.pop(old)
    t.name = new
    g.tensors[new] = t
    for n in g.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]
        n.outputs = [new if o == old else o for o in n.outputs]
    g.inputs = [new if i == old else i for i in g.inputs]
    g.outputs = [new if o == old else o for o in g.outputs]

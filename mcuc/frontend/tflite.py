"""TFLite reader: a full-integer .tflite flatbuffer straight into an int8 NHWC Graph, keeping its quantization.

A .tflite model is already quantized, so it skips calibration and the quantize pass: every scale, zero point,
int8 weight and int32 bias is taken as stored, fused activations become act_min/act_max clamps (TFLite's
CalculateActivationRangeQuantized), and ops whose TFLite int8 algorithm differs from mcuc's own run as
TFLite's (look-up tables replicating TFLM's integer arithmetic, TFLite's softmax, TFLM's MEAN multiplier;
see mcuc/reference/tflite.py). A PAD feeding convolutions folds into their padding.

The flatbuffer is parsed with the schema bindings shipped in ``ai-edge-litert`` (or ``tflite-micro``);
TensorFlow itself is not needed. Anything unreadable or unsupported is a one-line MCUCError.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from mcuc.errors import MCUCError
from mcuc.frontend import model_file
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.reference import tflite as rtfl

SUPPORTED_OPS = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D",
    "MEAN", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SOFTMAX", "CONCATENATION", "PAD", "PADV2", "HARD_SWISH",
    "LOGISTIC", "TANH", "GELU", "RELU", "RELU6", "QUANTIZE", "DEQUANTIZE", "BATCH_MATMUL", "TRANSPOSE",
    "STRIDED_SLICE", "GATHER", "RESIZE_NEAREST_NEIGHBOR", "SQUARED_DIFFERENCE", "RSQRT", "LEAKY_RELU",
    "PRELU", "RESIZE_BILINEAR",
)

_NP_TYPES = {0: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8, 7: np.int16}
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8", 17: "int4"}


def schema() -> Any:
    """The generated TFLite flatbuffer schema module (from ai-edge-litert, else tflite-micro)."""
    try:
        from ai_edge_litert import schema_py_generated as s
    except ImportError:
        try:
            from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s  # type: ignore
        except ImportError as e:
            raise MCUCError("reading .tflite models needs the TFLite schema bindings: pip install ai-edge-litert") \
                from e
    return s


def op_names() -> dict[int, str]:
    s = schema()
    return {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}


def read_model(path: str) -> Any:
    """Parse ``path`` into the schema's object API (ModelT); MCUCError on a missing, corrupt or truncated file."""
    s = schema()
    buf = model_file(path).read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise MCUCError(f"'{path}' is not a valid .tflite model (no TFL3 flatbuffer identifier); re-export it")
    try:
        model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(buf, 0))
        for b in model.buffers or []:
            if getattr(b, "offset", 0) > 1 and b.offset + b.size > len(buf):
                raise IndexError("buffer past end of file")
            if (getattr(b, "offset", 0) or 0) > 1:
                b.data = np.frombuffer(buf, np.uint8, b.size, b.offset)
    except MCUCError:
        raise
    except Exception as e:  # flatbuffers raises struct.error, IndexError, UnicodeDecodeError, ...
        raise MCUCError(f"'{path}' is not a valid .tflite model (corrupt or truncated flatbuffer: "
                        f"{e.__class__.__name__}); re-export it") from e
    if not model.subgraphs:
        raise MCUCError(f"'{path}' is not a valid .tflite model (no subgraph); re-export it")
    return model


def load_tflite(path: str) -> Graph:
    """Read a full-integer .tflite model into an int8 NHWC Graph (quantized, ready to plan).

    The flatbuffer is checked first (tensor, buffer and opcode indices, shapes, data sizes, quantization
    parameters, operator options); what passes is then converted op by op. An exception other than MCUCError
    from here on is a bug in mcuc, not a corrupt file, and is not reported as one.
    """
    model = read_model(path)
    return _Importer(model, path).run()


# Operator options the converters read (must be present), and the ones they read if present; the least number of
# inputs each op has (TFLite's own operand order).
_OPTIONS = {"CONV_2D": "Conv2DOptionsT", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptionsT",
            "FULLY_CONNECTED": "FullyConnectedOptionsT", "AVERAGE_POOL_2D": "Pool2DOptionsT",
            "MAX_POOL_2D": "Pool2DOptionsT", "CONCATENATION": "ConcatenationOptionsT",
            "STRIDED_SLICE": "StridedSliceOptionsT"}
_OPTIONAL_OPTIONS = {"ADD": "AddOptionsT", "SUB": "SubOptionsT", "MUL": "MulOptionsT", "SOFTMAX": "SoftmaxOptionsT",
                     "GELU": "GeluOptionsT", "BATCH_MATMUL": "BatchMatMulOptionsT", "GATHER": "GatherOptionsT",
                     "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptionsT", "LEAKY_RELU": "LeakyReluOptionsT"}
_MIN_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "ADD": 2, "SUB": 2, "MUL": 2,
               "SQUARED_DIFFERENCE": 2, "MEAN": 2, "PAD": 2, "PADV2": 2, "BATCH_MATMUL": 2, "TRANSPOSE": 2,
               "STRIDED_SLICE": 3, "GATHER": 2}
# Operand positions (and the output) that are NHWC images of rank 4.
_RANK4 = {"CONV_2D": (0, 1), "DEPTHWISE_CONV_2D": (0, 1), "AVERAGE_POOL_2D": (0,), "MAX_POOL_2D": (0,),
          "RESIZE_NEAREST_NEIGHBOR": (0,)}
_INT32_MAX = 2**31 - 1


def _index(value: Any, size: int, what: str) -> int:
    """An axis or index in [-size, size) (negative counts from the end) as a non-negative one."""
    v = int(value)
    if not -size <= v < size:
        raise MCUCError(f"{what} {v} is out of range for size {size}")
    return v % size


def _act_range(act: int, q: QuantParams) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for int8 (float32 division, round half away from zero)."""
    scale, zp = np.float32(q.s), q.zp

    def quantize(f: float) -> int:
        v = float(np.float32(f) / scale)
        return zp + int(np.sign(v) * np.floor(abs(v) + 0.5))

    if act == 0:
        return -128, 127
    if act == 1:  # RELU
        return max(-128, quantize(0.0)), 127
    if act == 2:  # RELU_N1_TO_1
        return max(-128, quantize(-1.0)), min(127, quantize(1.0))
    if act == 3:  # RELU6
        return max(-128, quantize(0.0)), min(127, quantize(6.0))
    raise MCUCError(f"fused activation {act} (TANH/SIGN_BIT) is not supported in int8")


def _same_padding(size: int, k: int, stride: int, dil: int, padding: int) -> tuple[int, int]:
    """TFLite ComputePaddingHeightWidth along one axis: (before, after); VALID (padding 1) pads nothing."""
    if padding != 0:
        return 0, 0
    eff = (k - 1) * dil + 1
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


class _Importer:
    def __init__(self, model: Any, path: str) -> None:
        self.s = schema()
        self.m = model
        self.path = path
        self.sg = model.subgraphs[0]
        self.g = Graph(layout="NHWC", meta={"source": str(path), "format": "tflite", "quantized": True})
        self.names: dict[int, str] = {}
        self.opnames = op_names()

    # ---- tensors ----------------------------------------------------------------------------------
    def _t(self, i: int) -> Any:
        n = len(self.sg.tensors or [])
        if not 0 <= i < n:
            raise MCUCError(f"'{self.path}' refers to tensor {i}; the subgraph has {n}")
        return self.sg.tensors[i]

    def _buffer(self, i: int) -> np.ndarray | None:
        t = self._t(i)
        b = self.m.buffers[t.buffer] if t.buffer is not None and t.buffer < len(self.m.buffers) else None
        if b is None or b.data is None or len(b.data) == 0:
            return None
        dt = _NP_TYPES.get(t.type)
        if dt is None:
            raise MCUCError(f"tensor '{self._raw_name(i)}' has type {_TYPE_NAMES.get(t.type, t.type)}, which mcuc "
                            "does not read")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        raw = np.asarray(b.data, dtype=np.uint8).tobytes()
        return np.frombuffer(raw, dtype=dt).reshape(shape).copy()

    def _raw_name(self, i: int) -> str:
        n = self._t(i).name
        return n.decode(errors="replace") if isinstance(n, bytes) else str(n or f"t{i}")

    def _shape(self, i: int) -> tuple[int, ...]:
        t = self._t(i)
        return tuple(int(d) for d in (t.shape if t.shape is not None else ()))

    def _quant(self, i: int) -> QuantParams | None:
        q = self._t(i).quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return None
        scale = np.asarray(q.scale, dtype=np.float32).astype(np.float64)
        zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(len(scale)), dtype=np.int64)
        if zp.size == 1 and scale.size > 1:
            zp = np.full(scale.size, int(zp[0]))
        if zp.size != scale.size:
            raise MCUCError(f"tensor {i} has {scale.size} quantization scale(s) but {zp.size} zero points; "
                            "a .tflite tensor needs one zero point per scale (re-convert the model)")
        return QuantParams(scale, zp, None if scale.size == 1 else int(q.quantizedDimension))

    def _type(self, i: int) -> str:
        return _TYPE_NAMES.get(self._t(i).type, str(self._t(i).type))

    def name(self, i: int) -> str:
        """Our tensor name for TFLite tensor ``i`` (created on first use)."""
        if i in self.names:
            return self.names[i]
        base = re.sub(r"[^A-Za-z0-9_]+", "_", self._raw_name(i).split(";")[0]).strip("_")[-40:] or f"t{i}"
        name = self.g.unique_name(base)
        data = self._buffer(i)
        q = self._quant(i)
        if data is not None:
            self.g.add_tensor(Tensor(name, tuple(data.shape), str(data.dtype), q, data))
        else:
            if self._type(i) != "int8":
                raise MCUCError(f"'{self.path}' is a float (non-quantized) or mixed-precision model: tensor "
                                f"'{self._raw_name(i)}' is {self._type(i)}; convert it with full-integer int8 "
                                "quantization (TFLiteConverter with a representative dataset, "
                                "inference_input_type/inference_output_type = tf.int8)")
            if q is None:
                raise MCUCError(f"int8 tensor '{self._raw_name(i)}' has no quantization parameters")
            self.g.add_tensor(Tensor(name, self._shape(i), "int8", q))
        self.names[i] = name
        return name

    def const(self, i: int, what: str, node: str) -> np.ndarray:
        d = self._buffer(i)
        if d is None:
            raise MCUCError(f"{node}: {what} must be a constant tensor")
        return d

    def _bias(self, i: int, node: str) -> np.ndarray:
        b = self.const(i, "the bias", node)
        if b.dtype != np.int32:
            raise MCUCError(f"{node}: bias of type {b.dtype}; an int8 model's bias must be int32")
        return b

    def new_act(self, base: str, shape: tuple[int, ...], q: QuantParams) -> str:
        name = self.g.unique_name(base)
        self.g.add_tensor(Tensor(name, tuple(shape), "int8", q))
        return name

    # ---- graph --------------------------------------------------------------------------------------
    def _opname(self, op: Any) -> str:
        oc = self.m.operatorCodes[op.opcodeIndex]
        code = max(int(oc.builtinCode or 0), int(oc.deprecatedBuiltinCode or 0))
        if code == self.s.BuiltinOperator.CUSTOM:
            cc = oc.customCode.decode(errors="replace") if isinstance(oc.customCode, bytes) else oc.customCode
            return f"CUSTOM({cc})"
        return self.opnames.get(code, str(code))

    def _io_aliases(self) -> list[Any]:
        """Float model inputs/outputs behind a QUANTIZE/DEQUANTIZE become int8 I/O; return the remaining ops."""
        ins, outs = list(self.sg.inputs), list(self.sg.outputs)
        ops = []
        for op in self.sg.operators:
            name = self._opname(op)
            x, y = int(op.inputs[0]), int(op.outputs[0])
            if name == "QUANTIZE" and x in ins and self._type(x) == "float32" and self._type(y) == "int8":
                ins[ins.index(x)] = y
                continue
            if name == "DEQUANTIZE" and y in outs and self._type(y) == "float32" and self._type(x) == "int8":
                outs[outs.index(y)] = x
                continue
            ops.append(op)
        self.inputs, self.outputs = ins, outs
        return ops

    def _validate(self) -> None:
        """Refuse what the converters cannot read: indices out of range, impossible shapes, data of the wrong
        size, quantization parameters outside what int8 arithmetic can use, missing operator options."""
        sg, where = self.sg, f"'{self.path}'"
        tensors = sg.tensors or []
        nt = len(tensors)
        if sg.inputs is None or not len(sg.inputs) or sg.outputs is None or not len(sg.outputs):
            raise MCUCError(f"{where} declares no subgraph inputs or no outputs; re-export it")
        for role, ids in (("input", sg.inputs), ("output", sg.outputs)):
            for i in ids:
                if not 0 <= int(i) < nt:
                    raise MCUCError(f"{where}: model {role} {int(i)} is not a tensor (the subgraph has {nt})")
        for k, t in enumerate(tensors):
            self._check_tensor(k, t)
        ncodes = len(self.m.operatorCodes or [])
        for k, op in enumerate(sg.operators or []):
            if not 0 <= int(op.opcodeIndex) < ncodes:
                raise MCUCError(f"{where}: operator {k} has opcode index {op.opcodeIndex} of {ncodes} opcodes")
            name = self._opname(op)
            ins = [int(i) for i in (op.inputs if op.inputs is not None else [])]
            outs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
            if not outs or any(not 0 <= i < nt for i in outs) or any(not -1 <= i < nt for i in ins) or \
                    len(ins) < _MIN_INPUTS.get(name, 1) or ins[0] < 0:
                raise MCUCError(f"{where}: operator {k} ({name}) has inputs {ins} and outputs {outs}, which are not "
                                f"tensors of the subgraph ({nt}) or too few for {name}")
            self._check_operands(k, name, ins, outs)
            want = _OPTIONS.get(name)
            if want is not None and type(op.builtinOptions).__name__ != want:
                raise MCUCError(f"{where}: operator {k} ({name}) has no {want[:-1]}")
            maybe = _OPTIONAL_OPTIONS.get(name)
            if maybe is not None and op.builtinOptions is not None and type(op.builtinOptions).__name__ != maybe:
                raise MCUCError(f"{where}: operator {k} ({name}) has {type(op.builtinOptions).__name__[:-1]} "
                                f"instead of {maybe[:-1]}")
            o = op.builtinOptions
            for f in ("strideH", "strideW", "dilationHFactor", "dilationWFactor", "filterHeight", "filterWidth"):
                v = getattr(o, f, None)
                if v is not None and not 1 <= int(v) <= 65535:
                    raise MCUCError(f"{where}: operator {k} ({name}) has {f} {v}; it must be from 1 to 65535")
            if getattr(o, "padding", 0) not in (0, 1):
                raise MCUCError(f"{where}: operator {k} ({name}) has unknown padding {o.padding}")

    def _has_data(self, i: int) -> bool:
        t = self.sg.tensors[i]
        nb = len(self.m.buffers or [])
        b = self.m.buffers[t.buffer] if t.buffer is not None and 0 <= t.buffer < nb else None
        return b is not None and b.data is not None and len(b.data) > 0

    def _check_operands(self, k: int, name: str, ins: list[int], outs: list[int]) -> None:
        """Every operator reads an int8 tensor first (QUANTIZE/DEQUANTIZE convert and check their own types) and
        writes computed (not constant) tensors; every int8 tensor it touches carries quantization parameters."""
        where = f"'{self.path}': operator {k} ({name})"
        if name not in ("QUANTIZE", "DEQUANTIZE") and self._type(ins[0]) != "int8":
            raise MCUCError(f"'{self.path}' is a float (non-quantized) or mixed-precision model: operator {k} "
                            f"({name}) reads tensor '{self._raw_name(ins[0])}' of type {self._type(ins[0])}; convert "
                            "it with full-integer int8 quantization (TFLiteConverter with a representative dataset, "
                            "inference_input_type/inference_output_type = tf.int8)")
        for i in outs:
            if self._has_data(i) or i in self.sg.inputs:
                raise MCUCError(f"{where} writes tensor {i} ('{self._raw_name(i)}'), a constant or a model input")
            if name != "DEQUANTIZE" and self._type(i) != "int8":
                raise MCUCError(f"{where} writes tensor {i} ('{self._raw_name(i)}') of type {self._type(i)}; mcuc "
                                "reads int8 models")
        for i in [*ins, *outs]:
            if i >= 0 and self._type(i) == "int8" and self._quant_raw(i) is None:
                raise MCUCError(f"{where}: int8 tensor {i} ('{self._raw_name(i)}') has no quantization parameters")
        for pos in _RANK4.get(name, ()):
            if len(self._shape(ins[pos])) != 4 or (pos == 0 and len(self._shape(outs[0])) != 4):
                raise MCUCError(f"{where} needs 4-D NHWC operands, got input {pos} of shape {self._shape(ins[pos])} "
                                f"and output of shape {self._shape(outs[0])}")

    def _quant_raw(self, i: int) -> Any:
        q = self._t(i).quantization
        return None if q is None or q.scale is None or len(q.scale) == 0 else q

    def _check_tensor(self, k: int, t: Any) -> None:
        where = f"'{self.path}': tensor {k} ('{self._raw_name(k)}')"
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        if any(d < 0 or d > _INT32_MAX for d in shape) or int(np.prod(shape, dtype=object) if shape else 1) > 2**40:
            raise MCUCError(f"{where} has shape {shape}; mcuc needs fixed, non-negative sizes")
        if t.type not in _TYPE_NAMES:
            raise MCUCError(f"{where} has unknown type {t.type}")
        nb = len(self.m.buffers or [])
        b = self.m.buffers[t.buffer] if t.buffer is not None and 0 <= t.buffer < nb else None
        if t.buffer is not None and not 0 <= t.buffer < max(nb, 1):
            raise MCUCError(f"{where} names buffer {t.buffer}; the model has {nb}")
        if (0 in shape or not shape) and not self._has_data(k) and t.type == 9:
            raise MCUCError(f"{where} has shape {shape}: an empty or scalar activation; mcuc needs activations of "
                            "rank 1 or more")
        if b is not None and b.data is not None and len(b.data) and t.type in _NP_TYPES:
            want = int(np.prod(shape, dtype=object) if shape else 1) * np.dtype(_NP_TYPES[t.type]).itemsize
            if len(b.data) != want:
                raise MCUCError(f"{where} has {len(b.data)} bytes of data; its type and shape {shape} need {want}")
        q = t.quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return
        scale = np.asarray(q.scale, dtype=np.float64)
        if not np.all(np.isfinite(scale) & (scale >= np.finfo(np.float32).tiny)):
            bad = scale[~(np.isfinite(scale) & (scale >= np.finfo(np.float32).tiny))][0]
            raise MCUCError(f"{where} has quantization scale {bad!r}; scales must be finite, positive and normal")
        zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], dtype=np.int64)
        if zp.size not in (0, 1, scale.size):
            raise MCUCError(f"{where} has {scale.size} scales and {zp.size} zero points")
        lo, hi = {9: (-128, 127), 3: (0, 255), 7: (-32768, 32767), 2: (0, 0), 4: (0, 0)}.get(t.type, (-2**31, 2**31))
        if zp.size and (zp.min() < lo or zp.max() > hi):
            raise MCUCError(f"{where} ({_TYPE_NAMES[t.type]}) has zero point {int(zp[(zp < lo) | (zp > hi)][0])}; "
                            f"it must be in [{lo}, {hi}]")
        if scale.size > 1 and not self._has_data(k):
            raise MCUCError(f"{where} is an activation quantized per channel ({scale.size} scales); mcuc needs one "
                            "scale and zero point per activation tensor")
        if scale.size > 1:
            qd = int(q.quantizedDimension)
            if not 0 <= qd < len(shape) or shape[qd] != scale.size:
                raise MCUCError(f"{where} has {scale.size} scales along dimension {qd} of shape {shape}")

    def run(self) -> Graph:
        self._validate()
        ops = self._io_aliases()
        g = self.g
        for i in self.inputs:
            if len(self._shape(i)) > 1 and self._shape(i)[0] != 1:
                raise MCUCError(f"'{self.path}': model input {i} ('{self._raw_name(i)}') has batch size "
                                f"{self._shape(i)[0]}; mcuc compiles batch 1 (mcuc run takes N samples one after "
                                "another): convert with batch size 1")
            if self._has_data(i) or self._type(i) != "int8":
                raise MCUCError(f"'{self.path}': model input {i} ('{self._raw_name(i)}') is a constant or not int8; "
                                "mcuc needs int8 (or float32 quantized right away) model inputs")
        g.inputs = [self.name(i) for i in self.inputs]
        for idx, op in enumerate(ops):
            opname = self._opname(op)
            handler = getattr(self, "op_" + opname.lower(), None) if opname in SUPPORTED_OPS else None
            if handler is None:
                raise MCUCError(f"unsupported TFLite op {opname} (operator {idx}) in '{self.path}'; mcuc reads "
                                f"{', '.join(SUPPORTED_OPS)}")
            handler(op, f"{opname.lower()}_{idx}")
        g.outputs = [self.name(i) for i in self.outputs]
        g.meta["input_layouts"] = {n: "NHWC" for n in g.inputs}
        g.meta["output_layouts"] = {n: "NHWC" for n in g.outputs}
        _fold_pads(g)
        g.prune()
        g.meta["tflite_tensors"] = {name: idx for idx, name in self.names.items() if name in g.tensors}
        return g

    def emit(self, op: str, name: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        self.g.nodes.append(Node(op, name, inputs, outputs, attrs))

    def _out(self, op: Any) -> str:
        return self.name(int(op.outputs[0]))

    def _reshape_to(self, src: str, dst: str, name: str) -> None:
        """Emit src -> dst as a reshape (a view: the planner gives dst src's memory, no copy is made)."""
        self.emit("reshape", name, [src], [dst], shape=tuple(self.g.tensors[dst].shape))

    def _inputs(self, op: Any) -> list[int]:
        return [int(i) for i in op.inputs]

    # ---- ops ----------------------------------------------------------------------------------------
    def _conv(self, op: Any, name: str, depthwise: bool) -> None:
        o = op.builtinOptions
        ins = self._inputs(op)
        x = self.name(ins[0])
        w = self.const(ins[1], "the filter", name)
        if w.dtype != np.int8:
            raise MCUCError(f"{name}: filter of type {w.dtype} (only int8 weights are supported)")
        wq = self._quant(ins[1])
        if wq is None:
            raise MCUCError(f"{name}: filter has no quantization parameters")
        xs = self.g.tensors[x].shape
        groups = 1
        if depthwise:
            w = np.ascontiguousarray(w.transpose(3, 1, 2, 0))  # [1, kh, kw, O] -> [O, kh, kw, 1]
            groups = xs[3]
        elif w.shape[3] != xs[3]:
            groups = xs[3] // w.shape[3]
        wq = QuantParams(wq.scale, wq.zero_point, None if wq.scale.size == 1 else 0)
        wn = self.g.const(f"{name}_w", w, wq)
        yq = self._quant(int(op.outputs[0]))
        assert yq is not None
        if len(ins) > 2 and ins[2] >= 0:
            b = self._bias(ins[2], name)
        else:
            b = np.zeros(w.shape[0], np.int32)
        bias_scale = self.g.tensors[x].quant.s * wq.scale  # type: ignore[union-attr]
        bn = self.g.const(f"{name}_b", b.reshape(-1), QuantParams(np.broadcast_to(bias_scale, (w.shape[0],)),
                                                                  np.zeros(w.shape[0], np.int64), 0))
        sh, sw = int(o.strideH), int(o.strideW)
        dh, dw = int(o.dilationHFactor or 1), int(o.dilationWFactor or 1)
        pt, pb = _same_padding(xs[1], w.shape[1], sh, dh, int(o.padding))
        pl, pr = _same_padding(xs[2], w.shape[2], sw, dw, int(o.padding))
        lo, hi = _act_range(int(o.fusedActivationFunction), yq)
        self.emit("conv2d", name, [x, wn, bn], [self._out(op)], strides=(sh, sw), pads=(pt, pl, pb, pr),
                  dilations=(dh, dw), groups=groups, act_min=lo, act_max=hi)

    def op_conv_2d(self, op: Any, name: str) -> None:
        self._conv(op, name, depthwise=False)

    def op_depthwise_conv_2d(self, op: Any, name: str) -> None:
        self._conv(op, name, depthwise=True)

    def op_fully_connected(self, op: Any, name: str) -> None:
        o = op.builtinOptions
        ins = self._inputs(op)
        x = self.name(ins[0])
        w = self.const(ins[1], "the weights", name)
        if w.dtype != np.int8 or w.ndim != 2:
            raise MCUCError(f"{name}: weights must be int8 [O, K], got {w.dtype} {w.shape}")
        wq = self._quant(ins[1])
        assert wq is not None
        wq = QuantParams(wq.scale, wq.zero_point, None if wq.scale.size == 1 else 0)
        out_c, k = w.shape
        wn = self.g.const(f"{name}_w", w, wq)
        b = (self._bias(ins[2], name).reshape(-1) if len(ins) > 2 and ins[2] >= 0
             else np.zeros(out_c, np.int32))
        bias_scale = np.broadcast_to(self.g.tensors[x].quant.s * wq.scale, (out_c,))  # type: ignore[union-attr]
        bn = self.g.const(f"{name}_b", b, QuantParams(bias_scale, np.zeros(out_c, np.int64), 0))
        xs = self.g.tensors[x].shape
        if xs[-1] != k:
            flat = self.new_act(f"{name}_in", (int(np.prod(xs)) // k, k), self.g.tensors[x].quant)  # type: ignore
            self._reshape_to(x, flat, f"{name}_flatten")
            x = flat
        y = self._out(op)
        yq = self.g.tensors[y].quant
        assert yq is not None
        lo, hi = _act_range(int(o.fusedActivationFunction), yq)
        direct = tuple(self.g.tensors[x].shape[:-1]) + (out_c,)
        target = y if tuple(self.g.tensors[y].shape) == direct else self.new_act(f"{name}_out", direct, yq)
        self.emit("fully_connected", name, [x, wn, bn], [target], act_min=lo, act_max=hi)
        if target != y:
            self._reshape_to(target, y, f"{name}_reshape")

    def _binary(self, op: Any, name: str, kind: str) -> None:
        ins = self._inputs(op)
        a, b = self.name(ins[0]), self.name(ins[1])
        for t in (a, b):
            if self.g.tensors[t].dtype != "int8":
                raise MCUCError(f"{name}: operand '{t}' is {self.g.tensors[t].dtype}, not int8")
        y = self._out(op)
        act = int(getattr(op.builtinOptions, "fusedActivationFunction", 0) or 0)
        lo, hi = _act_range(act, self.g.tensors[y].quant)  # type: ignore[arg-type]
        self.emit(kind, name, [a, b], [y], act_min=lo, act_max=hi)

    def op_add(self, op: Any, name: str) -> None:
        self._binary(op, name, "add")

    def op_sub(self, op: Any, name: str) -> None:
        self._binary(op, name, "sub")

    def op_mul(self, op: Any, name: str) -> None:
        self._binary(op, name, "mul")

    def op_squared_difference(self, op: Any, name: str) -> None:
        self._binary(op, name, "squared_difference")

    def op_rsqrt(self, op: Any, name: str) -> None:
        xq, yq = self._qparams(op)
        self._table(op, name, rtfl.rsqrt_table(xq.s, xq.zp, yq.s, yq.zp), "rsqrt")

    def _pool(self, op: Any, name: str, kind: str) -> None:
        o = op.builtinOptions
        x = self.name(int(op.inputs[0]))
        xs = self.g.tensors[x].shape
        kh, kw, sh, sw = int(o.filterHeight), int(o.filterWidth), int(o.strideH), int(o.strideW)
        pt, pb = _same_padding(xs[1], kh, sh, 1, int(o.padding))
        pl, pr = _same_padding(xs[2], kw, sw, 1, int(o.padding))
        y = self._out(op)
        lo, hi = _act_range(int(o.fusedActivationFunction), self.g.tensors[y].quant)  # type: ignore[arg-type]
        self.emit(kind, name, [x], [y], kernel=(kh, kw), strides=(sh, sw), pads=(pt, pl, pb, pr), act_min=lo,
                  act_max=hi)

    def op_average_pool_2d(self, op: Any, name: str) -> None:
        self._pool(op, name, "avgpool")

    def op_max_pool_2d(self, op: Any, name: str) -> None:
        self._pool(op, name, "maxpool")

    def op_mean(self, op: Any, name: str) -> None:
        ins = self._inputs(op)
        x = self.name(ins[0])
        xs = self.g.tensors[x].shape
        axes = tuple(sorted({_index(a, len(xs), f"{name}: axis") for a in self.const(ins[1], "the axes", name)
                             .reshape(-1)}))
        y = self._out(op)
        xq, yq = self.g.tensors[x].quant, self.g.tensors[y].quant
        assert xq is not None and yq is not None
        count = int(np.prod([xs[a] for a in axes]))
        mult, shift = rtfl.tflite_mean_multiplier(xq.s, yq.s, count)
        keep = tuple(1 if i in axes else d for i, d in enumerate(xs))
        target = y if tuple(self.g.tensors[y].shape) == keep else self.new_act(f"{name}_keep", keep, yq)
        self.emit("mean", name, [x], [target], axes=axes, keepdims=True, tflite_mult=mult, tflite_shift=shift)
        if target != y:
            self._reshape_to(target, y, f"{name}_reshape")

    def _view(self, op: Any, name: str) -> None:
        x, y = self.name(int(op.inputs[0])), self._out(op)
        self._requant_if_needed(x, y, name, "reshape", shape=tuple(self.g.tensors[y].shape))

    op_reshape = _view
    op_squeeze = _view
    op_expand_dims = _view

    def _requant_if_needed(self, x: str, y: str, name: str, op: str, **attrs: Any) -> None:
        """A data-movement op keeps its input's parameters; differing output parameters get a requantize."""
        xq, yq = self.g.tensors[x].quant, self.g.tensors[y].quant
        assert xq is not None and yq is not None
        if np.array_equal(xq.scale, yq.scale) and np.array_equal(xq.zero_point, yq.zero_point):
            self.emit(op, name, [x], [y], **attrs)
            return
        mid = self.new_act(f"{name}_pre", self.g.tensors[y].shape, xq)
        self.emit(op, name, [x], [mid], **attrs)
        self.emit("requantize", f"{name}_rq", [mid], [y])

    def op_softmax(self, op: Any, name: str) -> None:
        x, y = self.name(int(op.inputs[0])), self._out(op)
        yq = self.g.tensors[y].quant
        assert yq is not None
        if yq.zp != -128 or abs(yq.s - 1.0 / 256.0) > 1e-9:
            raise MCUCError(f"{name}: int8 softmax output must have scale 1/256 and zero point -128")
        beta = float(op.builtinOptions.beta) if op.builtinOptions is not None else 1.0
        self.emit("softmax", name, [x], [y], axis=len(self.g.tensors[x].shape) - 1, beta=beta, algorithm="tflite")

    def op_concatenation(self, op: Any, name: str) -> None:
        o = op.builtinOptions
        xs = [self.name(i) for i in self._inputs(op)]
        y = self._out(op)
        rank = len(self.g.tensors[y].shape)
        if int(o.fusedActivationFunction) != 0:
            raise MCUCError(f"{name}: concatenation with a fused activation is not supported")
        self.emit("concat", name, xs, [y], axis=_index(o.axis, rank, f"{name}: axis"))

    def _pad(self, op: Any, name: str) -> None:
        ins = self._inputs(op)
        x, y = self.name(ins[0]), self._out(op)
        pads = self.const(ins[1], "the paddings", name).astype(np.int64).reshape(-1, 2)
        yq = self.g.tensors[y].quant
        assert yq is not None
        value = yq.zp
        if len(ins) > 2 and ins[2] >= 0:
            value = int(self.const(ins[2], "the pad value", name).reshape(-1)[0])
        self.emit("pad", name, [x], [y], pads=[(int(a), int(b)) for a, b in pads], value=value)

    op_pad = _pad
    op_padv2 = _pad

    def _table(self, op: Any, name: str, table: np.ndarray, fn: str, **attrs: Any) -> None:
        x, y = self.name(int(op.inputs[0])), self._out(op)
        tn = self.g.const(f"{name}_lut", table)
        self.emit("lut", name, [x, tn], [y], function=fn, **attrs)

    def _qparams(self, op: Any) -> tuple[QuantParams, QuantParams]:
        xq, yq = self._quant(int(op.inputs[0])), self._quant(int(op.outputs[0]))
        if xq is None or yq is None:
            raise MCUCError("activation without quantization parameters")
        return xq, yq

    def op_logistic(self, op: Any, name: str) -> None:
        xq, yq = self._qparams(op)
        if yq.zp != -128:
            raise MCUCError(f"{name}: int8 LOGISTIC output zero point must be -128")
        self._table(op, name, rtfl.logistic_table(xq.s, xq.zp), "sigmoid")

    def op_tanh(self, op: Any, name: str) -> None:
        xq, yq = self._qparams(op)
        if yq.zp != 0:
            raise MCUCError(f"{name}: int8 TANH output zero point must be 0")
        self._table(op, name, rtfl.tanh_table(xq.s, xq.zp), "tanh")

    def op_hard_swish(self, op: Any, name: str) -> None:
        xq, yq = self._qparams(op)
        self._table(op, name, rtfl.hard_swish_table(xq.s, xq.zp, yq.s, yq.zp), "hardswish")

    def op_gelu(self, op: Any, name: str) -> None:
        xq, yq = self._qparams(op)
        approx = bool(op.builtinOptions.approximate) if op.builtinOptions is not None else False
        self._table(op, name, rtfl.gelu_table(xq.s, xq.zp, yq.s, yq.zp, approx), "gelu")

    def op_leaky_relu(self, op: Any, name: str) -> None:
        xq, yq = self._qparams(op)
        alpha = float(op.builtinOptions.alpha) if op.builtinOptions is not None else 0.0
        self._table(op, name, rtfl.leaky_relu_table(xq.s, xq.zp, yq.s, yq.zp, alpha), "leaky_relu", alpha=alpha)

    def op_prelu(self, op: Any, name: str) -> None:
        """TFLite's int8 PRELU: the slope is an int8 tensor (a constant, usually [1, 1, C]) quantized per tensor."""
        ins = self._inputs(op)
        x, slope, y = self.name(ins[0]), self.name(ins[1]), self._out(op)
        q = self.g.tensors[slope].quant
        if self.g.tensors[slope].dtype != "int8" or q is None or q.scale.size != 1:
            raise MCUCError(f"{name}: the PRELU slope must be int8 with one scale and zero point")
        self.emit("prelu", name, [x, slope], [y])

    def op_relu(self, op: Any, name: str) -> None:
        xq, yq = self._qparams(op)
        self._table(op, name, rtfl.float_table(lambda v: np.maximum(v, np.float32(0)), xq.s, xq.zp, yq.s, yq.zp),
                    "relu")

    def op_relu6(self, op: Any, name: str) -> None:
        xq, yq = self._qparams(op)
        self._table(op, name, rtfl.float_table(lambda v: np.clip(v, np.float32(0), np.float32(6)), xq.s, xq.zp,
                                               yq.s, yq.zp), "clip")

    def op_quantize(self, op: Any, name: str) -> None:
        x, y = int(op.inputs[0]), int(op.outputs[0])
        if self._type(x) != "int8":
            raise MCUCError(f"'{self.path}' is a float (non-quantized) or mixed-precision model: {name} quantizes "
                            f"a {self._type(x)} tensor inside the graph; convert with full-integer quantization")
        self.emit("requantize", name, [self.name(x)], [self.name(y)])

    def op_dequantize(self, op: Any, name: str) -> None:
        raise MCUCError(f"'{self.path}' is a float (non-quantized) or mixed-precision model: {name} dequantizes "
                        "inside the graph; convert it with full-integer int8 quantization")

    def op_batch_matmul(self, op: Any, name: str) -> None:
        o = op.builtinOptions
        ins = self._inputs(op)
        a, b = self.name(ins[0]), self.name(ins[1])
        if o is not None and bool(o.adjX):
            at = self.g.tensors[a]
            perm = tuple(range(len(at.shape) - 2)) + (len(at.shape) - 1, len(at.shape) - 2)
            a2 = self.new_act(f"{name}_at", tuple(at.shape[p] for p in perm), at.quant)  # type: ignore[arg-type]
            self.emit("transpose", f"{name}_adj_x", [a], [a2], perm=perm)
            a = a2
        y = self._out(op)
        self.emit("batch_matmul", name, [a, b], [y], transpose_b=bool(o is not None and o.adjY))

    def op_transpose(self, op: Any, name: str) -> None:
        ins = self._inputs(op)
        perm = tuple(int(p) for p in self.const(ins[1], "the permutation", name).reshape(-1))
        x, y = self.name(ins[0]), self._out(op)
        self._requant_if_needed(x, y, name, "transpose", perm=perm)

    def op_strided_slice(self, op: Any, name: str) -> None:
        o = op.builtinOptions
        ins = self._inputs(op)
        x, y = self.name(ins[0]), self._out(op)
        shape = self.g.tensors[x].shape
        begin = self.const(ins[1], "begin", name).astype(np.int64).reshape(-1)
        end = self.const(ins[2], "end", name).astype(np.int64).reshape(-1)
        strides = (self.const(ins[3], "strides", name).astype(np.int64).reshape(-1) if len(ins) > 3
                   else np.ones(len(begin), np.int64))
        if int(o.ellipsisMask) or int(o.newAxisMask):
            raise MCUCError(f"{name}: strided slice with ellipsis or new-axis masks is not supported")
        starts, ends, steps = [], [], []
        for ax, d in enumerate(shape):
            if ax >= len(begin):
                starts.append(0)
                ends.append(d)
                steps.append(1)
                continue
            st = int(strides[ax])
            if st < 1:
                raise MCUCError(f"{name}: strided slice with stride {st} (only positive strides are supported)")
            b0 = 0 if (int(o.beginMask) >> ax) & 1 else int(begin[ax])
            b0 = min(max(b0 + d if b0 < 0 else b0, 0), d)
            if (int(o.shrinkAxisMask) >> ax) & 1:
                e0 = b0 + 1
            elif (int(o.endMask) >> ax) & 1:
                e0 = d
            else:
                e0 = int(end[ax]) + (b0 if getattr(o, "offset", False) else 0)
                e0 = min(max(e0 + d if e0 < 0 else e0, 0), d)
            starts.append(b0)
            ends.append(e0)
            steps.append(st)
        full = tuple(len(range(s, e, k)) for s, e, k in zip(starts, ends, steps, strict=True))
        yq = self.g.tensors[y].quant
        assert yq is not None
        target = y if tuple(self.g.tensors[y].shape) == full else self.new_act(f"{name}_full", full, yq)
        self._requant_if_needed(x, target, name, "slice", starts=tuple(starts), ends=tuple(ends),
                                steps=tuple(steps))
        if target != y:
            self._reshape_to(target, y, f"{name}_reshape")

    def op_gather(self, op: Any, name: str) -> None:
        o = op.builtinOptions
        ins = self._inputs(op)
        x, y = self.name(ins[0]), self._out(op)
        shape = self.g.tensors[x].shape
        if o is not None and int(getattr(o, "batchDims", 0) or 0):
            raise MCUCError(f"{name}: gather with batch_dims is not supported")
        axis = _index(o.axis if o is not None else 0, len(shape), f"{name}: axis")
        raw_idx = self.const(ins[1], "the indices", name).astype(np.int64).reshape(-1)
        idx = tuple(_index(i, shape[axis], f"{name}: index") for i in raw_idx)
        full = tuple(shape[:axis]) + (len(idx),) + tuple(shape[axis + 1:])
        yq = self.g.tensors[y].quant
        assert yq is not None
        target = y if tuple(self.g.tensors[y].shape) == full else self.new_act(f"{name}_full", full, yq)
        self._requant_if_needed(x, target, name, "gather", axis=axis, indices=idx)
        if target != y:
            self._reshape_to(target, y, f"{name}_reshape")

    def _resize(self, op: Any, name: str, mode: str) -> None:
        """RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR with TFLite's own coordinates (and, for int8 bilinear, its
        10-bit fixed-point algorithm). Like TFLM, the interpolated integers are the output: its parameters are the
        input's in every converted model, and the kernel does not requantize."""
        o = op.builtinOptions
        x, y = self.name(int(op.inputs[0])), self._out(op)
        align = bool(o.alignCorners) if o is not None else False
        half = bool(o.halfPixelCenters) if o is not None else False
        if align and half:
            raise MCUCError(f"{name}: align_corners and half_pixel_centers together (TFLite rejects it)")
        if len(self.g.tensors[x].shape) != 4:
            raise MCUCError(f"{name}: resize needs a 4-D NHWC input, got {self.g.tensors[x].shape}")
        _, oh, ow, _ = self.g.tensors[y].shape
        coord = "align_corners" if align else "half_pixel" if half else "asymmetric"
        self.emit("resize", name, [x], [y], size=(oh, ow), mode=mode, rule="tflite", coord=coord)

    def op_resize_bilinear(self, op: Any, name: str) -> None:
        self._resize(op, name, "linear")

    def op_resize_nearest_neighbor(self, op: Any, name: str) -> None:
        self._resize(op, name, "nearest")


def _fold_pads(g: Graph) -> None:
    """A spatial PAD by the zero point whose every consumer is a convolution folds into the convs' pads."""
    consumers = g.consumers()
    for n in list(g.nodes):
        if n.op != "pad" or n.outputs[0] in g.outputs:
            continue
        x, y = n.inputs[0], n.outputs[0]
        pads = n.attrs["pads"]
        uses = consumers.get(y, [])
        xq, yq = g.tensors[x].quant, g.tensors[y].quant
        if (not uses or any(u.op != "conv2d" or u.inputs[0] != y for u in uses) or len(pads) != 4
                or pads[0] != (0, 0) or pads[3] != (0, 0) or xq is None or yq is None
                or not np.array_equal(xq.scale, yq.scale) or xq.zp != yq.zp or int(n.attrs["value"]) != yq.zp):
            continue
        for u in uses:
            t, left, b, r = u.attrs["pads"]
            u.attrs["pads"] = (t + pads[1][0], left + pads[2][0], b + pads[1][1], r + pads[2][1])
            u.inputs[0] = x
        g.nodes.remove(n)

"""Write an int8 mcuc Graph as a .tflite flatbuffer (identifier TFL3) that LiteRT and TFLite Micro load and run.

Every tensor keeps its scale and zero point; weights, biases and constants are stored as they are. Ops map
one to one onto TFLite builtins, except that padding TFLite's SAME/VALID cannot express becomes an explicit PAD
by the zero point, and a clamp no fused activation reproduces becomes MAXIMUM/MINIMUM by constants. Where
the TFLite op computes differently from the mcuc kernel (mcuc's own softmax, look-up tables built from the
float function, a MEAN multiplier rounded in one step) the op is still written and ``ExportResult.notes``
names it; ops that came from a .tflite model use TFLite's algorithms and export exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcuc.errors import MCUCError
from mcuc.frontend.tflite import _act_range, _same_padding
from mcuc.ir import Graph, Node, QuantParams
from mcuc.reference import tflite as rtfl
from mcuc.reference.transformer import prepare_mean

_TYPES = {"float32": 0, "int32": 2, "uint8": 3, "int64": 4, "int8": 9, "int16": 7}


@dataclass
class ExportResult:
    data: bytes
    notes: list[str] = field(default_factory=list)  # ops whose TFLite numerics differ from mcuc's


def _fused(act_min: int, act_max: int, q: QuantParams) -> int | None:
    """The TFLite fused activation whose int8 clamp equals [act_min, act_max], or None."""
    for code in (0, 1, 3, 2):
        if _act_range(code, q) == (act_min, act_max):
            return code
    return None


def _pads_mode(size: tuple[int, int], k: tuple[int, int], s: tuple[int, int], d: tuple[int, int],
               pads: tuple[int, int, int, int]) -> int | None:
    """0 (SAME) or 1 (VALID) when TFLite's padding rule gives exactly ``pads`` (t, l, b, r), else None."""
    if tuple(pads) == (0, 0, 0, 0):
        return 1
    (t, b), (left, r) = _same_padding(size[0], k[0], s[0], d[0], 0), _same_padding(size[1], k[1], s[1], d[1], 0)
    return 0 if (t, left, b, r) == tuple(pads) else None


class _Writer:
    def __init__(self, g: Graph) -> None:
        from mcuc.frontend.tflite import schema

        self.s = schema()
        self.g = g
        self.buffers: list[Any] = [self.s.BufferT()]
        self.tensors: list[Any] = []
        self.index: dict[str, int] = {}
        self.ops: list[Any] = []
        self.codes: dict[int, int] = {}
        self.op_codes: list[Any] = []
        self.notes: list[str] = []
        self.pending: list[tuple[str, list[int], list[int]]] = []

    # ---- tensors --------------------------------------------------------------------------------------
    def tensor(self, name: str, quant_axis: int | None = None) -> int:
        if name in self.index:
            return self.index[name]
        t = self.g.tensors[name]
        return self._add(name, tuple(t.shape), t.dtype, t.quant, t.data, quant_axis)

    def _add(self, name: str, shape: tuple[int, ...], dtype: str, q: QuantParams | None, data: np.ndarray | None,
             quant_axis: int | None = None) -> int:
        s = self.s
        tt = s.TensorT()
        tt.name = name
        tt.shape = np.array(shape, dtype=np.int32)
        tt.type = _TYPES[dtype]
        tt.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.buffers.append(b)
            tt.buffer = len(self.buffers) - 1
        if q is not None:
            qp = s.QuantizationParametersT()
            qp.scale = np.asarray(q.scale, dtype=np.float32)
            qp.zeroPoint = np.asarray(q.zero_point, dtype=np.int64)
            qp.quantizedDimension = int(quant_axis if quant_axis is not None else (q.axis or 0))
            tt.quantization = qp
        self.tensors.append(tt)
        self.index[name] = len(self.tensors) - 1
        return self.index[name]

    def const(self, base: str, data: np.ndarray, q: QuantParams | None = None, axis: int | None = None) -> int:
        name = base
        i = 0
        while name in self.index or name in self.g.tensors:
            i += 1
            name = f"{base}_{i}"
        return self._add(name, tuple(data.shape), str(data.dtype), q, data, axis)

    def temp(self, base: str, shape: tuple[int, ...], q: QuantParams) -> int:
        name, i = base, 0
        while name in self.index or name in self.g.tensors:
            i += 1
            name = f"{base}_{i}"
        return self._add(name, shape, "int8", q, None)

    # ---- ops ------------------------------------------------------------------------------------------
    def op(self, opname: str, inputs: list[int], outputs: list[int], options: Any = None,
           options_type: str | None = None) -> None:
        s = self.s
        code = int(getattr(s.BuiltinOperator, opname))
        if code not in self.codes:
            oc = s.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            self.codes[code] = len(self.op_codes)
            self.op_codes.append(oc)
        o = s.OperatorT()
        o.opcodeIndex = self.codes[code]
        o.inputs = np.array(inputs, dtype=np.int32)
        o.outputs = np.array(outputs, dtype=np.int32)
        if options is not None:
            o.builtinOptionsType = int(getattr(s.BuiltinOptions, options_type or type(options).__name__[:-1]))
            o.builtinOptions = options
        self.ops.append(o)

    def _opts(self, cls: str, **fields: Any) -> Any:
        o = getattr(self.s, cls + "T")()
        for k, v in fields.items():
            setattr(o, k, v)
        return o

    def _clamped_output(self, n: Node) -> tuple[int, int]:
        """(fused activation, tensor index the op writes): a clamp no fused activation expresses goes through
        MAXIMUM/MINIMUM after the op."""
        y = n.outputs[0]
        q = self.g.tensors[y].quant
        assert q is not None
        lo, hi = int(n.attrs.get("act_min", -128)), int(n.attrs.get("act_max", 127))
        code = _fused(lo, hi, q)
        if code is not None:
            return code, self.tensor(y)
        shape = tuple(self.g.tensors[y].shape)
        raw = self.temp(f"{y}_unclamped", shape, q)
        lo_t = self.const(f"{y}_min", np.array([lo], np.int8), q)
        hi_t = self.const(f"{y}_max", np.array([hi], np.int8), q)
        mid = self.temp(f"{y}_lo", shape, q)
        self.pending = [("MAXIMUM", [raw, lo_t], [mid]), ("MINIMUM", [mid, hi_t], [self.tensor(y)])]
        return 0, raw

    def _flush(self) -> None:
        for name, ins, outs in self.pending:
            self.op(name, ins, outs)
        self.pending = []

    def _padded_input(self, n: Node, x: str, kernel: tuple[int, int], strides: tuple[int, int],
                      dil: tuple[int, int]) -> tuple[int, int]:
        """(input tensor index, padding mode), inserting a PAD by the zero point when SAME/VALID cannot express the
        pads."""
        shape = tuple(self.g.tensors[x].shape)
        pads = tuple(int(p) for p in n.attrs["pads"])
        mode = _pads_mode((shape[1], shape[2]), kernel, strides, dil, pads)  # type: ignore[arg-type]
        if mode is not None:
            return self.tensor(x), mode
        t, left, b, r = pads
        q = self.g.tensors[x].quant
        assert q is not None
        padded = self.temp(f"{x}_padded", (shape[0], shape[1] + t + b, shape[2] + left + r, shape[3]), q)
        pt = self.const(f"{n.name}_paddings", np.array([[0, 0], [t, b], [left, r], [0, 0]], np.int32))
        self.op("PAD", [self.tensor(x), pt], [padded], self._opts("PadOptions"))
        return padded, 1

    def conv2d(self, n: Node) -> None:
        x, w, b = n.inputs
        wt, xt = self.g.tensors[w], self.g.tensors[x]
        assert wt.data is not None and wt.quant is not None
        o, kh, kw, cg = wt.shape
        groups = int(n.attrs.get("groups", 1))
        strides = tuple(n.attrs["strides"])
        dil = tuple(n.attrs.get("dilations", (1, 1)))
        xin, mode = self._padded_input(n, x, (kh, kw), strides, dil)  # type: ignore[arg-type]
        act, yi = self._clamped_output(n)
        depthwise = groups > 1 and groups == xt.shape[3] and cg == 1
        if groups > 1 and not depthwise:
            raise MCUCError(f"conv '{n.name}': grouped convolution ({groups} groups) has no TFLite int8 builtin")
        if depthwise:
            wi = self.const(w, np.ascontiguousarray(wt.data.transpose(3, 1, 2, 0)), wt.quant, axis=3)
            opts = self._opts("DepthwiseConv2DOptions", padding=mode, strideH=strides[0], strideW=strides[1],
                              depthMultiplier=o // xt.shape[3], fusedActivationFunction=act,
                              dilationHFactor=dil[0], dilationWFactor=dil[1])
            self.op("DEPTHWISE_CONV_2D", [xin, wi, self.tensor(b, 0)], [yi], opts)
        else:
            opts = self._opts("Conv2DOptions", padding=mode, strideH=strides[0], strideW=strides[1],
                              fusedActivationFunction=act, dilationHFactor=dil[0], dilationWFactor=dil[1])
            self.op("CONV_2D", [xin, self.tensor(w, 0), self.tensor(b, 0)], [yi], opts)
        self._flush()

    def fully_connected(self, n: Node) -> None:
        x, w, b = n.inputs
        act, yi = self._clamped_output(n)
        keep = len(self.g.tensors[n.outputs[0]].shape) > 2
        opts = self._opts("FullyConnectedOptions", fusedActivationFunction=act, keepNumDims=keep)
        self.op("FULLY_CONNECTED", [self.tensor(x), self.tensor(w, 0), self.tensor(b, 0)], [yi], opts)
        self._flush()

    def binary(self, n: Node) -> None:
        act, yi = self._clamped_output(n)
        name = {"add": "ADD", "sub": "SUB", "mul": "MUL"}[n.op]
        opts = self._opts(name.capitalize() + "Options", fusedActivationFunction=act)
        self.op(name, [self.tensor(i) for i in n.inputs], [yi], opts)
        self._flush()

    def prelu(self, n: Node) -> None:
        self.op("PRELU", [self.tensor(i) for i in n.inputs], [self.tensor(n.outputs[0])])

    def resize(self, n: Node) -> None:
        a = n.attrs
        if a["rule"] != "tflite":
            raise MCUCError(f"resize '{n.name}': ONNX's coordinate rules have no TFLite builtin (only a resize read "
                            "from a .tflite model exports)")
        size = self.const(f"{n.name}_size", np.array(a["size"], np.int32))
        flags = {"alignCorners": a["coord"] == "align_corners", "halfPixelCenters": a["coord"] == "half_pixel"}
        name, opts = (("RESIZE_BILINEAR", "ResizeBilinearOptions") if a["mode"] == "linear"
                      else ("RESIZE_NEAREST_NEIGHBOR", "ResizeNearestNeighborOptions"))
        self.op(name, [self.tensor(n.inputs[0]), size], [self.tensor(n.outputs[0])], self._opts(opts, **flags))

    def squared_difference(self, n: Node) -> None:
        act, yi = self._clamped_output(n)
        if act != 0:
            raise MCUCError(f"squared_difference '{n.name}': TFLite's op has no fused activation")
        self.op("SQUARED_DIFFERENCE", [self.tensor(i) for i in n.inputs], [yi],
                self._opts("SquaredDifferenceOptions"))
        self._flush()

    def pool(self, n: Node) -> None:
        x = n.inputs[0]
        k, strides = tuple(n.attrs["kernel"]), tuple(n.attrs["strides"])
        shape = self.g.tensors[x].shape
        pads = tuple(int(p) for p in n.attrs["pads"])
        mode = _pads_mode((shape[1], shape[2]), k, strides, (1, 1), pads)  # type: ignore[arg-type]
        if mode is None:
            raise MCUCError(f"pool '{n.name}': padding {pads} is neither SAME nor VALID in TFLite")
        act, yi = self._clamped_output(n)
        opts = self._opts("Pool2DOptions", padding=mode, strideH=strides[0], strideW=strides[1], filterHeight=k[0],
                          filterWidth=k[1], fusedActivationFunction=act)
        self.op("AVERAGE_POOL_2D" if n.op == "avgpool" else "MAX_POOL_2D", [self.tensor(x)], [yi], opts)
        self._flush()

    def reshape(self, n: Node) -> None:
        shape = np.array(self.g.tensors[n.outputs[0]].shape, np.int32)
        st = self.const(f"{n.name}_shape", shape)
        self.op("RESHAPE", [self.tensor(n.inputs[0]), st], [self.tensor(n.outputs[0])],
                self._opts("ReshapeOptions", newShape=shape))

    def transpose(self, n: Node) -> None:
        perm = self.const(f"{n.name}_perm", np.array(n.attrs["perm"], np.int32))
        self.op("TRANSPOSE", [self.tensor(n.inputs[0]), perm], [self.tensor(n.outputs[0])],
                self._opts("TransposeOptions"))

    def concat(self, n: Node) -> None:
        yq = self.g.tensors[n.outputs[0]].quant
        assert yq is not None
        ins = []
        for x in n.inputs:
            xq = self.g.tensors[x].quant
            assert xq is not None
            if xq.zp == yq.zp and np.array_equal(xq.scale, yq.scale):
                ins.append(self.tensor(x))
                continue
            rq = self.temp(f"{x}_rq", tuple(self.g.tensors[x].shape), yq)
            self.op("QUANTIZE", [self.tensor(x)], [rq], self._opts("QuantizeOptions"))
            ins.append(rq)
        self.op("CONCATENATION", ins, [self.tensor(n.outputs[0])],
                self._opts("ConcatenationOptions", axis=int(n.attrs["axis"]), fusedActivationFunction=0))

    def pad(self, n: Node) -> None:
        pads = np.array(n.attrs["pads"], np.int32).reshape(-1, 2)
        pt = self.const(f"{n.name}_paddings", pads)
        yq = self.g.tensors[n.outputs[0]].quant
        assert yq is not None
        value = int(n.attrs.get("value", yq.zp))
        if value == yq.zp:
            self.op("PAD", [self.tensor(n.inputs[0]), pt], [self.tensor(n.outputs[0])], self._opts("PadOptions"))
        else:
            vt = self.const(f"{n.name}_value", np.array([value], np.int8), yq)
            self.op("PADV2", [self.tensor(n.inputs[0]), pt, vt], [self.tensor(n.outputs[0])],
                    self._opts("PadV2Options"))

    def requantize(self, n: Node) -> None:
        self.op("QUANTIZE", [self.tensor(n.inputs[0])], [self.tensor(n.outputs[0])], self._opts("QuantizeOptions"))

    def softmax(self, n: Node) -> None:
        if n.attrs.get("algorithm") != "tflite":
            self.notes.append(f"softmax '{n.name}': TFLite's int8 softmax algorithm differs from mcuc's (a few LSB)")
        self.op("SOFTMAX", [self.tensor(n.inputs[0])], [self.tensor(n.outputs[0])],
                self._opts("SoftmaxOptions", beta=float(n.attrs.get("beta", 1.0))))

    def mean(self, n: Node) -> None:
        x, y = n.inputs[0], n.outputs[0]
        xq, yq = self.g.tensors[x].quant, self.g.tensors[y].quant
        assert xq is not None and yq is not None
        axes = tuple(n.attrs["axes"])
        if "tflite_mult" not in n.attrs:
            count = int(np.prod([self.g.tensors[x].shape[a] for a in axes]))
            ours = prepare_mean(tuple(self.g.tensors[x].shape), axes, xq.s, xq.zp, yq.s, yq.zp)
            if (ours.mult, ours.shift) != rtfl.tflite_mean_multiplier(xq.s, yq.s, count):
                self.notes.append(f"mean '{n.name}': TFLite folds 1/count into its multiplier differently (1 LSB)")
        at = self.const(f"{n.name}_axes", np.array(axes, np.int32))
        self.op("MEAN", [self.tensor(x), at], [self.tensor(y)],
                self._opts("ReducerOptions", keepDims=bool(n.attrs.get("keepdims", True))))

    def lut(self, n: Node) -> None:
        x, table, y = n.inputs[0], n.inputs[1], n.outputs[0]
        xq, yq = self.g.tensors[x].quant, self.g.tensors[y].quant
        assert xq is not None and yq is not None
        fn = n.attrs.get("function", "")
        if fn == "leaky_relu" and "alpha" not in n.attrs:
            raise MCUCError(f"lut '{n.name}' (leaky_relu) does not record its alpha")
        alpha = float(n.attrs.get("alpha", 0.0))
        tables = {
            "sigmoid": ("LOGISTIC", lambda: rtfl.logistic_table(xq.s, xq.zp)),
            "tanh": ("TANH", lambda: rtfl.tanh_table(xq.s, xq.zp)),
            "hardswish": ("HARD_SWISH", lambda: rtfl.hard_swish_table(xq.s, xq.zp, yq.s, yq.zp)),
            "gelu": ("GELU", lambda: rtfl.gelu_table(xq.s, xq.zp, yq.s, yq.zp)),
            "rsqrt": ("RSQRT", lambda: rtfl.rsqrt_table(xq.s, xq.zp, yq.s, yq.zp)),
            "leaky_relu": ("LEAKY_RELU", lambda: rtfl.leaky_relu_table(xq.s, xq.zp, yq.s, yq.zp, alpha)),
        }
        if fn in ("relu", "clip"):
            lo, hi = int(self.g.tensors[table].data.min()), int(self.g.tensors[table].data.max())  # type: ignore
            mid = self.temp(f"{y}_rq", tuple(self.g.tensors[y].shape), yq)
            self.op("QUANTIZE", [self.tensor(x)], [mid], self._opts("QuantizeOptions"))
            lo_t = self.const(f"{y}_min", np.array([lo], np.int8), yq)
            hi_t = self.const(f"{y}_max", np.array([hi], np.int8), yq)
            mid2 = self.temp(f"{y}_lo", tuple(self.g.tensors[y].shape), yq)
            self.op("MAXIMUM", [mid, lo_t], [mid2])
            self.op("MINIMUM", [mid2, hi_t], [self.tensor(y)])
            self.notes.append(f"lut '{n.name}' ({fn}): written as QUANTIZE + MAXIMUM/MINIMUM (rounding may differ)")
            return
        if fn not in tables:
            raise MCUCError(f"lut '{n.name}' ({fn or 'unknown function'}) has no TFLite int8 builtin")
        opname, make = tables[fn]
        try:
            same = bool(np.array_equal(make(), np.asarray(self.g.tensors[table].data)))
        except ValueError:
            same = False
        if not same:
            self.notes.append(f"lut '{n.name}' ({fn}): TFLite's {opname} computes a different int8 table")
        opts = None
        if opname == "GELU":
            opts = self._opts("GeluOptions", approximate=False)
        elif opname == "LEAKY_RELU":
            opts = self._opts("LeakyReluOptions", alpha=alpha)
        self.op(opname, [self.tensor(x)], [self.tensor(y)], opts)

    def batch_matmul(self, n: Node) -> None:
        if float(n.attrs.get("alpha", 1.0)) != 1.0:
            raise MCUCError(f"batch_matmul '{n.name}': a folded output scale (alpha) has no TFLite equivalent")
        act, yi = self._clamped_output(n)
        self.op("BATCH_MATMUL", [self.tensor(i) for i in n.inputs], [yi],
                self._opts("BatchMatMulOptions", adjX=False, adjY=bool(n.attrs.get("transpose_b", False))))
        self._flush()

    def slice(self, n: Node) -> None:
        a = n.attrs
        b = self.const(f"{n.name}_begin", np.array(a["starts"], np.int32))
        shape = self.g.tensors[n.inputs[0]].shape
        e = self.const(f"{n.name}_end", np.array([min(int(v), d) for v, d in zip(a["ends"], shape, strict=True)],
                                                 np.int32))
        st = self.const(f"{n.name}_strides", np.array(a["steps"], np.int32))
        self.op("STRIDED_SLICE", [self.tensor(n.inputs[0]), b, e, st], [self.tensor(n.outputs[0])],
                self._opts("StridedSliceOptions"))

    def gather(self, n: Node) -> None:
        idx = self.const(f"{n.name}_indices", np.array(n.attrs["indices"], np.int32))
        self.op("GATHER", [self.tensor(n.inputs[0]), idx], [self.tensor(n.outputs[0])],
                self._opts("GatherOptions", axis=int(n.attrs["axis"]), batchDims=0))

    # ---- model ----------------------------------------------------------------------------------------
    def write(self) -> bytes:
        import flatbuffers

        handlers = {"conv2d": self.conv2d, "fully_connected": self.fully_connected, "add": self.binary,
                    "sub": self.binary, "mul": self.binary, "avgpool": self.pool, "maxpool": self.pool,
                    "reshape": self.reshape, "transpose": self.transpose, "concat": self.concat, "pad": self.pad,
                    "requantize": self.requantize, "softmax": self.softmax, "mean": self.mean, "lut": self.lut,
                    "batch_matmul": self.batch_matmul, "slice": self.slice, "gather": self.gather,
                    "squared_difference": self.squared_difference, "prelu": self.prelu, "resize": self.resize}
        for name in self.g.inputs:
            self.tensor(name)
        for n in self.g.nodes:
            h = handlers.get(n.op)
            if h is None:
                raise MCUCError(f"op '{n.op}' (node '{n.name}') has no TFLite int8 builtin; mcuc writes "
                                f"{', '.join(sorted(handlers))}")
            h(n)
        s = self.s
        sg = s.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = np.array([self.index[n] for n in self.g.inputs], np.int32)
        sg.outputs = np.array([self.index[n] for n in self.g.outputs], np.int32)
        sg.operators = self.ops
        sg.name = "main"
        m = s.ModelT()
        m.version = 3
        m.description = "mcuc"
        m.operatorCodes = self.op_codes
        m.subgraphs = [sg]
        m.buffers = self.buffers
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def export_tflite(g: Graph, path: str | None = None) -> ExportResult:
    """Write int8 graph ``g`` (NHWC) as a .tflite model; return its bytes and the ops whose numerics differ."""
    if not g.meta.get("quantized") or g.layout != "NHWC":
        raise MCUCError("only a compiled int8 NHWC graph can be exported to .tflite")
    w = _Writer(g)
    data = w.write()
    if path is not None:
        Path(path).write_bytes(data)
    return ExportResult(data, w.notes)

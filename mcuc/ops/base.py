"""The registry's types: `OpDef`, everything mcuc knows about one op, and `Lowered`, the kernel call it becomes.

An op is registered once (``mcuc/ops/<family>.py``) with every fact the compiler needs about it:
its shape rule and MAC count, its float evaluation, how it is quantized and how its attributes
follow the NCHW -> NHWC change, whether its kernel may work in place or is a view, the scratch it
needs, how it runs on a spatial patch, and its lowering to a C kernel call (with the numpy
reference of that call) plus the kernel variants a core may run instead. Passes, the planner, the
scheduler, the executors and codegen read these facts from ``OPS[node.op]``; none keeps its own
list of ops.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.quant import choose_qparams, quantize_array
from mcuc.shapes import NCHW_AXIS_TO_NHWC

Shape = tuple[int, ...]
Array = np.ndarray

# ---- the kernel call an int8 node lowers to ---------------------------------------------------


@dataclass
class Struct:
    """An op-local C parameter struct: ``value`` is a dict of fields (in declaration order), a list, an int
    or a CExpr."""

    ctype: str
    value: Any


@dataclass
class Array1D:
    """An op-local constant C array (multipliers, shifts, tables): ``ctype`` is the element type."""

    ctype: str
    data: np.ndarray


@dataclass(frozen=True)
class CExpr:
    """A C expression resolved by codegen: ``@structN``, ``@arrayN`` or ``@tensor:NAME``."""

    text: str


@dataclass(frozen=True)
class Arg:
    """One call argument: a tensor, an op-local struct/array (by index), an int, NULL, or the op's scratch."""

    kind: str  # "tensor" | "struct" | "array" | "int" | "null" | "scratch" (the op's planned arena scratch)
    value: Any = None


@dataclass
class Lowered:
    """A kernel call (``func`` with ``args``; "" for a view that emits nothing) and its numpy twin ``ref``:
    ``ref(env)`` returns the value of the node's output computed exactly as the kernel does."""

    node: Node
    func: str
    args: list[Arg]
    structs: list[Struct] = field(default_factory=list)
    arrays: list[Array1D] = field(default_factory=list)
    ref: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None


@dataclass(frozen=True)
class KernelVariant:
    """Another C function computing an op's call bit for bit identically, for nodes where ``applies`` holds,
    on cores with every ISA feature in ``isa`` (``()``: any core; its portable C path runs everywhere).

    ``specialise`` turns the portable call into the variant's (its own constants: weights re-laid in the
    order the kernel reads them, bias with the input offset folded in, ...); None keeps the arguments and
    only changes the function. ``scratch`` is the arena bytes the variant needs while it runs (its
    ``_get_buffer_size``), added to the op's own ``scratch`` fact. An op lists its variants fastest first;
    a compile-time choice (mcuc/passes/kernels.py) records the one taken in the node's ``variant``
    attribute before the schedule is planned, so planner, report and codegen agree on its scratch.

    ``cost`` estimates the instructions per MAC of the variant on the cores of this entry, for a node's shape;
    where two variants that apply both carry an estimate, the cheaper one is taken whatever their listed order
    (mcuc.ops.variants_for), so the choice follows the layer's shape and the core. Entries of the same ``func``
    for other ISAs (one C function with DSP and MVE paths) share ``applies``, ``specialise`` and ``scratch``
    and differ only in ``isa`` and ``cost``.
    """

    func: str
    applies: Callable[[Graph, Node], bool]
    isa: tuple[str, ...] = ()
    specialise: Callable[[Graph, Node, Lowered], Lowered] | None = None
    scratch: Callable[[Graph, Node], int] | None = None
    cost: Callable[[Graph, Node], float] | None = None


@dataclass(frozen=True)
class Geometry:
    """Window of a spatial op on each of H and W: output o reads input o * stride - pad_lo + j * dilation."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right


class LayoutContext(Protocol):
    """What an op's NHWC rule may ask of the layout pass (mcuc/passes/layout.py)."""

    g: Graph
    image: set[str]  # the 4-D activations that become NHWC

    def ohwi_weight(self, n: Node, index: int) -> None: ...

    def broadcast_operand(self, name: str) -> str: ...

    def reshape(self, n: Node) -> list[Node]: ...


@dataclass
class QuantContext:
    """One quantization: the float graph read, the int8 graph written, and the parameters chosen so far."""

    src: Graph
    out: Graph
    qp: dict[str, QuantParams]
    observed: Callable[[str], tuple[float, float]]  # calibrated (min, max) of a float activation

    def act_quant(self, name: str) -> QuantParams:
        """The model's own parameters of an activation (QDQ), else ones chosen from its calibrated range."""
        t = self.src.tensors[name]
        if t.quant is not None:
            return t.quant
        s, zp = choose_qparams(*self.observed(name))
        return QuantParams(np.array([s]), np.array([zp]))

    def output(self, name: str, q: QuantParams) -> None:
        """Declare int8 activation ``name`` of the output graph with parameters ``q``."""
        self.qp[name] = q
        self.out.add_tensor(Tensor(name, self.src.tensors[name].shape, "int8", q))

    def emit(self, op: str, name: str, inputs: list[str], outputs: list[str], attrs: dict) -> None:
        self.out.nodes.append(Node(op, name, inputs, outputs, attrs))

    def const_operand(self, name: str) -> str:
        """A float constant operand of an int8 op, quantized per tensor over its own range."""
        data = self.src.tensors[name].data
        if data is None:
            return name
        s, zp = choose_qparams(float(data.min()), float(data.max()))
        return self.out.const(name + "_q", quantize_array(data, s, zp), QuantParams(np.array([s]), np.array([zp])))


ShapeRule = Callable[[Node, list[Shape], str], list[Shape]]  # (node, input shapes, layout) -> output shapes
MacRule = Callable[[Node, Graph], int]
FloatEval = Callable[[Node, list[Array], str], Array]  # (node, input values, layout) -> output value
QuantRule = Callable[["QuantContext", Node], None]  # float node -> int8 node(s) in ctx.out
NhwcRule = Callable[[LayoutContext, Node], list[Node]]
Lowering = Callable[[Graph, Node], Lowered]


def no_macs(node: Node, g: Graph) -> int:
    return 0


@dataclass(frozen=True)
class OpDef:
    """Everything the compiler knows about one IR op.

    layout: ``"image"`` ops read and write images (NCHW in the source, NHWC after the layout pass);
    ``"follow"`` ops keep their 4-D operands and result in one layout, so an image flows through them;
    ``"keep"`` ops work in whatever order their operands have. ``to_nhwc`` rewrites a node whose
    tensors became NHWC (axis attributes, constant operands); None leaves it as it is.
    window: ``"spatial"`` ops (``geometry``) and ``"pointwise"`` same-shape ops can run on a spatial
    patch (mcuc/schedule/patch.py); None ops cannot.
    """

    name: str
    family: str
    shape: ShapeRule
    macs: MacRule = no_macs
    eval: FloatEval | None = None  # float reference (None: the op exists only in int8 graphs)
    quantize: QuantRule | None = None  # float node -> int8 node(s) (None: int8-only, or folded before)
    fuses_activation: bool = False  # takes a relu/clip as its ``act`` attribute
    activation: bool = False  # a relu/clip that its producer may take over (see fuses_activation)
    weighted: bool = False  # constant weights [O, ...] and bias [O] as inputs 1 and 2 (batchnorm folds in)
    layout: str = "keep"
    to_nhwc: NhwcRule | None = None
    in_place: bool = False  # output may overwrite a same-size input that dies here (element i reads only i)
    overwrites_input: Callable[[Graph, Node], bool] | None = None  # output may take input 0's memory (row kernels)
    streams_input: Callable[[Graph, Node], bool] | None = None  # reads input 0 row by row from the application
    row_kernel: bool = False  # its kernel runs on windows of rows inside a row pipeline (mcuc/ops/pipeline.py)
    view: bool = False  # output is input 0 reinterpreted: no memory, no kernel call
    scratch: Callable[[Graph, Node], int] | None = None  # arena bytes the kernel needs while it runs
    window: str | None = None
    geometry: Callable[[Graph, Node], Geometry] | None = None
    lower: Lowering | None = None  # int8 node -> kernel call (None: no int8 kernel)
    check: Callable[[Graph, Node], None] | None = None  # int8 node: MCUCError if its kernel could not compute it
    variants: tuple[KernelVariant, ...] = ()  # faster kernels for some shapes or cores, fastest first


OPS: dict[str, OpDef] = {}


def register(*defs: OpDef) -> None:
    for d in defs:
        if d.name in OPS:
            raise ValueError(f"op '{d.name}' registered twice")
        OPS[d.name] = d


def op_def(node: Node) -> OpDef:
    d = OPS.get(node.op)
    if d is None:
        raise MCUCError(f"unknown op '{node.op}' (node '{node.name}')")
    return d


# ---- helpers shared by the families -------------------------------------------------------------


def quant_of(g: Graph, name: str) -> QuantParams:
    q = g.tensors[name].quant
    if q is None:
        raise MCUCError(f"tensor '{name}' has no quantization parameters")
    return q


def const_data(g: Graph, name: str) -> np.ndarray:
    d = g.tensors[name].data
    if d is None:
        raise MCUCError(f"tensor '{name}' must be a constant")
    return d


def c_fields(obj: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A params dataclass as an ordered dict of its C struct fields (its fields minus ``drop``)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in drop}


def prepared(n: Node, prepare: Callable[..., Any], *args: Any) -> Any:
    """Call a reference ``prepare_*``; its ValueError (shape or range outside the kernel's) names the node."""
    try:
        return prepare(*args)
    except ValueError as e:
        raise MCUCError(f"{n.op} '{n.name}': {e}") from e


def act_bounds(n: Node) -> tuple[int, int]:
    """The int8 clamp of a node's fused activation (full range when it has none)."""
    return int(n.attrs.get("act_min", -128)), int(n.attrs.get("act_max", 127))


def same_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    return [ins[0]]


def axis_to_nhwc(ctx: LayoutContext, n: Node) -> list[Node]:
    """NHWC rule of an op with one ``axis`` attribute: on image tensors the NCHW axis moves to its NHWC place."""
    if n.outputs[0] in ctx.image:
        n.attrs["axis"] = NCHW_AXIS_TO_NHWC[int(n.attrs["axis"])]
    return [n]

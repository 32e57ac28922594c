"""Graph IR: the one tensor/node/graph representation every mcuc stage reads and writes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcuc.errors import MCUCError

DTYPES = ("float32", "int8", "int32", "uint8", "int64")


@dataclass
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point).

    ``axis`` is None for per-tensor parameters, else the axis the per-channel
    scale vector runs along (weights use axis 0 in our OHWI layout).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    def __post_init__(self) -> None:
        self.scale = np.asarray(self.scale, dtype=np.float64).reshape(-1)
        self.zero_point = np.asarray(self.zero_point, dtype=np.int64).reshape(-1)
        if self.scale.size != self.zero_point.size:
            raise ValueError("scale and zero_point differ in length")

    @property
    def per_tensor(self) -> bool:
        return self.axis is None

    @property
    def s(self) -> float:
        """Per-tensor scale as a float (MCUCError if per-channel: the op needs one scale for the tensor)."""
        if self.axis is not None:
            raise MCUCError(f"per-channel quantization ({self.scale.size} scales along axis {self.axis}) where "
                            "one scale per tensor is needed")
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        if self.axis is not None:
            raise MCUCError(f"per-channel quantization ({self.scale.size} zero points along axis {self.axis}) where "
                            "one zero point per tensor is needed")
        return int(self.zero_point[0])


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    quant: QuantParams | None = None
    data: np.ndarray | None = None  # constant payload, or None for activations

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    layout: str = "NCHW"  # activation layout of 4-D tensors
    meta: dict[str, Any] = field(default_factory=dict)

    # ---- construction helpers -------------------------------------------------
    def add_tensor(self, t: Tensor) -> Tensor:
        self.tensors[t.name] = t
        return t

    def unique_name(self, base: str) -> str:
        name, i = base, 0
        while name in self.tensors:
            i += 1
            name = f"{base}_{i}"
        return name

    def const(self, base: str, data: np.ndarray, quant: QuantParams | None = None) -> str:
        name = self.unique_name(base)
        self.add_tensor(Tensor(name, tuple(data.shape), str(data.dtype), quant, data))
        return name

    # ---- queries ----------------------------------------------------------------
    def producer(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        c: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    c.setdefault(i, []).append(n)
        return c

    def t(self, name: str) -> Tensor:
        return self.tensors[name]

    def activations(self) -> list[str]:
        """Non-constant tensors in first-definition order (graph inputs first)."""
        seen = list(self.inputs)
        for n in self.nodes:
            seen.extend(o for o in n.outputs if o not in seen)
        return seen

    # ---- maintenance ------------------------------------------------------------
    def toposort(self) -> None:
        """Order nodes so every input is produced before use; error on cycles."""
        ready = set(self.inputs) | {k for k, v in self.tensors.items() if v.is_const} | {""}
        pending = list(self.nodes)
        ordered: list[Node] = []
        while pending:
            progress = False
            rest = []
            for n in pending:
                if all(i in ready for i in n.inputs):
                    ordered.append(n)
                    ready.update(n.outputs)
                    progress = True
                else:
                    rest.append(n)
            if not progress:
                missing = sorted({i for n in rest for i in n.inputs if i not in ready})
                raise MCUCError(f"graph has a cycle or undefined tensors: {missing[:5]}")
            pending = rest
        self.nodes = ordered

    def prune(self) -> None:
        """Drop nodes whose outputs nobody needs and tensors no node references."""
        needed = set(self.outputs)
        kept: list[Node] = []
        for n in reversed(self.nodes):
            if any(o in needed for o in n.outputs):
                kept.append(n)
                needed.update(i for i in n.inputs if i)
        self.nodes = kept[::-1]
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}

    def replace_uses(self, old: str, new: str) -> None:
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]


def check_structure(g: Graph, quantized: bool = False) -> None:
    """Check structural invariants; raise MCUCError naming the first violation.

    Catches dangling tensors, duplicate producers, const/data shape mismatches,
    nodes out of topological order and, for ``quantized`` graphs, int8
    activations without quantization parameters. ``mcuc.ops.verify`` adds the ops' shape rules.
    """
    defined = set(g.inputs)
    for name in g.inputs:
        if name not in g.tensors:
            raise MCUCError(f"graph input '{name}' has no tensor")
    for name, t in g.tensors.items():
        if t.name != name:
            raise MCUCError(f"tensor key '{name}' != tensor name '{t.name}'")
        if t.data is not None:
            if tuple(t.data.shape) != tuple(t.shape):
                raise MCUCError(f"constant '{name}' data shape {t.data.shape} != {t.shape}")
            if str(t.data.dtype) != t.dtype:
                raise MCUCError(f"constant '{name}' data dtype {t.data.dtype} != {t.dtype}")
            defined.add(name)
        if any((not isinstance(d, (int, np.integer))) or d < 0 for d in t.shape):
            raise MCUCError(f"tensor '{name}' has invalid shape {t.shape}")
    for n in g.nodes:
        for i in n.inputs:
            if i == "":
                continue
            if i not in g.tensors:
                raise MCUCError(f"node '{n.name}' ({n.op}) reads dangling tensor '{i}'")
            if i not in defined:
                raise MCUCError(f"node '{n.name}' ({n.op}) reads '{i}' before it is produced")
        for o in n.outputs:
            if o not in g.tensors:
                raise MCUCError(f"node '{n.name}' ({n.op}) writes undeclared tensor '{o}'")
            if o in defined:
                raise MCUCError(f"tensor '{o}' is produced twice (again by '{n.name}')")
            defined.add(o)
    if not g.outputs:
        raise MCUCError("the graph has no outputs")
    for o in g.outputs:
        if o not in defined:
            raise MCUCError(f"graph output '{o}' is never produced")
        if g.tensors[o].is_const or o in g.inputs:
            raise MCUCError(f"graph output '{o}' is a constant or a graph input; mcuc needs computed outputs")
    if quantized:
        for name in g.activations():
            t = g.tensors[name]
            if t.dtype == "int8" and t.quant is None:
                raise MCUCError(f"int8 tensor '{name}' has no quantization parameters")
            if t.dtype == "float32":
                raise MCUCError(f"quantized graph still has float tensor '{name}'")
            if t.quant is not None and not t.quant.per_tensor:
                raise MCUCError(f"activation '{name}' is quantized per channel; mcuc needs one scale and zero "
                                "point per activation tensor")
        for name, t in g.tensors.items():
            if t.quant is not None:
                check_quant(name, t)


# Range of the stored integers, and of the zero points, for each integer tensor type mcuc computes with.
_ZERO_POINT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int32": (0, 0), "int64": (0, 0)}


def check_quant(name: str, t: Tensor) -> None:
    """Quantization parameters int8 arithmetic can use: finite, positive, normal float32 scales (a denormal or
    zero scale makes every requantization multiplier meaningless), zero points of the tensor's integer type
    (0 for int32 biases), and one scale per channel of a per-channel tensor."""
    q = t.quant
    assert q is not None
    tiny, big = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
    bad = ~(np.isfinite(q.scale) & (q.scale >= tiny) & (q.scale <= big))
    if q.scale.size == 0 or bad.any():
        value = float(q.scale[bad][0]) if bad.any() else "none"
        raise MCUCError(f"tensor '{name}' has quantization scale {value}; scales must be finite, positive and "
                        "normal float32 numbers")
    lo, hi = _ZERO_POINT_RANGE.get(t.dtype, (-(2**31), 2**31 - 1))
    if q.zero_point.min() < lo or q.zero_point.max() > hi:
        bad_zp = int(q.zero_point[(q.zero_point < lo) | (q.zero_point > hi)][0])
        raise MCUCError(f"tensor '{name}' ({t.dtype}) has zero point {bad_zp}; it must be in [{lo}, {hi}]")
    if q.axis is not None:
        if not 0 <= q.axis < max(len(t.shape), 1) or (t.shape and t.shape[q.axis] != q.scale.size
                                                        and q.scale.size != 1):
            raise MCUCError(f"tensor '{name}' of shape {t.shape} has {q.scale.size} scales along axis {q.axis}")

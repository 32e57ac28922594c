"""The op registry: ``OPS[name]`` is everything mcuc knows about one IR op (see mcuc/ops/base.py).

Families: conv (conv2d, fully_connected, batchnorm), elementwise (add, sub, mul, div, prelu,
squared_difference, unary functions, lut, requantize, identity), pool (avgpool, maxpool), layout
(reshape, transpose, concat, pad, slice, gather, resize, copy_window), softmax, norm (layernorm,
mean), matmul (batch_matmul), attention, pixels (camera image to int8 input). Adding an op means one
entry in its family's module, its integer reference in mcuc/reference/, its C kernel in mcuc/runtime_c/
and the frontend mapping.

One vocabulary serves float graphs (from the frontends, NCHW then NHWC) and int8 graphs (after
quantization). 4-D activations follow ``Graph.layout``. All attribute integers are Python ints.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, check_structure
from mcuc.ops import (  # noqa: F401  (registers)
    attention,
    conv,
    elementwise,
    layout,
    matmul,
    norm,
    pipeline,
    pixels,
    pool,
    softmax,
)
from mcuc.ops.base import (
    OPS,
    Arg,
    Array1D,
    CExpr,
    Geometry,
    KernelVariant,
    Lowered,
    OpDef,
    Shape,
    Struct,
    op_def,
)
from mcuc.quant import FixedPointRangeError

__all__ = ["OPS", "Arg", "Array1D", "CExpr", "Geometry", "KernelVariant", "Lowered", "OpDef", "Shape", "Struct",
           "check_shapes", "infer_shapes", "lower", "node_macs", "op_def", "variant_of", "variant_scratch_bytes",
           "variants_for", "verify"]


def infer_shapes(node: Node, g: Graph) -> list[Shape]:
    """Output shapes of ``node`` from its input shapes and attributes."""
    ins = [tuple(g.tensors[i].shape) if i else () for i in node.inputs]
    return op_def(node).shape(node, ins, g.layout)


def check_shapes(g: Graph) -> None:
    """Every node's declared output shapes equal what its shape rule infers."""
    for n in g.nodes:
        for o, s in zip(n.outputs, infer_shapes(n, g), strict=False):
            if tuple(g.tensors[o].shape) != tuple(s):
                raise MCUCError(f"node '{n.name}' ({n.op}) output '{o}' declared {g.tensors[o].shape}, inferred {s}")


def verify(g: Graph, quantized: bool = False) -> None:
    """Structural invariants (mcuc.ir.check_structure) and every node's shape rule, and for an int8 graph each
    op's own check of what its kernel computes exactly; MCUCError on the first violation."""
    check_structure(g, quantized)
    check_shapes(g)
    if quantized:
        for n in g.nodes:
            d = op_def(n)
            if d.check is not None:
                d.check(g, n)


def node_macs(node: Node, g: Graph) -> int:
    """Multiply-accumulates of one op (0 for data movement)."""
    return op_def(node).macs(node, g)


def lower(g: Graph, n: Node) -> Lowered:
    """The kernel call of int8 node ``n`` (and its numpy reference): the variant its ``variant`` attribute
    names when that applies to ``n`` (see variant_of), else the portable kernel.

    A reference ``prepare_*`` function refuses parameters outside its kernel's range with a ValueError (as
    mcuc.ops.base.prepared expects): raised right there, it is the model's problem and becomes one MCUCError
    naming the node. A ValueError from anywhere else stays what it is, a bug.
    """
    d = op_def(n)
    if d.lower is None:
        raise MCUCError(f"no int8 kernel for op '{n.op}' (node '{n.name}')")
    try:
        low = d.lower(g, n)
    except FixedPointRangeError as e:
        raise MCUCError(f"{n.op} '{n.name}': {e}") from e
    except ValueError as e:
        if not _raised_by_prepare(e):
            raise
        raise MCUCError(f"{n.op} '{n.name}': {e}") from e
    v = variant_of(g, n)
    if v is None:
        return low
    if v.specialise is not None:
        return v.specialise(g, n, low)
    return replace(low, func=v.func)


def _raised_by_prepare(e: BaseException) -> bool:
    tb = e.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return code.co_name.startswith("prepare") and "reference" in Path(code.co_filename).parts


def variant_of(g: Graph, n: Node) -> KernelVariant | None:
    """The kernel variant node ``n`` runs: the one its ``variant`` attribute names, if it applies to ``n`` as it
    is in ``g`` (a patch-stage copy of a node may not), else None (the portable kernel)."""
    name = n.attrs.get("variant")
    if not name:
        return None
    for v in op_def(n).variants:
        if v.func == name:
            return v if v.applies(g, n) else None
    raise MCUCError(f"node '{n.name}' ({n.op}) names kernel '{name}', which is not a variant of its op")


def variant_scratch_bytes(g: Graph, n: Node) -> int:
    """Arena scratch of the variant ``n`` runs (0 for the portable kernel or a variant without scratch)."""
    v = variant_of(g, n)
    return 0 if v is None or v.scratch is None else v.scratch(g, n)


def variants_for(g: Graph, n: Node, isa: tuple[str, ...] | list[str]) -> list[KernelVariant]:
    """The variants of ``n``'s op that apply to ``n`` and that a core with ISA features ``isa`` runs,
    fastest first: in the op's listed order, except that the variants carrying a cost estimate are ranked
    among themselves by their estimate for ``n`` (cheapest first, ties in listed order). Of the entries of
    one C function, the first the core runs stands for it (the MVE entry on an MVE core that also has DSP)."""
    found: list[KernelVariant] = []
    for v in op_def(n).variants:
        if set(v.isa) <= set(isa) and all(f.func != v.func for f in found) and v.applies(g, n):
            found.append(v)
    slots = [i for i, v in enumerate(found) if v.cost is not None]
    ranked = sorted((found[i] for i in slots), key=lambda v: v.cost(g, n) if v.cost else 0.0)
    for i, v in zip(slots, ranked, strict=True):
        found[i] = v
    return found

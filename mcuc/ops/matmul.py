"""Matmul family: batched matrix multiplication of two activations (attention's q @ k^T and probs @ v).

alpha * (a [..., M, K] @ b [..., K, N]) -> [..., M, N]; batch dimensions broadcast as numpy's matmul;
``alpha`` (default 1) is a folded positive output scale and ``transpose_b`` means b is stored [..., N, K].
"""
from __future__ import annotations

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.ops.base import (
    Arg,
    KernelVariant,
    Lowered,
    OpDef,
    Shape,
    Struct,
    act_bounds,
    c_fields,
    prepared,
    quant_of,
    register,
)
from mcuc.ops.quant_rules import calibrated
from mcuc.reference import transformer as rtf
from mcuc.shapes import broadcast_shape


def matmul_shape(name: str, a: Shape, b: Shape, transpose_b: bool) -> Shape:
    if transpose_b and len(b) >= 2:
        b = tuple(b[:-2]) + (b[-1], b[-2])
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        raise MCUCError(f"batch_matmul '{name}' cannot multiply {a} by {b}")
    return broadcast_shape(tuple(a[:-2]), tuple(b[:-2])) + (a[-2], b[-1])


def _shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    return [matmul_shape(node.name, ins[0], ins[1], bool(node.attrs.get("transpose_b")))]


def _macs(node: Node, g: Graph) -> int:
    return int(np.prod(g.tensors[node.outputs[0]].shape)) * g.tensors[node.inputs[0]].shape[-1]


def _eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    b = np.swapaxes(a[1], -1, -2) if node.attrs.get("transpose_b") else a[1]
    return np.matmul(a[0].astype(np.float64), b) * float(node.attrs.get("alpha", 1.0))


def _lower(g: Graph, n: Node) -> Lowered:
    a, b = n.inputs
    y = n.outputs[0]
    qa, qb, qy = quant_of(g, a), quant_of(g, b), quant_of(g, y)
    alpha = float(n.attrs.get("alpha", 1.0))
    params = prepared(n, rtf.prepare_batch_matmul, tuple(g.tensors[a].shape), tuple(g.tensors[b].shape),
                      qa.s * alpha, qa.zp, qb.s, qb.zp, qy.s, qy.zp, *act_bounds(n),
                      bool(n.attrs.get("transpose_b", False)))
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_batch_matmul_s8", [Arg("struct", 0), Arg("tensor", a), Arg("tensor", b), Arg("tensor", y)],
                   structs=[Struct("mcuc_batch_matmul_params_t", c_fields(params))],
                   ref=lambda env: rtf.batch_matmul_s8(params, env[a], env[b]).reshape(out_shape))


def _any_matmul(g: Graph, n: Node) -> bool:
    """mcuc_batch_matmul_simd_s8 takes every call of the portable kernel (same arguments, no scratch)."""
    return True


MATMUL_VARIANTS = tuple(KernelVariant("mcuc_batch_matmul_simd_s8", _any_matmul, isa=(isa,)) for isa in ("mve", "dsp"))

register(OpDef("batch_matmul", "matmul", _shape, macs=_macs, eval=_eval, quantize=calibrated, lower=_lower,
               variants=MATMUL_VARIANTS))

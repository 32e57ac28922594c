"""Pooling family: average and max pooling over NHWC windows (taps in the padding are skipped)."""
from __future__ import annotations

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.ops.base import (
    Arg,
    Geometry,
    KernelVariant,
    Lowered,
    OpDef,
    Shape,
    Struct,
    act_bounds,
    c_fields,
    register,
)
from mcuc.ops.quant_rules import same_as_input
from mcuc.reference import float_ref as fref
from mcuc.reference import pool as rpool
from mcuc.shapes import conv_out_dim, make_4d, spatial_axes


def _pool_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    x = ins[0]
    if len(x) != 4:
        raise MCUCError(f"{node.op} '{node.name}' needs a 4-D input, got {x}")
    ca, ha, wa = spatial_axes(layout)
    kh, kw = node.attrs["kernel"]
    sh, sw = node.attrs["strides"]
    t, left, b, r = node.attrs["pads"]
    return [make_4d(layout, x[0], x[ca], conv_out_dim(x[ha], kh, sh, t, b), conv_out_dim(x[wa], kw, sw, left, r))]


def _avgpool_macs(node: Node, g: Graph) -> int:
    return int(np.prod(g.tensors[node.outputs[0]].shape)) * int(np.prod(node.attrs["kernel"]))


def _pool_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    at = node.attrs
    y = fref.pool_nhwc(fref.to_nhwc(a[0], layout), "avg" if node.op == "avgpool" else "max", tuple(at["kernel"]),
                       tuple(at["strides"]), tuple(at["pads"]))
    return fref.from_nhwc(y, layout)


def _pool_geometry(g: Graph, n: Node) -> Geometry:
    a = n.attrs
    return Geometry((int(a["kernel"][0]), int(a["kernel"][1])), (int(a["strides"][0]), int(a["strides"][1])),
                    (1, 1), tuple(int(v) for v in a["pads"]))  # type: ignore[arg-type]


def _lower_pool(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    a = n.attrs
    n_, h_, w_, c_ = g.tensors[x].shape
    params = rpool.prepare_pool((n_, h_, w_, c_), tuple(a["kernel"]), tuple(a["strides"]), tuple(a["pads"]),
                                *act_bounds(n))
    ref_fn = rpool.avgpool_s8 if n.op == "avgpool" else rpool.maxpool_s8
    return Lowered(n, f"mcuc_{n.op}_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct(f"mcuc_{n.op}_params_t", c_fields(params))],
                   ref=lambda env: ref_fn(params, env[x]))


def _avg_taps_256(g: Graph, n: Node) -> bool:
    """An average pool of at most 256 taps per window (int16 pair sums of mcuc_avgpool_simd_s8)."""
    return int(np.prod(n.attrs["kernel"])) <= 256


AVGPOOL_VARIANTS = tuple(KernelVariant("mcuc_avgpool_simd_s8", _avg_taps_256, isa=(isa,)) for isa in ("mve", "dsp"))


register(
    OpDef("avgpool", "pool", _pool_shape, macs=_avgpool_macs, eval=_pool_eval, quantize=same_as_input,
          layout="image", window="spatial", geometry=_pool_geometry, lower=_lower_pool, row_kernel=True,
          variants=AVGPOOL_VARIANTS),
    OpDef("maxpool", "pool", _pool_shape, eval=_pool_eval, quantize=same_as_input, layout="image",
          window="spatial", geometry=_pool_geometry, lower=_lower_pool, row_kernel=True),
)

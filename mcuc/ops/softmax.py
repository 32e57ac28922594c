"""Softmax family: int8 softmax over the last axis (mcuc's exp-table algorithm, or TFLite's for .tflite models)."""
from __future__ import annotations

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.ops.base import (
    Arg,
    Array1D,
    KernelVariant,
    Lowered,
    OpDef,
    Shape,
    Struct,
    axis_to_nhwc,
    c_fields,
    prepared,
    quant_of,
    register,
)
from mcuc.ops.quant_rules import softmax_output
from mcuc.reference import float_ref as fref
from mcuc.reference import softmax as rsoftmax
from mcuc.reference import tflite as rtfl


def _softmax_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    if not 0 <= int(node.attrs["axis"]) < len(ins[0]):
        raise MCUCError(f"softmax '{node.name}' axis {node.attrs['axis']} outside the rank of {ins[0]}")
    return [ins[0]]


def _lower_softmax(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    shape = tuple(g.tensors[x].shape)
    if n.attrs.get("axis", len(shape) - 1) != len(shape) - 1:
        raise MCUCError(f"softmax '{n.name}' over axis {n.attrs['axis']} of {shape}: only the last axis is supported")
    beta = float(n.attrs.get("beta", 1.0))
    if n.attrs.get("algorithm") == "tflite":  # TFLite's gemmlowp fixed point, for .tflite models: as TFLM
        tparams = prepared(n, rtfl.prepare_softmax_tflite, shape, quant_of(g, x).s, beta)
        return Lowered(n, "mcuc_softmax_tflite_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                       structs=[Struct("mcuc_softmax_tflite_params_t", c_fields(tparams))],
                       ref=lambda env: rtfl.softmax_tflite_s8(tparams, env[x]))
    yq = quant_of(g, y)
    params = prepared(n, rsoftmax.prepare_softmax, shape, quant_of(g, x).s, beta, yq.s, yq.zp)
    return Lowered(n, "mcuc_softmax_s8", [Arg("struct", 0), Arg("array", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_softmax_params_t", c_fields(params, drop=("exp_table",)))],
                   arrays=[Array1D("uint32_t", params.exp_table)],
                   ref=lambda env: rsoftmax.softmax_s8(params, env[x]))


def _mcuc_algorithm(g: Graph, n: Node) -> bool:
    """mcuc's exp-table softmax (not TFLite's, which .tflite models ask for)."""
    return n.attrs.get("algorithm") != "tflite"


# Same arguments as mcuc_softmax_s8; the row maximum on SIMD lanes, one reciprocal per row instead of a
# division per element.
SOFTMAX_VARIANTS = tuple(KernelVariant("mcuc_softmax_simd_s8", _mcuc_algorithm, isa=(isa,)) for isa in ("mve", "dsp"))


def _softmax_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    return fref.softmax(a[0], int(node.attrs["axis"]))


register(
    OpDef("softmax", "softmax", _softmax_shape, eval=_softmax_eval, quantize=softmax_output,
          layout="follow", to_nhwc=axis_to_nhwc, lower=_lower_softmax, variants=SOFTMAX_VARIANTS),
)

"""Pixels family: the camera image (uint8) to the model's int8 input, the normalisation folded into a table.

``pixels`` reads an interleaved (HWC) image in place; ``pixels_planar`` reads a planar (CHW) one into the
graph's NHWC input. The table is built by mcuc/pixels.py; the ops exist only in int8 graphs.
"""
from __future__ import annotations

from mcuc.ir import Graph, Node
from mcuc.ops.base import Arg, Lowered, OpDef, Shape, Struct, c_fields, const_data, register
from mcuc.reference.pixels import PixelsParams, pixels_s8


def _planar_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    n, c, h, w = ins[0]
    return [(n, h, w, c)]


def _interleaved_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    return [ins[0]]


def _lower(g: Graph, n: Node) -> Lowered:
    x, table, y = n.inputs[0], n.inputs[1], n.outputs[0]
    tdata = const_data(g, table)
    _, h, w, _ = g.tensors[y].shape
    params = PixelsParams(h * w, int(n.attrs["channels"]), int(n.op == "pixels_planar"))
    return Lowered(n, "mcuc_pixels_s8",
                   [Arg("struct", 0), Arg("tensor", table), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_pixels_params_t", c_fields(params))],
                   ref=lambda env: pixels_s8(params, tdata, env[x]))


register(
    OpDef("pixels", "pixels", _interleaved_shape, in_place=True, window="pointwise", lower=_lower),
    OpDef("pixels_planar", "pixels", _planar_shape, lower=_lower),
)

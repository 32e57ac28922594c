"""Layout family: ops that move int8 values without arithmetic (reshape, transpose, concat, pad, slice,
gather), resize (nearest, or bilinear interpolation of the input's integers) and copy_window, the crop/place
step of patch schedules (mcuc/schedule/patch.py)."""
from __future__ import annotations

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.ops.base import (
    Arg,
    Array1D,
    CExpr,
    LayoutContext,
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
from mcuc.ops.quant_rules import QuantContext, same_as_input
from mcuc.quant import quantize_array
from mcuc.reference import float_ref as fref
from mcuc.reference import layout as rlayout
from mcuc.reference import resize as rresize
from mcuc.reference import transformer as rtf
from mcuc.shapes import TO_NCHW, TO_NHWC, make_4d, spatial_axes

# ---- reshape: a view ---------------------------------------------------------------------------


def _reshape_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    shape = tuple(node.attrs["shape"])
    if int(np.prod(shape)) != int(np.prod(ins[0])):
        raise MCUCError(f"reshape '{node.name}' from {ins[0]} to {shape} changes the element count")
    return [shape]


def _lower_reshape(g: Graph, n: Node) -> Lowered:
    """The planner gives a reshape's output its input's memory, so no call is emitted."""
    x, y = n.inputs[0], n.outputs[0]
    shape = tuple(g.tensors[y].shape)
    return Lowered(n, "", [], ref=lambda env: env[x].reshape(shape))


# ---- transpose --------------------------------------------------------------------------------


def _transpose_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    perm = tuple(node.attrs["perm"])
    if sorted(perm) != list(range(len(ins[0]))):
        raise MCUCError(f"transpose '{node.name}': perm {perm} is not a permutation of the axes of {ins[0]}")
    return [tuple(ins[0][p] for p in perm)]


def _transpose_nhwc(ctx: LayoutContext, n: Node) -> list[Node]:
    out4, in4 = n.outputs[0] in ctx.image, n.inputs[0] in ctx.image
    perm = tuple(n.attrs["perm"])
    if out4:
        perm = tuple(perm[TO_NHWC[i]] for i in range(4))
    if in4:
        perm = tuple(TO_NCHW[p] for p in perm)
    n.attrs["perm"] = perm
    return [n]


def _lower_transpose(g: Graph, n: Node) -> Lowered:
    """Any rank that reduces to <= 4 axes once size-1 axes are dropped and adjacent ones merged."""
    x, y = n.inputs[0], n.outputs[0]
    shape, perm = rtf.simplify_transpose(tuple(g.tensors[x].shape), tuple(n.attrs["perm"]))
    params = prepared(n, rlayout.prepare_transpose, shape, perm)
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_transpose_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_transpose_params_t", c_fields(params, drop=("perm",)))],
                   ref=lambda env: rlayout.transpose_s8(params, env[x].reshape(shape)).reshape(out_shape))


# ---- concat -----------------------------------------------------------------------------------


def _concat_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    ax = node.attrs["axis"]
    base = list(ins[0])
    if not 0 <= ax < len(base):
        raise MCUCError(f"concat '{node.name}' axis {ax} outside the rank of {ins[0]}")
    for s in ins[1:]:
        if len(s) != len(base) or any(s[i] != base[i] for i in range(len(s)) if i != ax):
            raise MCUCError(f"concat '{node.name}' inputs {ins} differ off axis {ax}")
    base[ax] = sum(s[ax] for s in ins)
    return [tuple(base)]


def _concat_quant(ctx: QuantContext, n: Node) -> None:
    """Calibrated output; a constant part (a transformer's class token) is stored in the output's parameters."""
    y = n.outputs[0]
    yq = ctx.act_quant(y)
    ctx.output(y, yq)
    ins = [i if (d := ctx.src.tensors[i].data) is None else ctx.out.const(i + "_q", quantize_array(d, yq.s, yq.zp), yq)
           for i in n.inputs]
    ctx.emit(n.op, n.name, ins, [y], dict(n.attrs))


def _lower_concat(g: Graph, n: Node) -> Lowered:
    xs, y = list(n.inputs), n.outputs[0]
    qy = quant_of(g, y)
    params = rlayout.prepare_concat([tuple(g.tensors[x].shape) for x in xs], int(n.attrs["axis"]),
                                    [(quant_of(g, x).s, quant_of(g, x).zp) for x in xs], (qy.s, qy.zp))
    inputs = [c_fields(i) for i in params.inputs]
    ptrs = [CExpr(f"@tensor:{x}") for x in xs]
    return Lowered(n, "mcuc_concat_s8", [Arg("struct", 2), Arg("struct", 1), Arg("tensor", y)],
                   structs=[Struct("mcuc_concat_input_params_t[]", inputs),
                            Struct("int8_t *const[]", ptrs),
                            Struct("mcuc_concat_params_t", {"outer": params.outer, "n_inputs": len(xs),
                                                            "inputs": CExpr("@struct0")})],
                   ref=lambda env: rlayout.concat_s8(params, [env[x] for x in xs]))


# ---- pad ----------------------------------------------------------------------------------------


def _pad_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    pads = node.attrs["pads"]
    if len(pads) != len(ins[0]) or any(min(p) < 0 for p in pads):
        raise MCUCError(f"pad '{node.name}': pads {pads} do not fit {ins[0]}")
    return [tuple(d + p0 + p1 for d, (p0, p1) in zip(ins[0], pads, strict=True))]


def _pad_nhwc(ctx: LayoutContext, n: Node) -> list[Node]:
    if n.outputs[0] in ctx.image:
        pads = list(n.attrs["pads"])
        n.attrs["pads"] = [tuple(pads[p]) for p in TO_NHWC]
    return [n]


def _pad_quant(ctx: QuantContext, n: Node) -> None:
    same_as_input(ctx, n, value=ctx.qp[n.inputs[0]].zp)  # padding is a real 0


def _lower_pad(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    params = rlayout.prepare_pad(tuple(g.tensors[x].shape), [tuple(p) for p in n.attrs["pads"]],
                                 int(n.attrs.get("value", quant_of(g, x).zp)))
    return Lowered(n, "mcuc_pad_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_pad_params_t", c_fields(params))],
                   ref=lambda env: rlayout.pad_s8(params, env[x]))


# ---- slice, gather ----------------------------------------------------------------------------------


def _slice_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    x, at = ins[0], node.attrs
    starts, ends, steps = at["starts"], at["ends"], at["steps"]
    if not len(starts) == len(ends) == len(steps) == len(x) or min(steps, default=1) < 1 or min(starts, default=0) < 0:
        raise MCUCError(f"slice '{node.name}' needs per-axis starts >= 0 and steps >= 1 for {x}")
    out = tuple(len(range(d)[s:e:k]) for d, s, e, k in zip(x, starts, ends, steps, strict=True))
    if 0 in out:
        raise MCUCError(f"slice '{node.name}' of {x} is empty")
    return [out]


def _slice_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    at = node.attrs
    idx = tuple(slice(s, e, k) for s, e, k in zip(at["starts"], at["ends"], at["steps"], strict=True))
    return np.ascontiguousarray(a[0][idx])


def _slice_nhwc(ctx: LayoutContext, n: Node) -> list[Node]:
    if n.outputs[0] in ctx.image:
        for k in ("starts", "ends", "steps"):
            n.attrs[k] = tuple(n.attrs[k][p] for p in TO_NHWC)
    return [n]


def _lower_slice(g: Graph, n: Node) -> Lowered:
    a = n.attrs
    shape, starts, ends, steps = rtf.simplify_slice(tuple(g.tensors[n.inputs[0]].shape), tuple(a["starts"]),
                                                    tuple(a["ends"]), tuple(a["steps"]))
    params = prepared(n, rtf.prepare_slice, shape, starts, ends, steps)
    x, y = n.inputs[0], n.outputs[0]
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_slice_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_slice_params_t", c_fields(params))],
                   ref=lambda env: rtf.slice_s8(params, env[x]).reshape(out_shape))


def _gather_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    x, ax, idx = ins[0], int(node.attrs["axis"]), tuple(node.attrs["indices"])
    if not 0 <= ax < len(x) or not idx or any(not 0 <= i < x[ax] for i in idx):
        raise MCUCError(f"gather '{node.name}': indices {idx} on axis {ax} of {x}")
    return [tuple(x[:ax]) + (len(idx),) + tuple(x[ax + 1:])]


def _lower_gather(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    params = prepared(n, rtf.prepare_gather, tuple(g.tensors[x].shape), int(n.attrs["axis"]),
                      tuple(n.attrs["indices"]))
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_gather_s8", [Arg("struct", 0), Arg("array", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_gather_params_t", c_fields(params, drop=("indices",)))],
                   arrays=[Array1D("int32_t", params.indices)],
                   ref=lambda env: rtf.gather_s8(params, env[x]).reshape(out_shape))


# ---- resize -------------------------------------------------------------------------------------------


def _resize_rule(n: Node) -> rresize.ResizeRule:
    a = n.attrs
    scales = tuple(float(v) for v in a.get("scales", (0.0, 0.0)))
    return rresize.ResizeRule(str(a["mode"]), str(a["rule"]), str(a["coord"]),
                              str(a.get("nearest_mode", "round_prefer_floor")), (scales[0], scales[1]))


def _resize_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    x = ins[0]
    if len(x) != 4:
        raise MCUCError(f"resize '{node.name}' needs a 4-D input, got {x}")
    try:
        _resize_rule(node).check()
    except ValueError as e:
        raise MCUCError(f"resize '{node.name}': {e}") from e
    ca = spatial_axes(layout)[0]
    oh, ow = (int(d) for d in node.attrs["size"])
    return [make_4d(layout, x[0], x[ca], oh, ow)]


def _resize_macs(node: Node, g: Graph) -> int:
    """Bilinear: four multiply-accumulates per output element; nearest only copies."""
    return 4 * g.tensors[node.outputs[0]].size if node.attrs["mode"] == "linear" else 0


def _resize_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    y = rresize.resize_float(fref.to_nhwc(a[0], layout), _resize_rule(node), tuple(node.attrs["size"]))
    return fref.from_nhwc(y, layout)


def _lower_resize(g: Graph, n: Node) -> Lowered:
    """Source rows and columns and their weights are tables computed here; the kernel reads them."""
    x, y = n.inputs[0], n.outputs[0]
    params, rows, cols = prepared(n, rresize.prepare_resize, tuple(g.tensors[x].shape), tuple(n.attrs["size"]),
                                  _resize_rule(n))
    return Lowered(n, "mcuc_resize_s8", [Arg("struct", 0), Arg("array", 0), Arg("array", 1), Arg("tensor", x),
                                         Arg("tensor", y)],
                   structs=[Struct("mcuc_resize_params_t", c_fields(params))],
                   arrays=[Array1D("int16_t", rows.reshape(-1)), Array1D("int16_t", cols.reshape(-1))],
                   ref=lambda env: rresize.resize_s8(params, rows, cols, env[x]))


# ---- copy_window (patch schedules) ----------------------------------------------------------------


def _copy_window_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    return []  # the schedule builder declares the window tensors it writes


def _lower_copy_window(g: Graph, n: Node) -> Lowered:
    """Copy a rows x cols box of an NHWC tensor into another: a crop (writes its output) or a place into a
    tensor an earlier op wrote (input 1, updated in place)."""
    src = n.inputs[0]
    dst = n.outputs[0] if n.outputs else n.inputs[1]
    sn, sh, sw, sc = g.tensors[src].shape
    _, dh, dw, _ = g.tensors[dst].shape
    (sy, sx), (dy, dx), (rows, cols) = n.attrs["src_yx"], n.attrs["dst_yx"], n.attrs["size"]
    params = {"batch": sn, "channels": sc, "src_h": sh, "src_w": sw, "src_y": sy, "src_x": sx,
              "dst_h": dh, "dst_w": dw, "dst_y": dy, "dst_x": dx, "rows": rows, "cols": cols}
    dst_shape = tuple(g.tensors[dst].shape)

    def ref(env: dict[str, np.ndarray]) -> np.ndarray:
        if dst not in env:
            env[dst] = np.zeros(dst_shape, dtype=np.int8)
        env[dst][:, dy:dy + rows, dx:dx + cols, :] = env[src][:, sy:sy + rows, sx:sx + cols, :]
        return env[dst]

    return Lowered(n, "mcuc_copy_window_s8", [Arg("struct", 0), Arg("tensor", src), Arg("tensor", dst)],
                   structs=[Struct("mcuc_copy_window_params_t", params)], ref=ref)


register(
    OpDef("reshape", "layout", _reshape_shape, eval=lambda n, a, lay: a[0].reshape(n.attrs["shape"]),
          quantize=same_as_input, to_nhwc=lambda ctx, n: ctx.reshape(n), view=True, lower=_lower_reshape),
    OpDef("transpose", "layout", _transpose_shape,
          eval=lambda n, a, lay: np.ascontiguousarray(a[0].transpose(n.attrs["perm"])), quantize=same_as_input,
          to_nhwc=_transpose_nhwc, lower=_lower_transpose),
    OpDef("concat", "layout", _concat_shape, eval=lambda n, a, lay: np.concatenate(a, axis=n.attrs["axis"]),
          quantize=_concat_quant, layout="follow", to_nhwc=axis_to_nhwc, lower=_lower_concat),
    OpDef("pad", "layout", _pad_shape,
          eval=lambda n, a, lay: np.pad(a[0], [tuple(p) for p in n.attrs["pads"]],
                                        constant_values=n.attrs.get("value", 0.0)),
          quantize=_pad_quant, layout="follow", to_nhwc=_pad_nhwc, lower=_lower_pad),
    OpDef("slice", "layout", _slice_shape, eval=_slice_eval, quantize=same_as_input, layout="follow",
          to_nhwc=_slice_nhwc, lower=_lower_slice),
    OpDef("gather", "layout", _gather_shape,
          eval=lambda n, a, lay: np.take(a[0], list(n.attrs["indices"]), axis=n.attrs["axis"]),
          quantize=same_as_input, layout="follow", to_nhwc=axis_to_nhwc, lower=_lower_gather),
    OpDef("resize", "layout", _resize_shape, macs=_resize_macs, eval=_resize_eval, quantize=same_as_input,
          layout="image", lower=_lower_resize),
    OpDef("copy_window", "layout", _copy_window_shape, lower=_lower_copy_window),
)

"""NCHW -> NHWC: the layout every int8 kernel (like CMSIS-NN and TFLite Micro) is written for.

Channels-last keeps a pixel's channels contiguous, which is what the conv inner loops and the
patch-based scheduler (which slices rows) need. Every image-like 4-D activation is permuted (one
that a conv, pool or batchnorm reads or writes, or a 4-D graph input, and the 4-D tensors joined
to those through elementwise, concat, pad, softmax, slice, gather and mean ops); constants and axis
attributes follow. Other 4-D tensors, such as attention scores [B, heads, T, T], keep their order.
Reshapes of image tensors get explicit transposes where the flattened element order would
otherwise change, so the graph computes exactly what the source model did.
"""
from __future__ import annotations

import copy

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, QuantParams, Tensor

TO_NHWC = (0, 2, 3, 1)  # NHWC axis i holds NCHW axis TO_NHWC[i]
TO_NCHW = (0, 3, 1, 2)
NCHW_AXIS_TO_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}
SHAPE_PRESERVING = ("relu", "clip", "sigmoid", "hardsigmoid", "hardswish", "gelu", "tanh", "identity")
UNARY_EXTRA = ("erf", "sqrt", "pow")
IMAGE_OPS = ("conv2d", "avgpool", "maxpool", "batchnorm")
# ops whose 4-D operands and result share one layout
LAYOUT_FOLLOWING = (*SHAPE_PRESERVING, *UNARY_EXTRA, "add", "sub", "mul", "div", "concat", "pad", "softmax",
                    "slice", "gather", "mean")


def image_tensors(g: Graph) -> set[str]:
    """The 4-D activations that are images (NCHW in the source, NHWC after this pass)."""
    four = {a for a in g.activations() if len(g.tensors[a].shape) == 4}
    image = {i for i in g.inputs if i in four}
    groups: list[list[str]] = []
    for n in g.nodes:
        names = [x for x in [*n.inputs, *n.outputs] if x in four]
        if n.op in IMAGE_OPS:
            image.update(names)
        elif n.op in LAYOUT_FOLLOWING and len(names) > 1:
            groups.append(names)
    changed = True
    while changed:
        changed = False
        for grp in groups:
            if any(x in image for x in grp) and not all(x in image for x in grp):
                image.update(grp)
                changed = True
    return image


def to_nhwc(g: Graph) -> Graph:
    """Return an NHWC copy of NCHW graph ``g`` (a graph already NHWC is returned unchanged)."""
    if g.layout == "NHWC":
        return g
    g = copy.deepcopy(g)
    four_d = image_tensors(g)
    acts = [a for a in g.activations() if a in four_d]
    for a in acts:
        t = g.tensors[a]
        t.shape = tuple(t.shape[p] for p in TO_NHWC)
    kept = {a for a in g.activations() if len(g.tensors[a].shape) == 4 and a not in four_d}
    g.meta["input_layouts"] = {i: "ND" if i in kept else "NCHW" for i in g.inputs}
    g.meta["output_layouts"] = {o: "ND" if o in kept else "NCHW" for o in g.outputs}
    g.layout = "NHWC"
    converted: set[str] = set()
    _unshare_conv_weights(g)
    nodes: list[Node] = []
    for n in g.nodes:
        nodes.extend(_convert(g, n, four_d, converted))
    g.nodes = nodes
    g.prune()
    return g


def _convert(g: Graph, n: Node, four_d: set[str], converted: set[str]) -> list[Node]:
    op = n.op
    ins4 = [i for i in n.inputs if i in four_d]
    out4 = n.outputs[0] in four_d
    if op == "conv2d":
        _ohwi_weight(g, n, converted)
        return [n]
    if op in ("avgpool", "maxpool", "batchnorm") or op in SHAPE_PRESERVING or op in UNARY_EXTRA:
        return [n]
    if op in ("add", "sub", "mul", "div"):
        if out4:
            n.inputs = [_broadcast_operand(g, i, four_d) for i in n.inputs]
        return [n]
    if op in ("concat", "softmax") and out4:
        n.attrs["axis"] = NCHW_AXIS_TO_NHWC[int(n.attrs["axis"])]
        return [n]
    if op == "pad" and out4:
        pads = list(n.attrs["pads"])
        n.attrs["pads"] = [tuple(pads[p]) for p in TO_NHWC]
        return [n]
    if op == "transpose" and (out4 or ins4):
        perm = tuple(n.attrs["perm"])
        if out4:
            perm = tuple(perm[TO_NHWC[i]] for i in range(4))
        if ins4:
            perm = tuple(TO_NCHW[p] for p in perm)
        n.attrs["perm"] = perm
        return [n]
    if op == "slice" and out4:
        for k in ("starts", "ends", "steps"):
            n.attrs[k] = tuple(n.attrs[k][p] for p in TO_NHWC)
        return [n]
    if op == "gather" and out4:
        n.attrs["axis"] = NCHW_AXIS_TO_NHWC[int(n.attrs["axis"])]
        return [n]
    if op == "mean" and ins4:
        axes = tuple(sorted(NCHW_AXIS_TO_NHWC[a] for a in n.attrs["axes"]))
        kept_nchw = [a for a in range(4) if a not in n.attrs["axes"]]
        if not n.attrs.get("keepdims", True) and [NCHW_AXIS_TO_NHWC[a] for a in kept_nchw] != sorted(
                NCHW_AXIS_TO_NHWC[a] for a in kept_nchw):
            raise MCUCError(f"mean '{n.name}' over NCHW axes {n.attrs['axes']} without keepdims changes the "
                            "order of the kept axes in NHWC; mcuc cannot convert it")
        n.attrs["axes"] = axes
        return [n]
    if op == "reshape":
        return _reshape(g, n, four_d)
    if ins4 or out4:
        raise MCUCError(f"cannot convert {op} node '{n.name}' on 4-D tensors to NHWC")
    return [n]


def _unshare_conv_weights(g: Graph) -> None:
    """Give conv weights that some other op also reads their own copy, so permuting is local."""
    readers: dict[str, list[tuple[Node, int]]] = {}
    for n in g.nodes:
        for k, i in enumerate(n.inputs):
            readers.setdefault(i, []).append((n, k))
    for name, uses in readers.items():
        if any(n.op == "conv2d" and k == 1 for n, k in uses) and \
                any(not (n.op == "conv2d" and k == 1) for n, k in uses):
            t = g.tensors[name]
            if t.data is None:
                continue
            copy_name = g.const(name + "_conv", t.data.copy(), t.quant)
            for n, k in uses:
                if n.op == "conv2d" and k == 1:
                    n.inputs[1] = copy_name


def _ohwi_weight(g: Graph, n: Node, converted: set[str]) -> None:
    """[O, I/g, kh, kw] -> [O, kh, kw, I/g] (per-channel quant axis remapped with it)."""
    name = n.inputs[1]
    if name in converted:
        return
    t = g.tensors[name]
    if t.data is None:
        raise MCUCError(f"conv2d '{n.name}' has non-constant weights; mcuc needs constant weights")
    t.data = np.ascontiguousarray(t.data.transpose(TO_NHWC))
    t.shape = tuple(t.data.shape)
    t.quant = _remap_quant(t.quant)
    converted.add(name)


def _remap_quant(q: QuantParams | None) -> QuantParams | None:
    if q is None or q.axis is None:
        return q
    return QuantParams(q.scale, q.zero_point, TO_NHWC.index(q.axis))


def _broadcast_operand(g: Graph, name: str, four_d: set[str]) -> str:
    """A 4-D-broadcasting operand in NHWC: activations must be 4-D, constants are permuted."""
    if name in four_d:
        return name
    t = g.tensors[name]
    if t.data is None:
        if t.size == 1:
            return name
        raise MCUCError(f"tensor '{name}' of shape {t.shape} broadcasts against a 4-D activation; "
                        "mcuc supports that only for constants")
    if t.data.ndim > 4:
        raise MCUCError(f"constant '{name}' of rank {t.data.ndim} broadcasts against a 4-D activation")
    if t.size == 1:
        return name
    data4 = t.data.reshape((1,) * (4 - t.data.ndim) + tuple(t.data.shape))
    quant = t.quant
    if quant is not None and quant.axis is not None:
        quant = QuantParams(quant.scale, quant.zero_point, TO_NHWC.index(quant.axis + 4 - t.data.ndim))
    return g.const(name + "_nhwc", np.ascontiguousarray(data4.transpose(TO_NHWC)), quant)


def _same_order(nchw_shape: tuple[int, ...]) -> bool:
    """NCHW and NHWC hold the elements in the same order when C == 1 or H * W == 1."""
    _, c, h, w = nchw_shape
    return c == 1 or h * w == 1


def _reshape(g: Graph, n: Node, four_d: set[str]) -> list[Node]:
    """Reshape in NCHW element order, transposing into and out of NCHW where the order differs."""
    x, y = n.inputs[0], n.outputs[0]
    out: list[Node] = []
    if x in four_d:
        nhwc = g.tensors[x].shape
        nchw = tuple(nhwc[p] for p in TO_NCHW)
        if not _same_order(nchw):
            xt = g.unique_name(x + "_nchw")
            g.add_tensor(Tensor(xt, nchw))
            out.append(Node("transpose", n.name + "_to_nchw", [x], [xt], {"perm": TO_NCHW}))
            n.inputs = [xt]
    if y in four_d:
        nchw = tuple(int(d) for d in n.attrs["shape"])
        if not _same_order(nchw):
            yt = g.unique_name(y + "_nchw")
            g.add_tensor(Tensor(yt, nchw, quant=g.tensors[y].quant))
            n.outputs = [yt]
            out.append(n)
            out.append(Node("transpose", n.name + "_to_nhwc", [yt], [y], {"perm": TO_NHWC}))
            return out
        n.attrs["shape"] = tuple(nchw[p] for p in TO_NHWC)
    out.append(n)
    return out

"""NCHW -> NHWC: the layout every int8 kernel (like CMSIS-NN and TFLite Micro) is written for.

Channels-last keeps a pixel's channels contiguous, which is what the conv inner loops and the
patch-based scheduler (which slices rows) need. Every image-like 4-D activation is permuted: one
that an op of the registry's ``image`` layout reads or writes (conv, pool, batchnorm), a 4-D graph
input, and the 4-D tensors joined to those through ``follow`` ops (elementwise, concat, pad,
softmax, slice, gather, mean). Each op's own ``to_nhwc`` rule then moves its axis attributes and
constant operands; other 4-D tensors, such as attention scores [B, heads, T, T], keep their order.
Reshapes of image tensors get explicit transposes where the flattened element order would
otherwise change, so the graph computes exactly what the source model did.
"""
from __future__ import annotations

import copy

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.ops import op_def
from mcuc.shapes import TO_NCHW, TO_NHWC


def image_tensors(g: Graph) -> set[str]:
    """The 4-D activations that are images (NCHW in the source, NHWC after this pass)."""
    four = {a for a in g.activations() if len(g.tensors[a].shape) == 4}
    image = {i for i in g.inputs if i in four}
    groups: list[list[str]] = []
    for n in g.nodes:
        names = [x for x in [*n.inputs, *n.outputs] if x in four]
        kind = op_def(n).layout
        if kind == "image":
            image.update(names)
        elif kind == "follow" and len(names) > 1:
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
    ctx = _Layout(g, image_tensors(g))
    for a in g.activations():
        if a in ctx.image:
            t = g.tensors[a]
            t.shape = tuple(t.shape[p] for p in TO_NHWC)
    kept = {a for a in g.activations() if len(g.tensors[a].shape) == 4 and a not in ctx.image}
    g.meta["input_layouts"] = {i: "ND" if i in kept else "NCHW" for i in g.inputs}
    g.meta["output_layouts"] = {o: "ND" if o in kept else "NCHW" for o in g.outputs}
    g.layout = "NHWC"
    _unshare_conv_weights(g)
    nodes: list[Node] = []
    for n in g.nodes:
        nodes.extend(ctx.convert(n))
    g.nodes = nodes
    g.prune()
    return g


class _Layout:
    """The conversion of one graph: which tensors are images, and the rewrites the ops' rules ask for."""

    def __init__(self, g: Graph, image: set[str]) -> None:
        self.g = g
        self.image = image
        self.converted: set[str] = set()

    def convert(self, n: Node) -> list[Node]:
        d = op_def(n)
        if d.to_nhwc is not None:
            return d.to_nhwc(self, n)
        if d.layout == "keep" and any(x in self.image for x in [*n.inputs, *n.outputs]):
            raise MCUCError(f"cannot convert {n.op} node '{n.name}' on 4-D tensors to NHWC")
        return [n]

    def ohwi_weight(self, n: Node, index: int) -> None:
        """Conv weights [O, I/g, kh, kw] -> [O, kh, kw, I/g] (per-channel quant axis remapped with them)."""
        name = n.inputs[index]
        if name in self.converted:
            return
        t = self.g.tensors[name]
        if t.data is None:
            raise MCUCError(f"{n.op} '{n.name}' has non-constant weights; mcuc needs constant weights")
        t.data = np.ascontiguousarray(t.data.transpose(TO_NHWC))
        t.shape = tuple(t.data.shape)
        t.quant = _remap_quant(t.quant)
        self.converted.add(name)

    def broadcast_operand(self, name: str) -> str:
        """A 4-D-broadcasting operand in NHWC: activations must be 4-D, constants are permuted."""
        g = self.g
        if name in self.image:
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

    def reshape(self, n: Node) -> list[Node]:
        """Reshape in NCHW element order, transposing into and out of NCHW where the order differs."""
        g = self.g
        x, y = n.inputs[0], n.outputs[0]
        out: list[Node] = []
        if x in self.image:
            nhwc = g.tensors[x].shape
            nchw = tuple(nhwc[p] for p in TO_NCHW)
            if not _same_order(nchw):
                xt = g.unique_name(x + "_nchw")
                g.add_tensor(Tensor(xt, nchw))
                out.append(Node("transpose", n.name + "_to_nchw", [x], [xt], {"perm": TO_NCHW}))
                n.inputs = [xt]
        if y in self.image:
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


def _unshare_conv_weights(g: Graph) -> None:
    """Give conv weights that some other op also reads their own copy, so permuting is local."""
    readers: dict[str, list[tuple[Node, int]]] = {}
    for n in g.nodes:
        for k, i in enumerate(n.inputs):
            readers.setdefault(i, []).append((n, k))
    for name, uses in readers.items():
        if any(_image_weight(n, k) for n, k in uses) and not all(_image_weight(n, k) for n, k in uses):
            t = g.tensors[name]
            if t.data is None:
                continue
            copy_name = g.const(name + "_conv", t.data.copy(), t.quant)
            for n, k in uses:
                if _image_weight(n, k):
                    n.inputs[1] = copy_name


def _image_weight(n: Node, index: int) -> bool:
    """Input ``index`` of ``n`` is the weight of an image op (permuted to OHWI by its NHWC rule)."""
    d = op_def(n)
    return index == 1 and d.weighted and d.layout == "image"


def _remap_quant(q: QuantParams | None) -> QuantParams | None:
    if q is None or q.axis is None:
        return q
    return QuantParams(q.scale, q.zero_point, TO_NHWC.index(q.axis))


def _same_order(nchw_shape: tuple[int, ...]) -> bool:
    """NCHW and NHWC hold the elements in the same order when C == 1 or H * W == 1."""
    _, c, h, w = nchw_shape
    return c == 1 or h * w == 1



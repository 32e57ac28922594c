"""Simplifications that remove whole ops: identity/dropout, zero pads before convs, fused activations.

Each removed op is a kernel call and an arena buffer fewer on the microcontroller; a fused ReLU
also becomes a free clamp in the producer's requantization.
"""
from __future__ import annotations

import copy

from mcuc.ir import Graph, Node
from mcuc.ops import op_def
from mcuc.shapes import spatial_axes


def fuse(g: Graph) -> Graph:
    """Return a copy of ``g`` with identities removed, zero pads folded and activations fused."""
    g = copy.deepcopy(g)
    remove_identities(g)
    fold_pads(g)
    fuse_activations(g)
    g.prune()
    return g


def remove_identities(g: Graph) -> None:
    """Drop identity nodes (ONNX Identity/Dropout), rewiring readers to the identity's input."""
    kept: list[Node] = []
    for n in g.nodes:
        if n.op != "identity":
            kept.append(n)
            continue
        x, y = n.inputs[0], n.outputs[0]
        if y in g.outputs:
            if x in g.inputs or x in g.outputs:
                kept.append(n)  # a graph input/output also exposed under a second name: keep the copy
                continue
            _rename_tensor(g, x, y)  # keep the model's output name
        else:
            g.replace_uses(y, x)
            if g.tensors[x].quant is None:
                g.tensors[x].quant = g.tensors[y].quant
    g.nodes = kept


def fold_pads(g: Graph) -> None:
    """Fold a zero, spatial-only, non-negative pad into the pads of the conv2d nodes reading it.

    Not into avgpool (it excludes padding from the mean, a zero pad counts) nor maxpool (its
    implicit padding is -inf, not 0).
    """
    consumers = g.consumers()
    _, ha, wa = spatial_axes(g.layout)
    for n in g.nodes:
        if n.op != "pad" or float(n.attrs.get("value", 0.0)) != 0.0 or len(g.tensors[n.inputs[0]].shape) != 4:
            continue
        pads = [tuple(p) for p in n.attrs["pads"]]
        if any(pads[i] != (0, 0) for i in range(4) if i not in (ha, wa)):
            continue
        y = n.outputs[0]
        users = consumers.get(y, [])
        if not users or y in g.outputs or any(u.op != "conv2d" or u.inputs[0] != y or y in u.inputs[1:]
                                              for u in users):
            continue
        for u in users:
            t, left, b, r = u.attrs["pads"]
            u.attrs["pads"] = (t + pads[ha][0], left + pads[wa][0], b + pads[ha][1], r + pads[wa][1])
            u.inputs[0] = n.inputs[0]
    # the pad nodes now without readers disappear in prune()


def fuse_activations(g: Graph) -> None:
    """An activation (relu / clip) after an op that takes one (registry: ``fuses_activation``: conv2d,
    fully_connected, add, sub, mul) becomes the producer's ``act`` attribute.

    The activation's output tensor becomes the producer's output, so quantization parameters a
    QDQ model attached to the activation output stay on the fused result.
    """
    producers = g.producer()
    consumers = g.consumers()
    kept: list[Node] = []
    for n in g.nodes:
        if not op_def(n).activation:
            kept.append(n)
            continue
        x = n.inputs[0]
        p = producers.get(x)
        if (p is None or not op_def(p).fuses_activation or p.attrs.get("act") is not None
                or len(consumers.get(x, [])) != 1 or x in g.outputs):
            kept.append(n)
            continue
        if n.op == "relu":
            p.attrs["act"] = "relu"
        else:
            p.attrs.update(act="clip", act_lo=n.attrs.get("lo"), act_hi=n.attrs.get("hi"))
        p.outputs = [n.outputs[0]]
        producers[n.outputs[0]] = p
    g.nodes = kept


def _rename_tensor(g: Graph, old: str, new: str) -> None:
    """Make tensor ``old`` be called ``new`` (whose previous tensor is dropped)."""
    t = g.tensors.pop(old)
    quant = g.tensors[new].quant
    t.name = new
    if t.quant is None:
        t.quant = quant
    g.tensors[new] = t
    for n in g.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]
        n.outputs = [new if o == old else o for o in n.outputs]

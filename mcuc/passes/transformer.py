"""Transformer pattern fusion: decomposed LayerNorm and erf-GELU subgraphs become one op each.

Exporters and hand-written modules spell LayerNorm as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div
(then Mul by gamma, Add beta) and exact GELU as x * 0.5 * (1 + erf(x / sqrt 2)). Left as they are,
each op becomes an int8 kernel with its own rounding and its own arena buffer; fused, LayerNorm
runs as one integer kernel and GELU as one look-up table. A constant bias added after a MatMul
becomes the fully connected layer's bias, a positive scale on a batched MatMul (attention's
1/sqrt(d)) its ``alpha``, and a transpose of its second operand's last two axes (k^T) its
``transpose_b``, so none of them costs an int8 op and a buffer. The softmax pass moves any softmax axis
last (between two transposes), the only axis the int8 kernel reduces over.
"""
from __future__ import annotations

import copy

import numpy as np

from mcuc.ir import Graph, Node, Tensor


def fuse_transformer(g: Graph) -> Graph:
    """Return a copy of ``g`` with LayerNorm and GELU patterns fused (other nodes untouched)."""
    g = copy.deepcopy(g)
    while (_fuse_one_layernorm(g) or _fuse_one_gelu(g) or _fold_matmul_bias(g) or _fold_matmul_scale(g)
           or _fold_transposed_operand(g)):
        pass
    g.prune()
    return g


# ---- helpers -------------------------------------------------------------------------------


class _View:
    """Producer/consumer maps of a graph, rebuilt after every rewrite."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.prod = g.producer()
        self.cons = g.consumers()

    def node(self, name: str, op: str) -> Node | None:
        n = self.prod.get(name)
        return n if n is not None and n.op == op else None

    def only_consumer(self, name: str, op: str) -> Node | None:
        users = self.cons.get(name, [])
        if len(users) != 1 or name in self.g.outputs or users[0].op != op:
            return None
        return users[0]

    def scalar(self, name: str) -> float | None:
        """The value of a constant with a single distinct element, else None."""
        t = self.g.tensors.get(name)
        if t is None or t.data is None or t.data.size == 0:
            return None
        v = np.unique(t.data)
        return float(v[0]) if v.size == 1 else None

    def other(self, n: Node, name: str) -> str | None:
        """The operand of binary node ``n`` that is not ``name`` (None if both or neither are)."""
        a, b = n.inputs
        if a == name and b != name:
            return b
        if b == name and a != name:
            return a
        return None

    def plain(self, n: Node) -> bool:
        return n.attrs.get("act") is None


def _close(v: float | None, target: float, tol: float = 1e-4) -> bool:
    return v is not None and abs(v - target) <= tol * max(1.0, abs(target))


def _last_axis_mean(v: _View, n: Node | None) -> bool:
    if n is None:
        return False
    rank = len(v.g.tensors[n.inputs[0]].shape)
    return tuple(n.attrs["axes"]) == (rank - 1,) and bool(n.attrs.get("keepdims", True))


def _channel_const(v: _View, name: str, c: int) -> np.ndarray | None:
    """A constant broadcasting as a [C] vector over the last axis, as float32 [C]; else None."""
    t = v.g.tensors.get(name)
    if t is None or t.data is None or t.data.size not in (1, c) or (t.data.size == c and t.data.shape[-1] != c):
        return None
    return np.ascontiguousarray(np.broadcast_to(t.data.reshape(-1), (c,)).astype(np.float32))


def _replace(g: Graph, remove: list[Node], new: Node) -> None:
    """Drop ``remove`` and put ``new`` where the last of them stood (its inputs exist by then)."""
    ids = {id(n) for n in remove}
    at = max(i for i, n in enumerate(g.nodes) if id(n) in ids)
    g.nodes = [new if i == at else n for i, n in enumerate(g.nodes) if i == at or id(n) not in ids]


# ---- LayerNorm -----------------------------------------------------------------------------


def _fuse_one_layernorm(g: Graph) -> bool:
    """mean -> sub -> (pow 2 | mul self) -> mean -> add eps -> sqrt -> div [-> mul gamma] [-> add beta]."""
    v = _View(g)
    for sub in g.nodes:
        if sub.op != "sub" or not v.plain(sub):
            continue
        x, m = sub.inputs
        mean1 = v.node(m, "mean")
        if mean1 is None or mean1.inputs[0] != x or not _last_axis_mean(v, mean1):
            continue
        d = sub.outputs[0]
        users = v.cons.get(d, [])
        sq = next((u for u in users if (u.op == "pow" and u.attrs.get("exponent") == 2.0)
                   or (u.op == "mul" and u.inputs == [d, d])), None)
        div = next((u for u in users if u.op == "div" and u.inputs[0] == d), None)
        if sq is None or div is None or len(users) != 2 or d in g.outputs:
            continue
        mean2 = v.only_consumer(sq.outputs[0], "mean")
        if not _last_axis_mean(v, mean2):
            continue
        assert mean2 is not None
        add = v.only_consumer(mean2.outputs[0], "add")
        if add is None or not v.plain(add):
            continue
        eps_name = v.other(add, mean2.outputs[0])
        eps = v.scalar(eps_name) if eps_name else None
        sqrt = v.only_consumer(add.outputs[0], "sqrt")
        if eps is None or eps < 0 or sqrt is None or div.inputs[1] != sqrt.outputs[0]:
            continue
        if len(v.cons.get(mean1.outputs[0], [])) != 1 or len(v.cons.get(sqrt.outputs[0], [])) != 1:
            continue
        c = g.tensors[x].shape[-1]
        chain = [mean1, sub, sq, mean2, add, sqrt, div]
        y = div.outputs[0]
        gamma, beta = np.ones(c, np.float32), np.zeros(c, np.float32)
        mul = v.only_consumer(y, "mul")
        if mul is not None and v.plain(mul):
            other = v.other(mul, y)
            gv = _channel_const(v, other, c) if other else None
            if gv is not None and g.tensors[mul.outputs[0]].shape == g.tensors[y].shape:
                gamma, y = gv, mul.outputs[0]
                chain.append(mul)
        add_b = v.only_consumer(y, "add")
        if add_b is not None and v.plain(add_b):
            other = v.other(add_b, y)
            bv = _channel_const(v, other, c) if other else None
            if bv is not None and g.tensors[add_b.outputs[0]].shape == g.tensors[y].shape:
                beta, y = bv, add_b.outputs[0]
                chain.append(add_b)
        gn = g.const(sub.name + "_gamma", gamma)
        bn = g.const(sub.name + "_beta", beta)
        _replace(g, chain, Node("layernorm", sub.name + "_layernorm", [x, gn, bn], [y], {"epsilon": eps}))
        return True
    return False


# ---- GELU ----------------------------------------------------------------------------------


def _fuse_one_gelu(g: Graph) -> bool:
    """erf(x * 1/sqrt2) + 1, times x and times 0.5 in any grouping -> gelu(x)."""
    v = _View(g)
    for erf in g.nodes:
        if erf.op != "erf":
            continue
        scale = v.node(erf.inputs[0], "mul")
        if scale is None or not v.plain(scale) or len(v.cons.get(erf.inputs[0], [])) != 1:
            continue
        x = next((i for i in scale.inputs if not g.tensors[i].is_const), None)
        k = v.other(scale, x) if x else None
        if x is None or k is None or not _close(v.scalar(k), 1.0 / np.sqrt(2.0)):
            continue
        plus1 = v.only_consumer(erf.outputs[0], "add")
        if plus1 is None or not v.plain(plus1):
            continue
        one = v.other(plus1, erf.outputs[0])
        if one is None or not _close(v.scalar(one), 1.0):
            continue
        found = _gelu_product(v, x, plus1.outputs[0])
        if found is None:
            continue
        muls, y = found
        if g.tensors[y].shape != g.tensors[x].shape:
            continue
        _replace(g, [scale, erf, plus1, *muls], Node("gelu", erf.name + "_gelu", [x], [y], {}))
        return True
    return False


def _gelu_product(v: _View, x: str, a: str) -> tuple[list[Node], str] | None:
    """The mul nodes forming x * 0.5 * a (any order) starting from ``a``, and the result tensor."""
    m1 = v.only_consumer(a, "mul")
    if m1 is None or not v.plain(m1):
        return None
    o1 = v.other(m1, a)
    if o1 is None:
        return None
    if o1 == x or _close(v.scalar(o1), 0.5):
        need = 0.5 if o1 == x else None
        m2 = v.only_consumer(m1.outputs[0], "mul")
        if m2 is None or not v.plain(m2):
            return None
        o2 = v.other(m2, m1.outputs[0])
        ok = _close(v.scalar(o2), 0.5) if need is not None and o2 else o2 == x
        return ([m1, m2], m2.outputs[0]) if ok else None
    half = v.node(o1, "mul")  # (x * 0.5) * a
    if half is not None and v.plain(half) and len(v.cons.get(o1, [])) == 1:
        o = v.other(half, x)
        if o is not None and _close(v.scalar(o), 0.5):
            return [half, m1], m1.outputs[0]
    return None


# ---- matmul epilogues ------------------------------------------------------------------------


def _fold_matmul_bias(g: Graph) -> bool:
    """fully_connected (MatMul with constant weights) then + constant [O] vector -> the bias."""
    v = _View(g)
    for fc in g.nodes:
        if fc.op != "fully_connected" or not v.plain(fc) or len(fc.inputs) < 3:
            continue
        y = fc.outputs[0]
        add = v.only_consumer(y, "add")
        bias = g.tensors[fc.inputs[2]]
        if add is None or not v.plain(add) or bias.data is None:
            continue
        other = v.other(add, y)
        o = g.tensors[y].shape[-1]
        b = _channel_const(v, other, o) if other else None
        if b is None or g.tensors[add.outputs[0]].shape != g.tensors[y].shape:
            continue
        new_bias = g.const(fc.inputs[2] + "_folded", (bias.data.astype(np.float32) + b).astype(np.float32))
        _replace(g, [fc, add], Node("fully_connected", fc.name, [fc.inputs[0], fc.inputs[1], new_bias],
                                    [add.outputs[0]], dict(fc.attrs)))
        return True
    return False


def _fold_matmul_scale(g: Graph) -> bool:
    """A positive scalar factor (attention's 1/sqrt(d)) on a batch_matmul's result or on an operand used
    only by it -> the matmul's ``alpha``."""
    v = _View(g)
    for mm in g.nodes:
        if mm.op != "batch_matmul":
            continue
        for pos, operand in enumerate(mm.inputs):
            pre = v.node(operand, "mul")
            if pre is None or not v.plain(pre) or mm.inputs.count(operand) != 1 \
                    or v.only_consumer(operand, "batch_matmul") is not mm:
                continue
            src = next((i for i in pre.inputs if not g.tensors[i].is_const), None)
            other = v.other(pre, src) if src else None
            k = v.scalar(other) if other else None
            if src is None or k is None or k <= 0 or g.tensors[src].shape != g.tensors[operand].shape:
                continue
            inputs = list(mm.inputs)
            inputs[pos] = src
            attrs = {**mm.attrs, "alpha": float(mm.attrs.get("alpha", 1.0)) * k}
            _replace(g, [pre, mm], Node("batch_matmul", mm.name, inputs, list(mm.outputs), attrs))
            return True
        y = mm.outputs[0]
        mul = v.only_consumer(y, "mul")
        if mul is None or not v.plain(mul):
            continue
        other = v.other(mul, y)
        k = v.scalar(other) if other else None
        if k is None or k <= 0 or g.tensors[mul.outputs[0]].shape != g.tensors[y].shape:
            continue
        attrs = {**mm.attrs, "alpha": float(mm.attrs.get("alpha", 1.0)) * k}
        _replace(g, [mm, mul], Node("batch_matmul", mm.name, list(mm.inputs), [mul.outputs[0]], attrs))
        return True
    return False


def _fold_transposed_operand(g: Graph) -> bool:
    """batch_matmul(a, transpose(k) over its last two axes) -> batch_matmul(a, k, transpose_b): the kernel
    reads k as stored, so attention's k^T needs no copy."""
    v = _View(g)
    for mm in g.nodes:
        if mm.op != "batch_matmul" or mm.attrs.get("transpose_b"):
            continue
        b = mm.inputs[1]
        tr = v.node(b, "transpose")
        if tr is None or b == mm.inputs[0] or v.only_consumer(b, "batch_matmul") is not mm:
            continue
        rank = len(tr.attrs["perm"])
        if rank < 2 or tuple(tr.attrs["perm"]) != tuple(range(rank - 2)) + (rank - 1, rank - 2):
            continue
        _replace(g, [tr, mm], Node("batch_matmul", mm.name, [mm.inputs[0], tr.inputs[0]], list(mm.outputs),
                                   {**mm.attrs, "transpose_b": True}))
        return True
    return False


# ---- data movement -------------------------------------------------------------------------

MOVES = ("transpose", "reshape")


def collapse_moves(g: Graph) -> Graph:
    """Return a copy of ``g`` in which each run of transposes/reshapes that changes the rank but leaves
    the element order unchanged is one reshape (a free view).

    The NHWC conversion turns a conv stem's flatten(2).transpose(1, 2) into transpose-to-NCHW,
    reshape, transpose back: two copies of the token tensor that together do nothing to the order.
    """
    g = copy.deepcopy(g)
    while _collapse_one(g):
        pass
    g.prune()
    return g


def _apply_move(idx: np.ndarray, n: Node) -> np.ndarray:
    return idx.transpose(n.attrs["perm"]) if n.op == "transpose" else idx.reshape(n.attrs["shape"])


def _collapse_one(g: Graph) -> bool:
    v = _View(g)
    for head in g.nodes:
        if head.op not in MOVES:
            continue
        chain = [head]
        while True:
            y = chain[-1].outputs[0]
            users = v.cons.get(y, [])
            if len(users) != 1 or y in g.outputs or users[0].op not in MOVES:
                break
            chain.append(users[0])
        if len(chain) < 2:
            continue
        x = head.inputs[0]
        base = np.arange(g.tensors[x].size).reshape(g.tensors[x].shape)
        idx = base
        best = 0
        for k, n in enumerate(chain):
            idx = _apply_move(idx, n)
            if k > 0 and idx.ndim != base.ndim and np.array_equal(idx.reshape(-1), base.reshape(-1)):
                best = k
        if best == 0:
            continue
        last = chain[best]
        y = last.outputs[0]
        _replace(g, chain[:best + 1], Node("reshape", last.name + "_collapsed", [x], [y],
                                           {"shape": tuple(g.tensors[y].shape)}))
        return True
    return False


# ---- softmax axis --------------------------------------------------------------------------


def softmax_last_axis(g: Graph) -> Graph:
    """Return a copy of ``g`` in which every softmax reduces over the last axis (transposes around)."""
    if not any(n.op == "softmax" and n.attrs["axis"] != len(g.tensors[n.inputs[0]].shape) - 1 for n in g.nodes):
        return g
    g = copy.deepcopy(g)
    nodes: list[Node] = []
    for n in g.nodes:
        shape = g.tensors[n.inputs[0]].shape if n.op == "softmax" else ()
        if n.op != "softmax" or n.attrs["axis"] == len(shape) - 1:
            nodes.append(n)
            continue
        ax = int(n.attrs["axis"])
        perm = tuple(i for i in range(len(shape)) if i != ax) + (ax,)
        inv = tuple(int(i) for i in np.argsort(perm))
        x, y = n.inputs[0], n.outputs[0]
        xt, yt = g.unique_name(x + "_axis_last"), g.unique_name(y + "_axis_last")
        g.add_tensor(Tensor(xt, tuple(shape[p] for p in perm)))
        g.add_tensor(Tensor(yt, tuple(shape[p] for p in perm), quant=g.tensors[y].quant))
        nodes.append(Node("transpose", n.name + "_to_last", [x], [xt], {"perm": perm}))
        nodes.append(Node("softmax", n.name, [xt], [yt], {**n.attrs, "axis": len(shape) - 1}))
        nodes.append(Node("transpose", n.name + "_from_last", [yt], [y], {"perm": inv}))
    g.nodes = nodes
    return g

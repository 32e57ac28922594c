"""Hand-built int8 graphs covering every lowered op, for codegen and target tests."""
from __future__ import annotations

import numpy as np

from mcuc.ir import Graph, Node, QuantParams, Tensor


class Int8GraphBuilder:
    """Adds int8 NHWC activations and nodes to a graph with seeded random per-tensor quantization."""

    min_scale = 0.01  # activation scales are drawn from [min_scale, 0.1)

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.g = Graph(layout="NHWC")
        self.k = 0

    def act(self, shape: tuple[int, ...], q: QuantParams | None = None) -> str:
        name = f"t{self.k}"
        self.k += 1
        self.g.add_tensor(Tensor(name, shape, "int8", q or self.quant()))
        return name

    def quant(self) -> QuantParams:
        return QuantParams(np.array([self.rng.uniform(self.min_scale, 0.1)]),
                           np.array([int(self.rng.integers(-20, 20))]))

    def node(self, op: str, inputs: list[str], out_shape: tuple[int, ...], q: QuantParams | None = None,
             **attrs) -> str:
        y = self.act(out_shape, q)
        self.g.nodes.append(Node(op, f"n{len(self.g.nodes)}_{op}", inputs, [y], attrs))
        return y

    def conv(self, x: str, cout: int, k: int, stride: int, groups: int = 1) -> str:
        n, h, w, c = self.g.tensors[x].shape
        r = self.rng
        wt = r.integers(-127, 128, (cout, k, k, c // groups)).astype(np.int8)
        wn = self.g.const("w", wt, QuantParams(r.uniform(0.002, 0.02, cout), np.zeros(cout), axis=0))
        bn = self.g.const("b", r.integers(-2000, 2000, cout).astype(np.int32))
        p = k // 2
        oh, ow = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1
        q = self.quant()
        return self.node("conv2d", [x, wn, bn], (n, oh, ow, cout), q, strides=(stride, stride), pads=(p, p, p, p),
                         dilations=(1, 1), groups=groups, act_min=q.zp, act_max=127)


def all_ops_graph(seed: int = 0) -> Graph:
    """conv, depthwise, residual add, SE-style mul, pools, lut, pad, transpose, concat,
    requantize, reshape, fully connected and softmax in one small network."""
    b = Int8GraphBuilder(seed)
    g = b.g
    x = b.act((1, 12, 10, 3))
    g.inputs = [x]
    c1 = b.conv(x, 8, 3, 2)                                  # 6x5x8
    dw = b.conv(c1, 8, 3, 1, groups=8)
    res = b.node("add", [c1, dw], (1, 6, 5, 8), act_min=-128, act_max=127)
    gap = b.node("avgpool", [res], (1, 1, 1, 8), g.tensors[res].quant, kernel=(6, 5), strides=(1, 1),
                 pads=(0, 0, 0, 0))
    table = g.const("lut", b.rng.integers(-128, 128, 256).astype(np.int8))
    gate = b.node("lut", [gap, table], (1, 1, 1, 8), function="sigmoid")
    se = b.node("mul", [res, gate], (1, 6, 5, 8), act_min=-128, act_max=127)
    mp = b.node("maxpool", [se], (1, 3, 3, 8), g.tensors[se].quant, kernel=(3, 3), strides=(2, 2),
                pads=(1, 1, 1, 1))
    pw = b.conv(mp, 6, 1, 1)
    padded = b.node("pad", [pw], (1, 4, 5, 6), g.tensors[pw].quant, pads=[(0, 0), (1, 0), (0, 2), (0, 0)],
                    value=g.tensors[pw].quant.zp)
    tr = b.node("transpose", [padded], (1, 6, 4, 5), g.tensors[padded].quant, perm=(0, 3, 1, 2))
    rq = b.node("requantize", [tr], (1, 6, 4, 5))
    cat = b.node("concat", [tr, rq], (1, 12, 4, 5), axis=1)
    flat = b.node("reshape", [cat], (1, 240), g.tensors[cat].quant, shape=(1, 240))
    wt = b.rng.integers(-127, 128, (10, 240)).astype(np.int8)
    wn = g.const("wfc", wt, QuantParams(b.rng.uniform(0.001, 0.01, 10), np.zeros(10), axis=0))
    bn = g.const("bfc", b.rng.integers(-500, 500, 10).astype(np.int32))
    fc = b.node("fully_connected", [flat, wn, bn], (1, 10), act_min=-128, act_max=127)
    sm = b.node("softmax", [fc], (1, 10), QuantParams(np.array([1 / 256]), np.array([-128])), axis=1)
    g.outputs = [sm, gap]
    return g

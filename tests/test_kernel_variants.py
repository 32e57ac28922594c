"""Kernel variants (DSP, MVE and their portable C paths) bit-exact with the int8 reference.

Each test builds graphs of many independent one-op branches with random shapes (odd channel counts, every
kind of border: asymmetric pads, strides, dilations, a kernel larger than its input), random weights, biases
and requantization scales (some large enough for left shifts), chooses kernels for a board and runs the
generated C: under QEMU on the Cortex-M4, M7 and M55 boards (the DSP and MVE paths) and on the host with
ASan/UBSan (the portable paths of the same variant calls).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from mcuc.boards import load_board
from mcuc.compiler import CompileOptions, assemble
from mcuc.ir import Graph, QuantParams
from mcuc.ops import KernelVariant, lower, verify
from mcuc.ops.quant_rules import SOFTMAX_QUANT
from mcuc.passes.kernels import kernel_names, select_kernels
from mcuc.project import write_project
from mcuc.runner import verify_project
from mcuc.schedule.base import layer_schedule
from mcuc.shapes import conv_out_dim
from tests.int8_graphs import Int8GraphBuilder

QEMU_BOARDS = ["qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps3-an547"]
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="needs qemu-system-arm and arm-none-eabi-gcc (make sysdeps)")


class _Branches(Int8GraphBuilder):
    """Independent branches, each one op on its own graph input."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.g.inputs, self.g.outputs = [], []

    def input(self, shape: tuple[int, ...]) -> str:
        x = self.act(shape)
        self.g.inputs.append(x)
        return x

    def out_quant(self, left_shift: bool = False) -> QuantParams:
        """Mostly ordinary scales; one in five (or always, with left_shift) so small that the requantization
        shifts left."""
        r = self.rng
        s = r.uniform(1e-5, 5e-5) if left_shift or r.random() < 0.2 else r.uniform(self.min_scale, 0.1)
        return QuantParams(np.array([s]), np.array([int(r.integers(-30, 30))]))

    def act_range(self, q: QuantParams) -> tuple[int, int]:
        r = self.rng.random()
        if r < 0.4:
            return -128, 127
        if r < 0.7:
            return q.zp, 127  # ReLU
        lo = int(self.rng.integers(-128, 0))
        return lo, int(self.rng.integers(lo + 1, 128))

    def conv_branch(self, cin: int, cout: int, hw: tuple[int, int], k: tuple[int, int], stride: tuple[int, int],
                    pads: tuple[int, int, int, int], dil: tuple[int, int] = (1, 1), groups: int = 1,
                    left_shift: bool = False) -> None:
        r = self.rng
        x = self.input((1, *hw, cin))
        wt = r.integers(-127, 128, (cout, *k, cin // groups)).astype(np.int8)
        wn = self.g.const("w", wt, QuantParams(r.uniform(0.002, 0.02, cout), np.zeros(cout), axis=0))
        bn = self.g.const("b", r.integers(-5000, 5000, cout).astype(np.int32))
        oh = conv_out_dim(hw[0], k[0], stride[0], pads[0], pads[2], dil[0])
        ow = conv_out_dim(hw[1], k[1], stride[1], pads[1], pads[3], dil[1])
        q = self.out_quant(left_shift)
        lo, hi = self.act_range(q)
        y = self.node("conv2d", [x, wn, bn], (1, oh, ow, cout), q, strides=stride, pads=pads, dilations=dil,
                      groups=groups, act_min=lo, act_max=hi)
        self.g.outputs.append(y)

    def fc_branch(self, rows: int, k: int, n: int, left_shift: bool = False) -> None:
        r = self.rng
        x = self.input((1, rows, k))
        wn = self.g.const("w", r.integers(-127, 128, (n, k)).astype(np.int8),
                          QuantParams(r.uniform(0.001, 0.01, n), np.zeros(n), axis=0))
        bn = self.g.const("b", r.integers(-5000, 5000, n).astype(np.int32))
        q = self.out_quant(left_shift)
        lo, hi = self.act_range(q)
        self.g.outputs.append(self.node("fully_connected", [x, wn, bn], (1, rows, n), q, act_min=lo, act_max=hi))


def conv_family_graph(seed: int) -> Graph:
    """Pointwise, general and depthwise convolutions and fully connected layers over random shapes."""
    b = _Branches(seed)
    r = b.rng
    odd = [1, 3, 5, 7, 13, 17, 33]
    for cin, cout in [(16, 24), (17, 5), (40, 13), (3, 8), (1, 1), (33, 3), (int(r.choice(odd)), 64)]:
        b.conv_branch(cin, cout, (int(r.integers(3, 8)), int(r.integers(3, 8))), (1, 1), (1, 1), (0, 0, 0, 0))
    b.conv_branch(24, 7, (7, 6), (1, 1), (2, 2), (0, 0, 0, 0))  # strided pointwise
    b.conv_branch(8, 5, (5, 5), (1, 1), (1, 1), (1, 0, 0, 1))  # padded pointwise: an im2col, not a GEMM
    for cin, cout, k, s, pads, dil in [(3, 16, 3, 2, (1, 1, 1, 1), 1), (3, 8, 7, 2, (3, 3, 3, 3), 1),
                                       (16, 9, 3, 1, (1, 1, 1, 1), 1), (5, 3, 5, 1, (2, 1, 0, 2), 2),
                                       (7, 4, 3, 2, (0, 1, 1, 0), 1), (2, 3, 5, 1, (4, 4, 4, 4), 1)]:
        hw = (int(r.integers(9, 12)), int(r.integers(9, 12)))
        b.conv_branch(cin, cout, hw, (k, k), (s, s), pads, (dil, dil))
    b.conv_branch(6, 5, (6, 7), (1, 3), (1, 2), (0, 1, 0, 1))  # 1x3 kernel
    for ch, k, s, mult in [(96, 3, 1, 1), (13, 3, 2, 1), (7, 5, 1, 1), (33, 5, 2, 1), (24, 7, 1, 1),
                           (5, 7, 2, 1), (3, 3, 1, 2), (1, 3, 1, 1), (17, 3, 1, 1)]:
        pads = tuple(int(v) for v in r.integers(0, k // 2 + 1, 4))
        hw = (int(r.integers(max(k - pads[0] - pads[2], 1), 11)), int(r.integers(max(k - pads[1] - pads[3], 1), 11)))
        b.conv_branch(ch, ch * mult, hw, (k, k), (s, s), pads, groups=ch)  # type: ignore[arg-type]
    b.conv_branch(8, 8, (9, 9), (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), groups=8)  # dilated depthwise
    for k in (3, 5, 7):  # depthwise at strides 1 and 2 (each direction), odd channels, any border
        for s in ((1, 1), (2, 2), (1, 2), (2, 1)):
            ch = int(r.choice([1, 2, 3, 5, 6, 9, 11, 19, 21, 37]))
            pads = tuple(int(v) for v in r.integers(0, k, 4))
            hw = (int(r.integers(max(k - pads[0] - pads[2], 1), 14)),
                  int(r.integers(max(k - pads[1] - pads[3], 1), 14)))
            b.conv_branch(ch, ch, hw, (k, k), s, pads, groups=ch)  # type: ignore[arg-type]
    b.conv_branch(5, 5, (4, 3), (7, 7), (1, 1), (3, 3, 3, 3), groups=5)  # window wider than the image
    b.conv_branch(7, 7, (8, 9), (3, 3), (3, 3), (1, 1, 1, 1), groups=7)  # stride 3: channel quads (DSP), dot (MVE)
    b.conv_branch(10, 10, (6, 23), (2, 9), (1, 3), (1, 4, 0, 3), groups=10)  # 2x9 taps, stride 3 across
    for rows, k, n in [(1, 160, 10), (1, 17, 3), (2, 64, 9), (3, 5, 1), (5, 33, 17), (4, 1, 4)]:
        b.fc_branch(rows, k, n)
    # edges of the MVE GEMM: K not a multiple of 16 with an even row count (the last row alone, its partial
    # slice predicated), a partial last channel quad whose requantization shifts left, strided pointwise with
    # odd K (the last row of every call predicated), an im2col pixel count that is not a multiple of four
    b.conv_branch(20, 6, (4, 4), (1, 1), (1, 1), (0, 0, 0, 0), left_shift=True)
    b.conv_branch(32, 7, (3, 5), (1, 1), (1, 1), (0, 0, 0, 0), left_shift=True)
    b.conv_branch(13, 9, (7, 7), (1, 1), (2, 2), (0, 0, 0, 0))
    b.conv_branch(5, 6, (5, 7), (3, 3), (1, 1), (1, 1, 1, 1), left_shift=True)
    for rows, k, n in [(6, 20, 7), (7, 16, 4), (2, 48, 5)]:
        b.fc_branch(rows, k, n, left_shift=rows == 6)
    # depthwise rows wider than the DSP rows variant's 32-pixel blocks (an odd remainder too), odd input widths at
    # stride 2, and an input narrower than the kernel at stride 2
    for ch, hw, k, s, pads in [(5, (5, 69), 3, (2, 2), (1, 1, 1, 0)), (3, (4, 37), 3, (1, 1), (1, 1, 1, 1)),
                               (7, (6, 71), 5, (2, 2), (2, 2, 2, 2)), (3, (9, 70), 7, (1, 2), (3, 3, 3, 3)),
                               (9, (7, 9), 3, (2, 2), (0, 1, 1, 0)), (6, (5, 2), 3, (2, 2), (1, 2, 0, 1)),
                               # MVE dot: several output rows requantized per pass (128 pixels), the last pass
                               # partial (43 columns: rows of 2, 2, 1), one row per pass past 128 columns, and
                               # 5x5 stride 2 on odd widths (5, 6, 7 and 14 output columns)
                               (3, (5, 43), 3, (1, 1), (1, 1, 1, 1)), (2, (3, 131), 3, (1, 1), (1, 1, 1, 1)),
                               (11, (13, 11), 5, (2, 2), (2, 1, 2, 2)), (19, (9, 13), 5, (2, 2), (1, 2, 2, 1)),
                               (9, (7, 13), 5, (2, 2), (2, 2, 2, 2)),
                               (5, (11, 27), 5, (2, 2), (2, 2, 2, 2)), (7, (12, 33), 5, (1, 1), (2, 2, 2, 2))]:
        b.conv_branch(ch, ch, hw, (k, k), s, pads, groups=ch)  # type: ignore[arg-type]
    verify(b.g, quantized=True)
    return b.g


def elementwise_graph(seed: int) -> Graph:
    """Adds and subs of same-shape operands (odd sizes, scales apart by up to 50x, fused clamps, an operand
    used twice) and a broadcast add, which keeps the portable kernel."""
    b = _Branches(seed)
    r = b.rng
    for op, shape in [("add", (1, 5, 7, 13)), ("add", (1, 1)), ("sub", (1, 3, 3, 17)), ("add", (1, 40, 24)),
                      ("add", (1, 9, 11, 3)), ("sub", (1, 2, 1, 5)), ("add", (1, 333))]:
        x1 = b.input(shape)
        x2 = x1 if r.random() < 0.15 else b.input(shape)
        b.g.tensors[x1].quant = QuantParams(np.array([r.uniform(0.002, 0.1)]), np.array([int(r.integers(-128, 128))]))
        q = QuantParams(np.array([r.uniform(0.01, 0.2)]), np.array([int(r.integers(-20, 20))]))
        lo, hi = b.act_range(q)
        b.g.outputs.append(b.node(op, [x1, x2], shape, q, act_min=lo, act_max=hi))
    x1, x2 = b.input((1, 4, 5, 6)), b.input((1, 1, 1, 6))
    b.g.outputs.append(b.node("add", [x1, x2], (1, 4, 5, 6), b.quant()))
    verify(b.g, quantized=True)
    return b.g


def avgpool_graph(seed: int) -> Graph:
    """Average pools over odd channel counts, padded and strided windows, global pools up to the 256-tap limit
    of the variant, and one larger window (the portable kernel)."""
    b = _Branches(seed)
    none = (0, 0, 0, 0)
    for ch, hw, k, s, pads in [(3, (7, 9), (3, 3), (2, 2), (1, 1, 1, 1)), (13, (5, 5), (5, 5), (1, 1), none),
                               (320, (5, 5), (5, 5), (1, 1), none), (1, (6, 4), (2, 3), (1, 2), (0, 1, 1, 0)),
                               (33, (16, 16), (16, 16), (1, 1), none), (7, (4, 4), (3, 3), (1, 1), (2, 2, 2, 2)),
                               (6, (17, 17), (17, 17), (1, 1), none)]:
        x = b.input((1, *hw, ch))
        q = b.g.tensors[x].quant
        oh = conv_out_dim(hw[0], k[0], s[0], pads[0], pads[2], 1)
        ow = conv_out_dim(hw[1], k[1], s[1], pads[1], pads[3], 1)
        lo, hi = b.act_range(q)
        b.g.outputs.append(b.node("avgpool", [x], (1, oh, ow, ch), q, kernel=k, strides=s, pads=pads,
                                  act_min=lo, act_max=hi))
    verify(b.g, quantized=True)
    return b.g


def matmul_graph(seed: int) -> Graph:
    """Batch matmuls over odd M, K, N (K across the 16-byte slices and word tails, and past the 64 of the DSP
    paired columns), b stored [K, N] and [N, K],
    broadcast batch axes on either side, random zero points and clamps; and attention ops (k stored either way,
    blocks of query rows), whose kernel calls the same matmul."""
    b = _Branches(seed)
    r = b.rng
    cases = [((1, 5, 7), (1, 7, 9), False), ((1, 2, 3, 33), (1, 2, 17, 33), True),
             ((1, 3, 1, 16), (1, 1, 16, 5), False), ((1, 1, 9, 19), (1, 3, 19, 6), False),
             ((1, 4, 13, 1), (1, 4, 7, 1), True), ((1, 1, 17), (1, 17, 3), False),
             ((1, 2, 6, 40), (1, 1, 23, 40), True), ((1, 64, 16), (1, 16, 64), False),
             ((1, 3, 2, 5), (1, 3, 4, 5), True), ((1, 8, 2), (1, 2, 37), False),
             ((1, 3, 70), (1, 70, 9), False)]
    for a_shape, b_shape, transpose_b in cases:
        xa, xb = b.input(a_shape), b.input(b_shape)
        n = b_shape[-2] if transpose_b else b_shape[-1]
        lead = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
        q = b.out_quant()
        lo, hi = b.act_range(q)
        b.g.outputs.append(b.node("batch_matmul", [xa, xb], (*lead, a_shape[-2], n), q, transpose_b=transpose_b,
                                  act_min=lo, act_max=hi))
    attention = [(2, 7, 9, 5, 3, True), (1, 17, 6, 16, 11, False), (3, 4, 21, 19, 8, True)]
    for heads, tq, tk, d, dv, transpose_b in attention:
        xq = b.input((1, heads, tq, d))
        xk = b.input((1, heads) + ((tk, d) if transpose_b else (d, tk)))
        xv = b.input((1, heads, tk, dv))
        b.g.outputs.append(b.node("attention", [xq, xk, xv], (1, heads, tq, dv), scores_quant=b.quant(),
                                  probs_quant=SOFTMAX_QUANT, scores_act=(-128, 127), alpha=float(d) ** -0.5,
                                  transpose_b=transpose_b, beta=1.0, alpha_v=1.0, transpose_v=False, act_min=-128,
                                  act_max=127, block_rows=int(r.integers(1, tq + 1))))
    verify(b.g, quantized=True)
    return b.g


def _compile(g: Graph, board: str, mode: str, tmp_path):
    kg = select_kernels(g, load_board(board).isa, mode)
    c = assemble(layer_schedule(kg).plan("best"), load_board(board), CompileOptions(board=board, kernels=mode))
    return kg, write_project(c, str(tmp_path / f"{board}-{mode}"))


EXPECTED = {  # variants the conv-family graph must exercise per (core ISA, mode)
    ("dsp", "fast"): {"mcuc_conv2d_wide_s8", "mcuc_fully_connected_wide_s8", "mcuc_fully_connected_simd_s8",
                      "mcuc_depthwise_conv2d_rows_s8", "mcuc_depthwise_conv2d_simd_s8"},
    ("dsp", "small"): {"mcuc_conv2d_1x1_s8", "mcuc_fully_connected_simd_s8", "mcuc_depthwise_conv2d_simd_s8"},
    ("mve", "fast"): {"mcuc_conv2d_1x1_s8", "mcuc_conv2d_im2col_s8", "mcuc_fully_connected_simd_s8",
                      "mcuc_depthwise_conv2d_dot_s8", "mcuc_depthwise_conv2d_simd_s8"},
    ("mve", "small"): {"mcuc_conv2d_1x1_s8", "mcuc_fully_connected_simd_s8", "mcuc_depthwise_conv2d_simd_s8"},
}


def _expected(board: str, mode: str) -> set[str]:
    isa = load_board(board).isa
    return EXPECTED.get(("mve" if "mve" in isa else "dsp", mode), set())


def test_variant_references_equal_portable_references():
    """The constants a variant reads (folded bias, re-laid weights, requant table) give the portable integers."""
    from mcuc.reference import conv as rconv

    family = conv_family_graph(1)
    rng = np.random.default_rng(0)
    checked = set()
    chosen = [select_kernels(family, ("dsp", "mve"), mode) for mode in ("fast", "small")]
    for g, n in [(kg, n) for kg in chosen for n in kg.nodes]:
        if not n.attrs.get("variant"):
            continue
        low = lower(g, n)
        env = {x: rng.integers(-128, 128, g.tensors[x].shape).astype(np.int8) for x in g.inputs}
        env.update({k: t.data for k, t in g.tensors.items() if t.data is not None})
        want = low.ref(env)
        arrays = [a.data for a in low.arrays]
        w = g.tensors[n.inputs[1]].data
        rows = w.reshape(w.shape[0], -1)
        bias = arrays[-1]
        if "wide" in low.func:
            relaid = rconv.unpack_wide_pairs(arrays[-2], *rows.shape)
        elif low.func in ("mcuc_conv2d_1x1_s8", "mcuc_conv2d_im2col_s8", "mcuc_fully_connected_simd_s8"):
            relaid = rconv.unpack_quad_rows(arrays[-2], *rows.shape)
        elif low.func == "mcuc_depthwise_conv2d_simd_s8":
            relaid = rconv.unpack_channel_quads(arrays[-2], *rows.shape)
        elif low.func in ("mcuc_depthwise_conv2d_rows_s8", "mcuc_depthwise_conv2d_dot_s8"):
            relaid = rows  # the model's weights, as the portable kernel reads them
            assert low.args[2].kind == "scratch" and low.args[4].value == n.inputs[1], "the weights unchanged"
        else:
            continue
        assert np.array_equal(relaid, rows), low.func
        quant = rconv.PerChannelQuant(arrays[0], arrays[1])
        assert np.array_equal(arrays[2], rconv.requant_table(quant))
        x = env[n.inputs[0]]
        yq = g.tensors[n.outputs[0]].quant
        lo, hi = int(n.attrs["act_min"]), int(n.attrs["act_max"])
        if n.op == "conv2d":
            a = n.attrs
            depthwise = "depthwise" in low.func
            params = rconv.Conv2dParams(tuple(a["strides"]), tuple(a["dilations"]), tuple(a["pads"]),
                                        x.shape[3] if depthwise else 1, g.tensors[n.inputs[0]].quant.zp, yq.zp,
                                        lo, hi)
            folded = rconv.depthwise_conv2d_folded_s8 if depthwise else rconv.conv2d_folded_s8
            got = folded(params, quant, x, relaid, bias, w.shape[1:3])
        else:
            got = rconv.gemm_folded_s8(x.reshape(-1, rows.shape[1]), relaid, bias, quant, yq.zp, lo, hi)
        assert np.array_equal(got.reshape(want.shape), want), low.func
        checked.add(low.func)
    assert checked >= EXPECTED[("mve", "fast")] | EXPECTED[("mve", "small")], checked


# The faster depthwise variant by bench/kernels.py's QEMU counts (48 channels, 40x40), per (core ISA, k, stride).
DEPTHWISE_FASTEST = {
    "dsp": {(3, 1): "rows", (3, 2): "rows", (5, 1): "rows", (5, 2): "rows", (7, 1): "rows", (7, 2): "rows"},
    "mve": {(3, 1): "simd", (3, 2): "simd", (5, 1): "rows", (5, 2): "simd", (7, 1): "rows", (7, 2): "simd"},
}
# On MVE the dot products (mcuc_depthwise_conv2d_dot_s8) are quicker at every shape here, 3x3 stride 2 at the
# test's 20x20 input (10 output columns) too since they requantize several rows per pass (3.56 against the
# channel quads' 4.29 instructions/MAC at 72 channels); on a 10x10 input the quads stay ahead (5.66 against 6.40).
DEPTHWISE_FASTEST["mve"] = {(3, 1): "dot", (3, 2): "dot", (5, 1): "dot", (5, 2): "dot", (7, 1): "dot", (7, 2): "dot"}


@pytest.mark.parametrize("board", ["qemu-mps2-an386", "qemu-mps3-an547"])
def test_depthwise_variant_follows_the_cost_rule(board):
    """``fast`` takes the depthwise variant the per-core cost rule ranks first for the layer's taps, stride and (dot
    products on MVE) output width -- rows, channel quads or dot products, whichever the counts say is quicker --
    not the first one listed; ``small`` the channel quads (no scratch)."""
    isa = load_board(board).isa
    b = _Branches(0)
    shapes = list(DEPTHWISE_FASTEST["dsp"])
    for k, s in shapes:
        b.conv_branch(48, 48, (20, 20), (k, k), (s, s), (k // 2,) * 4, groups=48)  # type: ignore[arg-type]
    want = DEPTHWISE_FASTEST["mve" if "mve" in isa else "dsp"]
    fast = kernel_names(select_kernels(b.g, isa, "fast"))
    small = kernel_names(select_kernels(b.g, isa, "small"))
    for n, shape in zip(b.g.nodes, shapes, strict=True):
        assert fast[n.name] == f"mcuc_depthwise_conv2d_{want[shape]}_s8", shape
        assert small[n.name] == "mcuc_depthwise_conv2d_simd_s8", shape


def test_entries_of_one_kernel_differ_only_in_isa_and_cost():
    """variant_of finds a node's variant by function name alone, so the per-ISA entries of one C function must
    agree on everything but the cores they run on and their cost estimate."""
    from mcuc.ops.base import OPS

    for op in OPS.values():
        first: dict[str, KernelVariant] = {}
        for v in op.variants:
            f = first.setdefault(v.func, v)
            assert (v.applies, v.specialise, v.scratch) == (f.applies, f.specialise, f.scratch), v.func


def test_add_tables_equal_the_formula():
    """mcuc_add_simd_s8's tables and single requantization give add_s8 / sub_s8 on all 65536 input pairs."""
    from mcuc.reference import elementwise as relem

    rng = np.random.default_rng(0)
    q = np.arange(-128, 128)
    q1, q2 = np.repeat(q, 256), np.tile(q, 256)
    for _ in range(20):
        s1, s2 = rng.uniform(0.001, 0.2, 2)
        zp1, zp2, zpo = (int(v) for v in rng.integers(-128, 128, 3))
        p = relem.prepare_add(s1, zp1, s2, zp2, rng.uniform(0.005, 0.3), zpo, *sorted(rng.integers(-128, 128, 2)))
        for sign, ref in ((1, relem.add_s8), (-1, relem.sub_s8)):
            got = relem.add_tables_s8(p, relem.add_tables(p, sign), q1, q2)
            assert np.array_equal(got, ref(p, q1, q2))


@pytest.mark.parametrize("mode", ["fast", "small"])
def test_conv_family_variants_bit_exact_on_host(tmp_path, mode):
    """The portable C paths of the variants, under ASan/UBSan, for the calls an M55 and an M4 compile make."""
    g = conv_family_graph(seed=2)
    for board in ("qemu-mps3-an547", "qemu-mps2-an386"):
        kg, out = _compile(g, board, mode, tmp_path)
        assert _expected(board, mode) <= set(kernel_names(kg).values())
        res = verify_project(out, kg, samples=2, seed=1, target="host")
        assert res["mismatched"] == 0, (board, res)


@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
@pytest.mark.parametrize("mode", ["fast", "small"])
def test_conv_family_variants_bit_exact_under_qemu(tmp_path, board, mode):
    g = conv_family_graph(seed=3)
    kg, out = _compile(g, board, mode, tmp_path)
    assert _expected(board, mode) <= set(kernel_names(kg).values())
    res = verify_project(out, kg, samples=2, seed=4, target="qemu", board=board)
    assert res["mismatched"] == 0, res


# One-variant graphs: (graph builder, seed, --kernels mode, the kernel every branch must get). The broadcast add,
# the 289-tap pool and the attention ops of these graphs keep their own kernels.
ONE_VARIANT = {
    "add": (elementwise_graph, 5, "fast", ["mcuc_add_simd_s8"] * 7),
    "avgpool": (avgpool_graph, 6, "small", ["mcuc_avgpool_simd_s8"] * 6),
    "matmul": (matmul_graph, 8, "small", ["mcuc_batch_matmul_simd_s8"] * 11),
}


def _check_one_variant(tmp_path, case: str, board: str, target: str) -> None:
    build, seed, mode, want = ONE_VARIANT[case]
    g = build(seed=seed)
    kg, out = _compile(g, board, mode, tmp_path)
    names = sorted(kernel_names(kg).values())
    assert names == want, names
    res = verify_project(out, kg, samples=3, seed=2, target=target, **({"board": board} if target == "qemu" else {}))
    assert res["mismatched"] == 0, res


@pytest.mark.parametrize("case", sorted(ONE_VARIANT))
def test_one_variant_bit_exact_on_host(tmp_path, case):
    """The portable C paths of mcuc_add_simd_s8, mcuc_avgpool_simd_s8 (reciprocal division) and
    mcuc_batch_matmul_simd_s8 (and attention's portable path) under ASan/UBSan."""
    _check_one_variant(tmp_path, case, "qemu-mps2-an386", "host")


@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
@pytest.mark.parametrize("case", sorted(ONE_VARIANT))
def test_one_variant_bit_exact_under_qemu(tmp_path, case, board):
    """The DSP (M4, M7) and MVE (M55) paths; the batch matmul alone and inside the attention kernel."""
    _check_one_variant(tmp_path, case, board, "qemu")

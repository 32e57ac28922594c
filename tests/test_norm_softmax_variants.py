"""LayerNorm and softmax kernel variants (DSP, MVE and their portable C paths) bit-exact with the int8 reference.

Two levels: the variants' C called directly (ctypes, host) on crafted rows that walk every branch of the row
arithmetic (constant, saturated and two-valued rows, row sizes from 1 to past 4,000, extreme scales and
epsilons); and graphs of one-op branches compiled for a board, run under QEMU on the Cortex-M4, M7 and M55
boards (the DSP and MVE paths) and on the host with ASan/UBSan.
"""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import pytest

from mcuc.ir import Graph, QuantParams
from mcuc.ops import verify
from mcuc.ops.quant_rules import SOFTMAX_QUANT
from mcuc.passes.kernels import kernel_names
from mcuc.reference import softmax as rsoftmax
from mcuc.reference import transformer as rtf
from mcuc.runner import verify_project
from tests.cbuild import build_shared
from tests.test_kernel_variants import QEMU_BOARDS, _Branches, _compile, needs_qemu

I32 = ctypes.c_int32
I64 = ctypes.c_int64


class CLayerNormParams(ctypes.Structure):
    _fields_ = [("rows", I32), ("row_size", I32), ("eps_v", I64), ("out_shift", I32), ("out_zp", I32)]


class CSoftmaxParams(ctypes.Structure):
    _fields_ = [("rows", I32), ("row_size", I32), ("out_levels", I32), ("out_zp", I32)]


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    return build_shared(["mcuc_layernorm_simd_s8", "mcuc_softmax_simd_s8"])


def _ptr(a: np.ndarray, ctype: Any = ctypes.c_int8) -> Any:
    return a.ctypes.data_as(ctypes.POINTER(ctype))


def _rows(rng: np.random.Generator, rows: int, c: int) -> np.ndarray:
    """Rows of every kind: uniform, saturated, constant, two-valued, narrow around a random centre."""
    out = np.empty((rows, c), np.int8)
    for r in range(rows):
        kind = int(rng.integers(0, 5))
        if kind == 0:
            out[r] = rng.integers(-128, 128, c)
        elif kind == 1:
            out[r] = rng.choice(np.array([-128, 127]), c)
        elif kind == 2:
            out[r] = int(rng.integers(-128, 128))
        elif kind == 3:
            a = int(rng.integers(-128, 128))
            out[r] = np.where(rng.random(c) < 0.5, a, min(a + 1, 127))
        else:
            m = int(rng.integers(-120, 120))
            out[r] = np.clip(m + rng.integers(-3, 4, c), -128, 127)
    return out


# ---- LayerNorm -------------------------------------------------------------------------------------------


def _ln_case(rng: np.random.Generator, c: int) -> rtf.LayerNormParams | None:
    s_in = float(10 ** rng.uniform(-4, 0.5))
    s_out = float(10 ** rng.uniform(-3, 0))
    gamma = rng.normal(0, 10 ** rng.uniform(-2, 1), c) * rng.choice([0, 1], c, p=[0.1, 0.9])
    beta = rng.normal(0, 10 ** rng.uniform(-3, 0.5), c)
    eps = float(rng.choice([0.0, 1e-6, 1e-5, 1e-2, 10.0]))
    zp = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
    try:
        return rtf.prepare_layernorm((1, c), s_in, gamma, beta, eps, s_out, zp)
    except ValueError:
        return None


@pytest.mark.parametrize("seed", range(60))
def test_layernorm_simd_c_matches_reference(lib: ctypes.CDLL, seed: int) -> None:
    """The portable path of mcuc_layernorm_simd_s8 (the DSP/MVE paths run the same row constants) against
    the reference, in place and not, on rows up to 4,099 values (the s > 32 branch of the row arithmetic)."""
    rng = np.random.default_rng(seed)
    c = int(rng.choice([1, 2, 3, 5, 7, 16, 17, 33, 64, 97, 192, 768, 1500, 4099]))
    rows = int(rng.integers(1, 9))
    p = _ln_case(rng, c)
    if p is None:
        pytest.skip("no fixed-point affine for these scales")
    p = rtf.LayerNormParams(rows, c, p.eps_v, p.out_shift, p.out_zp, p.gamma_mult, p.beta_bias)
    affine = rtf.layernorm_affine(p)
    if affine is None:
        pytest.skip("out_shift < 32: the portable kernel runs")
    x = _rows(rng, rows, c)
    ref = rtf.layernorm_s8(p, x)
    cp = CLayerNormParams(p.rows, p.row_size, p.eps_v, p.out_shift, p.out_zp)
    out = np.zeros_like(x)
    lib.mcuc_layernorm_simd_s8(ctypes.byref(cp), _ptr(affine, I32), _ptr(x), _ptr(out))
    assert np.array_equal(ref, out)
    y = x.copy()
    lib.mcuc_layernorm_simd_s8(ctypes.byref(cp), _ptr(affine, I32), _ptr(y), _ptr(y))
    assert np.array_equal(ref, y)


def layernorm_graph(seed: int) -> Graph:
    """LayerNorms over odd row sizes, rows not a multiple of the vector width, extreme scales (out_shift from
    below 32 to 55); the last with a near-zero gamma and output zero point 127, whose folded bias leaves the
    variant's range (the portable kernel)."""
    b = _Branches(seed)
    r = b.rng
    cases = [(3, 1, 0.05, 1.0), (5, 7, 0.01, 0.5), (4, 64, 0.02, 1.0), (2, 33, 1e-4, 3.0), (1, 17, 2.0, 0.01),
             (6, 130, 0.05, 10.0), (2, 768, 0.03, 1.0), (1, 4001, 0.05, 1.0), (3, 20, 0.05, 4e4),
             (2, 9, 0.05, 1e-6)]
    for i, (rows, c, s_in, g_scale) in enumerate(cases):
        x = b.input((1, rows, c))
        b.g.tensors[x].quant = QuantParams(np.array([s_in]), np.array([int(r.integers(-20, 20))]))
        q = b.out_quant() if i + 1 < len(cases) else QuantParams(np.array([0.05]), np.array([127]))
        p = rtf.prepare_layernorm((1, rows, c), s_in, r.normal(0, g_scale, c), r.normal(0, 0.5, c),
                                  float(r.choice([1e-5, 1e-2])), float(q.scale[0]), int(q.zero_point[0]))
        gm = b.g.const("gm", p.gamma_mult.astype(np.int32))
        bb = b.g.const("bb", p.beta_bias.astype(np.int64))
        b.g.outputs.append(b.node("layernorm", [x, gm, bb], (1, rows, c), q, eps_v=p.eps_v,
                                  out_shift=p.out_shift))
    verify(b.g, quantized=True)
    return b.g


def _check_layernorm(tmp_path, board: str, target: str) -> None:
    g = layernorm_graph(seed=11)
    kg, out = _compile(g, board, "fast", tmp_path)
    names = sorted(kernel_names(kg).values())
    assert names == ["mcuc_layernorm_simd_s8"] * 9, names
    res = verify_project(out, kg, samples=3, seed=2, target=target, **({"board": board} if target == "qemu" else {}))
    assert res["mismatched"] == 0, res


def test_layernorm_variant_bit_exact_on_host(tmp_path):
    """The C path of mcuc_layernorm_simd_s8 in a compiled project, under ASan/UBSan."""
    _check_layernorm(tmp_path, "qemu-mps2-an386", "host")


@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_layernorm_variant_bit_exact_under_qemu(tmp_path, board):
    _check_layernorm(tmp_path, board, "qemu")


# ---- softmax ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(60))
def test_softmax_simd_c_matches_reference(lib: ctypes.CDLL, seed: int) -> None:
    """The portable path of mcuc_softmax_simd_s8 (reciprocal and remainder correction) against the reference,
    in place and not: row sizes to 65,535 (the exp table's fewest bits), input scales from near-zero (all
    exponentials equal) to large (one dominant value), output scales 1/256 and 1/255 and odd L."""
    rng = np.random.default_rng(1000 + seed)
    c = int(rng.choice([1, 2, 3, 5, 15, 16, 17, 63, 64, 65, 200, 1023, 1024, 4097, 65535]))
    rows = int(rng.integers(1, 5)) if c < 5000 else 1
    s_in = float(10 ** rng.uniform(-5, 1))
    levels = int(rng.choice([256, 255, 100, 1, 17]))
    zp = int(rng.choice([-128, -100, 0, 127])) if levels < 256 else -128
    p = rsoftmax.prepare_softmax((rows, c), s_in, float(rng.choice([1.0, 0.5])), 1.0 / levels, zp)
    x = _rows(rng, rows, c)
    ref = rsoftmax.softmax_s8(p, x)
    cp = CSoftmaxParams(p.rows, p.row_size, p.out_levels, p.out_zp)
    table = np.ascontiguousarray(p.exp_table, np.uint32)
    out = np.zeros_like(x)
    lib.mcuc_softmax_simd_s8(ctypes.byref(cp), _ptr(table, ctypes.c_uint32), _ptr(x), _ptr(out))
    assert np.array_equal(ref, out)
    y = x.copy()
    lib.mcuc_softmax_simd_s8(ctypes.byref(cp), _ptr(table, ctypes.c_uint32), _ptr(y), _ptr(y))
    assert np.array_equal(ref, y)


def softmax_graph(seed: int) -> Graph:
    """Softmaxes over odd row lengths, rows not a multiple of 4 or 16, tiny and large input scales, output
    scales 1/256 and 1/255; and attention ops (odd token counts and blocks), whose kernel runs the same row
    routine on its scores."""
    b = _Branches(seed)
    r = b.rng
    for rows, c, s_in, levels, zp in [(3, 1, 0.05, 256, -128), (5, 7, 0.1, 256, -128), (4, 64, 0.05, 255, -128),
                                      (2, 33, 1e-4, 256, -128), (1, 17, 2.0, 256, -128), (6, 130, 0.02, 255, 0),
                                      (2, 1000, 0.08, 256, -128), (7, 3, 0.5, 100, -50)]:
        x = b.input((1, rows, c))
        b.g.tensors[x].quant = QuantParams(np.array([s_in]), np.array([int(r.integers(-20, 20))]))
        q = QuantParams(np.array([1.0 / levels]), np.array([zp]))
        b.g.outputs.append(b.node("softmax", [x], (1, rows, c), q, axis=2))
    for heads, tq, tk, d, dv in [(2, 7, 9, 5, 3), (1, 17, 21, 16, 11), (3, 4, 64, 19, 8)]:
        xq, xk, xv = b.input((1, heads, tq, d)), b.input((1, heads, tk, d)), b.input((1, heads, tk, dv))
        b.g.outputs.append(b.node("attention", [xq, xk, xv], (1, heads, tq, dv), scores_quant=b.quant(),
                                  probs_quant=SOFTMAX_QUANT, scores_act=(-128, 127), alpha=float(d) ** -0.5,
                                  transpose_b=True, beta=1.0, alpha_v=1.0, transpose_v=False, act_min=-128,
                                  act_max=127, block_rows=int(r.integers(1, tq + 1))))
    verify(b.g, quantized=True)
    return b.g


def _check_softmax(tmp_path, board: str, target: str) -> None:
    g = softmax_graph(seed=12)
    kg, out = _compile(g, board, "fast", tmp_path)
    assert sorted(kernel_names(kg).values()) == ["mcuc_softmax_simd_s8"] * 8
    res = verify_project(out, kg, samples=3, seed=2, target=target, **({"board": board} if target == "qemu" else {}))
    assert res["mismatched"] == 0, res


def test_softmax_variant_bit_exact_on_host(tmp_path):
    """The C path of mcuc_softmax_simd_s8 in a compiled project (and in attention), under ASan/UBSan."""
    _check_softmax(tmp_path, "qemu-mps2-an386", "host")


@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_softmax_variant_bit_exact_under_qemu(tmp_path, board):
    _check_softmax(tmp_path, board, "qemu")

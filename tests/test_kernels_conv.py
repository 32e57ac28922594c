"""Parity of the int8 conv-family C kernels with the numpy reference, and of the reference with float math."""
from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import pytest

from mcuc.quant import quantize_multiplier
from mcuc.reference.conv import (
    Conv2dParams,
    FullyConnectedParams,
    PerChannelQuant,
    conv2d_kernel_fields,
    conv2d_s8,
    depthwise_conv2d_s8,
    fully_connected_kernel_fields,
    fully_connected_s8,
    prepare_per_channel_quant,
)
from tests.cbuild import build_shared

_CONV_FIELDS = list(conv2d_kernel_fields((1, 1, 1, 1), (1, 1, 1, 1), Conv2dParams()))
_FC_FIELDS = list(fully_connected_kernel_fields((1, 1), (1, 1), FullyConnectedParams()))


class _Conv2dParamsC(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in _CONV_FIELDS]


class _FullyConnectedParamsC(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in _FC_FIELDS]


class _QuantC(ctypes.Structure):
    _fields_ = [("multiplier", ctypes.POINTER(ctypes.c_int32)), ("shift", ctypes.POINTER(ctypes.c_int32))]


_I8P = ctypes.POINTER(ctypes.c_int8)
_I32P = ctypes.POINTER(ctypes.c_int32)


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    conv_kernels = ["mcuc_conv2d_s8", "mcuc_depthwise_conv2d_s8", "mcuc_depthwise_conv2d_3x3_s8"]
    so = build_shared([*conv_kernels, "mcuc_fully_connected_s8"])
    kernels = [(name, _Conv2dParamsC) for name in conv_kernels] + [("mcuc_fully_connected_s8",
                                                                    _FullyConnectedParamsC)]
    for name, params_t in kernels:
        fn = getattr(so, name)
        fn.argtypes = [ctypes.POINTER(params_t), ctypes.POINTER(_QuantC), _I8P, _I8P, _I32P, _I8P]
        fn.restype = None
    return so


@pytest.fixture(scope="module", autouse=True)
def _torch_single_thread() -> Iterator[None]:
    """The float cross-check runs many tiny convolutions; thread start-up and spinning would dominate."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ptr(a: np.ndarray | None, ctype: type) -> ctypes._Pointer | None:
    return None if a is None else a.ctypes.data_as(ctypes.POINTER(ctype))


def _call(fn: Callable, params_c: ctypes.Structure, quant: PerChannelQuant, x: np.ndarray, w: np.ndarray,
          bias: np.ndarray | None, out_shape: tuple[int, ...]) -> np.ndarray:
    mult = np.ascontiguousarray(quant.multiplier, dtype=np.int32)
    shift = np.ascontiguousarray(quant.shift, dtype=np.int32)
    quant_c = _QuantC(_ptr(mult, ctypes.c_int32), _ptr(shift, ctypes.c_int32))
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    bias = None if bias is None else np.ascontiguousarray(bias)
    out = np.full(out_shape, 99, dtype=np.int8)
    fn(ctypes.byref(params_c), ctypes.byref(quant_c), _ptr(x, ctypes.c_int8), _ptr(w, ctypes.c_int8),
       _ptr(bias, ctypes.c_int32), _ptr(out, ctypes.c_int8))
    return out


def c_conv2d(fn: Callable, params: Conv2dParams, quant: PerChannelQuant, x: np.ndarray, w: np.ndarray,
             bias: np.ndarray | None) -> np.ndarray:
    fields = conv2d_kernel_fields(x.shape, w.shape, params)
    out_shape = (fields["batch"], fields["out_h"], fields["out_w"], fields["out_c"])
    return _call(fn, _Conv2dParamsC(**fields), quant, x, w, bias, out_shape)


def c_fully_connected(fn: Callable, params: FullyConnectedParams, quant: PerChannelQuant, x: np.ndarray,
                      w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    fields = fully_connected_kernel_fields(x.shape, w.shape, params)
    out = _call(fn, _FullyConnectedParamsC(**fields), quant, x, w, bias, (fields["rows"], w.shape[0]))
    return out.reshape(*x.shape[:-1], w.shape[0])


P = TypeVar("P", Conv2dParams, FullyConnectedParams)


@dataclass
class Case(Generic[P]):
    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray | None
    params: P
    quant: PerChannelQuant
    in_scale: float
    w_scales: np.ndarray
    out_scale: float


def _pick_zp(rng: np.random.Generator) -> int:
    return int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))


def _pick_act(rng: np.random.Generator, out_zp: int) -> tuple[int, int]:
    kind = rng.choice(4, p=[0.4, 0.2, 0.2, 0.2])
    if kind == 0:
        return -128, 127
    if kind == 1:  # relu
        return out_zp, 127
    if kind == 2:  # relu6-like: [zp, zp + k]
        return out_zp, min(127, out_zp + int(rng.integers(0, 120)))
    lo = int(rng.integers(-128, 128))
    return lo, int(rng.integers(lo, 128))


def _quant_for(rng: np.random.Generator, taps: int, out_c: int,
               x_spread: float) -> tuple[PerChannelQuant, float, np.ndarray, float]:
    """Scales that put the accumulators' typical magnitude across most of the int8 output range."""
    in_scale = float(rng.uniform(0.005, 0.05))
    w_scales = rng.uniform(0.001, 0.02, size=out_c)
    acc_std = max(1.0, np.sqrt(taps) * x_spread * 74.0 * 110.0)
    out_scale = float(in_scale * w_scales.mean() * acc_std / 50.0 * rng.uniform(0.3, 3.0))
    return prepare_per_channel_quant(in_scale, w_scales, out_scale), in_scale, w_scales, out_scale


def _random_int8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int16).astype(np.int8)


def _random_bias(rng: np.random.Generator, out_c: int, scale: float) -> np.ndarray | None:
    if rng.random() < 0.2:
        return None
    return rng.integers(-int(scale), int(scale) + 1, size=out_c).astype(np.int32)


def conv_case(seed: int, kind: str, only_3x3: bool = False) -> Case[Conv2dParams]:
    """Random conv2d case; kind is 'dense' (groups 1/2/3), 'depthwise', or 'depthwise2' (multiplier 2).

    only_3x3 restricts to 3x3 kernels without dilation (the mcuc_depthwise_conv2d_3x3_s8 domain).
    """
    rng = np.random.default_rng(seed)
    k = int(rng.choice([1, 3, 5, 7])) if rng.random() < 0.8 else int(rng.integers(1, 8))
    kh, kw = (k, k) if rng.random() < 0.8 else (k, int(rng.choice([1, 3, 5])))
    sh, sw = int(rng.choice([1, 2])), int(rng.choice([1, 2]))
    dh, dw = (2, 2) if rng.random() < 0.25 else (1, 1)
    if only_3x3:
        kh, kw, dh, dw = 3, 3, 1, 1
    top, left, bottom, right = (int(p) for p in rng.integers(0, 4, size=4))
    pads = (top, left, bottom, right)
    if kind == "dense":
        groups = int(rng.choice([1, 1, 2, 3]))
        cin = groups * int(rng.integers(1, 9))
        cout = groups * int(rng.integers(1, 7))
    else:
        cin = int(rng.integers(1, 17))
        groups = cin
        cout = cin * (2 if kind == "depthwise2" else 1)
    eff_h, eff_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    h = max(1, eff_h - pads[0] - pads[2]) + int(rng.integers(0, 10))
    w_ = max(1, eff_w - pads[1] - pads[3]) + int(rng.integers(0, 10))
    n = int(rng.integers(1, 3))
    in_zp, out_zp = _pick_zp(rng), _pick_zp(rng)
    act_min, act_max = _pick_act(rng, out_zp)
    params = Conv2dParams((sh, sw), (dh, dw), pads, groups, in_zp, out_zp, act_min, act_max)
    x = _random_int8(rng, (n, h, w_, cin))
    w = _random_int8(rng, (cout, kh, kw, cin // groups))
    taps = kh * kw * (cin // groups)
    quant, in_scale, w_scales, out_scale = _quant_for(rng, taps, cout, 1.0)
    bias = _random_bias(rng, cout, 40.0 * np.sqrt(taps) * 74 * 74 / 40)
    return Case(x, w, bias, params, quant, in_scale, w_scales, out_scale)


def fc_case(seed: int) -> Case[FullyConnectedParams]:
    rng = np.random.default_rng(seed)
    k = int(rng.choice([1, 7, 16, 64, 200, int(rng.integers(1, 300))]))
    o = int(rng.integers(1, 40))
    lead = (int(rng.integers(1, 5)),) if rng.random() < 0.7 else (2, int(rng.integers(1, 4)))
    in_zp, out_zp = _pick_zp(rng), _pick_zp(rng)
    act_min, act_max = _pick_act(rng, out_zp)
    params = FullyConnectedParams(in_zp, out_zp, act_min, act_max)
    x = _random_int8(rng, (*lead, k))
    w = _random_int8(rng, (o, k))
    quant, in_scale, w_scales, out_scale = _quant_for(rng, k, o, 1.0)
    bias = _random_bias(rng, o, np.sqrt(k) * 74 * 74)
    return Case(x, w, bias, params, quant, in_scale, w_scales, out_scale)


def _float_conv(case: Case[Conv2dParams]) -> np.ndarray:
    """Independent float path: torch conv2d in float64 on dequantized values, then round and clamp."""
    torch = pytest.importorskip("torch")
    p = case.params
    xf = torch.from_numpy((case.x.astype(np.float64) - p.input_zp) * case.in_scale).permute(0, 3, 1, 2)
    top, left, bottom, right = p.pads
    xf = torch.nn.functional.pad(xf, (left, right, top, bottom))
    wf = torch.from_numpy(case.w.astype(np.float64) * case.w_scales[:, None, None, None]).permute(0, 3, 1, 2)
    bias = np.zeros(case.w.shape[0]) if case.bias is None else case.bias.astype(np.float64)
    bf = torch.from_numpy(bias * case.in_scale * case.w_scales)
    y = torch.nn.functional.conv2d(xf, wf, bf, stride=p.strides, dilation=p.dilations, groups=p.groups)
    y = y.permute(0, 2, 3, 1).numpy() / case.out_scale + p.output_zp
    return np.clip(np.rint(y), p.act_min, p.act_max)


def _float_fc(case: Case[FullyConnectedParams]) -> np.ndarray:
    p = case.params
    bias = np.zeros(case.w.shape[0]) if case.bias is None else case.bias.astype(np.float64)
    xf = (case.x.astype(np.float64) - p.input_zp) * case.in_scale
    wf = case.w.astype(np.float64) * case.w_scales[:, None]
    y = (xf @ wf.T + bias * case.in_scale * case.w_scales) / case.out_scale + p.output_zp
    return np.clip(np.rint(y), p.act_min, p.act_max)


def _assert_within_one_lsb(ref: np.ndarray, approx: np.ndarray) -> None:
    diff = np.abs(ref.astype(np.int64) - approx.astype(np.int64))
    assert diff.max(initial=0) <= 1, f"reference differs from float math by {diff.max()} LSB"


@pytest.mark.parametrize("seed", range(120))
def test_conv2d_matches_reference(lib: ctypes.CDLL, seed: int) -> None:
    kind = ("dense", "dense", "depthwise", "depthwise2")[seed % 4]
    case = conv_case(seed, kind)
    ref = conv2d_s8(case.params, case.quant, case.x, case.w, case.bias)
    got = c_conv2d(lib.mcuc_conv2d_s8, case.params, case.quant, case.x, case.w, case.bias)
    np.testing.assert_array_equal(got, ref)
    _assert_within_one_lsb(ref, _float_conv(case))


@pytest.mark.parametrize("seed", range(1000, 1080))
def test_depthwise_conv2d_matches_reference(lib: ctypes.CDLL, seed: int) -> None:
    case = conv_case(seed, "depthwise2" if seed % 3 == 0 else "depthwise")
    ref = depthwise_conv2d_s8(case.params, case.quant, case.x, case.w, case.bias)
    got = c_conv2d(lib.mcuc_depthwise_conv2d_s8, case.params, case.quant, case.x, case.w, case.bias)
    np.testing.assert_array_equal(got, ref)
    _assert_within_one_lsb(ref, _float_conv(case))


@pytest.mark.parametrize("seed", range(3000, 3040))
def test_depthwise_conv2d_3x3_matches_reference(lib: ctypes.CDLL, seed: int) -> None:
    case = conv_case(seed, "depthwise", only_3x3=True)
    ref = depthwise_conv2d_s8(case.params, case.quant, case.x, case.w, case.bias)
    got = c_conv2d(lib.mcuc_depthwise_conv2d_3x3_s8, case.params, case.quant, case.x, case.w, case.bias)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("seed", range(2000, 2040))
def test_fully_connected_matches_reference(lib: ctypes.CDLL, seed: int) -> None:
    case = fc_case(seed)
    ref = fully_connected_s8(case.params, case.quant, case.x, case.w, case.bias)
    got = c_fully_connected(lib.mcuc_fully_connected_s8, case.params, case.quant, case.x, case.w, case.bias)
    np.testing.assert_array_equal(got, ref)
    _assert_within_one_lsb(ref, _float_fc(case))


def test_window_entirely_in_padding_gives_bias_only(lib: ctypes.CDLL) -> None:
    """Pads wider than the kernel: border outputs see no input at all, only bias."""
    x = np.full((1, 2, 2, 2), 100, dtype=np.int8)
    w = np.ones((2, 1, 1, 1), dtype=np.int8)
    bias = np.array([5, -7], dtype=np.int32)
    params = Conv2dParams(pads=(2, 2, 2, 2), groups=2, input_zp=-3, output_zp=1)
    quant = PerChannelQuant(np.full(2, 1 << 30, dtype=np.int32), np.ones(2, dtype=np.int32))  # x1.0
    ref = depthwise_conv2d_s8(params, quant, x, w, bias)
    assert ref.shape == (1, 6, 6, 2)
    assert ref[0, 0, 0].tolist() == [6, -6]
    assert ref[0, 2, 2].tolist() == [109, 97]
    for fn in (lib.mcuc_conv2d_s8, lib.mcuc_depthwise_conv2d_s8):
        np.testing.assert_array_equal(c_conv2d(fn, params, quant, x, w, bias), ref)
    w3 = np.arange(18, dtype=np.int8).reshape(2, 3, 3, 1)
    params3 = Conv2dParams(strides=(2, 1), pads=(4, 3, 4, 5), groups=2, input_zp=-3, output_zp=1)
    ref3 = depthwise_conv2d_s8(params3, quant, x, w3, bias)
    assert ref3[0, 0, 0].tolist() == [6, -6]
    for fn in (lib.mcuc_conv2d_s8, lib.mcuc_depthwise_conv2d_s8, lib.mcuc_depthwise_conv2d_3x3_s8):
        np.testing.assert_array_equal(c_conv2d(fn, params3, quant, x, w3, bias), ref3)


def test_mobilenet_like_layers(lib: ctypes.CDLL) -> None:
    """Realistic shapes: stem 3x3/2 SAME, depthwise 3x3/2 SAME with ReLU6, pointwise 1x1, classifier."""
    rng = np.random.default_rng(7)
    x = _random_int8(rng, (1, 32, 32, 3))
    for fn, w_shape, groups, stride, pads in (
            (lib.mcuc_conv2d_s8, (16, 3, 3, 3), 1, 2, (0, 0, 1, 1)),
            (lib.mcuc_depthwise_conv2d_s8, (16, 3, 3, 1), 16, 2, (0, 0, 1, 1)),
            (lib.mcuc_conv2d_s8, (24, 1, 1, 16), 1, 1, (0, 0, 0, 0))):
        w = _random_int8(rng, w_shape)
        taps = int(np.prod(w_shape[1:]))
        quant, *_ = _quant_for(rng, taps, w_shape[0], 1.0)
        params = Conv2dParams((stride, stride), (1, 1), pads, groups, -128, -128, -128, 40)
        bias = rng.integers(-5000, 5000, size=w_shape[0]).astype(np.int32)
        ref = conv2d_s8(params, quant, x, w, bias)
        np.testing.assert_array_equal(c_conv2d(fn, params, quant, x, w, bias), ref)
        x = ref
    w = _random_int8(rng, (10, x.shape[-1]))
    quant, *_ = _quant_for(rng, x.shape[-1], 10, 1.0)
    feats = x.reshape(x.shape[0], -1, x.shape[-1])[:, 0, :]
    fc_params = FullyConnectedParams(-128, 3)
    ref = fully_connected_s8(fc_params, quant, feats, w, None)
    np.testing.assert_array_equal(c_fully_connected(lib.mcuc_fully_connected_s8, fc_params, quant, feats, w, None),
                                  ref)


def test_prepare_per_channel_quant_matches_quantize_multiplier() -> None:
    w_scales = np.array([0.01, 0.002, 0.5, 1e-12])
    quant = prepare_per_channel_quant(0.02, w_scales, 0.1)
    assert quant.multiplier.dtype == np.int32 and quant.shift.dtype == np.int32
    for i, ws in enumerate(w_scales):
        real = 0.02 * ws / 0.1
        assert (int(quant.multiplier[i]), int(quant.shift[i])) == quantize_multiplier(real)
        if quant.multiplier[i]:
            assert abs(quant.multiplier[i] * 2.0 ** (quant.shift[i] - 31) - real) <= real * 2.0**-30


def test_prepare_per_channel_quant_broadcasts_per_tensor_scale() -> None:
    quant = prepare_per_channel_quant(0.02, 0.01, 0.1, out_channels=3)
    assert quant.multiplier.shape == (3,) and len(set(quant.multiplier.tolist())) == 1
    with pytest.raises(ValueError, match="weight scales"):
        prepare_per_channel_quant(0.02, np.ones(2), 0.1, out_channels=3)


def test_reference_rejects_bad_arguments() -> None:
    x = np.zeros((1, 4, 4, 4), dtype=np.int8)
    quant = prepare_per_channel_quant(0.1, np.full(4, 0.1), 0.1)
    with pytest.raises(ValueError, match="groups"):
        conv2d_s8(Conv2dParams(groups=2), quant, x, np.zeros((4, 3, 3, 3), dtype=np.int8), None)
    with pytest.raises(ValueError, match="depthwise"):
        depthwise_conv2d_s8(Conv2dParams(), quant, x, np.zeros((4, 3, 3, 4), dtype=np.int8), None)
    with pytest.raises(ValueError, match="activation range"):
        conv2d_s8(Conv2dParams(act_min=5, act_max=4), quant, x, np.zeros((4, 1, 1, 4), dtype=np.int8), None)
    with pytest.raises(ValueError, match="bias"):
        conv2d_s8(Conv2dParams(), quant, x, np.zeros((4, 1, 1, 4), dtype=np.int8), np.zeros(4, dtype=np.int64))

"""Post-training int8 quantization of a float NHWC graph, following TFLite's int8 spec.

Calibration runs the float graph on sample inputs and records each activation's range; then every
node is rewritten by its registry entry's quantization rule (mcuc/ops/quant_rules.py): per-channel
int8 weights and int32 biases, asymmetric per-tensor activations (the model's own QDQ parameters
where it has them), look-up tables for non-linear unary functions, the input's parameters for ops
that only move data.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcuc.errors import MCUCError
from mcuc.execute import run_float
from mcuc.ir import Graph, QuantParams, Tensor
from mcuc.ops import op_def
from mcuc.ops.quant_rules import QuantContext


class RangeObserver:
    """Collects per-tensor float ranges over calibration batches (min/max or percentile)."""

    def __init__(self, method: str = "minmax", percentile: float = 99.99) -> None:
        if method not in ("minmax", "percentile"):
            raise MCUCError(f"unknown calibration method '{method}': use minmax or percentile")
        self.method = method
        self.percentile = percentile
        self.lo: dict[str, list[float]] = {}
        self.hi: dict[str, list[float]] = {}

    def observe(self, name: str, value: np.ndarray) -> None:
        v = np.asarray(value, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(v)):
            raise MCUCError(f"calibration: tensor '{name}' is NaN or infinite; the model's weights or parameters "
                            "overflow float32 (or the calibration data holds NaN/inf)")
        if self.method == "minmax":
            lo, hi = float(v.min()), float(v.max())
        else:
            lo, hi = (float(x) for x in np.percentile(v, [100 - self.percentile, self.percentile]))
        self.lo.setdefault(name, []).append(lo)
        self.hi.setdefault(name, []).append(hi)

    def range(self, name: str) -> tuple[float, float]:
        if self.method == "minmax":
            lo, hi = min(self.lo[name]), max(self.hi[name])
        else:
            lo, hi = float(np.mean(self.lo[name])), float(np.mean(self.hi[name]))
        if not np.isfinite(max(hi, 0.0) - min(lo, 0.0)) or (max(hi, 0.0) - min(lo, 0.0)) / 255.0 > 1e37:
            raise MCUCError(f"calibration: tensor '{name}' ranges over [{lo:.3g}, {hi:.3g}], too wide for int8 "
                            "quantization (the model's weights or parameters are out of proportion)")
        return lo, hi


class _RangeRecorder(RangeObserver):
    """Answers every range question with [-1, 1] and remembers who asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def range(self, name: str) -> tuple[float, float]:
        if name not in self.asked:
            self.asked.append(name)
        return -1.0, 1.0


def unscaled_activations(g: Graph) -> list[str]:
    """The activations of float graph ``g`` whose int8 parameters calibration must choose: those without the
    model's own (QDQ) parameters whose op picks output parameters (data movement keeps its input's)."""
    rec = _RangeRecorder()
    quantize_graph(g, rec)
    return rec.asked


def calibrate(g: Graph, batches: list[dict[str, np.ndarray]], method: str = "minmax",
              progress: Callable[[int, int], None] | None = None) -> RangeObserver:
    """Run the float reference on every calibration sample and record activation ranges."""
    obs = RangeObserver(method)
    for i, feeds in enumerate(batches):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # observe() refuses NaN/inf values
            values = run_float(g, feeds)
        for name in g.activations():
            obs.observe(name, values[name])
        if progress:
            progress(i + 1, len(batches))
    return obs


def quantize_graph(g: Graph, obs: RangeObserver, fixed: dict[str, QuantParams] | None = None) -> Graph:
    """Rewrite float graph ``g`` (NHWC, passes applied) into an int8 graph; graph inputs named in ``fixed`` get
    those parameters instead of calibrated ones (a camera input's normalisation, mcuc/pixels.py)."""
    out = Graph(layout=g.layout, inputs=list(g.inputs), outputs=list(g.outputs), meta=dict(g.meta))
    ctx = QuantContext(g, out, {}, obs.range)
    for name in g.inputs:
        q = fixed[name] if fixed and name in fixed else ctx.act_quant(name)
        ctx.qp[name] = q
        out.add_tensor(Tensor(name, g.tensors[name].shape, "int8", q))
    for n in g.nodes:
        rule = op_def(n).quantize
        if rule is None:
            raise MCUCError(f"int8 quantization does not support op '{n.op}' (node '{n.name}')")
        rule(ctx, n)
    out.meta["quantized"] = True
    return out

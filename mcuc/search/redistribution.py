"""Receptive-field redistribution (MCUNetV2): search MBConv configurations for low patch-based peak SRAM.

Patch-based inference of the first stage cuts peak SRAM, but overlapping receptive fields (halos) are
recomputed; the larger the receptive field of the patch stage, the more. Redistribution shrinks the
patch stage's receptive field (smaller depthwise kernels, fewer blocks) and enlarges the later stages'
(larger kernels) to keep capacity. This module searches a small structured family derived from a base
:class:`~mcuc.zoo.mcunet.MCUNetConfig`:

- ``split_block``: the patch stage is the stem, the first depthwise-separable block and ``blocks[:split_block]``;
- ``k_patch`` / ``k_after``: depthwise kernel (3/5/7) of the patch-stage blocks / of the blocks after (None: keep);
- ``e_patch`` / ``e_after``: expand ratio (3/4/6) of those blocks (None: keep);
- ``drop_patch``: residual (stride-1, same-width) blocks removed from the end of the patch stage's stages.

Every candidate is built in PyTorch, exported to ONNX, compiled to int8 (synthetic calibration: memory and
MACs do not depend on it) and scheduled with :mod:`mcuc.schedule.search` (split at the patch-stage end, a
few grids, lowest arena). Its score is (peak SRAM, recomputed MACs); total MACs must stay within a budget.
The search is a greedy coordinate descent over the family, with evaluations cached by configuration.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from mcuc.compiler import CompileOptions, compile_model
from mcuc.ops import node_macs
from mcuc.schedule.search import enumerate_candidates, layer_candidate
from mcuc.zoo import randomize_bn_statistics
from mcuc.zoo.export import export_onnx
from mcuc.zoo.mcunet import MCUNET_VWW1, MBBlock, MCUNet, MCUNetConfig, _stage

__all__ = [
    "BASES", "MOBILENETV2", "MBBlock", "MCUNetConfig", "Evaluation", "Redistribution", "SearchResult", "apply",
    "build_model", "config_from_json", "config_to_json", "describe_blocks", "evaluate", "evaluation_from_row",
    "search", "write_result",
]

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEFAULT_GRIDS: tuple[tuple[int, int], ...] = ((2, 2), (3, 3), (4, 4))

# MobileNetV2-1.0 (Sandler et al.) written as an MCUNetConfig: 3x3 s2 stem to 32, depthwise-separable block to
# 16, then (t, c, n, s) = (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1), 1x1 conv to 1280.
MOBILENETV2 = MCUNetConfig(
    resolution=224,
    first_channels=32,
    first_block_channels=16,
    blocks=(
        _stage(24, 2, [(3, 6)] * 2) + _stage(32, 2, [(3, 6)] * 3) + _stage(64, 2, [(3, 6)] * 4)
        + _stage(96, 1, [(3, 6)] * 3) + _stage(160, 2, [(3, 6)] * 3) + _stage(320, 1, [(3, 6)])
    ),
    final_channels=1280,
    num_classes=1000,
)

BASES: dict[str, tuple[MCUNetConfig, int]] = {
    # name -> (config, default split_block): MobileNetV2's patch stage ends at the 28x28 (1/8) stage's input,
    # i.e. after the 56x56 blocks; mcunet-vww1's after the 20x20 stage's input.
    "mobilenetv2": (MOBILENETV2, 3),
    "mcunet-vww1": (MCUNET_VWW1, 2),
}


@dataclass(frozen=True)
class Redistribution:
    """One member of the family; None keeps the base's per-block value."""

    split_block: int
    k_patch: int | None = None
    k_after: int | None = None
    e_patch: int | None = None
    e_after: int | None = None
    drop_patch: int = 0


def apply(base: MCUNetConfig, r: Redistribution) -> tuple[MCUNetConfig, int]:
    """The configuration ``r`` describes, and its patch-stage length in MB blocks (after any drops)."""
    patch = list(base.blocks[:r.split_block])
    after = list(base.blocks[r.split_block:])
    for _ in range(r.drop_patch):
        drop = None
        for i, b in enumerate(patch):  # the last residual block of the patch stage
            if i > 0 and b.stride == 1 and b.channels == patch[i - 1].channels:
                drop = i
        if drop is None:
            break
        del patch[drop]
    patch = [replace(b, kernel=r.k_patch or b.kernel, expand=r.e_patch or b.expand) for b in patch]
    after = [replace(b, kernel=r.k_after or b.kernel, expand=r.e_after or b.expand) for b in after]
    return replace(base, blocks=tuple(patch + after)), len(patch)


@dataclass
class Evaluation:
    """Compiled numbers of one configuration with its patch schedule at the patch-stage end."""

    redistribution: Redistribution
    config: MCUNetConfig
    split_op: int  # ops in the patch stage of the compiled int8 graph
    grid: tuple[int, int]
    layer_arena: int  # layer-based arena (B)
    arena: int  # patch-based arena (B), the peak SRAM the search minimises
    macs: int  # layer-based (model) MACs
    patch_macs: int  # MACs the patch schedule executes (with recomputation)
    stage_macs: int  # layer-based MACs of the patch stage
    overhead: float  # whole-network MAC overhead of the patch schedule
    stage_overhead: float  # patch-stage MAC overhead
    params: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def recompute_macs(self) -> int:
        return self.patch_macs - self.macs

    def row(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("config", "redistribution", "extra")}
        d["redistribution"] = asdict(self.redistribution)
        d["blocks"] = describe_blocks(self.config)
        return d


def evaluation_from_row(base: MCUNetConfig, row: dict[str, Any]) -> Evaluation:
    """Inverse of :meth:`Evaluation.row` given the base the search started from."""
    r = Redistribution(**row["redistribution"])
    fields = {k: v for k, v in row.items() if k not in ("redistribution", "blocks")}
    fields["grid"] = tuple(fields["grid"])
    return Evaluation(redistribution=r, config=apply(base, r)[0], **fields)


def describe_blocks(cfg: MCUNetConfig) -> str:
    """Compact per-block description: k{kernel}e{expand}[s2] per block."""
    return " ".join(f"k{b.kernel}e{b.expand}{'s2' if b.stride == 2 else ''}" for b in cfg.blocks)


def config_to_json(cfg: MCUNetConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["blocks"] = [asdict(b) for b in cfg.blocks]
    return d


def config_from_json(d: dict[str, Any]) -> MCUNetConfig:
    d = dict(d)
    d["blocks"] = tuple(MBBlock(**b) for b in d["blocks"])
    return MCUNetConfig(**d)


def build_model(cfg: MCUNetConfig, seed: int = 0) -> torch.nn.Module:
    """Seeded model in eval mode with non-trivial BN statistics (as the zoo builds)."""
    torch.manual_seed(seed)
    model = MCUNet(cfg)
    randomize_bn_statistics(model, (1, cfg.in_channels, cfg.resolution, cfg.resolution), seed=seed)
    return model.eval()


def _split_op(names: Sequence[str], feature_index: int) -> int:
    """Ops up to and including the last op of ``features.{feature_index}`` (the patch-stage end)."""
    tag = f"/features.{feature_index}/"
    idx = [i for i, n in enumerate(names) if tag in n]
    if not idx:
        raise ValueError(f"no op of features.{feature_index} in the compiled graph")
    return idx[-1] + 1


def evaluate(cfg: MCUNetConfig, patch_blocks: int, r: Redistribution,
             grids: Iterable[tuple[int, int]] = DEFAULT_GRIDS, max_overhead: float = 1.0,
             planner: str = "best") -> Evaluation:
    """Build, export, compile (int8, synthetic calibration) and schedule one configuration.

    The patch stage is the stem, the depthwise-separable block and ``patch_blocks`` MB blocks; among the
    grids whose whole-network overhead is within ``max_overhead`` the lowest arena wins (ties: less overhead).
    """
    model = build_model(cfg)
    with tempfile.TemporaryDirectory(prefix="mcuc-redist-") as td:
        path = export_onnx(model, (1, cfg.in_channels, cfg.resolution, cfg.resolution), Path(td) / "m.onnx")
        compiled = compile_model(str(path), CompileOptions(board="host", calib_samples=1, planner=planner),
                                 progress=lambda m: None)
    g = compiled.graph
    split = _split_op([n.name for n in g.nodes], patch_blocks + 1)
    layer = layer_candidate(g, planner)
    grids = [gr for gr in grids if gr[0] <= g.tensors[g.nodes[split - 1].outputs[0]].shape[1]]
    cands = enumerate_candidates(g, grids=grids, strategies=(planner,), splits=[split], include_layer=False,
                                 max_overhead=max_overhead)
    if not cands:
        raise ValueError(f"no patch schedule within {max_overhead:.0%} MAC overhead at split {split}")
    best = min(cands, key=lambda c: (c.arena_bytes, c.mac_overhead))
    return Evaluation(
        redistribution=r, config=cfg, split_op=split, grid=best.grid, layer_arena=layer.arena_bytes,
        arena=best.arena_bytes, macs=layer.macs, patch_macs=best.macs,
        stage_macs=sum(node_macs(n, g) for n in g.nodes[:split]), overhead=best.mac_overhead,
        stage_overhead=best.stage_mac_overhead,
        params=sum(p.numel() for p in model.parameters()))


@dataclass
class SearchResult:
    base: Evaluation
    best: Evaluation
    budget: int
    evaluated: list[Evaluation]


def _score(e: Evaluation, arena_tolerance: float) -> tuple[float, int, int]:
    # Peak SRAM first (in kB, within a tolerance so planner noise does not dominate), then recomputed MACs,
    # then the most model MACs (capacity moved out of the patch stage rather than given up).
    return (round(e.arena / (1 + arena_tolerance) / 1024), e.recompute_macs, -e.macs)


def search(base: MCUNetConfig, split_block: int, mac_budget: int | None = None, slack: float = 0.0,
           min_macs: float = 0.9, kernels: Sequence[int] = KERNELS, expands: Sequence[int] = EXPANDS,
           max_drop: int = 1, rounds: int = 2, vary_split: bool = True,
           grids: Iterable[tuple[int, int]] = DEFAULT_GRIDS, max_overhead: float = 1.0,
           arena_tolerance: float = 0.0, progress: Callable[[str], None] | None = None) -> SearchResult:
    """Greedy coordinate descent over ((k_patch, k_after), drop_patch, e_patch, e_after, split_block).

    Each round tries every value of every coordinate in turn from the incumbent; empty ``kernels`` /
    ``expands`` or ``max_drop=0`` / ``vary_split=False`` leave that coordinate as in the base.

    ``mac_budget`` (layer-based MACs) defaults to the base's MACs * (1 + slack). A candidate is accepted only
    within the budget, with at least ``min_macs`` x the base's MACs (redistribution, not shrinking), and when its
    score (peak SRAM, recomputed MACs, then more model MACs) beats the incumbent's.
    """
    grids = tuple(grids)
    cache: dict[tuple[MCUNetConfig, int], Evaluation | None] = {}  # keyed by the network, not its description

    def ev(r: Redistribution) -> Evaluation | None:
        key = apply(base, r)
        if key not in cache:
            try:
                cache[key] = evaluate(key[0], key[1], r, grids, max_overhead)
            except ValueError:
                cache[key] = None
            e = cache[key]
            if progress is not None and e is not None:
                progress(f"  {r}: arena {e.arena / 1024:.1f} kB, MACs {e.macs / 1e6:.2f} M, "
                         f"overhead {e.overhead:+.1%} / stage {e.stage_overhead:+.1%}")
        return cache[key]

    start = Redistribution(split_block)
    base_eval = ev(start)
    if base_eval is None:
        raise ValueError("the base configuration has no patch schedule")
    budget = mac_budget if mac_budget is not None else int(base_eval.macs * (1 + slack))
    best = base_eval
    # Kernels move jointly (smaller in the patch stage pays for larger after it under the MAC budget).
    moves: list[dict[str, Any]] = [{"k_patch": kp, "k_after": ka} for kp in kernels for ka in kernels]
    moves += [{"drop_patch": d} for d in range(max_drop + 1)]
    moves += [{"e_patch": e} for e in expands] + [{"e_after": e} for e in expands]
    if vary_split:
        moves += [{"split_block": s} for s in (split_block - 1, split_block + 1) if 0 < s < len(base.blocks)]
    for _ in range(rounds):
        improved = False
        for move in moves:
            e = ev(replace(best.redistribution, **move))
            if e is None or e.macs > budget or e.macs < min_macs * base_eval.macs:
                continue
            if _score(e, arena_tolerance) < _score(best, arena_tolerance):
                best, improved = e, True
        if not improved:
            break
    return SearchResult(base_eval, best, budget, [e for e in cache.values() if e is not None])


def write_result(res: SearchResult, out_dir: str | Path) -> Path:
    """config.json (chosen config + numbers + base numbers), model.pt (state dict), model.onnx."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = res.best.config
    (out / "config.json").write_text(json.dumps({
        "config": config_to_json(cfg), "chosen": res.best.row(), "base": res.base.row(), "mac_budget": res.budget,
        "evaluated": [e.row() for e in res.evaluated]}, indent=1))
    model = build_model(cfg)
    torch.save(model.state_dict(), out / "model.pt")
    export_onnx(model, (1, cfg.in_channels, cfg.resolution, cfg.resolution), out / "model.onnx")
    return out

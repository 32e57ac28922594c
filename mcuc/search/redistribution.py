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

Each candidate is evaluated as one task (mcuc/parallel.py: local processes with ``--jobs N``, Ray tasks with
``--ray-address``): compiled, scheduled and, unless ``train_steps`` is 0, trained for a short run on the data
set (Fashion-MNIST by default) and scored on held-out test images. A round evaluates every move from the
incumbent at once and then accepts moves in order exactly as the one-by-one descent does (moves after an
accepted one are evaluated again from the new incumbent), so the result does not depend on the number of
workers. Training is seeded and single-threaded per task for the same reason.
"""
from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mcuc.compiler import CompileOptions, compile_model
from mcuc.errors import MCUCError
from mcuc.ops import node_macs
from mcuc.parallel import Workers, run_ordered
from mcuc.schedule.search import enumerate_candidates, layer_candidate
from mcuc.zoo import FASHION_MNIST_DIR, randomize_bn_statistics, read_idx
from mcuc.zoo.export import export_onnx
from mcuc.zoo.mcunet import MCUNET_VWW1, MBBlock, MCUNet, MCUNetConfig, _stage

__all__ = [
    "BASES", "MOBILENETV2", "MBBlock", "MCUNetConfig", "Evaluation", "Redistribution", "SearchResult", "Training",
    "apply", "build_model", "config_from_json", "config_to_json", "describe_blocks", "evaluate", "evaluation_from_row",
    "load_training_data", "search", "train_model", "write_result",
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
    accuracy: float | None = None  # top-1 on the held-out test images after the short training (None: untrained)
    extra: dict[str, Any] = field(default_factory=dict)  # "state_dict": the trained weights

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
    fields.setdefault("accuracy", None)
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


@dataclass(frozen=True)
class Training:
    """The short training run every candidate gets: ``steps`` AdamW steps of ``batch`` images (warm-up, cosine
    decay), single-threaded and seeded, then top-1 on the held-out test images. Images are the data set's grey
    28x28 pictures resized to the candidate's resolution, repeated to its channels, normalised with mean 0.5
    and std 0.5 (as the demo model)."""

    steps: int
    batch: int
    lr: float
    seed: int
    train_x: np.ndarray  # uint8 (N, 28, 28): the first steps * batch images of a seeded permutation
    train_y: np.ndarray
    test_x: np.ndarray  # uint8 (M, 28, 28): held-out test images
    test_y: np.ndarray
    classes: int
    source: str  # where the data came from, for config.json


def load_training_data(steps: int, batch: int = 32, eval_images: int = 2000, lr: float = 4e-3, seed: int = 0,
                       root: Path = FASHION_MNIST_DIR) -> Training:
    """A :class:`Training` over the IDX files in ``root`` (train-/t10k- images and labels, as Fashion-MNIST
    and MNIST ship them); MCUCError naming the remedy when they are missing."""
    files = {k: root / f"{k}-idx{3 if 'images' in k else 1}-ubyte.gz"
             for k in ("train-images", "train-labels", "t10k-images", "t10k-labels")}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise MCUCError(f"training data not found ({missing[0]}): apt-get install dataset-fashion-mnist, pass "
                        "--data DIR with IDX files, or --train-steps 0 for untrained weights")
    images, labels = read_idx(files["train-images"]), read_idx(files["train-labels"]).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(images))[:max(steps * batch, batch)]
    test_x, test_y = read_idx(files["t10k-images"]), read_idx(files["t10k-labels"]).astype(np.int64)
    return Training(steps, batch, lr, seed, images[order], labels[order], test_x[:eval_images],
                    test_y[:eval_images], int(labels.max()) + 1, str(root))


def _batch(images: np.ndarray, cfg: MCUNetConfig) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = F.interpolate(x, size=(cfg.resolution, cfg.resolution), mode="bilinear", align_corners=False)
    return ((x - 0.5) / 0.5).expand(-1, cfg.in_channels, -1, -1)


def train_model(cfg: MCUNetConfig, data: Training) -> tuple[torch.nn.Module, float]:
    """``cfg`` built with its seeded weights, trained on ``data``; (model in eval mode, test top-1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float sums in every worker: results independent of --jobs
    try:
        torch.manual_seed(data.seed)
        model = MCUNet(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=data.lr, weight_decay=1e-4)
        model.train()
        for step in range(data.steps):
            p = step / data.steps
            for group in opt.param_groups:
                group["lr"] = data.lr * (p / 0.05 if p < 0.05 else 0.5 * (1 + math.cos(math.pi * (p - 0.05) / 0.95)))
            i0 = (step * data.batch) % max(len(data.train_x) - data.batch + 1, 1)
            xb = _batch(data.train_x[i0:i0 + data.batch], cfg)
            loss = F.cross_entropy(model(xb), torch.from_numpy(data.train_y[i0:i0 + data.batch]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(data.test_x), 250):
                pred = model(_batch(data.test_x[i:i + 250], cfg)).argmax(1).numpy()
                correct += int((pred == data.test_y[i:i + 250]).sum())
        return model, correct / max(len(data.test_x), 1)
    finally:
        torch.set_num_threads(threads)


@dataclass
class SearchResult:
    base: Evaluation
    best: Evaluation
    budget: int
    evaluated: list[Evaluation]
    training: Training | None = None


def _score(e: Evaluation, arena_tolerance: float) -> tuple[float, int, int]:
    # Peak SRAM first (in kB, within a tolerance so planner noise does not dominate), then recomputed MACs,
    # then the most model MACs (capacity moved out of the patch stage rather than given up).
    return (round(e.arena / (1 + arena_tolerance) / 1024), e.recompute_macs, -e.macs)


def search(base: MCUNetConfig, split_block: int, mac_budget: int | None = None, slack: float = 0.0,
           min_macs: float = 0.9, kernels: Sequence[int] = KERNELS, expands: Sequence[int] = EXPANDS,
           max_drop: int = 1, rounds: int = 2, vary_split: bool = True,
           grids: Iterable[tuple[int, int]] = DEFAULT_GRIDS, max_overhead: float = 1.0,
           arena_tolerance: float = 0.0, progress: Callable[[str], None] | None = None,
           training: Training | None = None, workers: Workers | None = None,
           task_progress: Callable[[int, int], None] | None = None) -> SearchResult:
    """Greedy coordinate descent over ((k_patch, k_after), drop_patch, e_patch, e_after, split_block).

    Each round tries every value of every coordinate in turn from the incumbent; empty ``kernels`` /
    ``expands`` or ``max_drop=0`` / ``vary_split=False`` leave that coordinate as in the base.

    ``mac_budget`` (layer-based MACs) defaults to the base's MACs * (1 + slack). A candidate is accepted only
    within the budget, with at least ``min_macs`` x the base's MACs (redistribution, not shrinking), and when its
    score (peak SRAM, recomputed MACs, then more model MACs) beats the incumbent's. ``training`` trains every
    candidate, ``workers`` runs the evaluations, ``task_progress(done, total)`` follows each batch of them.
    """
    grids = tuple(grids)
    workers = workers or Workers()
    if training is not None:
        base = replace(base, num_classes=training.classes)
    cache: dict[tuple[MCUNetConfig, int], Evaluation | None] = {}  # keyed by the network, not its description

    def evaluate_all(rs: Sequence[Redistribution]) -> None:
        """Evaluate every configuration not yet cached, as parallel tasks, into the cache (in order)."""
        todo: dict[tuple[MCUNetConfig, int], Redistribution] = {}
        for r in rs:
            key = apply(base, r)
            if key not in cache and key not in todo:
                todo[key] = r
        if not todo:
            return
        items = [(key[0], key[1], r) for key, r in todo.items()]
        results = run_ordered(_evaluate_task, (grids, max_overhead, training), items, workers, task_progress)
        for (key, r), e in zip(todo.items(), results, strict=True):
            cache[key] = e
            if progress is not None and e is not None:
                acc = f", accuracy {e.accuracy:.2%}" if e.accuracy is not None else ""
                progress(f"  {r}: arena {e.arena / 1024:.1f} kB, MACs {e.macs / 1e6:.2f} M, "
                         f"overhead {e.overhead:+.1%} / stage {e.stage_overhead:+.1%}{acc}")

    def ev(r: Redistribution) -> Evaluation | None:
        evaluate_all([r])
        return cache[apply(base, r)]

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
        for i, move in enumerate(moves):
            # the moves still to try, from the incumbent as it is now, evaluated together (cached ones are free)
            evaluate_all([replace(best.redistribution, **m) for m in moves[i:]])
            e = ev(replace(best.redistribution, **move))
            if e is None or e.macs > budget or e.macs < min_macs * base_eval.macs:
                continue
            if _score(e, arena_tolerance) < _score(best, arena_tolerance):
                best, improved = e, True
        if not improved:
            break
    for e in cache.values():  # only the chosen configuration's trained weights are kept
        if e is not None and e is not best:
            e.extra.pop("state_dict", None)
    return SearchResult(base_eval, best, budget, [e for e in cache.values() if e is not None], training)


def _evaluate_task(shared: tuple[tuple[tuple[int, int], ...], float, Training | None],
                   item: tuple[MCUNetConfig, int, Redistribution]) -> Evaluation | None:
    """One candidate (a parallel task): compiled and scheduled, then trained when ``Training`` is given; None
    when it has no patch schedule."""
    grids, max_overhead, training = shared
    cfg, patch_blocks, r = item
    try:
        e = evaluate(cfg, patch_blocks, r, grids, max_overhead)
    except ValueError:
        return None
    if training is not None:
        model, e.accuracy = train_model(cfg, training)
        e.extra["state_dict"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return e


def write_result(res: SearchResult, out_dir: str | Path) -> Path:
    """config.json (chosen config, numbers, base numbers, how the weights were made), model.pt (state dict) and
    model.onnx: the trained weights of the chosen configuration, or, without training, its seeded untrained
    initialisation (config.json says which)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = res.best.config
    model = build_model(cfg)
    t = res.training
    if t is not None:
        model.load_state_dict(res.best.extra["state_dict"])
        weights = {"trained": True, "data": t.source, "steps": t.steps, "batch": t.batch, "lr": t.lr, "seed": t.seed,
                   "test_images": len(t.test_x), "test_accuracy": res.best.accuracy}
    else:
        weights = {"trained": False, "note": "seeded random initialisation (--train-steps 0): untrained weights"}
    (out / "config.json").write_text(json.dumps({
        "config": config_to_json(cfg), "weights": weights, "chosen": res.best.row(), "base": res.base.row(),
        "mac_budget": res.budget, "evaluated": [e.row() for e in res.evaluated]}, indent=1))
    model.eval()
    torch.save(model.state_dict(), out / "model.pt")
    export_onnx(model, (1, cfg.in_channels, cfg.resolution, cfg.resolution), out / "model.onnx")
    return out

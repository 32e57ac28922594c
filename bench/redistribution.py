"""Receptive-field redistribution (MCUNetV2): peak SRAM and halo recomputation of base vs redistributed nets.

Memory table: the search (mcuc.search.redistribution) starts from MobileNetV2-1.0-224 written as an MBConv
config (and from mcunet-vww1), under a MAC budget equal to the base's MACs; each candidate is compiled to
int8 (synthetic calibration) and scheduled with the patch-schedule search, split at the end of the patch
stage, grids 2x2 / 3x3 / 4x4, lowest arena. Peak SRAM is mcuc's planned arena (every live buffer: input,
skips, the assembled stage output, per-patch buffers).

Accuracy table: the base and the redistributed configuration at width 0.35, 48x48, 10 classes, trained on
Fashion-MNIST for the same fixed number of steps (same seeds, batch, learning-rate schedule); float accuracy
on the full 10k test set, one value per seed.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mcuc.search.redistribution import (
    BASES,
    Evaluation,
    Redistribution,
    apply,
    describe_blocks,
    evaluation_from_row,
    search,
    write_result,
)
from mcuc.zoo import load_fashion_mnist
from mcuc.zoo.mcunet import MCUNet, MCUNetConfig


def _kb(b: int) -> str:
    return f"{b / 1024:,.1f}"


def _redist_text(r: Redistribution) -> str:
    parts = [f"split after block {r.split_block}"]
    for name in ("k_patch", "k_after", "e_patch", "e_after"):
        v = getattr(r, name)
        if v is not None:
            parts.append(f"{name}={v}")
    if r.drop_patch:
        parts.append(f"drop {r.drop_patch} patch-stage block")
    return ", ".join(parts)


def memory_row(label: str, e: Evaluation, acc: str = "-") -> str:
    return (f"| {label} | {_redist_text(e.redistribution)} | `{describe_blocks(e.config)}` | {e.split_op} | "
            f"{e.grid[0]}x{e.grid[1]} | {_kb(e.layer_arena)} | {_kb(e.arena)} | {e.overhead:+.1%} | "
            f"{e.stage_overhead:+.1%} | {e.macs / 1e6:,.1f} | {e.patch_macs / 1e6:,.1f} | {acc} |")


HEADER = ("| net | redistribution | blocks (kernel, expand, stride) | split (ops) | grid | layer-based arena (kB) | "
          "patch peak SRAM (kB) | MACs +% network | MACs +% patch stage | model MACs (M) | executed MACs (M) | "
          "float acc. |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def train(cfg: MCUNetConfig, steps: int, batch: int = 64, lr: float = 4e-3, seed: int = 0,
          data: tuple[Any, ...] | None = None) -> tuple[float, float]:
    """Train for exactly ``steps`` steps (AdamW, warm-up + cosine over the steps); (test accuracy, seconds)."""
    torch.manual_seed(seed)
    model = MCUNet(cfg)
    assert data is not None
    xs, ys, test_x, test_y = data
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    model.train()
    order = torch.randperm(len(xs), generator=gen)
    for step in range(steps):
        p = step / steps
        for group in opt.param_groups:
            group["lr"] = lr * (p / 0.05 if p < 0.05 else 0.5 * (1 + math.cos(math.pi * (p - 0.05) / 0.95)))
        i0 = (step * batch) % (len(xs) - batch)
        idx = order[i0:i0 + batch]
        xb = xs[idx].expand(-1, 3, -1, -1)
        loss = F.cross_entropy(model(xb), ys[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.time() - t0
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test_x), 500):
            correct += int((model(torch.from_numpy(test_x[i:i + 500])).argmax(1).numpy() == test_y[i:i + 500]).sum())
    return correct / len(test_x), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bases", nargs="*", default=list(BASES), help="bases to search: " + ", ".join(BASES))
    ap.add_argument("--slack", type=float, default=0.0, help="MAC budget = base MACs * (1 + slack)")
    ap.add_argument("--rounds", type=int, default=2, help="greedy rounds")
    ap.add_argument("--from-dir", type=Path, help="read saved searches (DIR/<base>/config.json) instead of searching")
    ap.add_argument("--train-steps", type=int, default=300, help="Fashion-MNIST steps per net (0: skip)")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1], help="training seeds (same for both nets)")
    ap.add_argument("--train-resolution", type=int, default=48)
    ap.add_argument("--train-width", type=float, default=0.35)
    ap.add_argument("--out", type=Path, help="write each chosen config/model under OUT/<base>")
    args = ap.parse_args()
    torch.set_num_threads(2)

    rows: dict[str, tuple[Evaluation, Evaluation, list[Evaluation]]] = {}
    for name in args.bases:
        base, split_block = BASES[name]
        t0 = time.time()
        saved_path = args.from_dir / name / "config.json" if args.from_dir is not None else None
        if saved_path is not None and saved_path.exists():
            saved = json.loads(saved_path.read_text())
            rows[name] = (evaluation_from_row(base, saved["base"]), evaluation_from_row(base, saved["chosen"]),
                          [evaluation_from_row(base, r) for r in saved["evaluated"]])
        else:
            res = search(base, split_block, slack=args.slack, rounds=args.rounds,
                         progress=lambda m: print(f"<!-- {m} -->", flush=True))
            rows[name] = (res.base, res.best, res.evaluated)
            if args.out is not None:
                write_result(res, args.out / name)
        print(f"<!-- {name}: {time.time() - t0:.0f} s -->", flush=True)

    accs: dict[str, tuple[str, str]] = {}
    if args.train_steps > 0 and "mobilenetv2" in rows:
        train_x, train_y = load_fashion_mnist("train", args.train_resolution)
        test_x, test_y = load_fashion_mnist("test", args.train_resolution)
        data = (torch.from_numpy(train_x[:, :1].copy()), torch.from_numpy(train_y), test_x, test_y)
        base, split_block = BASES["mobilenetv2"]
        small = replace(base, width=args.train_width, resolution=args.train_resolution, num_classes=10)
        be, ce, _ = rows["mobilenetv2"]
        out = []
        for r in (be.redistribution, ce.redistribution):
            cfg = apply(small, r)[0]
            params = sum(p.numel() for p in MCUNet(cfg).parameters())
            per_seed = []
            for seed in args.seeds:
                acc, secs = train(cfg, args.train_steps, data=data, seed=seed)
                print(f"<!-- trained {_redist_text(r)}, seed {seed}: {acc:.4f} in {secs:.0f} s, {params} params -->",
                      flush=True)
                per_seed.append(acc)
            out.append(" / ".join(f"{a:.2%}" for a in per_seed))
        accs["mobilenetv2"] = (out[0], out[1])

    print("\n" + HEADER)
    for name, (be, ce, _) in rows.items():
        acc_base, acc_chosen = accs.get(name, ("-", "-"))
        print(memory_row(f"{name} base", be, acc_base))
        print(memory_row(f"{name} redistributed", ce, acc_chosen))
    for name, (_, _, evaluated) in rows.items():
        if not evaluated:
            continue
        print(f"\nAll {len(evaluated)} configurations the search compiled for {name}:\n")
        print(HEADER)
        for e in sorted(evaluated, key=lambda e: (e.arena, e.recompute_macs)):
            print(memory_row(name, e))


if __name__ == "__main__":
    main()

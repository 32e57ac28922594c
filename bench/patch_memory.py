"""Layer-based vs patch-based peak SRAM for MobileNetV2-1.0-224, MobileNetV2-0.35-224 and mcunet-vww1.

Two ways of counting memory, side by side:

- "per-layer peak" is MCUNetV2's count (its Table 1: MobileNetV2-224 = 112*112*(16+96) B = 1372 kB):
  the maximum over layers of that layer's input + output activation bytes (int8), with depthwise
  convolutions counted as max(input, output) because TinyEngine runs them in place. Skip
  connections held for a later add, the full input image and (for patch schedules) the assembled
  stage output are not counted. For a patch schedule the layers are the per-patch layers of the
  stage (their halo-enlarged windows) and the layers after it.
- "arena" is what mcuc allocates: the planned activation arena of the schedule, with every tensor
  that is live at the same time (input image, skip connections, assembled stage output, per-patch
  buffers and crops), checked by the simulated replay (no two live buffers overlap, high-water
  mark == arena).

The patch schedule of each row is the best the search finds within the whole-network MAC
overhead limit: lowest arena, and separately lowest per-layer peak.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from bench.common import compile_zoo
from mcuc.ir import Graph, Node
from mcuc.schedule.base import Schedule
from mcuc.schedule.patch import build_schedule
from mcuc.schedule.search import enumerate_candidates, patch_candidate, replay

MODELS: list[tuple[str, str, dict]] = [
    ("MobileNetV2-1.0-224", "mobilenetv2", {"resolution": 224}),
    ("MobileNetV2-0.35-224", "mobilenetv2-0.35", {"resolution": 224}),
    ("mcunet-vww1 (80x80)", "mcunet-vww1", {}),
]


def _is_depthwise(g: Graph, n: Node) -> bool:
    if n.op != "conv2d":
        return False
    groups = int(n.attrs.get("groups", 1))
    return groups > 1 and groups == g.tensors[n.inputs[0]].shape[3]


def per_layer_peak(g: Graph, skip_ops: Sequence[str] = ("copy_window", "reshape")) -> tuple[int, str]:
    """MCUNetV2's count: max over layers of input + output activation bytes (depthwise in place)."""
    best, where = 0, "-"
    for n in g.nodes:
        if n.op in skip_ops:
            continue
        ins = sum(g.tensors[x].nbytes for x in dict.fromkeys(n.inputs) if x and not g.tensors[x].is_const)
        out = g.tensors[n.outputs[0]].nbytes
        b = max(ins, out) if _is_depthwise(g, n) else ins + out
        if b > best:
            best, where = b, n.name
    return best, where


def _kb(b: int) -> str:
    return f"{b / 1024:,.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-overhead", type=float, default=0.10, help="whole-network MAC overhead limit")
    ap.add_argument("--models", nargs="*", help="subset of: " + ", ".join(m[1] for m in MODELS))
    args = ap.parse_args()
    lim = args.max_overhead
    print(f"patch schedules within +{lim:.0%} whole-network MACs; kB = 1024 B; int8 activations\n")
    print("| model | layer: per-layer peak (kB) | layer: mcuc arena (kB) | patch (lowest arena): split, grid | "
          "arena (kB) | per-layer peak (kB) | MACs +% (network / stage) | patch (lowest per-layer peak): split, "
          "grid | per-layer peak (kB) | arena (kB) | MACs +% (network / stage) | candidates | search (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    halo_rows: list[tuple[str, Graph, int, float]] = []
    for label, name, ov in MODELS:
        if args.models and name not in args.models:
            continue
        compiled = compile_zoo(name, **ov)[0]
        g = compiled.graph
        t0 = time.perf_counter()
        cands = enumerate_candidates(g, strategies=("best", "greedy"), max_overhead=lim)
        dt = time.perf_counter() - t0
        layer = min((c for c in cands if c.kind == "layer"), key=lambda c: c.arena_bytes)
        patch = [c for c in cands if c.kind == "patch" and c.mac_overhead <= lim]
        by_arena = min(patch, key=lambda c: (c.arena_bytes, c.mac_overhead))

        def peak_of(c: Schedule) -> int:
            return per_layer_peak(c.graph)[0]

        by_peak = min(patch, key=lambda c: (peak_of(c), c.mac_overhead, c.arena_bytes))
        for c in (layer, by_arena, by_peak):  # simulated replay == planned arena, no overlap
            assert replay(c.graph, c.planned) == c.arena_bytes

        def desc(c: Schedule) -> str:
            return f"{c.split}, {c.grid[0]}x{c.grid[1]} ({c.strategy})"

        def macs(c: Schedule) -> str:
            return f"{c.mac_overhead:+.1%} / {c.stage_mac_overhead:+.1%}"

        lp, _ = per_layer_peak(g)
        print(f"| {label} | {_kb(lp)} | {_kb(layer.arena_bytes)} | {desc(by_arena)} | {_kb(by_arena.arena_bytes)} | "
              f"{_kb(peak_of(by_arena))} | {macs(by_arena)} | {desc(by_peak)} | {_kb(peak_of(by_peak))} | "
              f"{_kb(by_peak.arena_bytes)} | {macs(by_peak)} | {len(cands)} | {dt:.0f} |", flush=True)
        print(f"<!-- {label}: lowest-arena bottleneck {by_arena.bottleneck}; layer-based bottleneck "
              f"{layer.bottleneck} -->", flush=True)
        halo_rows.append((label, g, by_arena.split, lim))
    print("\nHalo handling at the split of the lowest-arena row: recompute (MCUNetV2), cache (rows kept "
          "for the patch below; with one column of patches nothing is recomputed), mixed (= cache with several "
          "columns: rows cached, column overlaps recomputed). Arena in kB with the best planner, MACs +% of "
          "the whole network.\n")
    print("| model | split | grid | recompute: arena (kB) | recompute: MACs +% | cache/mixed: arena (kB) | "
          "cache/mixed: MACs +% | cache buffers, summed over all patches (kB) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, g, split, _ in halo_rows:
        _, oh, ow, _ = g.tensors[g.nodes[split - 1].outputs[0]].shape
        for grid in ((2, 1), (4, 1), (8, 1), (2, 2), (4, 4), (8, 8)):
            if grid[0] > oh or grid[1] > ow:
                continue
            rec = patch_candidate(g, split, grid, "best", build_schedule(g, split, grid, halo="recompute"))
            cac = patch_candidate(g, split, grid, "best", build_schedule(g, split, grid, halo="cache"))
            for c in (rec, cac):
                assert replay(c.graph, c.planned) == c.arena_bytes
            caches = sum(t.nbytes for name, t in cac.graph.tensors.items() if name.endswith(".cache"))
            kind = "cache" if grid[1] == 1 else "mixed"
            print(f"| {label} | {split} | {grid[0]}x{grid[1]} | {_kb(rec.arena_bytes)} | {rec.mac_overhead:+.1%} | "
                  f"{_kb(cac.arena_bytes)} ({kind}) | {cac.mac_overhead:+.1%} | {_kb(caches)} |", flush=True)
    print(f"\nLowest arena within +{lim:.0%} MACs over all splits and grids, per halo mode:\n")
    print("| model | recompute: split, grid, arena (kB), MACs +% | cache/mixed: split, grid, arena (kB), MACs +% |")
    print("|---|---|---|")
    for label, g, _, _ in halo_rows:
        best = []
        for halo in ("recompute", "cache"):
            cs = enumerate_candidates(g, strategies=("best",), max_overhead=lim, include_layer=False, halos=(halo,))
            c = min(cs, key=lambda c: (c.arena_bytes, c.mac_overhead))
            best.append(f"{c.split}, {c.grid[0]}x{c.grid[1]}, {_kb(c.arena_bytes)}, {c.mac_overhead:+.1%}")
        print(f"| {label} | {best[0]} | {best[1]} |", flush=True)


if __name__ == "__main__":
    main()

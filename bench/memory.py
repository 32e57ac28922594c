"""Arena bytes per zoo model for both planner strategies, beside the lower bound
max over ops of (live inputs + outputs), and the compile time of each model."""
from __future__ import annotations

import argparse

from bench.common import BENCH_MODELS, compile_zoo
from mcuc.memory import plan_memory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="*")
    args = ap.parse_args()
    print("| model | input | lower bound (B) | greedy arena (B) | best arena (B) | weights (B) | MACs | compile (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, ov in BENCH_MODELS:
        if args.models and name not in args.models:
            continue
        compiled, _, shape, dt = compile_zoo(name, **ov)
        greedy = plan_memory(compiled.graph, "greedy")
        best = compiled.schedule.planned
        rep = compiled.report
        print(f"| {name} | {'x'.join(map(str, shape[1:]))} | {best.lower_bound:,} | {greedy.arena_bytes:,} | "
              f"{best.arena_bytes:,} | {rep.weights_bytes:,} | {rep.macs:,} | {dt:.1f} |", flush=True)


if __name__ == "__main__":
    main()

"""Fuzz the model loaders: mutated .onnx/.tflite models through `mcuc compile`, every compiled one checked bit-exact.

    python -m bench.fuzz [--mutants 10000] [--jobs 2] [--campaign 0] [--timeout 60] [--keep DIR]

Prints the totals (mutants, clean errors, compiled and verified, crashes, hangs) and each finding; exits 1 if
there is any finding. The harness is tests/fuzz_harness.py; `make test` runs a 300-mutant slice of it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.fuzz_harness import ERROR, OK, Totals, run_campaign


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=10_000)
    ap.add_argument("--start", type=int, default=0, help="index of the first mutant")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--campaign", type=int, default=0, help="random seed of the campaign")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds one mutant may take")
    ap.add_argument("--keep", type=Path, help="copy the mutant file of every finding into this directory")
    ap.add_argument("--json", type=Path, help="write totals and findings as JSON to this file")
    args = ap.parse_args()
    step = max(args.mutants // 20, 1)

    def progress(t: Totals) -> None:
        if t.mutants % step == 0:
            print(f"  {t.mutants:>6} mutants, {t.outcomes[ERROR]} clean errors, {t.outcomes[OK]} verified, "
                  f"{t.failures} findings ({t.seconds:.0f} s)", file=sys.stderr, flush=True)

    totals = run_campaign(args.mutants, args.campaign, args.jobs, args.timeout, keep=args.keep, progress=progress,
                          start=args.start)
    for f in totals.findings:
        print(f"finding: mutant {f['index']} of {f['seed']} ({f['mutation']}): {f['outcome']}\n    "
              + f["detail"].strip().replace("\n", "\n    "))
    print("by seed model:")
    for seed, c in sorted(totals.by_seed.items()):
        print(f"  {seed:<32} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    if totals.warnings:
        print("Python warnings:")
        for w, n in totals.warnings.most_common():
            print(f"  {n:>5}  {w}")
    print(totals.summary())
    if args.json:
        args.json.write_text(json.dumps({"mutants": totals.mutants, "outcomes": dict(totals.outcomes),
                                         "seconds": totals.seconds, "findings": totals.findings}, indent=1))
    return 1 if totals.failures else 0


if __name__ == "__main__":
    sys.exit(main())

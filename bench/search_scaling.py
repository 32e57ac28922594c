"""`mcuc search` wall time on local processes: --jobs 1 and --jobs N side by side in one run, same model.

Exports the zoo model (MobileNetV2-1.0 at 224x224 by default) with `mcuc zoo`, then runs `mcuc search MODEL
--jobs J` as a fresh process for each J in turn, --repeats rounds (J = 1, 2, 1, 2, ...), timing the whole
command (calibration and quantization included) and reading the search phase's own time from its log line
("planned N candidates in X s"). Checks every printed table is identical; prints each run, the best of each J
and the speed-up over the first --jobs value, and the machine's load average (the cores may be shared).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mobilenetv2", help="zoo model")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2, help="alternating timed runs of the search phase")
    args = ap.parse_args()
    mcuc = [sys.executable, "-m", "mcuc.cli"]
    with tempfile.TemporaryDirectory() as td:
        model = Path(td) / f"{args.model}-{args.resolution}.onnx"
        subprocess.run([*mcuc, "zoo", args.model, "--resolution", str(args.resolution), "-o", str(model)],
                       check=True, capture_output=True)
        runs: dict[int, list[tuple[float, float]]] = {j: [] for j in args.jobs}
        outputs = []
        for _ in range(args.repeats):
            for jobs in args.jobs:
                t0 = time.perf_counter()
                r = subprocess.run([*mcuc, "search", str(model), "--jobs", str(jobs)], check=True,
                                   capture_output=True, text=True)
                whole = time.perf_counter() - t0
                m = re.search(r"planned \d+ candidates in ([\d.]+) s", r.stderr)
                runs[jobs].append((whole, float(m.group(1)) if m else float("nan")))
                outputs.append(r.stdout)
    same = all(o == outputs[0] for o in outputs)
    first = args.jobs[0]
    best_whole = {j: min(w for w, _ in runs[j]) for j in args.jobs}
    best_search = {j: min(p for _, p in runs[j]) for j in args.jobs}
    print(f"`mcuc search {args.model}-{args.resolution}.onnx --jobs J`, {args.repeats} alternating runs each:\n")
    print("| --jobs | whole command (s) | search phase (s) | best whole | best search phase | speed-up whole / "
          f"search | same table as --jobs {first} |")
    print("|---|---|---|---|---|---|---|")
    for j in args.jobs:
        print(f"| {j} | {' / '.join(f'{w:.1f}' for w, _ in runs[j])} | {' / '.join(f'{p:.1f}' for _, p in runs[j])} "
              f"| {best_whole[j]:.1f} | {best_search[j]:.1f} | {best_whole[first] / best_whole[j]:.2f}x / "
              f"{best_search[first] / best_search[j]:.2f}x | {'yes' if same else 'NO'} |")
    print(f"\ncpus: {os.cpu_count()}, load average (1 min) after the runs: {os.getloadavg()[0]:.1f}")
    print("\n" + outputs[0].splitlines()[-1])


if __name__ == "__main__":
    main()

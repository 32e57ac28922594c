"""`mcuc search` wall time on local processes: --jobs 1 and --jobs N side by side in one run, same model.

Exports the zoo model (MobileNetV2-1.0 at 224x224 by default) with `mcuc zoo`, then times `mcuc search MODEL
--jobs J` for each J as a separate process (calibration, quantization and the whole search included), checks
the printed tables are identical and prints a table of wall times and the speed-up over --jobs 1.
"""
from __future__ import annotations

import argparse
import os
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
    args = ap.parse_args()
    mcuc = [sys.executable, "-m", "mcuc.cli"]
    with tempfile.TemporaryDirectory() as td:
        model = Path(td) / f"{args.model}-{args.resolution}.onnx"
        subprocess.run([*mcuc, "zoo", args.model, "--resolution", str(args.resolution), "-o", str(model)],
                       check=True, capture_output=True)
        rows, outputs = [], []
        for jobs in args.jobs:
            t0 = time.perf_counter()
            r = subprocess.run([*mcuc, "search", str(model), "--jobs", str(jobs)], check=True, capture_output=True,
                               text=True, env={**os.environ})
            rows.append((jobs, time.perf_counter() - t0))
            outputs.append(r.stdout)
    same = all(o == outputs[0] for o in outputs)
    print(f"| model | --jobs | wall time (s) | speed-up | same table as --jobs {args.jobs[0]} |")
    print("|---|---|---|---|---|")
    for jobs, secs in rows:
        print(f"| {args.model}-{args.resolution} | {jobs} | {secs:.1f} | {rows[0][1] / secs:.2f}x | "
              f"{'yes' if same else 'NO'} |")
    print(f"\ncpus: {os.cpu_count()}, load average before the run: {os.getloadavg()[0]:.1f}")
    print("\n" + outputs[0].splitlines()[-1])


if __name__ == "__main__":
    main()

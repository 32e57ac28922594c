"""`make demo`: run the compiled demo model on shipped Fashion-MNIST samples and show the report."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from mcuc.boards import load_board
from mcuc.model_io import dequantize_output, quantize_input, to_graph_layout
from mcuc.project import load_project
from mcuc.report import summary_text
from mcuc.runner import run_samples

DATA = Path(__file__).resolve().parent / "zoo" / "data"


def main(outdir: str) -> int:
    g, report = load_project(outdir)
    meta = json.loads((DATA / "demo_fmnist.json").read_text())
    samples = np.load(DATA / "demo_samples.npz")
    x, labels = samples["images"].astype(np.float32), samples["labels"]
    name = g.inputs[0]
    q = quantize_input(g, name, to_graph_layout(g, name, x))
    board = load_board(str(report["board"]))
    target = "qemu" if board.kind == "qemu" else "host"
    out = run_samples(Path(outdir), g, {name: q}, target, board=board.name if target == "qemu" else None)
    logits = dequantize_output(g, g.outputs[0], out[g.outputs[0]])
    pred = logits.reshape(len(x), -1).argmax(axis=1)
    classes = meta.get("classes", [str(i) for i in range(logits.shape[-1])])
    where = f"QEMU {board.name} ({board.core})" if target == "qemu" else "the host"
    print(f"demo model on {where}: first 8 of {len(x)} shipped test images")
    for i in range(min(8, len(x))):
        mark = "ok " if pred[i] == labels[i] else "MISS"
        print(f"  [{mark}] predicted {classes[pred[i]]:<12} label {classes[labels[i]]}")
    print(f"accuracy on the {len(x)} shipped samples: {100.0 * np.mean(pred == labels):.1f} %")
    print(summary_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""Whole-model and layer builds counted under QEMU, shared by bench/kernels.py (mcuc's kernels) and
bench/cmsis_nn_models.py (the CMSIS-NN figure of the same op lists): compile an ONNX model for a QEMU board
with mcuc's fast or portable kernels and count one inference's instructions, in total and per op."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from mcuc.boards import load_board
from mcuc.compiler import CompileOptions, assemble, compile_model, quantized_graph
from mcuc.ir import Graph
from mcuc.passes.kernels import select_kernels
from mcuc.project import write_project
from mcuc.schedule.base import layer_schedule
from mcuc.targets.cost import count_instructions

BOARDS = {"M4": "qemu-mps2-an386", "M7": "qemu-mps2-an500", "M55": "qemu-mps3-an547"}

def build(onnx_path: Path, board: str, out: Path, portable: bool) -> tuple[Graph, int]:
    """Compile ``onnx_path`` for QEMU ``board`` into ``out``: with ``--kernels fast`` (what mcuc chooses for the
    core), or (``portable``) the portable C kernels on a layer-by-layer schedule. Returns the compiled int8
    graph and its MACs."""
    with contextlib.redirect_stderr(io.StringIO()):  # the synthetic-calibration warning, once per input
        if portable:
            opts = CompileOptions(board=board)
            qg, _ = quantized_graph(str(onnx_path), opts, progress=lambda m: None)
            qg = select_kernels(qg, (), "small")
            compiled = assemble(layer_schedule(qg).plan("best"), load_board(board), opts)
            g = qg
        else:
            compiled = compile_model(str(onnx_path), CompileOptions(board=board, kernels="fast"),
                                     progress=lambda m: None)
            g = compiled.graph
        write_project(compiled, str(out))
    return g, int(compiled.report.macs)


def sample_input(g: Graph, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (1, sum(g.tensors[i].size for i in g.inputs)), np.int8)


# Whole models: (zoo name, build overrides). MobileNetV2-0.35 at 96 px is the MCUNet/MobileNet-style CNN of
# issue 12's whole-model target; dhvt-small and crossvit-small are the transformers.
MODELS = {"mcunet-tiny": {}, "mcunet-vww1": {}, "mobilenetv2-0.35": {"resolution": 96}, "dhvt-small": {},
          "crossvit-small": {}}


def model_counts(name: str, board: str, work: Path, portable: bool) -> tuple[Graph, dict]:
    """(compiled int8 graph, count_instructions of one inference: total and per op) of zoo model ``name`` on QEMU
    ``board``; the project is work/NAME-BOARD-fast (or -portable)."""
    from bench.common import export_zoo

    onnx_path = work / f"{name}.onnx"
    if not onnx_path.exists():
        export_zoo(name, work, **MODELS.get(name, {}))
    out = work / f"{name}-{board}-{'portable' if portable else 'fast'}"
    g, _ = build(onnx_path, board, out, portable)
    return g, count_instructions(out, g, board, sample_input(g))


def model_per_mac(name: str, board: str, work: Path, portable: bool) -> tuple[float, int]:
    """(instructions per MAC of one whole inference, MACs) of zoo model ``name`` on QEMU ``board``, counted from
    reset of the inference to its end (every op and the code between them)."""
    _, counts = model_counts(name, board, work, portable)
    return counts["total"] / counts["macs"], counts["macs"]

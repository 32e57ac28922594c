"""Instruction counts under QEMU: deterministic, per op, and summing to the total."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mcuc.cli import main
from mcuc.ops import lower
from mcuc.project import load_project
from mcuc.targets.build import have_arm_toolchain
from mcuc.targets.cost import count_instructions, marked_ops
from mcuc.targets.qemu import profile_qemu
from tests.onnx_models import conv_model

pytestmark = pytest.mark.skipif(not have_arm_toolchain() or shutil.which("qemu-system-arm") is None
                                or shutil.which("cc") is None,
                                reason="needs arm-none-eabi-gcc, cmake, qemu-system-arm and a host C compiler")

# Instructions of mcuc_model_invoke() outside every op: its prologue and epilogue and the call sites of the
# first and last profile marks. A handful of instructions whatever the model.
MAX_OVERHEAD = 40


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cost")
    model = conv_model(str(tmp / "m.onnx"), cin=3, cout=16, size=16, op_extra="Sigmoid")
    out = tmp / "out"
    assert main(["compile", model, "--board", "qemu-mps2-an386", "--no-build", "-o", str(out)]) == 0
    return out


def sample(outdir: Path, seed: int) -> np.ndarray:
    g, _ = load_project(str(outdir))
    n = sum(g.tensors[i].size for i in g.inputs)
    return np.random.default_rng(seed).integers(-128, 128, (1, n), dtype=np.int8)


@pytest.mark.parametrize("board", ["qemu-mps2-an386", "qemu-mps3-an547"])
def test_counts_are_identical_across_runs(project, board):
    g, _ = load_project(str(project))
    x = sample(project, 0)
    first = count_instructions(project, g, board, x)
    second = count_instructions(project, g, board, x)
    assert first == second
    assert first["total"] > first["macs"] > 0


def test_per_op_counts_sum_to_total(project):
    g, rep = load_project(str(project))
    ops = [i for i, _, _ in marked_ops(project)]
    assert ops == [i for i, n in enumerate(g.nodes) if lower(g, n).func]  # model.c marks every kernel call
    out_bytes = sum(g.tensors[n].nbytes for n in g.outputs)
    y, counts = profile_qemu(project, "qemu-mps2-an386", sample(project, 1), out_bytes, len(ops))
    assert len(counts["per_op"]) == len(ops)
    assert counts["total"] == sum(counts["per_op"]) + counts["overhead"]
    assert 0 <= counts["overhead"] <= MAX_OVERHEAD
    assert all(c > 0 for c in counts["per_op"])
    # the profile build computes the same outputs as the int8 reference
    from mcuc.execute import run_int8

    name = g.inputs[0]
    ref = run_int8(g, {name: sample(project, 1).reshape(g.tensors[name].shape)})
    assert np.array_equal(y.reshape(-1), np.concatenate([ref[o].reshape(-1) for o in g.outputs]))
    # the convolution dominates and costs more than one instruction per MAC in portable C
    conv = next(i for i, n in enumerate(ops) if g.nodes[n].op == "conv2d")
    assert counts["per_op"][conv] == max(counts["per_op"])
    assert counts["per_op"][conv] > rep["ops"][ops[conv]]["macs"]


def test_run_profile_writes_report(project, tmp_path, capsys):
    g, _ = load_project(str(project))
    x = np.random.default_rng(2).standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    rc = main(["run", str(project), "--target", "qemu", "--profile", "--input", str(tmp_path / "x.npy"),
               "--output", str(tmp_path / "y.npy")])
    assert rc == 0
    assert "instructions per inference on qemu-mps2-an386" in capsys.readouterr().out
    ins = json.loads((project / "report.json").read_text())["measured"]["instructions"]
    assert ins["board"] == "qemu-mps2-an386"
    assert ins["total"] == sum(o["instructions"] for o in ins["per_op"]) + ins["overhead"]
    assert [o["index"] for o in ins["per_op"]] == [i for i, _, _ in marked_ops(project)]
    assert ins["per_mac"] == round(ins["total"] / ins["macs"], 3)


def test_profile_needs_qemu_target(project, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    rc = main(["run", str(project), "--target", "host", "--profile", "--input", str(tmp_path / "x.npy"),
               "--output", str(tmp_path / "y.npy")])
    assert rc == 1
    assert "--profile counts instructions under QEMU" in capsys.readouterr().err

"""Kernel variants end to end: every int8 TFLite test model with ``--kernels fast`` and ``--kernels small``, and the
small zoo transformers with fast kernels, compiled for the QEMU boards (Cortex-M4 and M7 with DSP, Cortex-M55 with
MVE) and run under qemu-system-arm, bit-exact with the int8 reference. Each fast compile must have chosen SIMD
variants for the board's ISA and its model.c must call them, so a pass cannot come from portable kernels alone.

The zoo CNNs are run the same way by tests/test_e2e_qemu.py; the full-size transformers (dhvt, crossvit) on the
Cortex-M4, M7 and M55 by tests/test_attention_blocking.py."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mcuc.compiler import Compiled, CompileOptions, compile_model
from mcuc.ir import Graph
from mcuc.ops import op_def
from mcuc.project import write_project
from mcuc.runner import verify_project

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="needs qemu-system-arm and arm-none-eabi-gcc (make sysdeps)")

TFLITE = Path(__file__).parent / "data" / "tflite"
# Every .tflite there except float_tiny_cnn, a float model the frontend refuses (tests/test_tflite.py checks the
# refusal): there is nothing to compile.
TFLITE_MODELS = ["attention", "attention_relu", "detection_heads", "dw_residual_cnn", "float_io_tiny_cnn",
                 "layernorm_mlp", "leaky_relu", "mobilenet_v3_block", "tiny_cnn"]
# Both kernel modes on the Cortex-M4 (DSP) and the Cortex-M55 (MVE, and DSP); the Cortex-M7 has the M4's ISA
# features, so it runs the same C code paths: fast kernels there (DSP code built for the M7), small ones on the M4.
# That keeps the file within about three minutes on one core (a firmware build is ~5 s).
TFLITE_BOARDS = [("qemu-mps2-an386", ("fast", "small")), ("qemu-mps2-an500", ("fast",)),
                 ("qemu-mps3-an547", ("fast", "small"))]
ZOO_TRANSFORMERS = ["dhvt-small", "crossvit-small"]
# Cortex-M7 runs them (and dhvt, crossvit) with its default kernels, fast on that board, in
# tests/test_attention_blocking.py.
TRANSFORMER_BOARDS = ["qemu-mps2-an386", "qemu-mps3-an547"]
SAMPLES = 2


def test_tflite_model_list_is_complete() -> None:
    assert sorted([*TFLITE_MODELS, "float_tiny_cnn"]) == sorted(p.stem for p in TFLITE.glob("*.tflite"))


def _variants(c: Compiled) -> dict[str, str]:
    return {n.name: n.attrs["variant"] for n in c.graph.nodes if n.attrs.get("variant")}


def _simd_variants(g: Graph, feature: str) -> set[str]:
    """The variants chosen in ``g`` whose registry entry needs ISA feature ``feature`` (``dsp`` or ``mve``)."""
    return {n.attrs["variant"] for n in g.nodes if n.attrs.get("variant")
            and any(v.func == n.attrs["variant"] and feature in v.isa for v in op_def(n).variants)}


def _run(c: Compiled, out: Path, board: str) -> None:
    res = verify_project(write_project(c, str(out)), c.graph, samples=SAMPLES, seed=3, target="qemu", board=board)
    assert res["samples"] == SAMPLES and res["elements"] > 0 and res["mismatched"] == 0, (board, res)
    assert res["where"] == f"qemu {board}"


def _check_fast(c: Compiled, out: Path, board: str) -> None:
    """The fast compile chose variants that use the board's SIMD extension, and the generated code calls them."""
    isa = c.report.kernels["isa"]
    feature = "mve" if "mve" in isa else "dsp"
    assert feature in isa, (board, isa)
    simd = _simd_variants(c.graph, feature)
    assert simd, f"{board}: no {feature} kernel chosen by --kernels fast ({_variants(c)})"
    model_c = (out / "model.c").read_text()
    for name in set(_variants(c).values()):
        assert f"{name}(" in model_c, (board, name)


@pytest.mark.parametrize("board,modes", TFLITE_BOARDS, ids=[b for b, _ in TFLITE_BOARDS])
@pytest.mark.parametrize("name", TFLITE_MODELS)
def test_tflite_model_kernel_variants_bit_exact_under_qemu(tmp_path: Path, name: str, board: str,
                                                           modes: tuple[str, ...]) -> None:
    path = str(TFLITE / f"{name}.tflite")
    fast: dict[str, str] | None = None
    for mode in modes:
        c = compile_model(path, CompileOptions(board=board, kernels=mode), progress=lambda m: None)
        assert c.report.kernels["mode"] == mode
        if mode == "small" and _variants(c) == fast:
            continue  # no fast variant needs scratch here: the same firmware as with fast kernels, already run
        _run(c, tmp_path / mode, board)
        if mode == "fast":
            _check_fast(c, tmp_path / mode, board)
            fast = _variants(c)


@pytest.fixture(scope="module")
def transformers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("torch")
    from mcuc import zoo
    from mcuc.zoo.export import export_onnx

    root = tmp_path_factory.mktemp("e2e_transformers")
    out = {}
    for name in ZOO_TRANSFORMERS:
        model, shape = zoo.build(name)
        out[name] = export_onnx(model, shape, root / f"{name}.onnx", opset=17)
    return out


@pytest.mark.parametrize("board", TRANSFORMER_BOARDS)
@pytest.mark.parametrize("name", ZOO_TRANSFORMERS)
def test_zoo_transformer_fast_kernels_bit_exact_under_qemu(transformers: dict[str, Path], tmp_path: Path,
                                                           name: str, board: str) -> None:
    c = compile_model(str(transformers[name]), CompileOptions(board=board, kernels="fast"), progress=lambda m: None)
    assert any(n.op == "attention" for n in c.graph.nodes)
    _run(c, tmp_path / "proj", board)
    _check_fast(c, tmp_path / "proj", board)

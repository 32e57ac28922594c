"""Kernel speed side by side: mcuc's kernels (portable C and the variants chosen per core) against
CMSIS-NN's, in instructions per MAC under QEMU on Cortex-M4, M7 and M55, plus whole models.

    python -m bench.kernels [--layers all|six|none|'NAME;...'] [--models none|all|mcunet-tiny,...] [--boards M4,M7,M55]
    CMSIS_NN_DIR=/path/to/CMSIS-NN python -m bench.kernels    # adds CMSIS-NN's kernels (not vendored)

Each layer class is one op: the layers are the branches of one ONNX model (every branch one op on its
own input), compiled by mcuc for each QEMU board and counted op by op with mcuc's QEMU
instruction-count plugin (the same counts as `mcuc run --target qemu --profile`), once with the
portable kernels and once with the kernels mcuc chooses for the core. With CMSIS_NN_DIR, the same
shapes run through CMSIS-NN's int8 kernels (bench/cmsis_nn.py builds them with the same compiler,
flags and QEMU boards). Every count is exact and repeatable; ratios are mcuc / CMSIS-NN.

``--models`` adds whole zoo models (MODELS: MCUNet-style CNNs, MobileNetV2-0.35 at 96 px, DHVT and CrossViT
transformers), each compiled for every QEMU board with ``--kernels fast`` and with the portable kernels,
in instructions per MAC of one whole inference; with CMSIS_NN_DIR, also the same op list through CMSIS-NN's
kernels (bench/cmsis_nn_models.py says exactly how).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bench.cmsis_nn import cmsis_commit, cmsis_counts
from bench.layer_classes import Layer
from bench.model_counts import BOARDS, MODELS, build, model_per_mac, sample_input
from mcuc.targets.cost import count_instructions

# The six layer shapes of CMSIS-NN's own benchmarks (MCUNet-like), then the other classes mcuc has kernels for.
SIX = [
    Layer("conv 3x3 s2 3->16, 80x80", "conv", 3, 16, 3, 2, 80),
    Layer("pointwise 16->96, 40x40", "conv", 16, 96, 1, 1, 40),
    Layer("depthwise 3x3 s1 96 ch, 40x40", "conv", 96, 96, 3, 1, 40, groups=96),
    Layer("pointwise 96->24, 40x40", "conv", 96, 24, 1, 1, 40),
    Layer("depthwise 7x7 s2 72 ch, 20x20", "conv", 72, 72, 7, 2, 20, groups=72),
    Layer("fully connected 160->10", "fc", 160, 10),
]
MORE = [
    Layer("conv 3x3 s1 16->32, 20x20", "conv", 16, 32, 3, 1, 20),
    Layer("pointwise 40->120, 10x10 (odd)", "conv", 40, 120, 1, 1, 10),
    Layer("depthwise 3x3 s2 48 ch, 40x40", "conv", 48, 48, 3, 2, 40, groups=48),
    Layer("depthwise 5x5 s1 120 ch, 10x10", "conv", 120, 120, 5, 1, 10, groups=120),
    Layer("depthwise 5x5 s2 72 ch, 20x20", "conv", 72, 72, 5, 2, 20, groups=72),
    Layer("depthwise 7x7 s1 48 ch, 10x10", "conv", 48, 48, 7, 1, 10, groups=48),
    Layer("fully connected 64->256 x 16 rows", "fc", 64, 256, extra=(16,)),
    Layer("add 40x40x24", "add", 24, 24, hw=40),
    Layer("average pool global 5x5x320", "avgpool", 320, 320, 5, 1, 5),
    Layer("batch matmul 4x64x16 @ 4x16x64", "matmul", extra=(4, 64, 16, 64)),
    Layer("attention 4 heads x 64 tokens x 16", "attention", extra=(4, 64, 16)),
    Layer("layernorm 64 rows x 64", "layernorm", extra=(64, 64)),
    Layer("softmax 64 rows x 64", "softmax", extra=(64, 64)),
]
LAYERS = SIX + MORE


def _branch(layer: Layer, i: int, rng: np.random.Generator) -> tuple[list, list, list, list]:
    """(nodes, inputs, outputs, initializers) of one branch: one op on its own input(s)."""
    x, y = f"x{i}", f"y{i}"
    f32 = TensorProto.FLOAT
    if layer.kind == "conv":
        w = rng.normal(0, 0.3, (layer.cout, layer.cin // layer.groups, layer.k, layer.k)).astype(np.float32)
        b = rng.normal(0, 0.1, layer.cout).astype(np.float32)
        inits = [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        node = helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [y], pads=[layer.pad] * 4,
                                strides=[layer.stride] * 2, group=layer.groups, name=f"layer{i}")
        o = (layer.hw + 2 * layer.pad - layer.k) // layer.stride + 1
        return ([node], [helper.make_tensor_value_info(x, f32, [1, layer.cin, layer.hw, layer.hw])],
                [helper.make_tensor_value_info(y, f32, [1, layer.cout, o, o])], inits)
    if layer.kind == "fc":
        rows = layer.extra[0] if layer.extra else 1
        w = rng.normal(0, 0.1, (layer.cin, layer.cout)).astype(np.float32)
        inits = [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(rng.normal(0, 0.1, layer.cout)
                                                                             .astype(np.float32), f"b{i}")]
        node = helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y], name=f"layer{i}")
        if rows == 1:
            return ([node], [helper.make_tensor_value_info(x, f32, [1, layer.cin])],
                    [helper.make_tensor_value_info(y, f32, [1, layer.cout])], inits)
        node = helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"], name=f"layer{i}")
        add = helper.make_node("Add", [f"m{i}", f"b{i}"], [y], name=f"layer{i}_bias")
        return ([node, add], [helper.make_tensor_value_info(x, f32, [1, rows, layer.cin])],
                [helper.make_tensor_value_info(y, f32, [1, rows, layer.cout])], inits)
    if layer.kind == "add":
        shape = [1, layer.cin, layer.hw, layer.hw]
        node = helper.make_node("Add", [x, f"x{i}b"], [y], name=f"layer{i}")
        return ([node], [helper.make_tensor_value_info(x, f32, shape), helper.make_tensor_value_info(f"x{i}b", f32,
                                                                                                     shape)],
                [helper.make_tensor_value_info(y, f32, shape)], [])
    if layer.kind == "avgpool":
        node = helper.make_node("GlobalAveragePool", [x], [y], name=f"layer{i}")
        return ([node], [helper.make_tensor_value_info(x, f32, [1, layer.cin, layer.hw, layer.hw])],
                [helper.make_tensor_value_info(y, f32, [1, layer.cin, 1, 1])], [])
    if layer.kind in ("matmul", "attention"):
        # graph inputs are [1, rows, cols] (axis 0 is the batch mcuc runs sample by sample), reshaped to heads
        if layer.kind == "matmul":
            bt, m, k, n = layer.extra
            shapes = {x: (bt, m, k), f"x{i}b": (bt, k, n)}
            out = (bt, m, n)
        else:
            bt, t, d = layer.extra
            shapes = {x: (bt, t, d), f"x{i}k": (bt, t, d), f"x{i}v": (bt, t, d)}
            out = (bt, t, d)
        inits = [numpy_helper.from_array(np.array([1, bt * s[1], s[2]], np.int64), f"{nm}_s2")
                 for nm, s in shapes.items()]
        inits += [numpy_helper.from_array(np.array([1, *s], np.int64), f"{nm}_s4") for nm, s in shapes.items()]
        inits.append(numpy_helper.from_array(np.array([1, out[0] * out[1], out[2]], np.int64), f"y{i}_s2"))
        nodes = [helper.make_node("Reshape", [nm, f"{nm}_s4"], [f"{nm}_4d"], name=f"layer{i}_r{j}")
                 for j, nm in enumerate(shapes)]
        a, b = f"{x}_4d", f"x{i}b_4d" if layer.kind == "matmul" else f"x{i}k_4d"
        if layer.kind == "matmul":
            nodes.append(helper.make_node("MatMul", [a, b], [f"m{i}"], name=f"layer{i}"))
        else:
            inits.append(numpy_helper.from_array(np.array(1 / np.sqrt(d), np.float32), f"sc{i}"))
            nodes += [helper.make_node("Transpose", [b], [f"kt{i}"], perm=[0, 1, 3, 2], name=f"layer{i}_kt"),
                      helper.make_node("MatMul", [a, f"kt{i}"], [f"qk{i}"], name=f"layer{i}_qk"),
                      helper.make_node("Mul", [f"qk{i}", f"sc{i}"], [f"qs{i}"], name=f"layer{i}_scale"),
                      helper.make_node("Softmax", [f"qs{i}"], [f"p{i}"], axis=-1, name=f"layer{i}_softmax"),
                      helper.make_node("MatMul", [f"p{i}", f"x{i}v_4d"], [f"m{i}"], name=f"layer{i}")]
        nodes.append(helper.make_node("Reshape", [f"m{i}", f"y{i}_s2"], [y], name=f"layer{i}_out"))
        ins = [helper.make_tensor_value_info(nm, f32, [1, s[0] * s[1], s[2]]) for nm, s in shapes.items()]
        return nodes, ins, [helper.make_tensor_value_info(y, f32, [1, out[0] * out[1], out[2]])], inits
    if layer.kind == "layernorm":
        rows, c = layer.extra
        inits = [numpy_helper.from_array(rng.normal(1, 0.1, c).astype(np.float32), f"g{i}"),
                 numpy_helper.from_array(rng.normal(0, 0.1, c).astype(np.float32), f"be{i}")]
        node = helper.make_node("LayerNormalization", [x, f"g{i}", f"be{i}"], [y], axis=-1, name=f"layer{i}")
        return ([node], [helper.make_tensor_value_info(x, f32, [1, rows, c])],
                [helper.make_tensor_value_info(y, f32, [1, rows, c])], inits)
    if layer.kind == "softmax":
        rows, c = layer.extra
        node = helper.make_node("Softmax", [x], [y], axis=-1, name=f"layer{i}")
        return ([node], [helper.make_tensor_value_info(x, f32, [1, rows, c])],
                [helper.make_tensor_value_info(y, f32, [1, rows, c])], [])
    raise ValueError(layer.kind)


def layers_model(layers: list[Layer], path: Path, seed: int = 0) -> Path:
    """One ONNX model whose i-th branch is layer i alone (opset 17)."""
    rng = np.random.default_rng(seed)
    nodes, ins, outs, inits = [], [], [], []
    for i, layer in enumerate(layers):
        n, x, y, w = _branch(layer, i, rng)
        nodes += n
        ins += x
        outs += y
        inits += w
    model = helper.make_model(helper.make_graph(nodes, "layers", ins, outs, inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def layer_macs(layer: Layer) -> int:
    if layer.kind == "conv":
        o = (layer.hw + 2 * layer.pad - layer.k) // layer.stride + 1
        return o * o * layer.cout * layer.k * layer.k * layer.cin // layer.groups
    if layer.kind == "fc":
        return (layer.extra[0] if layer.extra else 1) * layer.cin * layer.cout
    if layer.kind in ("add", "avgpool"):
        return layer.hw * layer.hw * layer.cin  # elements read (per element, not per MAC)
    if layer.kind == "matmul":
        bt, m, k, n = layer.extra
        return bt * m * k * n
    if layer.kind == "attention":
        heads, t, d = layer.extra
        return 2 * heads * t * t * d
    rows, c = layer.extra
    return rows * c


def mcuc_counts(layers: list[Layer], board: str, work: Path, portable: bool) -> dict[str, int]:
    """Instructions of each layer's op(s) under QEMU ``board``: the kernels mcuc chooses for the board's core,
    or (``portable``) the portable C kernels only."""
    onnx_path = layers_model(layers, work / "layers.onnx")
    out = work / f"{board}-{'portable' if portable else 'fast'}"
    g, _ = build(onnx_path, board, out, portable)
    counts = count_instructions(out, g, board, sample_input(g))
    per_layer: dict[str, int] = {layer.name: 0 for layer in layers}
    for op in counts["per_op"]:
        i = int(op["name"].split("layer")[1].split("_")[0].split("/")[0])
        per_layer[layers[i].name] += int(op["instructions"])
    return per_layer


def print_models(names: list[str], cores: list[str], work: Path) -> None:
    """The whole-model table: instructions per MAC with portable and with fast kernels, per core."""
    print("\n| model | MACs |" + "".join(f" {c}: portable / fast |" for c in cores))
    print("|---|---:|" + "---|" * len(cores))
    for name in names:
        cells, macs = [], 0
        for core in cores:
            p, macs = model_per_mac(name, BOARDS[core], work, portable=True)
            f, _ = model_per_mac(name, BOARDS[core], work, portable=False)
            cells.append(f"{p:.2f} / {f:.2f}")
            print(f"counted {name} on {core}", file=sys.stderr, flush=True)
        label = f"{name} ({MODELS[name]['resolution']} px)" if "resolution" in MODELS.get(name, {}) else name
        print(f"| {label} | {macs:,} |" + "".join(f" {c} |" for c in cells), flush=True)
    print("\ninstructions per MAC of one inference (every op and the code between them), random int8 input")


def print_layers(layers: list[Layer], cores: list[str], results: dict[tuple[str, str], dict[str, int]],
                 cmsis_dir: str | None) -> None:
    """The layer table: instructions per MAC with portable, mcuc's and CMSIS-NN's kernels, per core."""
    head = "| layer |" + "".join(f" {c}: portable / mcuc / CMSIS-NN (ratio) |" for c in cores)
    print(head)
    print("|---|" + "---|" * len(cores))
    for layer in layers:
        macs = layer_macs(layer)
        row = f"| {layer.name} |"
        for core in cores:
            m = results[(core, "mcuc")][layer.name] / macs
            p = results.get((core, "portable"), {}).get(layer.name)
            c = results.get((core, "cmsis"), {}).get(layer.name)
            cell = (f"{p / macs:.2f} / " if p else "- / ") + f"{m:.2f}"
            cell += f" / {c / macs:.2f} ({m / (c / macs):.2f}x)" if c else " / -"
            row += f" {cell} |"
        print(row)
    if cmsis_dir:
        print(f"\nCMSIS-NN: {cmsis_commit(Path(cmsis_dir))} ({cmsis_dir}); instructions per MAC (add and average "
              "pool: per element read), ratio = mcuc / CMSIS-NN")


def _named(spec: str) -> list[Layer]:
    """The layers named in ``spec`` (names separated by ';'); SystemExit naming the unknown ones."""
    names = [n.strip() for n in spec.split(";") if n.strip()]
    unknown = [n for n in names if n not in {la.name for la in LAYERS}]
    if unknown:
        raise SystemExit(f"error: unknown layer(s) {unknown}; choose from: " + "; ".join(la.name for la in LAYERS))
    return [la for la in LAYERS if la.name in names]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="all",
                    help="all, six, none, or layer names separated by ';' (names contain commas)")
    ap.add_argument("--boards", default="M4,M7,M55")
    ap.add_argument("--no-portable", action="store_true", help="skip the portable-kernel columns")
    ap.add_argument("--models", default="none",
                    help=f"whole models after the layers: none, all ({','.join(MODELS)}) or comma-separated zoo names")
    args = ap.parse_args()
    layers = [] if args.layers == "none" else LAYERS if args.layers == "all" else SIX if args.layers == "six" else \
        _named(args.layers)
    models = [] if args.models == "none" else list(MODELS) if args.models == "all" else args.models.split(",")
    cores = args.boards.split(",")
    work = Path(tempfile.mkdtemp(prefix="mcuc-bench-kernels-"))
    cmsis_dir = os.environ.get("CMSIS_NN_DIR")
    results: dict[tuple[str, str], dict[str, int]] = {}
    for core in cores if layers else []:
        board = BOARDS[core]
        results[(core, "mcuc")] = mcuc_counts(layers, board, work, portable=False)
        if not args.no_portable:
            results[(core, "portable")] = mcuc_counts(layers, board, work, portable=True)
        if cmsis_dir:

            results[(core, "cmsis")] = cmsis_counts(layers, board, Path(cmsis_dir), work)
        print(f"counted {core}", file=sys.stderr, flush=True)
    if layers:
        print_layers(layers, cores, results, cmsis_dir)
    if models and cmsis_dir:
        from bench.cmsis_nn_models import print_models_cmsis

        print_models_cmsis(models, cores, work, Path(cmsis_dir), portable=not args.no_portable)
    elif models:
        print_models(models, cores, work)


if __name__ == "__main__":
    main()

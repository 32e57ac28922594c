"""Whole models through CMSIS-NN: the CMSIS-NN column of ``python -m bench.kernels --models ...``.

The CMSIS-NN figure of a model on a core is defined from mcuc's own compiled op list: the model compiled with
mcuc's layer schedule and ``--kernels fast`` (the ops mcuc runs, one profile mark each), every op counted

- through CMSIS-NN's int8 kernel at the op's exact shape where CMSIS-NN has one: conv2d through
  arm_convolve_wrapper_s8 (which picks its 1x1 fast paths by shape, as a TFLM user gets), depthwise conv2d through
  arm_depthwise_conv_wrapper_s8 (its 3x3 path by shape), fully_connected through arm_fully_connected_s8 (batch =
  rows, the tokens of a transformer), add and mul of two same-shape tensors through arm_elementwise_add_s8 and
  arm_elementwise_mul_s8, global average pool through arm_avgpool_s8, batch_matmul through arm_batch_matmul_s8,
  softmax through arm_softmax_s8, and mcuc's fused attention through its parts: arm_batch_matmul_s8 (q @ k^T, all
  heads), arm_softmax_s8 (heads x query rows) and arm_batch_matmul_s8 (probabilities @ v);
- at mcuc's own fast-kernel count for that op everywhere else (LayerNorm, mean, LUT activations such as GELU,
  transpose, concat, slice, gather, pad, broadcast add and mul, ...), so the figure is never penalised for a kernel
  CMSIS-NN lacks;

plus mcuc's instructions between the ops (runner marks and call glue), the same on both sides. Per-MAC figures divide
by the model's MACs; the ratio is mcuc / CMSIS-NN; the share is the part of the CMSIS-NN figure counted in CMSIS-NN's
kernels. Not added to the CMSIS-NN side: transposes a TFLM graph would run around CMSIS-NN's batch matmul (it reads
its right-hand side transposed) and TFLM's interpreter overhead.

arm-none-eabi-gcc 12.2 builds CMSIS-NN's softmax without its MVE path (CMSIS-NN defines ARM_GCC_12_2_ICE to avoid
a compiler crash), so on M55 arm_softmax_s8 runs its scalar code; in the transformers softmax is a third or more of
the CMSIS-NN figure on every core.

CMSIS-NN's kernels run in bench/cmsis_nn.py's harness (same compiler, -O2, QEMU boards and instruction-count plugin as
mcuc; TFLite-style quantization; int8 data random in the first layer's input, zeros in the others, which changes no
count but softmax's, where zeros take the full path as attention scores do under TFLM's softmax parameters). Each
distinct (kind, shape) over all models is counted once per core, many layers per harness build, as few builds as the
boards' memory allows.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from bench.cmsis_nn import cmsis_commit, cmsis_counts
from bench.layer_classes import Layer
from bench.model_counts import BOARDS, MODELS, model_counts, model_per_mac
from mcuc.ir import Graph, Node
from mcuc.ops.attention import key_count

# per harness build: constants (flash; 2 MB on the M55 board, with the code) and buffers (4 MB of data SRAM)
FLASH_BUDGET = 1_500_000
RAM_BUDGET = 3_000_000


def _conv(g: Graph, n: Node) -> tuple[Layer, ...]:
    x, w, y = (tuple(g.tensors[t].shape) for t in (n.inputs[0], n.inputs[1], n.outputs[0]))
    _, h, wd, cin = x
    cout, kh, kw, _ = w
    strides, pads = tuple(n.attrs.get("strides", (1, 1))), tuple(n.attrs.get("pads", (0, 0, 0, 0)))
    groups = int(n.attrs.get("groups", 1))
    depthwise = groups == cin and cin > 1
    if (h != wd or kh != kw or len(set(strides)) != 1 or len(set(pads)) != 1
            or any(d != 1 for d in n.attrs.get("dilations", (1, 1))) or groups not in (1, cin)
            or (depthwise and cout != cin)):
        return ()  # not a shape the harness builds (never met in the zoo models): mcuc's count
    s, p = int(strides[0]), int(pads[0])
    if (h + 2 * p - kh) // s + 1 != y[1]:
        return ()
    name = (f"depthwise {kh}x{kh} s{s} p{p} {cin} ch, {h}x{h}" if depthwise
            else f"conv {kh}x{kh} s{s} p{p} {cin}->{cout}, {h}x{h}")
    return (Layer(name, "conv", cin, cout, kh, s, h, groups if depthwise else 1, padding=p),)


def _matmul(bt: int, m: int, k: int, n: int) -> Layer:
    return Layer(f"batch matmul {bt}x{m}x{k} @ {bt}x{k}x{n}", "matmul", extra=(bt, m, k, n))


def _softmax(rows: int, cols: int) -> Layer:
    return Layer(f"softmax {rows} rows x {cols}", "softmax", extra=(rows, cols))


def op_layers(g: Graph, n: Node) -> tuple[Layer, ...]:
    """The CMSIS-NN layers that run op ``n`` of the compiled int8 graph ``g`` (NHWC), () where CMSIS-NN has no kernel
    for it at this shape (its CMSIS-NN figure is then mcuc's own count)."""
    ins = [tuple(g.tensors[t].shape) for t in n.inputs]
    out = tuple(g.tensors[n.outputs[0]].shape)
    if n.op == "conv2d" and len(ins[0]) == 4:
        return _conv(g, n)
    if n.op == "fully_connected":
        cout, cin = ins[1]
        rows = math.prod(ins[0]) // cin
        return (Layer(f"fully connected {cin}->{cout} x {rows} rows", "fc", cin, cout,
                      extra=(rows,) if rows > 1 else ()),)
    if n.op in ("add", "mul") and ins[0] == ins[1] == out:
        size = math.prod(out)
        return (Layer(f"{n.op} {size}", n.op, size, size),)  # the harness runs hw * hw * cin elements
    if n.op == "avgpool" and len(ins[0]) == 4:
        _, h, w, c = ins[0]
        if h == w and tuple(n.attrs["kernel"]) == (h, w) and out == (1, 1, 1, c) and not any(n.attrs["pads"]):
            return (Layer(f"average pool global {h}x{h}x{c}", "avgpool", c, c, h, 1, h),)
        return ()
    if n.op == "batch_matmul":
        bt = math.prod(out[:-2])
        m, nn = out[-2:]
        k = ins[0][-1]
        if math.prod(ins[0][:-2]) != bt or math.prod(ins[1][:-2]) != bt:
            return ()  # broadcast batch: mcuc's count
        return (_matmul(bt, m, k, nn),)
    if n.op == "softmax":
        return (_softmax(math.prod(out) // out[-1], out[-1]),)
    if n.op == "attention":
        q = ins[0]
        bt, t, dk = math.prod(q[:-2]), q[-2], q[-1]
        keys, dv = key_count(g, n), out[-1]
        if any(math.prod(s[:-2]) != bt for s in ins[1:]):
            return ()
        return (_matmul(bt, t, dk, keys), _softmax(bt * t, keys), _matmul(bt, t, keys, dv))
    return ()


def _bytes(layer: Layer) -> tuple[int, int]:
    """(constant bytes, buffer bytes) of ``layer`` in the harness, to split layers into builds that fit."""
    if layer.kind == "conv":
        o = (layer.hw + 2 * layer.pad - layer.k) // layer.stride + 1
        weights = layer.cout * layer.k * layer.k * layer.cin // layer.groups
        return weights + 12 * layer.cout, layer.hw * layer.hw * layer.cin + o * o * layer.cout + 8 * layer.cout
    if layer.kind == "fc":
        rows = layer.extra[0] if layer.extra else 1
        return layer.cin * layer.cout + 4 * layer.cout, rows * (layer.cin + layer.cout) + 4 * layer.cout
    if layer.kind == "matmul":
        bt, m, k, n = layer.extra
        return 0, bt * (m * k + k * n + m * n) + 4 * n
    if layer.kind == "softmax":
        return 0, 2 * math.prod(layer.extra)
    return 0, 3 * layer.hw * layer.hw * layer.cin  # add, mul (two inputs, one output) and average pool


def batches(layers: list[Layer]) -> list[list[Layer]]:
    """``layers`` in order, split into harness builds within FLASH_BUDGET and RAM_BUDGET."""
    out: list[list[Layer]] = [[]]
    flash = ram = 0
    for layer in layers:
        f, r = _bytes(layer)
        if out[-1] and (flash + f > FLASH_BUDGET or ram + r > RAM_BUDGET):
            out.append([])
            flash = ram = 0
        out[-1].append(layer)
        flash += f
        ram += r
    return out


def layer_counts(layers: list[Layer], board: str, base: Path, cmsis_dir: Path, work: Path) -> dict[Layer, int]:
    """Instructions of each CMSIS-NN layer on QEMU ``board``, built on mcuc project ``base`` (any project compiled
    for ``board``: the harness keeps its runner, board files and build)."""
    counts: dict[Layer, int] = {}
    parts = batches(layers)
    for j, part in enumerate(parts):
        cw = work / f"cmsis-models-{board}-{j}"
        cw.mkdir(parents=True, exist_ok=True)
        link = cw / f"{board}-fast"  # where cmsis_counts looks for the mcuc project to start from
        if not link.exists():
            link.symlink_to(base.resolve(), target_is_directory=True)
        by_name = cmsis_counts(part, board, cmsis_dir, cw)
        counts.update({layer: by_name[layer.name] for layer in part})
        print(f"counted CMSIS-NN layers on {board}: build {j + 1}/{len(parts)} ({len(part)} layers)",
              file=sys.stderr, flush=True)
    return counts


def cmsis_figure(g: Graph, counts: dict, cmsis: dict[Layer, int]) -> tuple[int, int]:
    """(CMSIS-NN figure of one inference, the part of it counted in CMSIS-NN kernels) from mcuc's count_instructions
    ``counts`` of compiled graph ``g`` and the CMSIS-NN layer counts ``cmsis``."""
    nodes = {n.name: n for n in g.nodes}
    total, real = int(counts["overhead"]), 0
    for op in counts["per_op"]:
        node = nodes.get(op["name"])
        layers = op_layers(g, node) if node is not None else ()
        if layers and all(cmsis.get(la) for la in layers):
            n = sum(cmsis[la] for la in layers)
            total += n
            real += n
        else:
            total += int(op["instructions"])
    return total, real


def _distinct(items: list[tuple[Graph, dict]]) -> list[Layer]:
    seen: dict[Layer, None] = {}
    for g, counts in items:
        nodes = {n.name: n for n in g.nodes}
        for op in counts["per_op"]:
            if op["name"] in nodes:
                seen.update(dict.fromkeys(op_layers(g, nodes[op["name"]])))
    return list(seen)


def print_models_cmsis(names: list[str], cores: list[str], work: Path, cmsis_dir: Path, portable: bool) -> None:
    """The whole-model table with a CMSIS-NN column: instructions per MAC with portable (if ``portable``) and fast
    kernels, the CMSIS-NN figure (module docstring), mcuc / CMSIS-NN and the CMSIS-NN kernels' share, per core."""
    fast: dict[tuple[str, str], tuple[Graph, dict]] = {}
    port: dict[tuple[str, str], float] = {}
    for name in names:
        for core in cores:
            fast[(name, core)] = model_counts(name, BOARDS[core], work, portable=False)
            if portable:
                port[(name, core)], _ = model_per_mac(name, BOARDS[core], work, portable=True)
            print(f"counted {name} on {core} (mcuc)", file=sys.stderr, flush=True)
    cmsis: dict[str, dict[Layer, int]] = {}
    for core in cores:
        board = BOARDS[core]
        layers = _distinct([fast[(name, core)] for name in names])
        print(f"counting {len(layers)} distinct CMSIS-NN layers on {core}", file=sys.stderr, flush=True)
        cmsis[core] = layer_counts(layers, board, work / f"{names[0]}-{board}-fast", cmsis_dir, work)
    print("\n| model | MACs |" + "".join(f" {c}: portable / mcuc / CMSIS-NN (ratio, CMSIS-NN share) |" for c in cores))
    print("|---|---:|" + "---|" * len(cores))
    for name in names:
        cells, macs = [], 0
        for core in cores:
            g, counts = fast[(name, core)]
            macs = int(counts["macs"])
            total, real = cmsis_figure(g, counts, cmsis[core])
            p = f"{port[(name, core)]:.2f}" if (name, core) in port else "-"
            cells.append(f"{p} / {counts['total'] / macs:.2f} / {total / macs:.2f} "
                         f"({counts['total'] / total:.2f}x, {real / total:.0%})")
        label = f"{name} ({MODELS[name]['resolution']} px)" if "resolution" in MODELS.get(name, {}) else name
        print(f"| {label} | {macs:,} |" + "".join(f" {c} |" for c in cells), flush=True)
    print("\ninstructions per MAC of one inference (every op and the code between them), random int8 input.\n"
          "CMSIS-NN: mcuc's op list (layer schedule, --kernels fast), each op through CMSIS-NN's int8 kernel at its\n"
          "shape (conv, depthwise, fully connected with rows = tokens, same-shape add and mul, global average pool,\n"
          "batch matmul, softmax; attention as its two batch matmuls and softmax); every other op (LayerNorm, GELU\n"
          "and other LUTs, mean, transpose, concat, slice, gather, broadcast add/mul) and the code between ops at\n"
          "mcuc's fast-kernel count. ratio = mcuc / CMSIS-NN; share = part of the CMSIS-NN figure counted in\n"
          f"CMSIS-NN's kernels. CMSIS-NN {cmsis_commit(cmsis_dir)} ({cmsis_dir})")

"""CMSIS-NN's side of bench/kernels.py: the same layers run by CMSIS-NN's int8 kernels, counted under QEMU.

The project mcuc compiled for the board (bench.kernels.mcuc_counts, kernels "fast") is copied and its model.c
replaced by one that calls CMSIS-NN (bench/cmsis_nn_model.c.j2): one call per layer between the same profile
marks, the sources of a CMSIS-NN checkout (CMSIS_NN_DIR, never vendored) built as a static library with the
board's compiler and flags (-O2, as mcuc's firmware). The runner, the board files and the QEMU
instruction-count plugin are mcuc's, so both sides are counted the same way. Layer classes CMSIS-NN has no
kernel for (attention, LayerNorm) count 0 and print as "-".
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from bench.layer_classes import Layer
from mcuc.targets.qemu import profile_qemu

TEMPLATE = Path(__file__).resolve().parent / "cmsis_nn_model.c.j2"
SOURCE_DIRS = ("ConvolutionFunctions", "FullyConnectedFunctions", "NNSupportFunctions", "BasicMathFunctions",
               "PoolingFunctions", "TransposeFunctions", "SoftmaxFunctions")
SCRATCH_BYTES = 64 * 1024
IN_OFFSET, OUT_OFFSET = 7, -3  # -zero point of input and output


@dataclass
class _Harness:
    """What the template renders: buffers, constant arrays, statements before the marks and per layer."""

    rng: np.random.Generator
    inputs: list[int] = field(default_factory=list)  # bytes of each graph input (ONNX order)
    outputs: list[int] = field(default_factory=list)
    arrays: list[dict] = field(default_factory=list)
    prepare: list[str] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)

    def array(self, name: str, ctype: str, values: np.ndarray) -> str:
        self.arrays.append({"name": name, "ctype": ctype, "data": [str(int(v)) for v in values.reshape(-1)]})
        return name

    def weights(self, name: str, n: int) -> str:
        return self.array(name, "const int8_t", self.rng.integers(-127, 128, n))

    def bias(self, name: str, n: int) -> str:
        return self.array(name, "const int32_t", self.rng.integers(-2000, 2000, n))

    def per_channel(self, i: int, n: int) -> str:
        mult = self.array(f"mult{i}", "int32_t", self.rng.integers(1 << 30, (1 << 31) - 1, n))
        shift = self.array(f"shift{i}", "int32_t", self.rng.integers(-10, -5, n))
        self.prepare.append(f"const cmsis_nn_per_channel_quant_params q{i} = {{{mult}, {shift}}};")
        return f"&q{i}"

    def per_tensor(self, i: int) -> str:
        self.prepare.append(f"const cmsis_nn_per_tensor_quant_params q{i} = {{1518500250, -7}};")
        return f"&q{i}"

    def dims(self, name: str, n: int, h: int, w: int, c: int) -> str:
        self.prepare.append(f"const cmsis_nn_dims {name} = {{{n}, {h}, {w}, {c}}};")
        return f"&{name}"

    def scratch(self, i: int, size_expr: str) -> str:
        self.prepare += [f"const cmsis_nn_context ctx{i} = {{mcuc_scratch, {size_expr}}};",
                         f"if (ctx{i}.size > (int32_t)sizeof(mcuc_scratch)) {{", "    return 2;", "}"]
        return f"&ctx{i}"


def _layer(h: _Harness, i: int, layer: Layer) -> list[str]:
    """Buffers, constants and preparation of layer ``i``; returns its call statements ([] if CMSIS-NN has none)."""
    first = len(h.inputs)
    x = f"mcuc_in{first}"
    y = f"mcuc_out{len(h.outputs)}"
    if layer.kind == "conv":
        o = (layer.hw + 2 * layer.pad - layer.k) // layer.stride + 1
        h.inputs.append(layer.hw * layer.hw * layer.cin)
        h.outputs.append(o * o * layer.cout)
        q = h.per_channel(i, layer.cout)
        b = h.bias(f"b{i}", layer.cout)
        idims = h.dims(f"id{i}", 1, layer.hw, layer.hw, layer.cin)
        bdims = h.dims(f"bd{i}", 1, 1, 1, layer.cout)
        odims = h.dims(f"od{i}", 1, o, o, layer.cout)
        tiles = f"{{{layer.stride}, {layer.stride}}}, {{{layer.pad}, {layer.pad}}}, {{1, 1}}, {{-128, 127}}"
        if layer.groups == 1:
            w = h.weights(f"w{i}", layer.cout * layer.k * layer.k * layer.cin)
            fdims = h.dims(f"fd{i}", layer.cout, layer.k, layer.k, layer.cin)
            h.prepare.append(f"const cmsis_nn_conv_params cp{i} = {{{IN_OFFSET}, {OUT_OFFSET}, {tiles}}};")
            ctx = h.scratch(i, f"arm_convolve_wrapper_s8_get_buffer_size(&cp{i}, {idims}, {fdims}, {odims})")
            return [f"status |= (int32_t)arm_convolve_wrapper_s8({ctx}, &cp{i}, {q}, {idims}, {x}, {fdims}, {w}, "
                    f"{bdims}, {b}, {odims}, {y});"]
        w = h.weights(f"w{i}", layer.k * layer.k * layer.cout)
        fdims = h.dims(f"fd{i}", 1, layer.k, layer.k, layer.cout)
        h.prepare.append(f"const cmsis_nn_dw_conv_params cp{i} = {{{IN_OFFSET}, {OUT_OFFSET}, 1, {tiles}}};")
        ctx = h.scratch(i, f"arm_depthwise_conv_wrapper_s8_get_buffer_size(&cp{i}, {idims}, {fdims}, {odims})")
        return [f"status |= (int32_t)arm_depthwise_conv_wrapper_s8({ctx}, &cp{i}, {q}, {idims}, {x}, {fdims}, {w}, "
                f"{bdims}, {b}, {odims}, {y});"]
    if layer.kind == "fc":
        rows = layer.extra[0] if layer.extra else 1
        h.inputs.append(rows * layer.cin)
        h.outputs.append(rows * layer.cout)
        w = h.weights(f"w{i}", layer.cout * layer.cin)
        b = h.bias(f"b{i}", layer.cout)
        q = h.per_tensor(i)
        idims = h.dims(f"id{i}", rows, 1, 1, layer.cin)
        fdims = h.dims(f"fd{i}", layer.cin, 1, 1, layer.cout)
        bdims = h.dims(f"bd{i}", 1, 1, 1, layer.cout)
        odims = h.dims(f"od{i}", rows, 1, 1, layer.cout)
        # the kernel sums (with the bias, which the MVE path reads from them) are per layer, not shared scratch
        sums = h.array(f"sums{i}", "int32_t", np.zeros(layer.cout, np.int64))
        h.prepare += [f"const cmsis_nn_fc_params fp{i} = {{{IN_OFFSET}, 0, {OUT_OFFSET}, {{-128, 127}}}};",
                      f"const cmsis_nn_context ctx{i} = {{{sums}, arm_fully_connected_s8_get_buffer_size({fdims})}};",
                      "#if defined(ARM_MATH_MVEI)",
                      f"arm_vector_sum_s8({sums}, {layer.cin}, {layer.cout}, {w}, {IN_OFFSET}, 0, {b});",
                      "#endif"]
        return [f"status |= (int32_t)arm_fully_connected_s8(&ctx{i}, &fp{i}, {q}, {idims}, {x}, {fdims}, {w}, "
                f"{bdims}, {b}, {odims}, {y});"]
    if layer.kind == "add":
        n = layer.hw * layer.hw * layer.cin
        h.inputs += [n, n]
        h.outputs.append(n)
        return [f"status |= (int32_t)arm_elementwise_add_s8({x}, mcuc_in{first + 1}, {IN_OFFSET}, 1073741824, 0, "
                f"-4, 1518500250, -1, 20, {y}, {OUT_OFFSET}, 1431655765, -18, -128, 127, {n});"]
    if layer.kind == "avgpool":
        h.inputs.append(layer.hw * layer.hw * layer.cin)
        h.outputs.append(layer.cin)
        idims = h.dims(f"id{i}", 1, layer.hw, layer.hw, layer.cin)
        fdims = h.dims(f"fd{i}", 1, layer.k, layer.k, 1)
        odims = h.dims(f"od{i}", 1, 1, 1, layer.cin)
        h.prepare.append(f"const cmsis_nn_pool_params pp{i} = {{{{1, 1}}, {{0, 0}}, {{-128, 127}}}};")
        ctx = h.scratch(i, f"arm_avgpool_s8_get_buffer_size(1, {layer.cin})")
        return [f"status |= (int32_t)arm_avgpool_s8({ctx}, &pp{i}, {idims}, {x}, {fdims}, {odims}, {y});"]
    if layer.kind == "matmul":
        bt, m, k, n = layer.extra
        h.inputs += [bt * m * k, bt * k * n]
        h.outputs.append(bt * m * n)
        q = h.per_tensor(i)
        ldims = h.dims(f"ld{i}", 1, bt, m, k)
        rdims = h.dims(f"rd{i}", 1, bt, n, k)  # CMSIS-NN reads the right-hand side transposed
        odims = h.dims(f"od{i}", 1, bt, m, n)
        sums = h.array(f"sums{i}", "int32_t", np.zeros(n, np.int64))
        h.prepare += [f"const cmsis_nn_bmm_params bp{i} = {{false, false, {{{IN_OFFSET}, -2, {OUT_OFFSET}, "
                      "{-128, 127}}};",
                      f"const cmsis_nn_context ctx{i} = {{{sums}, {4 * n}}};"]
        return [f"status |= (int32_t)arm_batch_matmul_s8(&ctx{i}, &bp{i}, {q}, {ldims}, {x}, {rdims}, "
                f"mcuc_in{first + 1}, {odims}, {y});"]
    if layer.kind == "softmax":
        return _softmax(h, layer)
    if layer.kind == "mul":
        return _mul(h, layer)
    # attention (three inputs) and layernorm (one): no CMSIS-NN kernel
    h.inputs += [0, 0, 0] if layer.kind == "attention" else [0]
    h.outputs.append(0)
    return []


def _softmax(h: _Harness, layer: Layer) -> list[str]:
    """arm_softmax_s8 over ``extra`` = (rows, cols), with the multiplier, shift and diff_min TFLM prepares for an
    input scale of 1/16 (beta 1)."""
    rows, cols = layer.extra
    x = f"mcuc_in{len(h.inputs)}"
    y = f"mcuc_out{len(h.outputs)}"
    h.inputs.append(rows * cols)
    h.outputs.append(rows * cols)
    return [f"arm_softmax_s8({x}, {rows}, {cols}, 1073741824, 23, -248, {y});"]


def _mul(h: _Harness, layer: Layer) -> list[str]:
    """arm_elementwise_mul_s8 of two tensors of ``hw * hw * cin`` elements."""
    n = layer.hw * layer.hw * layer.cin
    first = len(h.inputs)
    h.inputs += [n, n]
    h.outputs.append(n)
    return [f"status |= (int32_t)arm_elementwise_mul_s8(mcuc_in{first}, mcuc_in{first + 1}, {IN_OFFSET}, -2, "
            f"mcuc_out{len(h.outputs) - 1}, {OUT_OFFSET}, 1518500250, -7, -128, 127, {n});"]


def _cmake_lines(cmsis_dir: Path) -> str:
    globs = " ".join(f"{cmsis_dir}/Source/{d}/*.c" for d in SOURCE_DIRS)
    return (f"file(GLOB CMSIS_NN_SOURCES {globs})\n"
            "list(FILTER CMSIS_NN_SOURCES EXCLUDE REGEX \"_f(16|32)\\\\.c$\")\n"  # int8 kernels only
            "add_library(cmsis_nn STATIC ${CMSIS_NN_SOURCES})\n"
            f"target_include_directories(cmsis_nn SYSTEM PUBLIC {cmsis_dir}/Include)\n"
            "target_link_libraries(mcuc_model PUBLIC cmsis_nn)\n")


def _define(header: str, name: str) -> int:
    m = re.search(rf"#define {name} (\d+)", header)
    if m is None:
        raise RuntimeError(f"model.h has no {name}")
    return int(m.group(1))


def cmsis_commit(cmsis_dir: Path) -> str:
    """The commit of the CMSIS-NN checkout (or 'unknown' outside a git checkout)."""
    try:
        return subprocess.run(["git", "-C", str(cmsis_dir), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cmsis_counts(layers: list[Layer], board: str, cmsis_dir: Path, work: Path) -> dict[str, int]:
    """Instructions of each layer's CMSIS-NN call under QEMU ``board`` (0 where CMSIS-NN has no kernel)."""
    mcuc_project = work / f"{board}-fast"
    if not (mcuc_project / "model.h").exists():
        raise RuntimeError(f"{mcuc_project} is missing: count mcuc's kernels first (bench.kernels.mcuc_counts)")
    if not (cmsis_dir / "Include" / "arm_nnfunctions.h").exists():
        raise RuntimeError(f"CMSIS_NN_DIR={cmsis_dir} is not a CMSIS-NN checkout (no Include/arm_nnfunctions.h)")
    out = work / f"{board}-cmsis"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(mcuc_project, out, ignore=shutil.ignore_patterns("build-*"))
    h = _Harness(np.random.default_rng(0))
    calls = [_layer(h, i, layer) for i, layer in enumerate(layers)]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    (out / "model.c").write_text(env.from_string(TEMPLATE.read_text()).render(
        scratch_bytes=SCRATCH_BYTES, inputs=h.inputs, outputs=h.outputs, arrays=h.arrays, prepare=h.prepare,
        layers=[{"name": layer.name, "call": c} for layer, c in zip(layers, calls, strict=True)]))
    cmake = (out / "CMakeLists.txt").read_text()
    anchor = "target_compile_options(mcuc_model PRIVATE -Wall -Wextra -Werror)\n"
    (out / "CMakeLists.txt").write_text(cmake.replace(anchor, anchor + _cmake_lines(cmsis_dir.resolve()), 1))
    header = (out / "model.h").read_text()
    x = np.random.default_rng(1).integers(-128, 128, (1, _define(header, "MCUC_INPUTS_TOTAL_BYTES")), np.int8)
    _, counts = profile_qemu(out, board, x, _define(header, "MCUC_OUTPUTS_TOTAL_BYTES"), len(layers),
                             timeout_s=600.0)
    return {layer.name: (n if c else 0) for layer, c, n in zip(layers, calls, counts["per_op"], strict=True)}

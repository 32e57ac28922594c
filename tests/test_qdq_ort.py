"""Our int8 kernels on QDQ models vs onnxruntime, op by op.

Each op of the compiled graph is fed onnxruntime's own int8 inputs (the outputs of the model's
QuantizeLinear nodes) and its result compared with onnxruntime's int8 output. onnxruntime
(optimisations off) computes conv/gemm in float and rounds once at the QuantizeLinear, while we
requantize with TFLite's 32-bit fixed-point multiplier, so ties and near-ties may land 1 LSB
apart. Comparing op by op isolates that rounding; end to end, 1-LSB differences compound through
a randomly initialised network and say nothing about a single kernel.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from mcuc.compiler import CompileOptions, compile_model
from mcuc.ops import lower

pytest.importorskip("torch")


def _ort_quantized_tensors(path: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every QuantizeLinear output of the model, keyed by the float tensor it quantizes."""
    m = onnx.load(path)
    q_of: dict[str, str] = {}
    for n in m.graph.node:
        if n.op_type == "QuantizeLinear":
            q_of[n.input[0]] = n.output[0]
            m.graph.output.append(onnx.helper.make_tensor_value_info(n.output[0], onnx.TensorProto.INT8, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    values = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x}), strict=True))
    return {src: values[q] for src, q in q_of.items()}


@pytest.mark.parametrize("name,overrides", [("mcunet-tiny", {}), ("mobilenetv2-0.35", {"resolution": 96})])
def test_ops_agree_with_onnxruntime_within_one_lsb(tmp_path, name, overrides):
    from mcuc import zoo
    from mcuc.zoo.export import export_onnx, export_qdq

    model, shape = zoo.build(name, **overrides)
    fp = export_onnx(model, shape, tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    qdq = str(export_qdq(fp, tmp_path / "m.qdq.onnx", [rng.standard_normal(shape).astype(np.float32)
                                                       for _ in range(4)]))
    g = compile_model(qdq, CompileOptions(), progress=lambda m: None).graph
    total = within1 = compared_ops = 0
    worst = 0
    for _ in range(4):
        ort_q = _ort_quantized_tensors(qdq, rng.standard_normal(shape).astype(np.float32))
        for n in g.nodes:
            acts = [i for i in n.inputs if not g.tensors[i].is_const]
            y = n.outputs[0]
            if y not in ort_q or not all(i in ort_q for i in acts):
                continue
            env = {i: (ort_q[i].transpose(0, 2, 3, 1) if ort_q[i].ndim == 4 else ort_q[i]) for i in acts}
            env.update({k: t.data for k, t in g.tensors.items() if t.data is not None})
            got = np.asarray(lower(g, n).ref(env)).reshape(g.tensors[y].shape)
            want = ort_q[y].transpose(0, 2, 3, 1) if ort_q[y].ndim == 4 else ort_q[y]
            d = np.abs(got.astype(np.int32) - want.reshape(got.shape).astype(np.int32))
            total += d.size
            within1 += int((d <= 1).sum())
            worst = max(worst, int(d.max()))
            compared_ops += 1
    assert compared_ops >= 4 * 10
    print(f"{name}: {compared_ops} ops, {total} elements, {100 * within1 / total:.3f} % within 1 LSB, max {worst}")
    assert within1 / total >= 0.99, (within1 / total, worst)
    assert worst <= 1


def _graph_layout(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An onnxruntime activation in the compiled graph's layout: image tensors (NCHW there) become NHWC."""
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 and tuple(x.shape) != tuple(shape) else x


def test_qdq_crossvit_every_op_within_one_step_of_onnxruntime(tmp_path):
    """A QDQ transformer: every op, fed onnxruntime's int8 inputs, gives >= 99 % of its output values within 1
    output step of onnxruntime's. The fused attention used to miss it (up to 3 % of values 2-3 steps off):
    its softmax wrote probabilities at 1/256 where the model (onnxruntime's quantizer) asks for 1/255."""
    from mcuc import zoo
    from mcuc.zoo.export import export_onnx, export_qdq

    model, shape = zoo.build("crossvit-small")
    fp = export_onnx(model, shape, tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    qdq = str(export_qdq(fp, tmp_path / "m.qdq.onnx", [rng.standard_normal(shape).astype(np.float32)
                                                       for _ in range(8)]))
    g = compile_model(qdq, CompileOptions(), progress=lambda m: None).graph
    stats: dict[str, list[int]] = {}
    for _ in range(2):
        ort_q = _ort_quantized_tensors(qdq, rng.standard_normal(shape).astype(np.float32))
        for n in g.nodes:
            acts = [i for i in n.inputs if i and not g.tensors[i].is_const]
            y = n.outputs[0]
            if y not in ort_q or not all(i in ort_q for i in acts):
                continue
            env = {i: _graph_layout(ort_q[i], g.tensors[i].shape) for i in acts}
            env.update({k: t.data for k, t in g.tensors.items() if t.data is not None})
            got = np.asarray(lower(g, n).ref(env)).reshape(g.tensors[y].shape)
            want = _graph_layout(ort_q[y], g.tensors[y].shape)
            d = np.abs(got.astype(np.int32) - want.reshape(got.shape).astype(np.int32))
            s = stats.setdefault(n.name, [0, 0])
            s[0] += d.size
            s[1] += int((d <= 1).sum())
    assert sum(1 for name in stats if name.endswith("_attention")) >= 8
    worst = min(stats.items(), key=lambda kv: kv[1][1] / kv[1][0])
    print(f"crossvit-small: {len(stats)} ops, worst {worst[0]}: {100 * worst[1][1] / worst[1][0]:.2f} % within 1 step")
    for name, (total, within1) in stats.items():
        assert within1 / total >= 0.99, (name, within1 / total)

"""Small ONNX models built with onnx.helper for tests (no torch needed)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_model(path: str, cin: int = 3, cout: int = 8, size: int = 16, k: int = 3, op_extra: str | None = None,
               opset: int = 13, seed: int = 0) -> str:
    """x[1,cin,size,size] -> Conv(k, pad k//2) -> Relu [-> op_extra] -> GlobalAveragePool -> Flatten."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (cout, cin, k, k)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (cout,)).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[k // 2] * 4, name="conv0"),
             helper.make_node("Relu", ["c"], ["r"], name="relu0")]
    last = "r"
    if op_extra:
        nodes.append(helper.make_node(op_extra, [last], ["e"], name="extra0"))
        last = "e"
    nodes += [helper.make_node("GlobalAveragePool", [last], ["p"], name="gap"),
              helper.make_node("Flatten", ["p"], ["y"], name="flat")]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, path)
    return path

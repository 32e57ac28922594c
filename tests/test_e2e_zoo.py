"""Every zoo model, float ONNX and QDQ ONNX: compile, build the host C under ASan/UBSan with
-Werror, and check 16 random inputs bit for bit against the int8 reference."""
from __future__ import annotations

import numpy as np
import pytest

from mcuc.compiler import CompileOptions, compile_model
from mcuc.project import write_project
from mcuc.runner import verify_project

pytest.importorskip("torch")

ZOO_CASES = ["mcunet-tiny", "mcunet-vww1", "mobilenetv2-0.35", "mobilenetv2"]


@pytest.mark.parametrize("name", ZOO_CASES)
def test_zoo_model_bit_exact_on_host(tmp_path, name):
    from mcuc import zoo
    from mcuc.zoo.export import export_onnx, export_qdq

    model, shape = zoo.build(name)
    fp = export_onnx(model, shape, tmp_path / f"{name}.onnx")
    rng = np.random.default_rng(0)
    qdq = export_qdq(fp, tmp_path / f"{name}.qdq.onnx", [rng.standard_normal(shape).astype(np.float32)
                                                         for _ in range(4)])
    for kind, path in (("float", fp), ("qdq", qdq)):
        compiled = compile_model(str(path), CompileOptions(), progress=lambda m: None)
        assert compiled.graph.meta.get("qdq", False) == (kind == "qdq")
        out = write_project(compiled, str(tmp_path / f"proj-{kind}"))
        res = verify_project(out, compiled.graph, samples=16, seed=7, target="host")
        assert res["samples"] == 16 and res["elements"] > 0
        assert res["mismatched"] == 0, (kind, res)

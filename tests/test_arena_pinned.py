"""Arena bytes of named models, pinned for both planners beside the lower bound
max over ops of (bytes of live buffers). A change to passes, aliasing or planning that moves
these numbers must update them here on purpose."""
from __future__ import annotations

import pytest

from mcuc.compiler import CompileOptions, compile_model
from mcuc.memory import plan_memory
from mcuc.plan import Buffer, verify_plan
from mcuc.zoo import DEMO_CALIB, DEMO_ONNX

# model -> (lower bound, greedy arena, best arena)
PINNED = {
    "demo": (30_720, 30_720, 30_720),
    "mcunet-vww1": (57_600, 64_000, 57_600),
    "mobilenetv2-0.35": (311_040, 311_040, 311_040),
}


def _graph(name: str, tmp_path):
    if name == "demo":
        return compile_model(str(DEMO_ONNX), CompileOptions(calib=str(DEMO_CALIB)), progress=lambda m: None).graph
    pytest.importorskip("torch")
    from mcuc import zoo
    from mcuc.zoo.export import export_onnx

    model, shape = zoo.build(name)
    path = export_onnx(model, shape, tmp_path / f"{name}.onnx")
    return compile_model(str(path), CompileOptions(), progress=lambda m: None).graph


@pytest.mark.parametrize("name", sorted(PINNED))
def test_arena_bytes_pinned(name, tmp_path):
    g = _graph(name, tmp_path)
    lower, greedy_bytes, best_bytes = PINNED[name]
    greedy, best = plan_memory(g, "greedy"), plan_memory(g, "best")
    assert (best.lower_bound, greedy.arena_bytes, best.arena_bytes) == (lower, greedy_bytes, best_bytes)
    for plan in (greedy, best):
        bufs = plan.buffers()
        high = verify_plan([Buffer(size, first, last) for _, _, size, first, last in bufs],
                           [off for _, off, _, _, _ in bufs], plan.arena_bytes)
        assert high <= plan.arena_bytes

"""The numpy executors: float graphs node by node, int8 schedules kernel call by kernel call.

``run_schedule`` is the golden model: it runs exactly the kernel calls the C code makes, through
the numpy twin of each call (``Lowered.ref``, built from the integer-exact kernels in
mcuc/reference/), for layer-based and patch-based schedules alike.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph
from mcuc.ops import Lowered, op_def
from mcuc.reference.float_ref import apply_act
from mcuc.schedule.base import Schedule, layer_schedule


def run_float(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate float graph ``g`` on ``feeds`` (arrays in the graph's layout); return every activation by name
    (calibration needs each tensor's range)."""
    env: dict[str, np.ndarray] = {}
    for name in g.inputs:
        if name not in feeds:
            raise MCUCError(f"no value fed for graph input '{name}'")
        x = np.asarray(feeds[name], dtype=np.float32)
        if tuple(x.shape) != tuple(g.tensors[name].shape):
            raise MCUCError(f"input '{name}' has shape {x.shape}, the graph wants {g.tensors[name].shape}")
        env[name] = x
    for node in g.nodes:
        d = op_def(node)
        if d.eval is None:
            raise MCUCError(f"the float reference cannot run op '{node.op}' (node '{node.name}')")
        y = d.eval(node, [_float_value(g, env, i) for i in node.inputs], g.layout)
        if d.fuses_activation:
            y = apply_act(y, node.attrs)
        env[node.outputs[0]] = np.asarray(y, dtype=np.float32)
    return env


def _float_value(g: Graph, env: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name in env:
        return env[name]
    data = g.tensors[name].data
    if data is None:
        raise MCUCError(f"tensor '{name}' is used before it is computed")
    return data.astype(np.float32, copy=False)


def initial_env(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Checked graph inputs (int8, or a uint8 image) plus every constant: the values an execution starts from."""
    env: dict[str, np.ndarray] = {}
    for name in g.inputs:
        if name not in feeds:
            raise MCUCError(f"missing input '{name}'")
        x = np.asarray(feeds[name])
        want = g.tensors[name].dtype  # int8, or uint8 for a camera image (mcuc/pixels.py)
        if x.dtype != np.dtype(want) or tuple(x.shape) != tuple(g.tensors[name].shape):
            raise MCUCError(f"input '{name}' must be {want} {g.tensors[name].shape}, got {x.dtype} {x.shape}")
        env[name] = x
    for name, t in g.tensors.items():
        if t.data is not None:
            env[name] = t.data
    return env


def run_schedule(sched: Schedule, feeds: dict[str, np.ndarray],
                 on_step: Callable[[int, Lowered], None] | None = None) -> dict[str, np.ndarray]:
    """Execute the schedule's kernel calls in numpy; return every tensor's value (int8 graph layout)."""
    g = sched.graph
    env = initial_env(g, feeds)
    for i, low in enumerate(sched.lowered()):
        if on_step is not None:
            on_step(i, low)
        assert low.ref is not None
        y = low.ref(env)
        for out in low.node.outputs:  # a place into an earlier tensor has no output: it updated env itself
            env[out] = np.asarray(y).reshape(g.tensors[out].shape).astype(np.int8)
    return env


def run_int8(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run int8 graph ``g`` layer by layer on int8 ``feeds`` (graph layout); return every activation's value."""
    return run_schedule(layer_schedule(g), feeds)

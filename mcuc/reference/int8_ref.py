"""The golden model: integer-exact execution of an int8 graph through the same lowering as codegen."""
from __future__ import annotations

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph


def initial_env(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Checked int8 graph inputs plus every constant: the values an execution starts from."""
    env: dict[str, np.ndarray] = {}
    for name in g.inputs:
        if name not in feeds:
            raise MCUCError(f"missing input '{name}'")
        x = np.asarray(feeds[name])
        if x.dtype != np.int8 or tuple(x.shape) != tuple(g.tensors[name].shape):
            raise MCUCError(f"input '{name}' must be int8 {g.tensors[name].shape}, got {x.dtype} {x.shape}")
        env[name] = x
    for name, t in g.tensors.items():
        if t.data is not None:
            env[name] = t.data
    return env


def run_int8(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run int8 graph ``g`` on int8 ``feeds`` (graph layout); return every activation's value."""
    from mcuc.lower import lower

    env = initial_env(g, feeds)
    for n in g.nodes:
        low = lower(g, n)
        assert low.ref is not None
        y = np.asarray(low.ref(env))
        out = g.tensors[n.outputs[0]]
        env[n.outputs[0]] = y.reshape(out.shape).astype(np.int8)
    return env

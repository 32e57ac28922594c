"""Graph.verify catches structural errors; toposort and prune keep graphs consistent."""
from __future__ import annotations

import numpy as np
import pytest

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.ops import verify


def _chain() -> Graph:
    g = Graph(layout="NHWC")
    g.add_tensor(Tensor("x", (1, 4, 4, 2)))
    g.inputs = ["x"]
    g.add_tensor(Tensor("y", (1, 4, 4, 2)))
    g.add_tensor(Tensor("z", (1, 2, 2, 2)))
    g.nodes = [Node("relu", "r", ["x"], ["y"]),
               Node("maxpool", "p", ["y"], ["z"], {"kernel": (2, 2), "strides": (2, 2), "pads": (0, 0, 0, 0)})]
    g.outputs = ["z"]
    return g


def test_valid_graph_passes():
    verify(_chain())


def test_dangling_input_caught():
    g = _chain()
    g.nodes[1].inputs = ["nowhere"]
    with pytest.raises(MCUCError, match="dangling tensor 'nowhere'"):
        verify(g)


def test_shape_mismatch_caught():
    g = _chain()
    g.tensors["z"].shape = (1, 3, 3, 2)
    with pytest.raises(MCUCError, match="declared .* inferred"):
        verify(g)


def test_missing_quant_caught():
    g = _chain()
    for t in g.tensors.values():
        t.dtype = "int8"
        t.quant = QuantParams(np.array([0.1]), np.array([0]))
    verify(g, quantized=True)
    g.tensors["y"].quant = None
    with pytest.raises(MCUCError, match="'y' has no quantization parameters"):
        verify(g, quantized=True)


def test_use_before_definition_and_toposort():
    g = _chain()
    g.nodes.reverse()
    with pytest.raises(MCUCError, match="before it is produced"):
        verify(g)
    g.toposort()
    verify(g)


def test_double_producer_caught():
    g = _chain()
    g.nodes.append(Node("relu", "r2", ["x"], ["y"]))
    with pytest.raises(MCUCError, match="produced twice"):
        verify(g)


def test_const_shape_mismatch_caught():
    g = _chain()
    g.add_tensor(Tensor("c", (3,), "float32", None, np.zeros(4, dtype=np.float32)))
    with pytest.raises(MCUCError, match="constant 'c' data shape"):
        verify(g)


def test_prune_removes_dead_nodes():
    g = _chain()
    g.add_tensor(Tensor("dead", (1, 4, 4, 2)))
    g.nodes.append(Node("relu", "unused", ["y"], ["dead"]))
    g.prune()
    assert [n.name for n in g.nodes] == ["r", "p"] and "dead" not in g.tensors

"""The float pass pipeline: source-layout float graph in, NHWC float graph ready to quantize out."""
from __future__ import annotations

from collections.abc import Callable

from mcuc.ir import Graph, verify
from mcuc.passes.fold_bn import fold_bn
from mcuc.passes.fuse import fuse
from mcuc.passes.layout import to_nhwc

FLOAT_PASSES: tuple[Callable[[Graph], Graph], ...] = (fold_bn, fuse, to_nhwc)


def float_pipeline(g: Graph) -> Graph:
    """Run fold_bn, fuse and to_nhwc in that order, verifying the graph after each.

    Folding batchnorm first lets an activation that followed it fuse into the conv; fusing before
    the layout change keeps the pad folding in one place.
    """
    verify(g)
    for p in FLOAT_PASSES:
        g = p(g)
        verify(g)
    return g

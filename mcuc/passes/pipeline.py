"""The float pass pipeline: source-layout float graph in, NHWC float graph ready to quantize out."""
from __future__ import annotations

from collections.abc import Callable

from mcuc.ir import Graph
from mcuc.ops import verify
from mcuc.passes.fold_bn import fold_bn
from mcuc.passes.fuse import fuse
from mcuc.passes.layout import to_nhwc
from mcuc.passes.transformer import collapse_moves, fuse_transformer, softmax_last_axis

FLOAT_PASSES: tuple[Callable[[Graph], Graph], ...] = (fuse_transformer, fold_bn, fuse, to_nhwc, softmax_last_axis,
                                                      collapse_moves)


def float_pipeline(g: Graph) -> Graph:
    """Run the FLOAT_PASSES in order, verifying the graph after each.

    Transformer patterns fuse first, while they still look as the exporter wrote them. Folding
    batchnorm first lets an activation that followed it fuse into the conv; fusing before the
    layout change keeps the pad folding in one place; softmax axes are moved last once the
    layout is final, and transpose/reshape runs that cancel out (often left by the layout change)
    collapse into one reshape.
    """
    verify(g)
    for p in FLOAT_PASSES:
        g = p(g)
        verify(g)
    return g

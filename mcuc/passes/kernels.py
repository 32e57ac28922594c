"""Kernel choice: which variant of its op's kernel each int8 node runs on the target core.

Ops list kernel variants fastest first (mcuc.ops.KernelVariant): SIMD kernels for Armv7E-M DSP
(Cortex-M4/M7) and Helium/MVE (Cortex-M55), specialised shapes, layouts read in the kernel's order.
The choice is recorded in each node's ``variant`` attribute before the schedule is planned, because some
variants need arena scratch (im2col columns, widened rows) that the planner, the report and the
schedule search must count.

Modes (``--kernels``):
- ``fast``: the fastest variant that applies on the board's core, whatever scratch it needs;
- ``small``: the fastest variant that needs no scratch (peak SRAM as with the portable kernels);
- ``auto`` (the compiler's default): ``fast`` when its schedule fits the SRAM budget, otherwise
  ``small`` plus every scratch variant whose scratch does not raise the graph's peak (see
  ``fit_kernels``), the way ``--attention-block auto`` sizes attention blocks.
"""
from __future__ import annotations

import copy

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.memory import ALIGNMENT, layer_live_bytes, op_scratch_bytes, plan_memory
from mcuc.ops import KernelVariant, variant_of, variants_for

KERNEL_MODES = ("fast", "small")


def _needs_scratch(g: Graph, n: Node, v: KernelVariant) -> bool:
    return v.scratch is not None and v.scratch(g, n) > 0


def _best(g: Graph, n: Node, isa: tuple[str, ...], small: bool) -> KernelVariant | None:
    for v in variants_for(g, n, isa):
        if not (small and _needs_scratch(g, n, v)):
            return v
    return None


def select_kernels(g: Graph, isa: tuple[str, ...] | list[str], mode: str = "fast") -> Graph:
    """A copy of int8 graph ``g`` whose nodes name the kernel variant they run (attribute ``variant``;
    absent: the portable kernel), chosen for a core with ISA features ``isa`` in ``mode`` (KERNEL_MODES)."""
    if mode not in KERNEL_MODES:
        raise MCUCError(f"unknown kernel mode '{mode}': use {', '.join(KERNEL_MODES)} (or auto)")
    g = copy.deepcopy(g)
    isa = tuple(isa)
    for n in g.nodes:
        n.attrs.pop("variant", None)
        v = _best(g, n, isa, mode == "small")
        if v is not None:
            n.attrs["variant"] = v.func
    return g


def fit_kernels(g: Graph, isa: tuple[str, ...] | list[str], planner: str = "best") -> Graph:
    """``small`` kernels, each op upgraded to its ``fast`` variant where the extra scratch keeps the bytes live
    at that op within the peak of the small graph; the upgrades are kept only if the planned arena is then
    no larger than with small kernels everywhere."""
    small = select_kernels(g, isa, "small")
    fast = select_kernels(g, isa, "fast")
    live = layer_live_bytes(small)
    peak = max(live, default=0)
    upgraded = copy.deepcopy(small)
    changed = False
    for i, (n, nf) in enumerate(zip(upgraded.nodes, fast.nodes, strict=True)):
        want, had = nf.attrs.get("variant"), n.attrs.get("variant")
        if want == had:
            continue
        before = op_scratch_bytes(upgraded, n)
        n.attrs["variant"] = want
        extra = op_scratch_bytes(upgraded, n) - before
        if live[i] + -(-extra // ALIGNMENT) * ALIGNMENT <= peak:
            changed = True
        elif had is None:
            del n.attrs["variant"]
        else:
            n.attrs["variant"] = had
    if changed and plan_memory(upgraded, planner).arena_bytes > plan_memory(small, planner).arena_bytes:
        return small
    return upgraded


def kernel_names(g: Graph) -> dict[str, str]:
    """Node name -> the kernel variant it runs, for nodes that run one (mcuc.ops.variant_of)."""
    return {n.name: v.func for n in g.nodes if (v := variant_of(g, n)) is not None}

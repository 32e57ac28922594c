"""From an op schedule to planner buffers: tensor lifetimes, in-place reuse and views.

The planner only sees anonymous buffers; this module decides which tensors share one buffer.
Keys are whatever the caller uses to name tensors (strings, ids), and weights are not keys:
they live in flash, so only activations should appear in `inputs`/`outputs`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mcuc.plan.check import Buffer

K = TypeVar("K", bound=Hashable)  # how the caller names tensors


@dataclass(frozen=True)
class ScheduledOp(Generic[K]):
    """One step of the schedule, as the planner needs to see it.

    `inplace`: index of an input whose memory output 0 may overwrite (elementwise ops read each
    element before writing the same element). `view`: output 0 is input 0 reinterpreted
    (reshape, flatten, squeeze), so it needs no memory of its own.
    """

    inputs: tuple[K, ...]
    outputs: tuple[K, ...]
    inplace: int | None = None
    view: bool = False


@dataclass(frozen=True)
class Lifetime:
    """Inclusive op indices between which a tensor must keep its bytes."""

    first: int
    last: int


def compute_lifetimes(
    ops: Sequence[ScheduledOp[K]], graph_inputs: Iterable[K] = (), graph_outputs: Iterable[K] = ()
) -> dict[K, Lifetime]:
    """First and last use of every activation in a schedule.

    A tensor lives from the op that writes it to the last op that reads it. Graph inputs are
    written before op 0, so they start at 0; graph outputs are read after the last op, so they
    last to the end. A tensor nobody reads still needs its bytes while its producer writes it.
    """
    first: dict[K, int] = {}
    last: dict[K, int] = {}
    for key in graph_inputs:
        first[key] = last[key] = 0
    for step, op in enumerate(ops):
        for key in op.inputs:
            if key not in first:
                raise ValueError(
                    f"op {step} reads {key!r} before any op writes it (weights are not activations)"
                )
            last[key] = max(last[key], step)
        for key in op.outputs:
            if key in first:
                raise ValueError(f"op {step} writes {key!r}, which already exists")
            first[key] = last[key] = step
    end = max(len(ops) - 1, 0)
    for key in graph_outputs:
        if key not in first:
            raise ValueError(f"graph output {key!r} is never written")
        last[key] = end
    return {key: Lifetime(first[key], last[key]) for key in first}


def merge_inplace(
    ops: Sequence[ScheduledOp[K]], lifetimes: Mapping[K, Lifetime], sizes: Mapping[K, int]
) -> dict[K, K]:
    """Decide which outputs reuse an input's memory; return key -> root key for every tensor.

    In-place (`op.inplace`): legal only when the input's whole alias group is last read by this
    op, otherwise a later reader would see overwritten data, and when the output fits in the
    group's buffer. Views (`op.view`): always legal, even if the input is read later, because a
    view writes nothing: both names denote the same bytes with the same contents, so the group
    simply lives as long as its longest-lived member. Only output 0 of an op can alias.
    """
    root: dict[K, K] = {key: key for key in lifetimes}
    group_last = {key: lt.last for key, lt in lifetimes.items()}
    group_size = dict(sizes)
    for step, op in enumerate(ops):
        if op.view:
            index = 0
        elif op.inplace is not None:
            index = op.inplace
        else:
            continue
        if not op.outputs:
            continue
        out = op.outputs[0]
        src = root[op.inputs[index]]
        if sizes[out] > group_size[src]:
            continue
        if not op.view and group_last[src] != step:
            continue
        root[out] = src
        group_last[src] = max(group_last[src], lifetimes[out].last)
    return root


def merged_buffers(
    lifetimes: Mapping[K, Lifetime], sizes: Mapping[K, int], alias: Mapping[K, K]
) -> dict[K, Buffer]:
    """One planner buffer per alias root: the union of its members' lifetimes, the largest size."""
    out: dict[K, Buffer] = {}
    for key, lt in lifetimes.items():
        r = alias.get(key, key)
        prev = out.get(r)
        if prev is None:
            out[r] = Buffer(sizes[key], lt.first, lt.last)
        else:
            size = max(prev.size, sizes[key])
            out[r] = Buffer(size, min(prev.first_use, lt.first), max(prev.last_use, lt.last))
    return out


def merged_pieces(
    lifetimes: Mapping[K, Lifetime], sizes: Mapping[K, int], alias: Mapping[K, K]
) -> dict[K, tuple[Buffer, ...]]:
    """Per alias root, the memory of its group over time as pieces sharing the root's offset.

    At each op the group needs the largest of its members live there. Where that size is the same
    over the whole group lifetime (same-size in-place ops, views) the group is one piece, the buffer
    ``merged_buffers`` gives; an output smaller than the input whose memory it took (a row pipeline
    writing behind its reads) makes the group shrink once the input dies: one piece per run of steps
    with the same size.
    """
    members: dict[K, list[K]] = {}
    for key in lifetimes:
        members.setdefault(alias.get(key, key), []).append(key)
    out: dict[K, tuple[Buffer, ...]] = {}
    for r, keys in members.items():
        first = min(lifetimes[k].first for k in keys)
        last = max(lifetimes[k].last for k in keys)
        need = [0] * (last - first + 1)
        for k in keys:
            for t in range(lifetimes[k].first, lifetimes[k].last + 1):
                need[t - first] = max(need[t - first], sizes[k])
        if min(need) == max(need) or len(keys) == 1:
            out[r] = (Buffer(max(need), first, last),)
            continue
        pieces: list[Buffer] = []
        start = 0
        for t in range(1, len(need) + 1):
            if t == len(need) or need[t] != need[start]:
                pieces.append(Buffer(need[start], first + start, first + t - 1))
                start = t
        out[r] = tuple(pieces)
    return out

"""Placement kernels shared by the strategies: place buffers one by one in a given order.

A problem is prepared once (`Problem`): sizes already rounded up to the alignment, so every
offset a kernel produces is aligned for free, and for each buffer the list of buffers whose
lifetimes intersect it, so that placing a buffer only looks at the buffers that can conflict.

A buffer of the problem may consist of several pieces that share its offset (a tensor whose output
takes over the start of a larger input's memory: the larger piece while the input lives, the
smaller one afterwards). Such buffers are placed by the offsets every piece allows; a buffer of
one piece, the usual case, by the plain gap scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcuc.plan.check import Buffer, align_up


@dataclass(frozen=True)
class Problem:
    """Aligned sizes and the time-conflict graph of a buffer set (sizes, first, last: each buffer's
    bounding box; pieces: its pieces, (aligned size, first, last), for buffers of more than one)."""

    sizes: tuple[int, ...]
    first: tuple[int, ...]
    last: tuple[int, ...]
    neighbours: tuple[tuple[int, ...], ...]
    neighbour_arrays: tuple[np.ndarray, ...]
    size_array: np.ndarray
    pieces: tuple[tuple[tuple[int, int, int], ...], ...] = ()

    @staticmethod
    def build(buffers: Sequence[Buffer], alignment: int,
              pieces: Sequence[Sequence[Buffer]] | None = None) -> Problem:
        """Round sizes up and compute lifetime intersections with one vectorised comparison.

        ``pieces[i]``, when given, lists the pieces of buffer i (``buffers[i]`` is then their bounding
        box); two buffers conflict when some pieces of theirs are live together."""
        first = np.array([b.first_use for b in buffers], dtype=np.int64)
        last = np.array([b.last_use for b in buffers], dtype=np.int64)
        meets = (first[:, None] <= last[None, :]) & (first[None, :] <= last[:, None])
        np.fill_diagonal(meets, False)
        aligned: tuple[tuple[tuple[int, int, int], ...], ...] = ()
        if pieces is not None:
            aligned = tuple(tuple((align_up(p.size, alignment), p.first_use, p.last_use) for p in ps) for ps in pieces)
            for i in np.flatnonzero([len(ps) > 1 for ps in aligned]):
                for j in np.flatnonzero(meets[i]):
                    if not _pieces_meet(aligned[i], aligned[j]):
                        meets[i, j] = meets[j, i] = False
        neighbour_arrays = tuple(np.flatnonzero(row) for row in meets)
        sizes = tuple(align_up(b.size, alignment) for b in buffers)
        return Problem(
            sizes=sizes,
            first=tuple(int(x) for x in first),
            last=tuple(int(x) for x in last),
            neighbours=tuple(tuple(a.tolist()) for a in neighbour_arrays),
            neighbour_arrays=neighbour_arrays,
            size_array=np.array(sizes, dtype=np.int64),
            pieces=aligned if any(len(ps) > 1 for ps in aligned) else (),
        )

    def __len__(self) -> int:
        return len(self.sizes)

    def pieces_of(self, buf: int) -> tuple[tuple[int, int, int], ...]:
        if self.pieces:
            return self.pieces[buf]
        return ((self.sizes[buf], self.first[buf], self.last[buf]),)

    def multi(self, buf: int) -> bool:
        return bool(self.pieces) and len(self.pieces[buf]) > 1


def _pieces_meet(a: Sequence[tuple[int, int, int]], b: Sequence[tuple[int, int, int]]) -> bool:
    return any(fa <= lb and fb <= la for _, fa, la in a for _, fb, lb in b)


def _allowed(problem: Problem, buf: int, offsets: Sequence[int]) -> list[tuple[int, int]]:
    """Offsets where ``buf`` (pieces allowed) fits among the placed conflicting buffers: the free
    intervals [start, end) of offsets, ascending; the last one is unbounded (end -1)."""
    forbidden = []
    mine = problem.pieces_of(buf)
    for j in problem.neighbours[buf]:
        off = offsets[j]
        if off < 0:
            continue
        for size_p, fp, lp in mine:
            for size_q, fq, lq in problem.pieces_of(j):
                if size_p and size_q and fp <= lq and fq <= lp:
                    forbidden.append((off - size_p + 1, off + size_q))  # base offsets that would overlap
    forbidden.sort()
    free = []
    candidate = 0
    for lo, hi in forbidden:
        if lo > candidate:
            free.append((candidate, lo))
        candidate = max(candidate, hi)
    free.append((candidate, -1))
    return free


# Above this many conflicting buffers a vectorised gap scan beats the Python loop.
_VECTOR_MIN = 48


def _sorted_spans(problem: Problem, buf: int, offsets: Sequence[int]) -> list[tuple[int, int]]:
    sizes = problem.sizes
    return sorted((offsets[j], offsets[j] + sizes[j]) for j in problem.neighbours[buf] if offsets[j] >= 0)


def _gaps_np(problem: Problem, buf: int, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gap before each placed conflicting span, candidate offset before each span + final top)."""
    nbrs = problem.neighbour_arrays[buf]
    starts = offsets[nbrs]
    placed = starts >= 0
    starts = starts[placed]
    ends = starts + problem.size_array[nbrs][placed]
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    candidates = np.maximum.accumulate(np.concatenate(([0], ends)))
    return starts - candidates[:-1], candidates


def first_fit(
    problem: Problem, buf: int, offsets: Sequence[int], offsets_np: np.ndarray | None = None
) -> int:
    """Lowest offset where `buf` overlaps no placed (offset >= 0) buffer live at the same time.

    This is TFLM's gap scan: walk the conflicting placed buffers by offset, keep the highest end
    seen so far as the candidate, and stop at the first gap before the next buffer that is large
    enough. Candidates are 0 and the ends of placed buffers, which is enough (see `exact_plan`).
    `offsets_np`, a numpy copy of `offsets`, enables the vectorised scan for dense conflicts.
    """
    size = problem.sizes[buf]
    if problem.pieces and (problem.multi(buf) or any(problem.multi(j) for j in problem.neighbours[buf])):
        return _allowed(problem, buf, offsets)[0][0]
    if offsets_np is not None and len(problem.neighbours[buf]) >= _VECTOR_MIN:
        gaps, candidates = _gaps_np(problem, buf, offsets_np)
        hits = np.flatnonzero(gaps >= size)
        return int(candidates[hits[0]] if hits.size else candidates[-1])
    candidate = 0
    for start, end in _sorted_spans(problem, buf, offsets):
        if start - candidate >= size:
            break
        candidate = max(candidate, end)
    return candidate


def best_fit(problem: Problem, buf: int, offsets: Sequence[int], offsets_np: np.ndarray | None = None) -> int:
    """The smallest gap that holds `buf` (lowest on ties), else the top of the conflicting stack.

    Filling the tightest gap keeps larger holes for larger buffers placed later, which first-fit
    squanders when an early small buffer lands in a big hole.
    """
    size = problem.sizes[buf]
    if problem.pieces and (problem.multi(buf) or any(problem.multi(j) for j in problem.neighbours[buf])):
        free = _allowed(problem, buf, offsets)
        bounded = [(hi - lo, lo) for lo, hi in free if hi >= 0]
        return min(bounded)[1] if bounded else free[-1][0]
    if offsets_np is not None and len(problem.neighbours[buf]) >= _VECTOR_MIN:
        gaps, candidates = _gaps_np(problem, buf, offsets_np)
        fits = np.flatnonzero(gaps >= size)
        if not fits.size:
            return int(candidates[-1])
        return int(candidates[fits[np.argmin(gaps[fits])]])
    candidate = 0
    best_gap = -1
    best_offset = -1
    for start, end in _sorted_spans(problem, buf, offsets):
        gap = start - candidate
        if gap >= size and (best_gap < 0 or gap < best_gap):
            best_gap, best_offset = gap, candidate
        candidate = max(candidate, end)
    return best_offset if best_gap >= 0 else candidate


def place(problem: Problem, order: Sequence[int], use_best_fit: bool = False) -> tuple[list[int], int]:
    """Place buffers in `order`; return (offsets, arena size before final rounding)."""
    fit = best_fit if use_best_fit else first_fit
    offsets = [-1] * len(problem)
    offsets_np = np.full(len(problem), -1, dtype=np.int64)
    top = 0
    for buf in order:
        off = fit(problem, buf, offsets, offsets_np)
        offsets[buf] = off
        offsets_np[buf] = off
        top = max(top, off + problem.sizes[buf])
    return offsets, top


def exact_plan(problem: Problem, upper: int, target: int, node_budget: int) -> tuple[list[int] | None, bool]:
    """Branch and bound over placement orders with first-fit placement.

    Why orders with first-fit suffice: take any optimal plan and place its buffers by ascending
    offset with first-fit. By induction each lands at or below its optimal offset (the optimal spot
    stays free because everything placed earlier sits at or below where it was), so some order
    reaches the optimum. Two pruning rules keep the search small: a partial plan is cut when any
    unplaced buffer's current first-fit end already reaches `upper` (placing more buffers can only
    push it up), and two adjacent buffers with disjoint lifetimes are only tried in index order,
    since swapping them gives the same offsets.

    Returns (offsets of a plan smaller than `upper`, or None; True if the search finished and so
    the answer, or `upper` itself, is optimal). Stops as soon as `target` (a lower bound) is met.
    """
    n = len(problem)
    sizes = problem.sizes
    neighbour_sets = [set(ns) for ns in problem.neighbours]
    offsets = [-1] * n
    best: list[int] | None = None
    best_top = upper
    nodes = 0

    def search(remaining: list[int], top: int, last: int) -> bool:
        """Returns False when the search must stop (budget spent or lower bound reached)."""
        nonlocal best, best_top, nodes
        if not remaining:
            best, best_top = list(offsets), top
            return best_top > target
        nodes += 1
        if nodes > node_budget:
            return False
        options = []
        for buf in remaining:
            off = first_fit(problem, buf, offsets)
            if off + sizes[buf] >= best_top:
                return True  # this buffer can only end higher from here on
            options.append((max(top, off + sizes[buf]), -sizes[buf], buf, off))
        options.sort()
        for new_top, _, buf, off in options:
            if new_top >= best_top:
                break
            if last > buf and buf not in neighbour_sets[last]:
                continue
            offsets[buf] = off
            keep_going = search([b for b in remaining if b != buf], new_top, buf)
            offsets[buf] = -1
            if not keep_going:
                return False
        return True

    finished = search(list(range(n)), 0, -1) or best_top <= target
    return best, finished

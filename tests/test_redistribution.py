"""Receptive-field redistribution search on a tiny MBConv config (compiled int8, patch schedules)."""
from __future__ import annotations

import json
from pathlib import Path

import onnx

from mcuc.search.redistribution import (
    MBBlock,
    MCUNetConfig,
    Redistribution,
    apply,
    config_from_json,
    search,
    write_result,
)

# 32x32 input, 7x7 kernels in the blocks at 16x16 (the patch stage), 3x3 after.
TINY = MCUNetConfig(
    resolution=32, first_channels=8, first_block_channels=8,
    blocks=(MBBlock(16, 7, 6, 1), MBBlock(16, 7, 6, 1), MBBlock(24, 3, 6, 2), MBBlock(24, 3, 6, 1)),
    final_channels=None, num_classes=4,
)


def test_apply_drops_and_sets_kernels() -> None:
    cfg, patch_blocks = apply(TINY, Redistribution(split_block=2, k_patch=3, k_after=5, drop_patch=1))
    assert patch_blocks == 1
    assert [b.kernel for b in cfg.blocks] == [3, 5, 5]
    assert [b.stride for b in cfg.blocks] == [1, 2, 1]


def test_search_within_budget_no_worse_than_base(tmp_path: Path) -> None:
    # Two compilations (base, and 3x3 kernels in the patch stage) keep the test fast; one 2x2 grid.
    res = search(TINY, 2, slack=0.0, min_macs=0.5, kernels=(3,), expands=(), max_drop=0, rounds=1,
                 vary_split=False, grids=((2, 2),))
    assert res.budget == res.base.macs
    assert res.best.macs <= res.budget
    assert res.best.arena <= res.base.arena
    assert res.best.overhead <= res.base.overhead
    assert res.best.stage_overhead < res.base.stage_overhead  # 3x3 in the patch stage recomputes less
    assert all(b.kernel == 3 for b in res.best.config.blocks[:2])
    out = write_result(res, tmp_path / "out")
    saved = json.loads((out / "config.json").read_text())
    assert config_from_json(saved["config"]) == res.best.config
    onnx.checker.check_model(onnx.load(str(out / "model.onnx")))
    assert (out / "model.pt").stat().st_size > 0

"""Search and redistribution on several workers: local processes (--jobs) and a local Ray instance give results
identical to one process."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray
import torch

from mcuc.cli import main
from mcuc.parallel import Workers
from mcuc.search.redistribution import load_training_data, search, write_result
from mcuc.zoo import DEMO_CALIB, DEMO_ONNX
from tests.test_redistribution import TINY


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance on this machine (2 CPUs), as a cluster would serve tasks."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield "local"
    ray.shutdown()


def _search_output(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["search", str(DEMO_ONNX), "--calib", str(DEMO_CALIB), "--all", *extra]) == 0
    return capsys.readouterr().out


def test_search_same_on_processes_and_ray(local_ray: str, capsys: pytest.CaptureFixture[str]) -> None:
    one = _search_output(capsys, "--jobs", "1")
    assert "patch split" in one
    assert _search_output(capsys, "--jobs", "2") == one
    assert _search_output(capsys, "--ray-address", local_ray) == one


def test_redistribution_trained_same_on_processes_and_ray(local_ray: str, tmp_path: Path) -> None:
    data = load_training_data(steps=4, batch=16, eval_images=200)
    kw = dict(slack=0.0, min_macs=0.5, kernels=(3, 5), expands=(), max_drop=0, rounds=1, vary_split=False,
              grids=((2, 2),), training=data)
    runs = [search(TINY, 2, workers=w, **kw) for w in (Workers(1), Workers(2), Workers(1, local_ray))]  # type: ignore
    rows = [[(e.row(), e.accuracy) for e in r.evaluated] for r in runs]
    assert rows[0] == rows[1] == rows[2]
    assert all(e.accuracy is not None and 0.0 <= e.accuracy <= 1.0 for e in runs[0].evaluated)
    states = [r.best.extra["state_dict"] for r in runs]
    assert all(torch.equal(states[0][k], s[k]) for s in states[1:] for k in states[0])
    out = write_result(runs[1], tmp_path / "rd")
    saved = json.loads((out / "config.json").read_text())
    assert saved["weights"]["trained"] is True and saved["weights"]["test_accuracy"] == runs[0].best.accuracy
    written = torch.load(out / "model.pt")
    assert all(torch.equal(written[k], states[0][k]) for k in states[0])


def test_redistribute_untrained_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["redistribute", "--base", "mcunet-vww1", "--resolution", "48", "--rounds", "0", "--train-steps",
                 "0", "-o", str(tmp_path / "rd")]) == 0
    assert "weights: UNTRAINED (--train-steps 0)" in capsys.readouterr().out
    assert json.loads((tmp_path / "rd" / "config.json").read_text())["weights"]["trained"] is False

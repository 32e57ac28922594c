"""The suite cannot skip silently: with CI=true a missing required tool fails the run (tests/conftest.py), every
skip prints its reason (-rs), and no module-level importorskip below a test skips the tests above it."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

SKIPPING_TEST = '''
import pytest

def test_runs():
    assert True

@pytest.mark.skipif(True, reason="needs qemu-system-arm")
def test_needs_qemu():
    pass

@pytest.mark.skipif(True, reason="needs a dataset")
def test_needs_data():
    pass
'''


def _pytest(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SKIPPING_TEST)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:xdist",
                           str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    return {**env, **extra}


def test_skips_print_reasons_locally(tmp_path):
    proc = _pytest(tmp_path, _env())
    assert proc.returncode == 0, proc.stdout
    assert "SKIPPED" in proc.stdout and "needs qemu-system-arm" in proc.stdout and "needs a dataset" in proc.stdout


def test_ci_turns_a_missing_tool_skip_into_a_failure(tmp_path):
    from tests.conftest import missing_tools

    if missing_tools():
        pytest.skip(f"this machine lacks {missing_tools()}; the session check below covers that case")
    proc = _pytest(tmp_path, _env(CI="true"))
    assert proc.returncode == 1, proc.stdout
    assert ("1 failed" in proc.stdout or "1 error" in proc.stdout) and "passed" in proc.stdout
    assert "CI=true: skipped for a missing required tool" in proc.stdout and "needs qemu-system-arm" in proc.stdout
    assert "needs a dataset" in proc.stdout  # other skips stay skips


def test_ci_refuses_to_start_without_the_tools(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = _pytest(tmp_path, _env(CI="true", PATH=str(empty)))
    assert proc.returncode != 0
    assert "CI=true but" in proc.stdout + proc.stderr and "qemu-system-arm" in proc.stdout + proc.stderr


def test_ci_run_sets_ci_and_make_prints_skip_reasons():
    assert "export CI=true" in (ROOT / ".ci" / "run").read_text()
    assert any(" -rs " in line for line in (ROOT / "Makefile").read_text().splitlines() if "pytest" in line)
    assert 'addopts = "-rs"' in (ROOT / "pyproject.toml").read_text()


def _module_level_importorskip_lines(tree: ast.Module) -> list[int]:
    lines = []
    for stmt in tree.body:
        value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and \
                value.func.attr == "importorskip":
            lines.append(stmt.lineno)
    return lines


@pytest.mark.parametrize("path", sorted(TESTS.glob("test_*.py")), ids=lambda p: p.name)
def test_no_importorskip_below_a_test(path):
    """A module-level importorskip skips the whole module, tests above it included: it must come before them."""
    tree = ast.parse(path.read_text())
    first_test = min((s.lineno for s in tree.body if isinstance(s, (ast.FunctionDef, ast.ClassDef))
                      and s.name.startswith(("test", "Test"))), default=None)
    late = [line for line in _module_level_importorskip_lines(tree) if first_test is not None and line > first_test]
    assert not late, f"{path.name}: module-level importorskip at line(s) {late}, below the first test " \
                     f"(line {first_test}); move it into the tests or fixtures that need it"

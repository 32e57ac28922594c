"""Soak run (bench/soak.py) in small: many inferences in one QEMU boot, all equal to the int8 reference, the
arena guards intact after each and the same stack depth every time."""
from __future__ import annotations

from bench.soak import passed, soak, table
from mcuc.boards import load_board
from tests.test_qemu import needs_arm_gcc, needs_qemu, tiny_graph


@needs_arm_gcc
@needs_qemu
def test_soak_20_inferences_in_one_qemu_boot(tmp_path):
    from mcuc.compiler import CompileOptions, assemble
    from mcuc.project import write_project
    from mcuc.schedule.base import layer_schedule

    g = tiny_graph()
    compiled = assemble(layer_schedule(g).plan("best"), load_board("qemu-mps2-an386"), CompileOptions())
    out = write_project(compiled, str(tmp_path / "proj"))
    r = soak(out, g, "qemu-mps2-an386", inferences=20, seed=3, timeout_s=120)
    assert r["inferences"] == 20 and r["output_elements"] == 20 * 10
    assert r["mismatched_elements"] == 0 and r["guards_intact"]
    assert r["invoke_stack_min"] == r["invoke_stack_max"] > 0
    assert 0 < r["stack_used"] <= r["stack_reserved"]
    assert passed(r)
    assert "20" in table("tiny", r)


def test_soak_reports_a_varying_stack_as_failure():
    r = {"mismatched_elements": 0, "guards_intact": True, "invoke_stack_min": 400, "invoke_stack_max": 432,
         "stack_used": 900, "stack_reserved": 8192}
    assert not passed(r)
    assert passed({**r, "invoke_stack_max": 400})

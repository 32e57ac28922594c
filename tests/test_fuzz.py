"""A seeded slice of the loader fuzz campaign (tests/fuzz_harness.py; `python -m bench.fuzz` runs 10,000): 300
mutated ONNX and TFLite models through `mcuc compile`, each a clean one-line error or a model whose C build (ASan +
UBSan) equals the int8 reference on extreme and random inputs. No traceback, signal, hang or miscompile."""
from __future__ import annotations

from tests.fuzz_harness import ERROR, OK, run_campaign

CAMPAIGN = 14
MUTANTS = 300


def test_fuzz_slice_has_no_findings(tmp_path):
    totals = run_campaign(MUTANTS, campaign=CAMPAIGN, jobs=1, timeout=60.0, workdir=tmp_path)
    report = "\n".join(f"mutant {f['index']} of {f['seed']} ({f['mutation']}): {f['outcome']}: {f['detail'][-600:]}"
                       for f in totals.findings)
    assert totals.failures == 0, f"{totals.summary()}\n{report}"
    assert totals.mutants == MUTANTS
    # the slice exercises both endings: refused models and compiled, verified ones
    assert totals.outcomes[ERROR] > MUTANTS // 2 and totals.outcomes[OK] > MUTANTS // 20, totals.summary()

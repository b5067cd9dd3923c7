import sys
from faults import FAULTS
from test_fault_gate import catch
from sessionspec.conformance.registry import all_checks
if "gen" in sys.argv[-1]:
    from sessionspec.spec.vectors import generate  # noqa

def test_debug_gen():
    item = next(f for f in FAULTS if f.name == "touched-only-not-saved")
    from sessionspec import conformance
    r = conformance.verify(item.factory, profile="smoke", only=[item.target])
    print("R2", r.results["B09"].status, len(r.results["B09"].checks))

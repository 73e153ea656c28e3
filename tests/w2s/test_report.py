import json

import pytest

from nb360.w2s.report import write_report, write_synthetic
from nb360.w2s.synthetic import density_sweep, source_selection


def run(seed, weak, w2s, ceiling):
    return {"task": "digits", "metric": "zero_one_error", "teacher": {"index": 1}, "student": {"index": 2},
            "seed": seed, "weak": weak, "w2s": w2s, "ceiling": ceiling, "pgr": (weak - w2s) / (weak - ceiling)}


def test_report_json_and_png(tmp_path):
    runs = [run(0, 0.3, 0.2, 0.1), run(1, 0.4, 0.25, 0.1)]
    paths = write_report(tmp_path, runs, {"student_from": {"algo": "re"}})
    document = json.loads(paths["json"].read_text())
    assert document["seeds"] == [0, 1] and document["student_from"] == {"algo": "re"}
    assert document["summary"]["pgr"]["mean"] == pytest.approx((0.5 + 0.5) / 2)
    assert document["summary"]["weak"]["values"] == [0.3, 0.4] and len(document["runs"]) == 2
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_synthetic_outputs(tmp_path):
    sweep = density_sweep([0.0, 0.2], seeds=2, n=200, n_test=200)
    selection = source_selection(seeds=1, n_per_source=200, budget=100, batch_size=25)
    paths = write_synthetic(tmp_path, sweep, selection)
    assert paths["density"].read_text().splitlines()[0] == "density,seed,weak_acc,w2s_acc,ceiling_acc,pgr"
    assert paths["detection"].read_text().startswith("density,seed,overlap_precision")
    assert len(paths["selection"].read_text().splitlines()) == 4  # header + three policies
    for name in ("density_png", "detection_png", "selection_png"):
        assert paths[name].read_bytes()[:4] == b"\x89PNG"

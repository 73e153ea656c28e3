import json
import math

import pytest

from nb360.w2s.protocol import Net, run_w2s
from nb360.w2s.search import best_from_file, search_student

# one-epoch runs of tiny networks: the ceiling may well be no better than the teacher
pytestmark = pytest.mark.filterwarnings("ignore:the ceiling is worse:RuntimeWarning",
                                        "ignore:PGR is undefined:RuntimeWarning")


def test_search_on_weak_labels_only(digits, tmp_path):
    """Three candidates of one epoch: the search needs the teacher, never the true labels of B."""
    teacher = Net.of(1, C=2, N=1)
    found = search_student(digits, teacher, "rs", budget=3, C=4, N=1, epochs=1, batch_size=128, device="cpu",
                           checkpoint_dir=tmp_path, progress=False)
    assert len(found.trials) == 3 and found.algo == "rs"
    scores = [t["score"] for t in found.trials]
    assert all(0 <= s <= 1 for s in scores) and found.best_score == min(scores)
    assert found.best.arch.index == found.trials[scores.index(min(scores))]["index"]
    assert (found.best.C, found.best.N) == (4, 1) and found.teacher == teacher
    # the teacher is the protocol's: a run_w2s on the same folder and seed restores it instead of training
    teacher_file = tmp_path / "teacher-1-C2-N1-seed0.pt"
    stamp = teacher_file.stat().st_mtime_ns
    report = run_w2s(digits, teacher, found.best, epochs=1, batch_size=128, device="cpu", checkpoint_dir=tmp_path,
                     progress=False, detect=False)
    assert teacher_file.stat().st_mtime_ns == stamp and math.isfinite(report.w2s)


def test_the_search_runs_as_ray_tune_trials(digits, tmp_path):
    """On a real local Ray: every candidate is a Tune trial trained on the teacher's labels of B_fit
    and scored on B_val, proposed by the nb360 searcher that Tune wraps (seeded as every Tune
    search is, so its candidates are known in advance)."""
    from nb360.search import make_searcher
    from nb360.search.runner import search_rngs

    teacher = Net.of(1, C=2, N=1)
    found = search_student(digits, teacher, "rs", budget=3, C=4, N=1, epochs=1, batch_size=128, checkpoint_dir=tmp_path,
                           progress=False, backend="ray", num_cpus=1)
    expected = make_searcher("rs", search_rngs(0)[0])
    assert sorted(t["index"] for t in found.trials) == sorted(expected.ask().index for _ in range(3))
    assert all(0 <= t["score"] <= 1 and t["epochs"] == 1 for t in found.trials)
    assert found.best_score == min(t["score"] for t in found.trials)
    assert (tmp_path / "teacher-1-C2-N1-seed0.pt").is_file()  # the teacher of the protocol, trained once here
    with pytest.raises(ValueError, match="backend must be"):
        search_student(digits, teacher, "rs", budget=3, backend="slurm")


def test_search_rejects_a_bad_budget(digits):
    with pytest.raises(ValueError, match="budget"):
        search_student(digits, 1, budget=0)


def write(path, content):
    path.write_text(json.dumps(content))
    return path


def test_best_json_gives_the_lowest_validation_entry(tmp_path):
    best = {"re": {"0": {"arch": "a", "index": 12, "val": 0.3}, "1": {"arch": "b", "index": 40, "val": 0.1}},
            "rs": {"0": {"arch": "c", "index": 7, "val": 0.2}, "1": None}}
    path = write(tmp_path / "best.json", best)
    index, source = best_from_file(path)
    assert index == 40 and source["algo"] == "re" and source["seed"] == "1" and source["file"] == str(path)
    assert best_from_file(path, "rs")[0] == 7


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    ([1, 2], "expected {algo: {seed: entry}}"),
    ({"re": {"0": None}}, "no finished search"),
    ({"re": {"0": {"arch": "x"}}}, "lacks 'index' or 'val'"),
])
def test_best_json_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "best.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ValueError, match=message):
        best_from_file(path)
    with pytest.raises(FileNotFoundError, match="best.json written by `nb360 search`"):
        best_from_file(tmp_path / "missing.json")
    if message == "no finished search":
        with pytest.raises(ValueError, match="no algorithm 'rs'"):
            best_from_file(path, "rs")

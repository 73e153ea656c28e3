import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from nb360.search import SEARCHERS, Searcher, Trial, make_rng, make_searcher, searcher_class, searcher_parameters
from nb360.spaces.nb201 import Arch
from nb360.table.manifest import DEFAULT_TABLE

DOCS = Path(__file__).resolve().parents[2] / "docs" / "search.md"


class Fixed(Searcher):
    def __init__(self, rng=0, arch_index=5):
        super().__init__(rng)
        self.arch = Arch.from_index(arch_index)

    def ask(self):
        return self.arch


def test_make_rng():
    assert make_rng(3).random() == np.random.default_rng(3).random()
    g = np.random.default_rng(1)
    assert make_rng(g) is g
    for bad in (-1, 1.5, "7", None, True):
        with pytest.raises(ValueError, match="rng must be"):
            make_rng(bad)


def test_defaults_of_the_base_class():
    s = Fixed(arch_index=7)
    assert s.ask_trial() == Trial(Arch.from_index(7), None)
    assert s.ask_batch(3) == [Arch.from_index(7)] * 3
    s.tell(s.ask(), 0.5)  # not learning is allowed
    with pytest.raises(NotImplementedError, match="must implement ask"):
        Searcher().ask()


def test_registry_resolves_every_name():
    for name in SEARCHERS:
        if name == "bananas" and not (DOCS.parents[1] / "nb360" / "search" / "bananas.py").exists():
            continue  # written separately
        cls = searcher_class(name)
        assert issubclass(cls, Searcher) and "rng" in searcher_parameters(name)
    with pytest.raises(ValueError, match="unknown search algorithm 'nope'"):
        searcher_class("nope")


def test_make_searcher_passes_only_the_keywords_a_class_names():
    s = make_searcher(Fixed, 0, arch_index=9, max_epochs=12, proxy=np.zeros(15625))
    assert s.ask() == Arch.from_index(9)
    assert make_searcher("sh", 0, max_epochs=12, proxy=None).max_epochs == 12
    assert make_searcher("re", 0, max_epochs=12, population_size=30).population_size == 30


def test_the_thirty_line_example_of_the_docs_runs(synthetic_path, tmp_path, monkeypatch, capsys):
    """The example block of docs/search.md, executed as written against a table found by name."""
    block = re.search(r"## A new algorithm in 30 lines.*?```python\n(.*?)```", DOCS.read_text(), re.S).group(1)
    assert len(block.strip().splitlines()) <= 30
    shutil.copy(synthetic_path, tmp_path / f"{DEFAULT_TABLE}.h5")
    monkeypatch.setenv("NB360_TABLES", str(tmp_path))
    namespace = {}
    exec(compile(block, str(DOCS), "exec"), namespace)
    regret = float(capsys.readouterr().out.split(":")[-1])
    trace = namespace["trace"]
    assert len(trace) == 100 and regret == pytest.approx(trace.regret[-1], abs=1e-4) and regret >= 0
    assert namespace["SimulatedAnnealing"](rng=1).ask() != namespace["SimulatedAnnealing"](rng=2).ask()

"""Optuna's samplers as nb360 searchers: seeded, learning from what they are told, failures told as
failed trials, runnable from `nb360 search`."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pandas as pd
import pytest
from scipy import stats

from nb360.compat.optuna import OptunaNSGA2, OptunaSearcher, OptunaTPE
from nb360.search import make_searcher
from nb360.search.runner import run_search
from nb360.stats import difference_ci
from nb360.table.benchmark import Benchmark
from nb360.table.manifest import DEFAULT_TABLE

@pytest.fixture(scope="module")
def bench():
    return Benchmark.load(DEFAULT_TABLE)


@pytest.mark.parametrize("algo, sampler", [("optuna-tpe", optuna.samplers.TPESampler),
                                           ("optuna-nsga2", optuna.samplers.NSGAIISampler)])
def test_a_seed_gives_the_same_search_and_the_sampler_is_optunas(bench, algo, sampler):
    searcher = make_searcher(algo, 3)
    assert isinstance(searcher.study.sampler, sampler)
    a, b, c = (run_search(bench, algo, seed=s, queries=40) for s in (3, 3, 4))
    assert a.index == b.index and a.val == b.val
    assert a.index != c.index


def test_the_samplers_learn_where_random_search_does_not(bench):
    """Mean validation error of queries 100-150 against the first 10 (TPE's random startup), over 10
    seeds: Optuna's samplers move to better cells (paired t-test over the seeds), and end below random
    search (Welch's t-test, `nb360.stats.difference_ci`, as the search reports give it), both
    one-sided at p < 0.01. Tests rather than fixed margins, so that the assertion does not depend on
    the scale of the table's metric."""
    early, late = {}, {}
    for algo in ("rs", "optuna-tpe", "optuna-nsga2"):
        traces = [run_search(bench, algo, seed=s, queries=150) for s in range(10)]
        early[algo] = np.array([np.nanmean(t.val[:10]) for t in traces])
        late[algo] = np.array([np.nanmean(t.val[100:]) for t in traces])
    for algo in ("optuna-tpe", "optuna-nsga2"):
        assert stats.ttest_rel(late[algo], early[algo], alternative="less").pvalue < 0.01, algo
        assert difference_ci(late[algo], late["rs"])["p_less"] < 0.01, algo


def test_told_scores_reach_the_study_and_failures_are_failed_trials():
    searcher = OptunaTPE(rng=0)
    asked = [searcher.ask() for _ in range(4)]
    for i, arch in enumerate(asked):
        searcher.tell(arch, math.inf if i == 1 else 0.1 * (i + 1))
    trials = searcher.study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                                         optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.COMPLETE]
    assert [t.value for t in trials if t.value is not None] == pytest.approx([0.1, 0.3, 0.4])
    assert [str(a) for a in asked] == [f"|{t.params['edge_1_0']}~0|+|{t.params['edge_2_0']}~0|"
                                       f"{t.params['edge_2_1']}~1|+|{t.params['edge_3_0']}~0|"
                                       f"{t.params['edge_3_1']}~1|{t.params['edge_3_2']}~2|" for t in trials]
    with pytest.raises(ValueError, match="was not asked"):
        searcher.tell(asked[0], 0.5)


def test_any_sampler_class_plugs_in():
    searcher = OptunaSearcher(rng=1, sampler=optuna.samplers.RandomSampler)
    arch = searcher.ask()
    searcher.tell(arch, 0.2)
    assert isinstance(searcher.study.sampler, optuna.samplers.RandomSampler) and len(searcher.study.trials) == 1
    assert repr(OptunaNSGA2(rng=0)) == "OptunaNSGA2(NSGAIISampler)"


def test_the_search_command_runs_them(cli, tmp_path):
    out = tmp_path / "search"
    done = cli("search", "--table", DEFAULT_TABLE, "--algo", "rs,optuna-tpe,optuna-nsga2", "--budget", "20", "--seeds", "2",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    trials = pd.read_csv(out / "trials.csv")
    assert trials.groupby("algo")["seed"].nunique().to_dict() == {"optuna-nsga2": 2, "optuna-tpe": 2, "rs": 2}
    assert set(json.loads((out / "best.json").read_text())) >= {"optuna-tpe", "optuna-nsga2"}
    assert (out / "regret.png").is_file()

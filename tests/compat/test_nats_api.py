"""nb360's NATS-Bench API against NATS-Bench's own: the same calls on a NATS-format file (read by
nats_bench) and on the nb360 table imported from it give the same answers."""

from __future__ import annotations

import random

import numpy as np
import pytest
from nats_fixture import synthetic_nats, write_nats_file

from nb360.compat.nats import NOT_OFFERED, create
from nb360.spaces.nb201 import NUM_ARCHS, Arch
from nb360.table.benchmark import Benchmark
from nb360.table.nats import import_nats
from nb360.table.manifest import DEFAULT_TABLE

INDICES = [0, 1, 9, 123, 4000, 7777, 15624] + list(range(300, 330))
SINGLE_SEED = {9, 4000, 310}
EPOCHS = 12
# keys both APIs fill from the same numbers (times of evaluation and eval losses are not in tables)
SHARED = ("train-loss", "train-accuracy", "train-per-time", "train-all-time", "valid-accuracy", "test-accuracy",
          "valtest-accuracy")


@pytest.fixture(scope="module")
def nats_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nats")
    data = synthetic_nats(INDICES, ("cifar10-valid", "cifar100"), (777, 888), EPOCHS, "12", seed=3,
                          single_seed=SINGLE_SEED)
    darcy = synthetic_nats(INDICES[:8], ("darcyflow",), (777,), EPOCHS, "12", seed=4)
    return write_nats_file(data, folder / "cifar.pickle.pbz2"), write_nats_file(darcy, folder / "darcy.pickle.pbz2")


@pytest.fixture(scope="module")
def pairs(nats_file, nats_bench, tmp_path_factory):
    """{dataset: (NATS-Bench's API on the file, nb360's on the table imported from it)}."""
    folder = tmp_path_factory.mktemp("tables")
    out = {}
    for path, datasets in zip(nats_file, (("cifar10-valid", "cifar100"), ("darcyflow",))):
        theirs = nats_bench.create(str(path), "tss", fast_mode=False, verbose=False)
        for dataset in datasets:
            table = import_nats(path, dataset, folder / f"{dataset}.h5", hp="12", progress=False)
            out[dataset] = theirs, create(table, "tss")
    return out


def assert_same_info(ours: dict, theirs: dict) -> None:
    # cifar100's valtest is its ori-test set (validation + test together), which the importer leaves out
    shared = [k for k in SHARED if k in theirs and not (k == "valtest-accuracy" and "test-accuracy" in theirs)]
    assert [k for k in SHARED if k in ours] == shared
    for key in shared:
        assert ours[key] == pytest.approx(theirs[key], rel=1e-6, abs=1e-9), key


@pytest.mark.parametrize("dataset", ["cifar10-valid", "cifar100", "darcyflow"])
def test_get_more_info_answers_as_nats_bench(pairs, dataset):
    theirs, ours = pairs[dataset]
    for index in sorted(ours.evaluated_indexes):
        seeds = theirs.query_meta_info_by_index(index, hp="12").get_dataset_seeds(dataset)
        for iepoch in (0, 6, None):
            for is_random in (*seeds, False):
                assert_same_info(ours.get_more_info(index, dataset, iepoch=iepoch, hp="12", is_random=is_random),
                                 theirs.get_more_info(index, dataset, iepoch=iepoch, hp="12", is_random=is_random))
            random.seed(index)  # a random trial: the same draw from Python's random as NATS-Bench makes
            mine = ours.get_more_info(index, dataset, iepoch=iepoch, hp="12")
            random.seed(index)
            assert_same_info(mine, theirs.get_more_info(index, dataset, iepoch=iepoch, hp="12"))


def test_the_space_and_its_indices_are_nats_benchs(pairs):
    theirs, ours = pairs["cifar100"]
    assert len(ours) == len(theirs) == NUM_ARCHS
    assert [ours[i] for i in (0, 77, 15624)] == [theirs[i] for i in (0, 77, 15624)]
    assert ours.arch(5) == theirs.arch(5)
    arch = theirs[123]
    assert ours.query_index_by_arch(arch) == theirs.query_index_by_arch(arch) == 123
    assert ours.query_index_by_arch(Arch.parse(arch)) == 123
    assert ours.query_index_by_arch("|not_an_op~0|") == theirs.query_index_by_arch("|not_an_op~0|") == -1
    with pytest.raises(ValueError, match="Invalid architecture index"):
        ours.query_index_by_arch(NUM_ARCHS)
    assert ours.evaluated_indexes == set(theirs.evaluated_indexes) == set(INDICES)


@pytest.mark.parametrize("dataset", ["cifar10-valid", "cifar100", "darcyflow"])
def test_costs_and_network_config_are_nats_benchs(pairs, dataset):
    theirs, ours = pairs[dataset]
    for index in (0, 123, 15624):
        if index not in ours.evaluated_indexes:
            continue
        mine, reference = ours.get_cost_info(index, dataset, hp="12"), theirs.get_cost_info(index, dataset, hp="12")
        for key in ("flops", "params", "T-train@epoch", "T-train@total"):
            assert mine[key] == pytest.approx(reference[key], rel=1e-6), key
        assert (mine["latency"] is None) == (reference["latency"] is None)
        if mine["latency"] is not None:
            assert mine["latency"] == pytest.approx(reference["latency"], rel=1e-6)
            assert ours.get_latency(index, dataset) == pytest.approx(theirs.get_latency(index, dataset, hp="12"))
        config, expected = ours.get_net_config(index, dataset), theirs.get_net_config(index, dataset)
        assert {k: config[k] for k in expected} == expected


@pytest.mark.parametrize("dataset, sets", [("cifar10-valid", ("train", "x-valid", "ori-test")),
                                           ("cifar100", ("train", "x-valid", "x-test", "valid", "test"))])
def test_find_best_under_limits_is_nats_benchs(pairs, dataset, sets):
    theirs, ours = pairs[dataset]
    flops = sorted(ours.get_cost_info(i, dataset)["flops"] for i in ours.evaluated_indexes)
    params = sorted(ours.get_cost_info(i, dataset)["params"] for i in ours.evaluated_indexes)
    limits = [(None, None), (flops[len(flops) // 2], None), (None, params[5]), (flops[-3], params[-3]),
              (flops[0] / 2, None)]
    for metric_on_set in sets:
        for flop_max, param_max in limits:
            best, accuracy = ours.find_best(dataset, metric_on_set, flop_max, param_max, hp="12")
            expected = theirs.find_best(dataset, metric_on_set, flop_max, param_max, hp="12")
            assert best == expected[0]
            assert (accuracy is None and expected[1] is None) or accuracy == pytest.approx(expected[1], rel=1e-6)
    assert ours.find_best(dataset, "train", flop_max=flops[0] / 2) == (-1, None)


def test_simulate_train_eval_draws_as_nats_bench_and_keeps_a_clock(pairs):
    theirs, ours = pairs["cifar100"]
    ours.reset_time()
    total = 0.0
    for index in (0, 9, 300, 15624):
        random.seed(index)
        accuracy, latency, seconds, used = ours.simulate_train_eval(index, "cifar100", hp="12")
        random.seed(index)
        reference = theirs.simulate_train_eval(index, "cifar100", hp="12")
        assert accuracy == pytest.approx(reference[0], rel=1e-6)
        assert latency == pytest.approx(reference[1], rel=1e-6)
        random.seed(index)
        trained = theirs.get_more_info(index, "cifar100", hp="12")["train-all-time"]
        assert seconds == pytest.approx(trained, rel=1e-6)  # training time only: tables keep no eval times
        total += seconds
        assert used == pytest.approx(total) and ours.used_time == used
    ours.simulate_train_eval(0, "cifar100", account_time=False)
    assert ours.used_time == pytest.approx(total)
    ours.reset_time()
    assert ours.used_time == 0


def test_a_built_table_answers_in_its_metric_and_its_config_builds_its_network():
    """On a table nb360 built: accuracy 1 - relative L2 (NAS-Bench-360's Darcy convention), the loss
    is the metric, valid-* and test-* from the table, and the config's network is the one the table
    trained (its params)."""
    from nb360 import Spec, build

    table = Benchmark.load(DEFAULT_TABLE)
    api = create(table)
    hp = api.avaliable_hps[0]
    assert hp == str(table.epochs)
    index = int(table.class_rows()[100])
    row = table.query(index)
    info = api.get_more_info(index, table.task, hp=hp, is_random=False)
    assert info["valid-accuracy"] == pytest.approx(1 - row["val_metric"])
    assert info["test-accuracy"] == pytest.approx(1 - row["test_metric"])
    assert info["test-loss"] == pytest.approx(row["test_metric"])
    assert info["valid-per-time"] is None and "valtest-accuracy" not in info
    config = api.get_net_config(index, table.task)
    network = build(config["arch_str"], Spec(**config["spec"]), C=config["C"], N=config["N"])
    assert sum(p.numel() for p in network.parameters()) == row["params"]
    best, accuracy = api.find_best(table.task, "x-valid")
    assert accuracy == pytest.approx(1 - np.nanmin(table.final("val_metric")))


def test_what_a_table_does_not_hold_is_a_clear_error(pairs):
    theirs, ours = pairs["cifar100"]
    with pytest.raises(ValueError, match="holds 'cifar100' only"):
        ours.get_more_info(0, "cifar10")
    with pytest.raises(ValueError, match=r"holds hp '12' .* hps=\['200'\]"):
        ours.get_more_info(0, "cifar100", hp="200")
    assert create(ours.table, hps=["200"]).get_more_info(0, "cifar100", hp="200", is_random=777)["train-loss"] == \
        pytest.approx(theirs.get_more_info(0, "cifar100", hp="12", is_random=777)["train-loss"], rel=1e-6)
    with pytest.raises(ValueError, match="no finished run"):
        ours.get_more_info(5, "cifar100")
    with pytest.raises(ValueError, match="can not find random seed"):
        ours.get_more_info(9, "cifar100", is_random=888)  # 9 ran seed 777 only
    with pytest.raises(ValueError, match="invalid iepoch"):
        ours.get_more_info(0, "cifar100", iepoch=EPOCHS)
    with pytest.raises(ValueError, match="unknown set 'ori-test'"):
        ours.find_best("cifar100", "ori-test")
    for name in NOT_OFFERED:
        with pytest.raises(AttributeError, match="not offered over an nb360 table"):
            getattr(ours, name)
    with pytest.raises(ValueError, match="topology space"):
        create(ours.table, "sss")


def regularized_evolution(api, dataset, hp, time_budget, population_size=10, sample_size=3):
    """Aging evolution written against NATS-Bench's API alone, with the calls of NATS-Bench's
    algorithm scripts (reset_time, random, api[i], simulate_train_eval, used_time)."""
    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    api.reset_time()
    population, history = [], []
    while api.used_time < time_budget:
        if len(population) < population_size:
            arch = api[api.random()]
        else:
            parent = max(random.sample(population, sample_size), key=lambda member: member[1])[0]
            edges = parent.split("+")
            node = random.randrange(3)
            tokens = edges[node].strip("|").split("|")
            k = random.randrange(len(tokens))
            op, source = tokens[k].split("~")
            tokens[k] = f"{random.choice([o for o in ops if o != op])}~{source}"
            edges[node] = "|" + "|".join(tokens) + "|"
            arch = "+".join(edges)
        accuracy, latency, time_cost, total = api.simulate_train_eval(arch, dataset, hp=hp)
        population.append((arch, accuracy))
        history.append((arch, accuracy, time_cost, total))
        if len(population) > population_size:
            population.pop(0)
    return history


def test_a_nats_bench_search_script_runs_the_same_on_both(nats_bench, tmp_path):
    """The same seed gives the same trajectory on nb360's API over a table and on NATS-Bench's own API
    over that table exported (every cell trained, a dataset NATS-Bench's simulate_train_eval takes)."""
    from nb360.table.nats_export import export_nats

    source = write_nats_file(synthetic_nats(range(NUM_ARCHS), ("cifar100",), (777, 888), 4, "4", seed=9),
                             tmp_path / "full.pickle.pbz2")
    table = import_nats(source, "cifar100", tmp_path / "full.h5", hp="4", progress=False)
    exported = export_nats(table, tmp_path / "exported.pickle.pbz2", progress=False)
    trajectories = []
    for api in (create(table, "tss"), nats_bench.create(str(exported), "tss", fast_mode=False, verbose=False)):
        random.seed(0)
        trajectories.append(regularized_evolution(api, "cifar100", "4", time_budget=2000))
    ours, theirs = trajectories
    assert len(ours) == len(theirs) > 50
    for mine, reference in zip(ours, theirs):
        assert mine[0] == reference[0]
        assert mine[1:] == pytest.approx(reference[1:], rel=1e-6)

import numpy as np
import pytest

from nb360.search import make_searcher
from nb360.search.warm_start import ZeroCostEvolution, ZeroCostLocalSearch, top_by_proxy
from nb360.spaces.nb201 import NUM_ARCHS


def test_top_by_proxy_ranks_a_random_pool():
    proxy = np.arange(NUM_ARCHS, dtype=float)  # higher index, better
    proxy[15000:] = np.nan  # NaN ranks last
    top = top_by_proxy(proxy, 10, np.random.default_rng(0), pool_size=3000)
    assert len(set(top)) == 10 and top == sorted(top, reverse=True) and max(top) < 15000
    assert top[0] > 14000  # the best of 3,000 draws among 15,000 sits near the top
    as_function = top_by_proxy(lambda arch: float(arch.index) if arch.index < 15000 else float("nan"), 10,
                               np.random.default_rng(0), pool_size=3000)
    assert as_function == top
    with pytest.raises(ValueError, match="needs a proxy"):
        top_by_proxy(None, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="shape \\(15625,\\)"):
        top_by_proxy(np.zeros(10), 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no finite score"):
        top_by_proxy(np.full(NUM_ARCHS, np.nan), 10, np.random.default_rng(0))


def test_searches_start_from_the_proxy_top():
    proxy = -np.arange(NUM_ARCHS, dtype=float)  # lower index, better
    re = ZeroCostEvolution(rng=1, proxy=proxy)
    first = [re.ask().index for _ in range(10)]
    assert first == top_by_proxy(proxy, 10, np.random.default_rng(1))
    assert max(first) < 200
    ls = make_searcher("zc-ls", 1, proxy=proxy, max_epochs=4)
    assert isinstance(ls, ZeroCostLocalSearch) and max(ls.ask().index for _ in range(10)) < 200
    with pytest.raises(ValueError, match="needs a proxy"):
        make_searcher("zc-re", 0)


def test_an_informative_proxy_helps_and_table_columns_are_used(synthetic, final_regrets):
    # the synthetic table's proxy "quality" is minus the true error plus noise
    rs = final_regrets("rs", queries=30)
    zc_re, zc_ls = final_regrets("zc-re", queries=30, proxy="quality"), final_regrets("zc-ls", queries=30, proxy="quality")
    re = final_regrets("re", queries=30)
    assert zc_re.mean() < re.mean() < rs.mean() and zc_ls.mean() < rs.mean()
    with pytest.raises(ValueError, match="no proxy 'synflow'; this table has: quality, params, flops"):
        final_regrets("zc-re", queries=30, proxy="synflow")
    # a proxy that ranks backwards hurts
    bad = final_regrets("zc-re", queries=30, proxy=-synthetic.df["proxy_quality"].to_numpy())
    assert bad.mean() > zc_re.mean()

import subprocess
import sys

import pytest

from nb360.lazy import lazy_exports


def test_a_name_is_imported_on_first_use_only():
    code = ("import sys, nb360; before = 'nb360.spaces.nb201' in sys.modules; nb360.Arch; "
            "print(before, 'nb360.spaces.nb201' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


def test_exports_resolve_list_and_refuse_unknown_names():
    all_, getattr_, dir_ = lazy_exports("pkg", {"sqrt": "math", "dumps": "json"}, {"here": 1})
    assert all_ == ["dumps", "sqrt"]
    assert getattr_("sqrt")(9.0) == 3.0
    assert dir_() == ["dumps", "here", "sqrt"]
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'cos'"):
        getattr_("cos")


def test_the_packages_names_all_resolve():
    import nb360
    import nb360.w2s

    for package in (nb360, nb360.w2s):
        assert set(package.__all__) <= set(dir(package))
        for name in package.__all__:
            assert getattr(package, name) is not None

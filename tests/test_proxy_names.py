"""Proxy names and directions: torch-free, checked, converted to the tables' convention."""

import subprocess
import sys

import numpy as np
import pytest

from nb360.proxy_names import PROXIES, PROXY_DIRECTION, direction, parse_names, to_lower_is_better


def test_direction_and_names():
    assert set(PROXY_DIRECTION) == set(PROXIES) and set(PROXY_DIRECTION.values()) <= {"max", "min"}
    assert direction("synflow") == "max"
    np.testing.assert_array_equal(to_lower_is_better("synflow", [1.0, -2.0]), [-1.0, 2.0])
    assert parse_names("snip, zen,snip") == ("snip", "zen") and parse_names(None) == PROXIES
    with pytest.raises(ValueError, match="unknown proxy 'nope'"):
        parse_names("snip,nope")
    with pytest.raises(ValueError, match="unknown proxy"):
        to_lower_is_better("nope", 1.0)
    with pytest.raises(ValueError, match="no proxy named"):
        parse_names(" , ")


def test_reading_directions_does_not_import_torch():
    # the proxies hypothesis reads tables' proxy columns; it should not pay for torch's import
    code = "import sys, nb360.proxy_names, nb360.hypotheses.proxies; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

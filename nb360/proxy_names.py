"""The zero-cost proxies' names and directions, without torch.

Table scores are errors, lower is better; proxies are reported as the literature defines them,
where higher predicts a better network. `PROXY_DIRECTION` is the one place that says so for each
proxy, and `to_lower_is_better` turns raw values into the tables' convention for consumers
(warm-start searches, correlation reports). The proxies themselves are in `nb360.proxies`; this
module is apart so that reading a table's proxy columns does not import torch.
"""

from __future__ import annotations

import numpy as np

PROXIES: tuple[str, ...] = ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow", "naswot", "zen",
                            "params", "flops")
# "max": a higher raw value predicts a better (lower-error) network. All proxies follow the
# literature's convention; grasp carries the reference's sign flip (`-theta * Hg`) for that reason.
PROXY_DIRECTION: dict[str, str] = {name: "max" for name in PROXIES}


def direction(name: str) -> str:
    """"max" or "min" for a known proxy; a clear error for any other name."""
    if name not in PROXY_DIRECTION:
        raise ValueError(f"unknown proxy {name!r}; expected one of {', '.join(PROXIES)}")
    return PROXY_DIRECTION[name]


def to_lower_is_better(name: str, values: np.ndarray | float) -> np.ndarray:
    """Raw proxy values turned into the tables' convention (lower predicts better): negated for
    proxies where higher is better."""
    values = np.asarray(values, dtype=np.float64)
    return -values if direction(name) == "max" else values


def parse_names(names: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Proxy names from a comma-separated string or a list (None: all), checked and deduplicated."""
    if names is None:
        return PROXIES
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    for name in names:
        direction(name)
    if not names:
        raise ValueError(f"no proxy named; expected some of {', '.join(PROXIES)}")
    return tuple(dict.fromkeys(names))

"""How big the reliability scenarios run: short in `make test`, long in `make soak`.

`RELIABILITY_PROFILE=soak` (what `make soak` sets) runs thousands of orders per scenario;
anything else runs the short version. `RELIABILITY_ORDERS` and `RELIABILITY_SEED` override the
order count and the seed of every random choice (kill moments, failing answers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    orders: int  # orders placed in the crash scenario
    kills: int  # SIGKILLs during it (the API, the worker or both)
    fault_orders: int  # orders whose notifications go through receiver faults
    client_threads: int
    seed: int


def current() -> Profile:
    soak = os.environ.get("RELIABILITY_PROFILE", "short") == "soak"
    profile = (
        Profile("soak", orders=3000, kills=24, fault_orders=1000, client_threads=16, seed=0)
        if soak
        else Profile("short", orders=80, kills=2, fault_orders=20, client_threads=6, seed=0)
    )
    orders = int(os.environ.get("RELIABILITY_ORDERS", profile.orders))
    seed = int(os.environ.get("RELIABILITY_SEED", profile.seed))
    return Profile(
        profile.name, orders, profile.kills, profile.fault_orders, profile.client_threads, seed
    )


PROFILE = current()

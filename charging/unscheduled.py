"""Headroom for vehicles a depot's plan does not know: visiting buses, cars on outlets, anyone unannounced.

A re-plan knows the depot's own vehicles; others turn up unannounced. Their arrivals per weekday and
hour are learned from the depot's own charging sessions of the last ``HISTORY_WEEKS`` weeks (those of
vehicles based elsewhere or nowhere), and the plan keeps headroom for them
(``charging.optimizer.online``; docs/optimizer.md, *Unscheduled arrivals*). A depot with no such history
is planned as before.
"""

from __future__ import annotations

import datetime as dt

from charging import optimizer
from charging.optimizer.online import learn_arrival_profile, solve_with_expected_arrivals
from charging.selectors import unscheduled_sessions
from fleet.models import Depot

HISTORY_WEEKS = 8


def solve_keeping_headroom(
    *,
    depot: Depot,
    instance: optimizer.Instance,
    now: dt.datetime,
    method: str,
    windows_hint=None,
    search: optimizer.SearchLimits = optimizer.NIGHTLY_SEARCH,
) -> optimizer.Plan:
    """Solve ``instance`` (slot 0 = ``now``) with headroom for the depot's usual unannounced arrivals."""
    history = unscheduled_sessions(depot, since=now - dt.timedelta(weeks=HISTORY_WEEKS), until=now)
    if not history:
        return optimizer.solve(instance, method=method, windows_hint=windows_hint, search=search)
    profile = learn_arrival_profile(history, depot.zone)
    return solve_with_expected_arrivals(instance, profile, method=method, windows_hint=windows_hint, search=search)

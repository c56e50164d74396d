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
from charging.selectors import plans_keeping_headroom, unscheduled_sessions
from fleet.models import Depot

HISTORY_WEEKS = 8
HEADROOM_REPLAN_REASON = "headroom re-plan: the slot's kept headroom goes to the vehicles there"


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


def headroom_replans_request(*, now: dt.datetime) -> int:
    """Ask for a re-plan of every depot whose running plan keeps headroom for unannounced arrivals and is a slot
    old or more. Returns how many were asked for.

    Headroom is kept from the plan's next slot on. Re-planned only when something happens, a plan carries out
    the headroom of every slot until the next event, idle if nobody came: on the real ACN-Data JPL week that lost
    about 12 kWh of a saturated Monday, the whole gap to hindsight, and re-planning each slot closed it
    (docs/optimizer.md, *Unscheduled arrivals*). Beat calls this every minute; a plan younger than its slot is
    left alone, so a depot is re-planned at most once a slot, and an event's re-plan restarts the count. Keyed by
    the plan: asking twice for the same plan queues one re-plan.
    """
    from charging.tasks import request_replan  # the tasks module imports planning, which imports this one

    plans = plans_keeping_headroom(now=now, history_since=now - dt.timedelta(weeks=HISTORY_WEEKS))
    for plan in plans:
        request_replan(
            depot=plan.depot,
            service_night=plan.service_night,
            reason=HEADROOM_REPLAN_REASON,
            request_key=f"headroom:plan={plan.pk}",
        )
    return len(plans)

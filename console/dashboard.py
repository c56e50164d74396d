"""What a fleet manager sees first: per depot, is tomorrow's service safe, what tonight costs, what needs a look.

Also the vehicle page (telemetry over recent days). Reads only; every queryset goes through ``restrict`` and
the number of queries does not grow with the number of depots or vehicles.

Readiness of a vehicle for its next departure, from the active plan's ``PlannedCharge``:
- green: ready (the plan leaves no shortfall);
- amber: short by less than ``AMBER_SHORT_PCT`` points of SoC;
- red: short by more, or in service at the depot and not in the plan (no compatible connector, no plan).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.paginator import Paginator
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from batteries.selectors import last_forecast_at_by_depot
from charging.planning import current_service_night
from charging.selectors import (
    NightCost,
    PlanReadiness,
    faulted_charger_counts,
    next_active_plans,
    night_costs,
    night_peak_kw_by_plan,
    open_alerts_by_depot,
    plan_activity_by_depot,
    readiness_by_plan,
)
from fleet.scoping import Action, restrict
from fleet.selectors import VehicleCounts, depots_visible_to, vehicle_counts_by_depot
from jobs.selectors import recent_runs

if TYPE_CHECKING:  # types only: the reads go through the owning apps' selectors
    from django_stubs_ext import StrOrPromise

    from charging.models import Alert, ChargingPlan
    from fleet.models import Depot

SHORT_VEHICLES_SHOWN = 8
ALERTS_SHOWN = 3
DEPOTS_PER_PAGE = 24  # cards on the admin index; more depots page (?page=2)
JOBS_READ_PER_DEPOT = 20  # enough to find the latest run of each nightly job; bounds the read


@dataclass
class Readiness:
    ready: int = 0
    short_small: int = 0
    short_large: int = 0
    not_planned: int = 0
    short_vehicles: list[dict] = field(default_factory=list)  # the worst first: fleet number, SoC, need, gap

    @property
    def level(self) -> str:
        if self.short_large or self.not_planned:
            return "red"
        return "amber" if self.short_small else "green"


@dataclass
class DepotCard:
    depot: Depot
    vehicles_by_status: list[tuple[str, StrOrPromise, int]]  # (status, label, count)
    plan: ChargingPlan | None
    readiness: Readiness
    open_alerts: int = 0
    critical_alerts: int = 0
    latest_alerts: list[Alert] = field(default_factory=list)
    last_plan_at: dt.datetime | None = None
    last_plan_status: str = ""
    last_forecast_at: dt.datetime | None = None
    job_runs: list = field(default_factory=list)  # the latest run of each overnight job, newest first
    faulted_chargers: int = 0  # chargers out of order, or with a connector out of order
    night_peak_kw: float | None = None  # the plan's highest site demand (base load + charging) all night
    night_cost: NightCost | None = None  # delivered before a re-plan + the plan's own (remaining) cost

    @property
    def peak_share_pct(self) -> float | None:
        """The night's peak site demand against the depot's grid limit (not the demand-charge window's peak)."""
        if self.plan is None or not self.depot.grid_limit_kw or self.night_peak_kw is None:
            return None
        return 100.0 * self.night_peak_kw / self.depot.grid_limit_kw

    @property
    def vehicle_total(self) -> int:
        return sum(count for _status, _label, count in self.vehicles_by_status)

    @property
    def plan_url(self) -> str | None:
        return reverse("admin:charging_chargingplan_overview", args=[self.plan.pk]) if self.plan else None


def depot_cards(user, *, now: dt.datetime | None = None, depots: Sequence[Depot] | None = None) -> list[DepotCard]:
    """One card per depot of ``depots`` (default: every depot ``user`` may see), in a fixed number of queries
    whatever the number of depots."""
    now = now or timezone.now()
    depots = list(depots_visible_to(user) if depots is None else depots)
    if not depots:
        return []
    depot_ids = [d.pk for d in depots]
    vehicle_counts = vehicle_counts_by_depot(user, depot_ids)
    plans = next_active_plans(user, {d.pk: current_service_night(d, now) for d in depots})
    night_peaks = night_peak_kw_by_plan(list(plans.values())) if plans else {}
    costs = night_costs(plans.values())
    faulted = faulted_charger_counts(depot_ids)
    readiness = _readiness(plans, vehicle_counts)
    alerts = open_alerts_by_depot(user, depot_ids, latest_per_depot=ALERTS_SHOWN)
    last_plans, last_failed = plan_activity_by_depot(user, depot_ids, failed_since=now - dt.timedelta(days=1))
    last_forecasts = last_forecast_at_by_depot(depot_ids)
    job_runs = _last_job_runs(user, depot_ids, now)

    cards = []
    for depot in depots:
        depot_alerts = alerts.get(depot.pk, {"open": 0, "critical": 0, "latest": []})
        cards.append(
            DepotCard(
                depot=depot,
                vehicles_by_status=vehicle_counts[depot.pk].by_status,
                plan=plans.get(depot.pk),
                readiness=readiness.get(depot.pk, Readiness()),
                open_alerts=depot_alerts["open"],
                critical_alerts=depot_alerts["critical"],
                latest_alerts=depot_alerts["latest"],
                last_plan_at=last_plans.get(depot.pk),
                last_plan_status="failed" if depot.pk in last_failed else "",
                last_forecast_at=last_forecasts.get(depot.pk),
                job_runs=job_runs.get(depot.pk, []),
                faulted_chargers=faulted.get(depot.pk, 0),
                night_peak_kw=night_peaks.get(plans[depot.pk].pk) if depot.pk in plans else None,
                night_cost=costs.get(plans[depot.pk].pk) if depot.pk in plans else None,
            )
        )
    return cards


def _readiness(plans: dict[int, ChargingPlan], vehicles: dict[int, VehicleCounts]) -> dict[int, Readiness]:
    # Until a plan's row says otherwise, every vehicle in service is one without a plan.
    result = {depot_id: Readiness(not_planned=counts.in_service) for depot_id, counts in vehicles.items()}
    by_plan: dict[int, PlanReadiness] = readiness_by_plan(plans.values(), short_shown=SHORT_VEHICLES_SHOWN)
    for depot_id, plan in plans.items():
        counts = by_plan[plan.pk]
        result[depot_id] = Readiness(
            ready=counts["ready"],
            short_small=counts["short_small"],
            short_large=counts["short_large"],
            not_planned=max(vehicles[depot_id].in_service - counts["planned_in_service"], 0),
            short_vehicles=counts["short_vehicles"],
        )
    return result


def _last_job_runs(user, depot_ids: list[int], now: dt.datetime) -> dict[int, list]:
    """Per depot, the latest run of each job in the last two days (one bounded query)."""
    runs: dict[int, list] = defaultdict(list)
    seen: set[tuple[int, str]] = set()
    recent = restrict(recent_runs(depot_ids, since=now - dt.timedelta(days=2)), user, Action.VIEW)
    for run in recent[: JOBS_READ_PER_DEPOT * len(depot_ids)]:
        if (run.depot_id, run.job) not in seen:
            seen.add((run.depot_id, run.job))
            runs[run.depot_id].append(run)
    return runs


def dashboard_context(request: HttpRequest) -> dict:
    """Extra context of the admin index (hooked in by ``config.admin_site.add_index_context``)."""
    if not (request.user.is_authenticated and request.user.is_staff):
        return {}
    # A page of cards: a city's hundred depots on one page made a page of most of a megabyte.
    # The depots are read whole (hundreds of short rows, one query, no count): the cards' reads are per page.
    page = Paginator(depots_visible_to(request.user), DEPOTS_PER_PAGE).get_page(request.GET.get("page"))
    return {"depot_cards": depot_cards(request.user, depots=list(page.object_list)), "depot_page": page}


# --- Vehicle page -----------------------------------------------------------------------------------------

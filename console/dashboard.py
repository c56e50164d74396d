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
from django.db.models import Count, F, Max, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from charging.models import Alert, ChargingPlan
from charging.planning import current_service_night
from charging.readiness import AMBER_SHORT_PCT, READY_SHORTFALL_KWH
from charging.selectors import faulted_charger_counts, night_peak_kw_by_plan, planned_charges_in_service
from fleet.models import Depot, Vehicle
from fleet.scoping import Action, restrict

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

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


def visible_depots(user) -> QuerySet[Depot]:
    return restrict(Depot.objects.all(), user, Action.VIEW).select_related("organization").order_by("name", "pk")


def depot_cards(user, *, now: dt.datetime | None = None, depots: Sequence[Depot] | None = None) -> list[DepotCard]:
    """One card per depot of ``depots`` (default: every depot ``user`` may see), in a fixed number of queries
    (about eight)."""
    now = now or timezone.now()
    depots = list(visible_depots(user) if depots is None else depots)
    if not depots:
        return []
    depot_ids = [d.pk for d in depots]
    status_labels = dict(Vehicle.Status.choices)

    by_status: dict[int, dict[str, int]] = defaultdict(dict)
    vehicles = restrict(Vehicle.objects.filter(home_depot_id__in=depot_ids), user, Action.VIEW)
    for row in vehicles.order_by().values("home_depot_id", "status").annotate(n=Count("pk")):
        by_status[row["home_depot_id"]][row["status"]] = row["n"]

    plans = _next_plans(user, depots, now)
    night_peaks = night_peak_kw_by_plan(list(plans.values())) if plans else {}
    faulted = faulted_charger_counts(depot_ids)
    readiness = _readiness(plans, {d.pk: by_status[d.pk].get(Vehicle.Status.IN_SERVICE, 0) for d in depots})

    alert_rows = restrict(Alert.objects.filter(depot_id__in=depot_ids), user, Action.VIEW).exclude(
        status=Alert.Status.RESOLVED
    )
    alert_counts = {
        row["depot_id"]: row
        for row in alert_rows.order_by()
        .values("depot_id")
        .annotate(n=Count("pk"), critical=Count("pk", filter=Q(severity=Alert.Severity.CRITICAL)))
    }
    latest_alerts: dict[int, list[Alert]] = defaultdict(list)
    # Critical first, newest first; a bounded read whatever the number of open alerts.
    for alert in alert_rows.select_related("vehicle").order_by("severity", "-created_at")[: ALERTS_SHOWN * len(depots)]:
        if len(latest_alerts[alert.depot_id]) < ALERTS_SHOWN:
            latest_alerts[alert.depot_id].append(alert)

    last_plans = {
        row["depot_id"]: row["latest"]
        for row in restrict(ChargingPlan.objects.filter(depot_id__in=depot_ids), user, Action.VIEW)
        .order_by()
        .values("depot_id")
        .annotate(latest=Max("created_at"))
    }
    last_failed = set(
        restrict(ChargingPlan.objects.filter(depot_id__in=depot_ids), user, Action.VIEW)
        .filter(status=ChargingPlan.Status.FAILED, created_at__gte=now - dt.timedelta(days=1))
        .values_list("depot_id", flat=True)
    )
    last_forecasts = _last_forecasts(depot_ids)
    job_runs = _last_job_runs(user, depot_ids, now)

    cards = []
    for depot in depots:
        counts = by_status[depot.pk]
        alerts = alert_counts.get(depot.pk, {"n": 0, "critical": 0})
        cards.append(
            DepotCard(
                depot=depot,
                vehicles_by_status=[
                    (status, status_labels[status], counts.get(status, 0)) for status in Vehicle.Status.values
                ],
                plan=plans.get(depot.pk),
                readiness=readiness.get(depot.pk, Readiness()),
                open_alerts=alerts["n"],
                critical_alerts=alerts["critical"],
                latest_alerts=latest_alerts[depot.pk],
                last_plan_at=last_plans.get(depot.pk),
                last_plan_status="failed" if depot.pk in last_failed else "",
                last_forecast_at=last_forecasts.get(depot.pk),
                job_runs=job_runs.get(depot.pk, []),
                faulted_chargers=faulted.get(depot.pk, 0),
                night_peak_kw=night_peaks.get(plans[depot.pk].pk) if depot.pk in plans else None,
            )
        )
    return cards


def _next_plans(user, depots: list[Depot], now: dt.datetime) -> dict[int, ChargingPlan]:
    """Each depot's active plan for the night in progress, or else the next night planned."""
    nights = {d.pk: current_service_night(d, now) for d in depots}
    candidates = restrict(
        ChargingPlan.objects.filter(
            depot_id__in=nights, status=ChargingPlan.Status.ACTIVE, service_night__gte=min(nights.values())
        ),
        user,
        Action.VIEW,
    ).order_by("depot_id", "service_night")
    chosen: dict[int, ChargingPlan] = {}
    for plan in candidates.defer("instance"):
        if plan.depot_id not in chosen and plan.service_night >= nights[plan.depot_id]:
            chosen[plan.depot_id] = plan
    return chosen


def _readiness(plans: dict[int, ChargingPlan], in_service: dict[int, int]) -> dict[int, Readiness]:
    # Until a plan's row says otherwise, every vehicle in service is one without a plan.
    result = {depot_id: Readiness(not_planned=count) for depot_id, count in in_service.items()}
    if plans:
        plan_depot = {plan.pk: depot_id for depot_id, plan in plans.items()}
        short = Q(shortfall_kwh__gt=READY_SHORTFALL_KWH)
        small_gap = Q(required_soc_pct__lt=F("departure_soc_pct") + AMBER_SHORT_PCT)
        # Only vehicles still in service count: a bus sent to the workshop is neither ready nor short.
        in_service_charges = planned_charges_in_service(plans.values())
        rows = (
            in_service_charges.order_by()
            .values("plan_id")
            .annotate(
                ready_count=Count("pk", filter=~short),  # not `ready`: PlannedCharge.ready is a property
                short_small=Count("pk", filter=short & small_gap),
                short_large=Count("pk", filter=short & ~small_gap),
                planned_in_service=Count("pk"),
            )
        )
        for row in rows:
            readiness = result[plan_depot[row["plan_id"]]]
            readiness.ready, readiness.short_small, readiness.short_large = (
                row["ready_count"],
                row["short_small"],
                row["short_large"],
            )
            readiness.not_planned = max(in_service[plan_depot[row["plan_id"]]] - row["planned_in_service"], 0)
        shorts = (
            in_service_charges.filter(shortfall_kwh__gt=READY_SHORTFALL_KWH)
            .annotate(gap=F("required_soc_pct") - F("departure_soc_pct"))
            .order_by("-gap")
            .values("plan_id", "vehicle__fleet_number", "departure_soc_pct", "required_soc_pct", "gap")
        )
        for short_row in shorts[: SHORT_VEHICLES_SHOWN * len(plans)]:
            listed = result[plan_depot[short_row["plan_id"]]].short_vehicles
            if len(listed) < SHORT_VEHICLES_SHOWN:
                listed.append({**short_row, "level": "amber" if short_row["gap"] < AMBER_SHORT_PCT else "red"})
    return result


def _last_job_runs(user, depot_ids: list[int], now: dt.datetime) -> dict[int, list]:
    """Per depot, the latest run of each job in the last two days (one bounded query)."""
    from jobs.models import JobRun

    runs: dict[int, list] = defaultdict(list)
    seen: set[tuple[int, str]] = set()
    recent = restrict(
        JobRun.objects.filter(depot_id__in=depot_ids, created_at__gte=now - dt.timedelta(days=2)), user, Action.VIEW
    ).order_by("-created_at", "-id")
    for run in recent.only("depot_id", "job", "status", "created_at", "finished_at", "duration_seconds", "summary")[
        : JOBS_READ_PER_DEPOT * len(depot_ids)
    ]:
        if (run.depot_id, run.job) not in seen:
            seen.add((run.depot_id, run.job))
            runs[run.depot_id].append(run)
    return runs


def _last_forecasts(depot_ids: list[int]) -> dict[int, dt.datetime]:
    from batteries.models import SoHForecast  # batteries imports fleet: keep the import graph one-way at load

    rows = (
        SoHForecast.objects.filter(
            pack__installations__removed_at__isnull=True, pack__installations__vehicle__home_depot_id__in=depot_ids
        )
        .order_by()
        .values("pack__installations__vehicle__home_depot_id")
        .annotate(latest=Max("created_at"))
    )
    return {row["pack__installations__vehicle__home_depot_id"]: row["latest"] for row in rows}


def dashboard_context(request: HttpRequest) -> dict:
    """Extra context of the admin index (hooked in by ``config.admin_site.add_index_context``)."""
    if not (request.user.is_authenticated and request.user.is_staff):
        return {}
    # A page of cards: a city's hundred depots on one page made a page of most of a megabyte.
    # The depots are read whole (hundreds of short rows, one query, no count): the cards' reads are per page.
    page = Paginator(list(visible_depots(request.user)), DEPOTS_PER_PAGE).get_page(request.GET.get("page"))
    return {"depot_cards": depot_cards(request.user, depots=list(page.object_list)), "depot_page": page}


# --- Vehicle page -----------------------------------------------------------------------------------------

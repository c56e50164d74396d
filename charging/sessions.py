"""Charging sessions: what actually charged, when, how much, at what cost.

Sessions come from three places (``ChargingSession.Source``):

* depot staff and charger gateways post them (``charging_session_record``); their ``external_id`` makes a
  re-send safe: the same payload returns the stored session, a different one with the same id is a
  ``SessionConflict`` (the API answers 409);
* telemetry shows charges away from any depot (a car on an outlet): ``sessions_detect_from_telemetry``.
  Re-detecting replaces what an earlier run found for the same start (the readings may have grown), as
  daily duty cycles do.

Who records and who reads (``session_vehicle_choices``, ``sessions_visible_to``): a session is recorded where it
happened, at the depot whose charger delivered the energy. Whoever may operate depot D records sessions at D for
any vehicle of D's organisation, a visiting bus from another depot included: it is priced at D's tariff and
counted in D's reports. A vehicle of another organisation is refused exactly as an unknown id is. Reading: a
depot's people see every session at their depot (visitors' too) and, read-only, the sessions their depot's own
vehicles had at the organisation's other depots (battery health and energy per vehicle need the whole history);
never a visitor's sessions elsewhere. Sessions away from any depot stay the organisation's managers' business.

Cost: the session's grid energy is spread evenly over its duration and priced minute by minute at the
tariff's energy price in the depot's local time (away from a depot: the organisation's default tariff, in
the vehicle's home depot's zone, else ``EVFLEET_DEFAULT_DEPOT_TIME_ZONE``). A tariff's periods start and end
on whole minutes, so this is exact for an even draw. Demand charges are a monthly matter, not a session's:
the monthly report shows the peak they are billed on.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from batteries.selectors import vehicle_capacity_kwh
from charging.metered_energy import meter_readings_json
from charging.models import ChargingPlan, ChargingSession, Connector, Tariff
from charging.planning import current_service_night
from charging.tariffs import TariffError, TariffSchedule, energy_price_at
from config.services import model_create
from fleet.models import Depot, TelemetryReading, Vehicle
from fleet.scoping import Action, restrict
from fleet.telemetry.duty import counter_increase

Source = ChargingSession.Source

ONE_MINUTE = dt.timedelta(minutes=1)
ONE_MICROSECOND = dt.timedelta(microseconds=1)
CENT = Decimal("0.01")
# A longer "session" is a forgotten stop message or a typo; pricing it minute by minute would also be slow.
MAX_SESSION_HOURS = 72
# Clocks of gateways and tablets drift a little; a session cannot end further in the future than this.
CLOCK_SKEW = dt.timedelta(minutes=5)
# Fields that say what the session *is*: a re-send must repeat them exactly.
PAYLOAD_FIELDS = (
    "vehicle_id",
    "connector_id",
    "started_at",
    "ended_at",
    "energy_kwh",
    "start_soc_pct",
    "end_soc_pct",
    "max_kw",
)


class SessionConflict(Exception):
    """The sender re-used a session id for a different session."""


def away_charging_efficiency() -> float:
    """Pack energy / grid energy for charges found in telemetry (assumed: onboard charger and cable losses)."""
    return settings.EVFLEET_AWAY_CHARGING_EFFICIENCY


def away_radius_m() -> float:
    """How far from a depot's coordinates a vehicle is "away from any depot" (assumed: a large bus yard)."""
    return settings.EVFLEET_DEPOT_RADIUS_M


# --- Cost ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionCost:
    cost: Decimal | None  # rounded to cents; None when no tariff applies
    currency: str
    note: str  # why the cost is empty, else ""


def priced_energy(
    schedule: TariffSchedule,
    *,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    energy_kwh: float,
    zone: zoneinfo.ZoneInfo,
) -> Decimal:
    """The cost (tariff currency, not rounded) of ``energy_kwh`` drawn evenly from ``started_at`` to ``ended_at``.

    Each whole minute (and the partial first and last ones) gets its share of the energy by duration and the
    price of its first instant in local time (``zone``). Raises ``TariffError`` if the tariff has a gap.
    """
    total_us = (ended_at - started_at) // ONE_MICROSECOND
    if total_us <= 0:
        raise ValueError("a session ends after it starts")
    microseconds_at_price: dict[Decimal, int] = defaultdict(int)
    moment, end = started_at.astimezone(dt.UTC), ended_at.astimezone(dt.UTC)
    while moment < end:
        piece_end = min(moment.replace(second=0, microsecond=0) + ONE_MINUTE, end)
        price = energy_price_at(schedule, moment.astimezone(zone)).energy_price_per_kwh
        microseconds_at_price[price] += (piece_end - moment) // ONE_MICROSECOND
        moment = piece_end
    energy = Decimal(repr(float(energy_kwh)))
    return sum(
        (price * energy * Decimal(us) / Decimal(total_us) for price, us in microseconds_at_price.items()),
        Decimal(0),
    )


def away_tariff(vehicle: Vehicle) -> Tariff | None:
    """The tariff that prices charges away from any depot: the organisation's default tariff, if it has one
    (without one, away sessions are recorded without a cost and say so)."""
    return vehicle.organization.default_tariff


def session_zone(depot: Depot | None, vehicle: Vehicle) -> zoneinfo.ZoneInfo:
    if depot is not None:
        return depot.zone
    if vehicle.home_depot is not None:  # no query when the vehicle has no depot
        return vehicle.home_depot.zone
    return zoneinfo.ZoneInfo(settings.EVFLEET_DEFAULT_DEPOT_TIME_ZONE)


def session_cost(
    *, depot: Depot | None, vehicle: Vehicle, started_at: dt.datetime, ended_at: dt.datetime, energy_kwh: float
) -> SessionCost:
    """The session's energy cost at the tariff that applies, or an empty cost and the reason."""
    if depot is not None:
        tariff = depot.tariff
        missing = _("Depot %(depot)s has no tariff.") % {"depot": depot.name}
    else:
        tariff = away_tariff(vehicle)
        missing = _("Charged away from any depot and the organisation has no default tariff.")
    if tariff is None:
        return SessionCost(None, "", missing)
    try:
        cost = priced_energy(
            TariffSchedule.from_tariff(tariff),
            started_at=started_at,
            ended_at=ended_at,
            energy_kwh=energy_kwh,
            zone=session_zone(depot, vehicle),
        )
    except TariffError as exc:
        return SessionCost(None, tariff.currency, str(exc)[:200])
    return SessionCost(cost.quantize(CENT, rounding=ROUND_HALF_UP), tariff.currency, "")


def plan_at(depot: Depot, moment: dt.datetime) -> ChargingPlan | None:
    """The depot's plan in force at ``moment``: the newest version of that night created by then, else the
    night's active plan (a session may have started before the first plan of its night was made)."""
    night = current_service_night(depot, moment)
    plans = ChargingPlan.objects.filter(depot=depot, service_night=night).exclude(status=ChargingPlan.Status.FAILED)
    return (
        plans.filter(created_at__lte=moment).order_by("-version").first()
        or plans.filter(status=ChargingPlan.Status.ACTIVE).first()
    )


# --- Who records, who reads ---------------------------------------------------------------------------------


def session_vehicle_choices(user) -> QuerySet[Vehicle]:
    """The vehicles ``user`` may name in a depot session: every vehicle of an organisation in which they may
    operate a depot, wherever its home is (a visiting bus charges where it is). The session's depot must
    still be one they operate, and of the vehicle's organisation (the API answers a mismatch as an unknown id).
    """
    operated_depots = restrict(Depot.objects.all(), user, Action.OPERATE)
    return Vehicle.objects.filter(organization__in=operated_depots.values("organization_id"))


def sessions_visible_to(user, sessions: QuerySet[ChargingSession] | None = None) -> QuerySet[ChargingSession]:
    """``sessions`` (default: all) narrowed to what ``user`` may read.

    The depot scope of ``restrict`` (sessions at their depots, visitors' included; away sessions for the
    organisation's managers), plus the depot sessions of the vehicles they may see, wherever those charged:
    a bus's history follows the bus. Read-only: writes still go through ``restrict`` on the depot.
    """
    sessions = ChargingSession.objects.all() if sessions is None else sessions
    their_vehicles = restrict(Vehicle.objects.all(), user, Action.VIEW).values("pk")
    return restrict(sessions, user, Action.VIEW) | sessions.filter(depot__isnull=False, vehicle__in=their_vehicles)


# --- Recording ----------------------------------------------------------------------------------------------


def _existing(*, source: str, external_id: str, depot: Depot | None, vehicle: Vehicle) -> ChargingSession | None:
    sessions = ChargingSession.objects.filter(source=source, external_id=external_id)
    if depot is not None:
        return sessions.filter(depot=depot).first()
    return sessions.filter(depot__isnull=True, vehicle=vehicle).first()


def _differs(session: ChargingSession, payload: dict[str, Any]) -> bool:
    return any(getattr(session, name) != value for name, value in payload.items())


def _check(
    *,
    depot: Depot | None,
    vehicle: Vehicle,
    connector: Connector | None,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    now: dt.datetime,
) -> None:
    errors: dict[str, str] = {}
    if ended_at <= started_at:
        errors["ended_at"] = _("A session ends after it starts.")
    elif ended_at - started_at > dt.timedelta(hours=MAX_SESSION_HOURS):
        errors["ended_at"] = _("A session lasts at most %(hours)d hours.") % {"hours": MAX_SESSION_HOURS}
    if ended_at > now + CLOCK_SKEW:
        errors["ended_at"] = _("A session cannot end in the future: post it when it has ended.")
    if depot is not None and vehicle.organization_id != depot.organization_id:
        errors["vehicle"] = _("The vehicle belongs to another organisation.")
    if connector is not None and (depot is None or connector.charger.depot_id != depot.pk):
        errors["connector"] = _("The connector is not at this depot.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def charging_session_record(
    *,
    source: str,
    external_id: str,
    vehicle: Vehicle,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    energy_kwh: float,
    depot: Depot | None = None,
    connector: Connector | None = None,
    start_soc_pct: float | None = None,
    end_soc_pct: float | None = None,
    max_kw: float | None = None,
    meter_readings: Sequence[tuple[dt.datetime, float]] = (),
    recorded_by=None,
    now: dt.datetime | None = None,
) -> tuple[ChargingSession, bool]:
    """Record a session that has ended, priced at the tariff. Returns (session, created).

    ``meter_readings`` are the charger's meter during the session, (moment, kWh since the start): the night's
    cost prices the energy of each interval from them (``charging.metered_energy``). They are not part of
    what a re-send must repeat.

    The same ``external_id`` from the same source (at the same depot; away: for the same vehicle) is the same
    session: sent again with the same values it returns the stored one; with other values it raises
    ``SessionConflict``.
    """
    payload = {
        "vehicle_id": vehicle.pk,
        "connector_id": connector.pk if connector else None,
        "started_at": started_at,
        "ended_at": ended_at,
        "energy_kwh": energy_kwh,
        "start_soc_pct": start_soc_pct,
        "end_soc_pct": end_soc_pct,
        "max_kw": max_kw,
    }
    existing = _existing(source=source, external_id=external_id, depot=depot, vehicle=vehicle)
    if existing is not None:
        if _differs(existing, payload):
            raise SessionConflict(external_id)
        return existing, False
    _check(
        depot=depot,
        vehicle=vehicle,
        connector=connector,
        started_at=started_at,
        ended_at=ended_at,
        now=now or timezone.now(),
    )
    priced = session_cost(depot=depot, vehicle=vehicle, started_at=started_at, ended_at=ended_at, energy_kwh=energy_kwh)
    try:
        with transaction.atomic():  # a savepoint: a concurrent twin loses on the unique constraint
            session = model_create(
                ChargingSession,
                source=source,
                external_id=external_id,
                depot=depot,
                vehicle=vehicle,
                connector=connector,
                started_at=started_at,
                ended_at=ended_at,
                energy_kwh=energy_kwh,
                start_soc_pct=start_soc_pct,
                end_soc_pct=end_soc_pct,
                max_kw=max_kw,
                meter_readings=meter_readings_json(meter_readings, started_at=started_at, ended_at=ended_at),
                cost=priced.cost,
                currency=priced.currency,
                cost_note=priced.note,
                plan=plan_at(depot, started_at) if depot is not None else None,
                recorded_by=recorded_by,
            )
    except (IntegrityError, ValidationError) as exc:
        twin = _existing(source=source, external_id=external_id, depot=depot, vehicle=vehicle)
        if twin is None:
            raise
        if _differs(twin, payload):
            raise SessionConflict(external_id) from exc
        return twin, False
    return session, True


@transaction.atomic
def charging_session_reprice(*, session: ChargingSession) -> ChargingSession:
    """Price a session again (its depot's tariff was corrected or set after the fact)."""
    priced = session_cost(
        depot=session.depot,
        vehicle=session.vehicle,
        started_at=session.started_at,
        ended_at=session.ended_at,
        energy_kwh=session.energy_kwh,
    )
    session.cost, session.currency, session.cost_note = priced.cost, priced.currency, priced.note
    session.save(update_fields=["cost", "currency", "cost_note"])
    return session


# --- Detection from telemetry -------------------------------------------------------------------------------

CHARGING_CODES = (1, 2)  # fleet.models.ChargingState.AC, .DC
# Parked cars report less often than moving buses: a longer silence than this ends a charge.
MAX_GAP_S = 900.0
STANDSTILL_KMH = 1.0
MIN_SOC_RISE_PCT = 1.0  # without a charging state, SoC must rise at least this much to count as a charge
MIN_ENERGY_KWH = 0.01
LOOK_AROUND = dt.timedelta(hours=12)  # read this much beyond the window to see where runs begin and end


def charging_runs(
    t_s: np.ndarray,
    charging_state: np.ndarray,
    soc_pct: np.ndarray,
    speed_kmh: np.ndarray,
    max_gap_s: float = MAX_GAP_S,
) -> list[tuple[int, int]]:
    """``(start, stop)`` index ranges (stop exclusive) of uninterrupted charges in time-sorted readings.

    With a charging state in the series: runs of readings that report ac/dc. Without one: runs of readings at
    a standstill (speed unknown counts as standing) whose SoC does not fall, trimmed to the stretch where it
    rises (from the last reading before the first rise to the first reading at the top), and kept only if it
    rose at least ``MIN_SOC_RISE_PCT``. A silence longer than ``max_gap_s`` ends a run either way.
    """
    n = len(t_s)
    if n == 0:
        return []
    gap_before = np.zeros(n, dtype=bool)
    gap_before[1:] = np.diff(t_s) > max_gap_s
    if (~np.isnan(charging_state)).any():
        member = np.isin(charging_state, CHARGING_CODES)
        joins_previous = member & ~gap_before
        joins_previous[0] = False
        joins_previous[1:] &= member[:-1]
        return [(a, b) for a, b in _runs(member, joins_previous) if b - a >= 2]

    standing = ~(speed_kmh > STANDSTILL_KMH)  # NaN speed: not known to move
    has_soc = ~np.isnan(soc_pct)
    member = standing & has_soc
    joins_previous = np.zeros(n, dtype=bool)
    joins_previous[1:] = member[1:] & member[:-1] & ~gap_before[1:] & (soc_pct[1:] >= soc_pct[:-1])
    runs = []
    for a, b in _runs(member, joins_previous):
        soc = soc_pct[a:b]
        rises = np.flatnonzero(np.diff(soc) > 0)
        if not len(rises):
            continue
        start = a + int(rises[0])  # the reading before the first rise
        stop = a + int(np.argmax(soc)) + 1  # up to the first reading at the top
        if stop - start >= 2 and soc_pct[stop - 1] - soc_pct[start] >= MIN_SOC_RISE_PCT:
            runs.append((start, stop))
    return runs


def _runs(member: np.ndarray, joins_previous: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for index in range(len(member)):
        if start is not None and not joins_previous[index]:
            runs.append((start, index))
            start = None
        if member[index] and start is None:
            start = index
    if start is not None:
        runs.append((start, len(member)))
    return runs


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(math.sqrt(a))


def _is_away(vehicle: Vehicle, latitude: np.ndarray, longitude: np.ndarray, depots: list[Depot]) -> bool:
    """Whether a run happened away from every depot of the organisation.

    Depot-less cars are away wherever they charge. A vehicle with a home depot is away only when its
    position is known and far from every depot with coordinates: without a position the charge is taken to be
    at its depot, whose staff or gateway record it (detection must not count a depot charge twice).
    """
    if not vehicle.home_depot_id:
        return True
    known = ~(np.isnan(latitude) | np.isnan(longitude))
    if not known.any():
        return False
    lat, lon = float(np.median(latitude[known])), float(np.median(longitude[known]))
    located = [(d.latitude, d.longitude) for d in depots if d.latitude is not None and d.longitude is not None]
    return all(_distance_m(lat, lon, depot_lat, depot_lon) > away_radius_m() for depot_lat, depot_lon in located)


def _pack_capacity_kwh(vehicle: Vehicle) -> float:
    return vehicle_capacity_kwh(vehicle)


def telemetry_external_id(vehicle: Vehicle, started_at: dt.datetime) -> str:
    return f"tm-{vehicle.pk}-{started_at.astimezone(dt.UTC):%Y%m%dT%H%M%S}Z"


_READING_COLUMNS = (
    "recorded_at",
    "charging_state",
    "soc_pct",
    "speed_kmh",
    "energy_charged_kwh",
    "latitude",
    "longitude",
)


@transaction.atomic
def sessions_detect_from_telemetry(
    *, vehicle: Vehicle, since: dt.datetime, until: dt.datetime, now: dt.datetime | None = None
) -> list[ChargingSession]:
    """Record ``vehicle``'s charges away from any depot that *started* in [since, until) (see ``charging_runs``).

    Energy is the pack's charged-energy counter over the run, else the SoC rise x the pack's current capacity,
    divided by ``away_charging_efficiency()`` to give grid energy. A charge still going on (its last reading
    within ``MAX_GAP_S`` of now) is left for a later run. Re-running is safe: a session is identified by the
    vehicle and its start, and a re-detected one is updated. Returns the sessions stored or updated.
    """
    now = now or timezone.now()
    rows = list(
        TelemetryReading.objects.filter(
            vehicle=vehicle, recorded_at__gte=since - LOOK_AROUND, recorded_at__lt=min(until + LOOK_AROUND, now)
        )
        .order_by("recorded_at")
        .values_list(*_READING_COLUMNS)
    )
    if len(rows) < 2:
        return []
    moments = [row[0] for row in rows]
    values = np.array([row[1:] for row in rows], dtype=np.float64)  # None becomes NaN
    state, soc, speed, counter, latitude, longitude = (values[:, i] for i in range(6))
    t_s = np.array([moment.timestamp() for moment in moments])
    depots = list(Depot.objects.filter(organization_id=vehicle.organization_id)) if vehicle.home_depot_id else []
    data_end_s = min(until + LOOK_AROUND, now).timestamp()
    capacity_kwh: float | None = None
    stored = []
    for start, stop in charging_runs(t_s, state, soc, speed):
        started_at, ended_at = moments[start], moments[stop - 1]
        if not (since <= started_at < until):
            continue  # an earlier or later window's session
        if stop == len(rows) and data_end_s - t_s[stop - 1] <= MAX_GAP_S:
            continue  # still charging, as far as the data tells
        if not _is_away(vehicle, latitude[start:stop], longitude[start:stop], depots):
            continue
        pack_kwh = counter_increase(counter[start:stop])
        soc_run = soc[start:stop][~np.isnan(soc[start:stop])]
        if pack_kwh is None:
            if len(soc_run) < 2:
                continue
            capacity_kwh = capacity_kwh if capacity_kwh is not None else _pack_capacity_kwh(vehicle)
            pack_kwh = max(float(soc_run[-1] - soc_run[0]), 0.0) / 100.0 * capacity_kwh
        grid_kwh = pack_kwh / away_charging_efficiency()
        if grid_kwh < MIN_ENERGY_KWH:
            continue  # plugged in and full: nothing flowed
        stored.append(
            _telemetry_session_store(
                vehicle=vehicle,
                started_at=started_at,
                ended_at=ended_at,
                energy_kwh=round(grid_kwh, 3),
                start_soc_pct=float(soc_run[0]) if len(soc_run) else None,
                end_soc_pct=float(soc_run[-1]) if len(soc_run) else None,
                max_kw=_max_grid_kw(t_s[start:stop], counter[start:stop]),
            )
        )
    return stored


def _max_grid_kw(t_s: np.ndarray, counter: np.ndarray) -> float | None:
    present = ~np.isnan(counter)
    if present.sum() < 2:
        return None
    steps_kwh, steps_h = np.diff(counter[present]), np.diff(t_s[present]) / 3600.0
    ok = (steps_kwh >= 0) & (steps_h > 0)
    if not ok.any():
        return None
    return round(float((steps_kwh[ok] / steps_h[ok]).max()) / away_charging_efficiency(), 2)


def _telemetry_session_store(
    *,
    vehicle: Vehicle,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    energy_kwh: float,
    start_soc_pct: float | None,
    end_soc_pct: float | None,
    max_kw: float | None,
) -> ChargingSession:
    fields = {
        "ended_at": ended_at,
        "energy_kwh": energy_kwh,
        "start_soc_pct": start_soc_pct,
        "end_soc_pct": end_soc_pct,
        "max_kw": max_kw,
    }
    external_id = telemetry_external_id(vehicle, started_at)
    session = _existing(source=Source.TELEMETRY, external_id=external_id, depot=None, vehicle=vehicle)
    if session is None:
        session, _created = charging_session_record(
            source=Source.TELEMETRY,
            external_id=external_id,
            vehicle=vehicle,
            started_at=started_at,
            ended_at=ended_at,
            energy_kwh=energy_kwh,
            start_soc_pct=start_soc_pct,
            end_soc_pct=end_soc_pct,
            max_kw=max_kw,
        )
        return session
    if _differs(session, fields):
        for name, value in fields.items():
            setattr(session, name, value)
        session.full_clean()
        session.save(update_fields=list(fields))
        charging_session_reprice(session=session)
    return session


def _yesterday_window(vehicle: Vehicle, now: dt.datetime, day: dt.date | None) -> tuple[dt.datetime, dt.datetime]:
    zone = session_zone(None, vehicle)
    local_day = day or (now.astimezone(zone).date() - dt.timedelta(days=1))
    start = dt.datetime.combine(local_day, dt.time(0), tzinfo=zone)
    return start, dt.datetime.combine(local_day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)


def sessions_detect_for_vehicles(
    *, vehicles, day: dt.date | None = None, now: dt.datetime | None = None
) -> tuple[int, int]:
    """Detection over each vehicle's local ``day`` (default: its local yesterday), one transaction per vehicle.

    Vehicles with a home depot are skipped quickly when they reported no positioned charging that day (their
    charges are the depot's). Returns (vehicles looked at, sessions stored or updated).
    """
    now = now or timezone.now()
    looked_at = found = 0
    for vehicle in vehicles.select_related("home_depot", "organization", "model").iterator():
        since, until = _yesterday_window(vehicle, now, day)
        if (
            vehicle.home_depot_id
            and not TelemetryReading.objects.filter(
                vehicle=vehicle,
                recorded_at__gte=since,
                recorded_at__lt=until,
                charging_state__in=CHARGING_CODES,
                latitude__isnull=False,
            ).exists()
        ):
            continue
        looked_at += 1
        found += len(sessions_detect_from_telemetry(vehicle=vehicle, since=since, until=until, now=now))
    return looked_at, found


def sessions_detect_for_depot_night(*, depot: Depot, night: dt.date) -> str:
    """The nightly job for one depot: its vehicles' charges away from any depot on the day before ``night`` in
    full and on ``night`` itself so far (as the duty cycles do: the job runs on the local date ``night``, after
    midnight; charges still going on are left for the next run, which finds them by the same id)."""
    vehicles = Vehicle.objects.filter(home_depot=depot).exclude(status=Vehicle.Status.RETIRED)
    found = 0
    for day in (night - dt.timedelta(days=1), night):
        found += sessions_detect_for_vehicles(vehicles=vehicles, day=day)[1]
    return f"{found} away charging session(s) on {night - dt.timedelta(days=1)} and {night}"


def sessions_detect_for_depotless_vehicles(*, day: dt.date | None = None, now: dt.datetime | None = None) -> str:
    """For a daily Celery task: every depot-less car's charges on its local ``day`` (default: yesterday)."""
    vehicles = Vehicle.objects.filter(home_depot__isnull=True).exclude(status=Vehicle.Status.RETIRED)
    looked_at, found = sessions_detect_for_vehicles(vehicles=vehicles, day=day, now=now)
    return f"{found} charging session(s) from the telemetry of {looked_at} depot-less vehicle(s)"

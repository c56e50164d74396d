"""Reads of telemetry for other parts of the app (the admin's vehicle list, plans, reports)."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

import numpy as np
import psycopg
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from fleet.local_time import local_datetime_label
from fleet.models import DailyDutyCycle, TelemetryReading, Vehicle, VehicleLiveState
from fleet.models.telemetry import CHARGING_STATE_NAMES
from fleet.telemetry.validation import MAX_FUTURE


def with_live_state(vehicles: QuerySet[Vehicle]) -> QuerySet[Vehicle]:
    """``vehicles`` with their live state joined in (one query for a whole admin page)."""
    return vehicles.select_related("live_state")


def vehicle_live_state(vehicle: Vehicle) -> VehicleLiveState | None:
    try:
        return vehicle.live_state
    except VehicleLiveState.DoesNotExist:
        return None


def live_state_summary(vehicle: Vehicle) -> str:
    """One line for a list column, e.g. ``72 % · 15,234 km · 11/21/2026 08:02 MST (dc)``; "—" if never seen.
    "Last seen" is in the home depot's zone (the default depot zone for a vehicle with none), labelled."""
    state = vehicle_live_state(vehicle)
    if state is None:
        return "—"
    parts = []
    if state.soc_pct is not None:
        parts.append(f"{state.soc_pct:.0f} %")
    if state.odometer_km is not None:
        parts.append(f"{state.odometer_km:,.0f} km")
    seen = local_datetime_label(state.recorded_at, vehicle.home_depot if vehicle.home_depot_id else None)
    charging = None if state.charging_state is None else CHARGING_STATE_NAMES.get(state.charging_state)
    parts.append(f"{seen} ({charging})" if charging and charging != "none" else seen)
    return " · ".join(parts)


CAPACITY_SAMPLE_FIELDS = ("recorded_at", "soc_pct", "pack_current_a", "charging_state", "speed_kmh")


def capacity_samples(vehicle: Vehicle, since, until) -> list[tuple]:
    """The readings a capacity estimate reads (``fleet.telemetry.capacity``), oldest first, in [since, until):
    tuples of ``CAPACITY_SAMPLE_FIELDS``."""
    return list(
        TelemetryReading.objects.filter(vehicle=vehicle, recorded_at__gte=since, recorded_at__lt=until)
        .order_by("recorded_at")
        .values_list(*CAPACITY_SAMPLE_FIELDS)
    )


# --- Readings as numpy arrays (duty cycles, charts, benchmarks) ---------------------------------------------

# The readings' measurements, all double precision in the table; charging_state is a code, read elsewhere.
READING_MEASUREMENTS = (
    "soc_pct",
    "odometer_km",
    "latitude",
    "longitude",
    "speed_kmh",
    "pack_voltage_v",
    "pack_current_a",
    "pack_temp_c",
    "pack_temp_min_c",
    "pack_temp_max_c",
    "energy_discharged_kwh",
    "energy_charged_kwh",
)
_FETCH_ROWS = 20_000


def _check_measurements(measurements) -> None:
    unknown = set(measurements) - set(READING_MEASUREMENTS)
    if unknown:
        raise ValueError(f"Not a reading measurement: {sorted(unknown)}")


@dataclass(frozen=True)
class ReadingArrays:
    """Readings ordered by (vehicle, time): ``vehicle_id`` (int64), ``t_s`` (seconds since 1970, float64, equal
    to ``recorded_at.timestamp()``) and one float64 array per measurement asked for, NaN = not reported."""

    vehicle_id: np.ndarray
    t_s: np.ndarray
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.t_s)

    def by_vehicle(self) -> dict[int, dict[str, np.ndarray]]:
        """Each vehicle's arrays (``t_s`` and the measurements), as slices of these ones."""
        if not len(self):
            return {}
        starts = np.concatenate(([0], np.flatnonzero(np.diff(self.vehicle_id)) + 1))
        ends = np.concatenate((starts[1:], [len(self)]))
        return {
            int(self.vehicle_id[first]): {
                "t_s": self.t_s[first:end],
                **{name: column[first:end] for name, column in self.values.items()},
            }
            for first, end in zip(starts, ends, strict=True)
        }


def reading_arrays_query(
    vehicle_ids: list[int], *, start: dt.datetime, end: dt.datetime | None = None, measurements=READING_MEASUREMENTS
) -> tuple[str, list]:
    """``reading_arrays``' statement and its parameters (bound on the server, so sent apart from it).

    Both time bounds are always there: ``end`` None becomes now + ``MAX_FUTURE`` (ingest refuses readings
    later than that, so none is missed). With values for both, PostgreSQL keeps only the day partitions that
    overlap ``[start, end)`` when it plans (a bus's last 24 h: today's and yesterday's), instead of also
    planning and probing the two weeks of partitions created ahead and the DEFAULT one."""
    _check_measurements(measurements)
    if end is None:
        end = timezone.now() + MAX_FUTURE
    columns = ", ".join(f"coalesce({name}, 'NaN'::float8)" for name in measurements)
    # Only the fixed names above go into the statement; the values stay parameters.
    statement = (
        "SELECT vehicle_id::int8, (extract(epoch FROM recorded_at) * 1000000)::int8, "  # nosec B608
        f"{columns} FROM fleet_telemetryreading "
        "WHERE vehicle_id = ANY(%s) AND recorded_at >= %s AND recorded_at < %s ORDER BY vehicle_id, recorded_at"
    )
    return statement, [list(vehicle_ids), start, end]


def reading_arrays(
    vehicle_ids: list[int], *, start: dt.datetime, end: dt.datetime | None = None, measurements=READING_MEASUREMENTS
) -> ReadingArrays:
    """The readings of ``vehicle_ids`` in ``[start, end)`` (``end`` None: up to now), ordered by
    vehicle and time, fetched in binary straight into numpy arrays.

    Why not the ORM: Django's timestamptz loader parses each timestamp's text in Python, which costs a bus's
    day (2,880 readings) ~25 ms of CPU where PostgreSQL spends ~20 ms finding the rows; in binary, psycopg's C
    loaders read plain integers and floats (~4 ms). NULL is sent as NaN by PostgreSQL itself and the time as
    integer microseconds, so every row is numbers only; fetched in blocks to bound the memory of the tuples.
    (A binary COPY was tried: psycopg hands it over a row at a time in Python, twice this CPU.)
    """
    if connection.vendor != "postgresql":
        return _reading_arrays_portable(vehicle_ids, start=start, end=end, measurements=measurements)
    statement, params = reading_arrays_query(vehicle_ids, start=start, end=end, measurements=measurements)
    if connection.queries_logged:
        connection.queries_log.append({"sql": statement % tuple(map(repr, params)), "time": "0"})
    connection.ensure_connection()
    blocks = []
    # A plain psycopg cursor on Django's connection (inside its transaction): Django's own cursors bind
    # parameters on the client side, which rules out binary results.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(statement, params, binary=True)
        while rows := cursor.fetchmany(_FETCH_ROWS):
            blocks.append(np.array(rows, dtype=np.float64))
    # float64 holds the ids and the microseconds (below 2**53) exactly; the one division then rounds as
    # ``datetime.timestamp()`` does, so ``t_s`` is equal to it, not merely close.
    table = np.concatenate(blocks) if blocks else np.zeros((0, 2 + len(measurements)))
    return ReadingArrays(
        vehicle_id=table[:, 0].astype(np.int64),
        t_s=table[:, 1] / 1e6,
        values={name: np.ascontiguousarray(table[:, 2 + position]) for position, name in enumerate(measurements)},
    )


def _reading_arrays_portable(
    vehicle_ids: list[int], *, start: dt.datetime, end: dt.datetime | None, measurements
) -> ReadingArrays:
    """``reading_arrays`` through the ORM, for the embedded SQLite database (``make demo`` with no server):
    the same rows, order and values, at the ORM's CPU cost. The binary fetch above is PostgreSQL's own."""
    _check_measurements(measurements)
    rows = (
        TelemetryReading.objects.filter(
            vehicle_id__in=vehicle_ids, recorded_at__gte=start, recorded_at__lt=end or timezone.now() + MAX_FUTURE
        )
        .order_by("vehicle_id", "recorded_at")
        .values_list("vehicle_id", "recorded_at", *measurements)
    )
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    table = np.array(
        [
            # Integer microseconds then one division: the same float as PostgreSQL's path and ``timestamp()``.
            (vehicle, (recorded_at - epoch) // dt.timedelta(microseconds=1), *values)
            for vehicle, recorded_at, *values in rows
        ],
        dtype=np.float64,  # None (not reported) becomes NaN
    ).reshape(-1, 2 + len(measurements))
    return ReadingArrays(
        vehicle_id=table[:, 0].astype(np.int64),
        t_s=table[:, 1] / 1e6,
        values={name: np.ascontiguousarray(table[:, 2 + position]) for position, name in enumerate(measurements)},
    )


def vehicle_readings(
    vehicle: Vehicle, *, since: dt.datetime, until: dt.datetime | None = None, measurements=READING_MEASUREMENTS
) -> dict[str, np.ndarray]:
    """One vehicle's readings in ``[since, until)``, oldest first, as arrays: ``t_s`` (seconds since 1970) and
    the measurements asked for (NaN = not reported); empty arrays when there are none. What the admin's charts
    read: ~5 ms of client CPU for a day at 30 s where the ORM takes ~25 (docs/telemetry.md)."""
    readings = reading_arrays([vehicle.pk], start=since, end=until, measurements=measurements)
    return {"t_s": readings.t_s, **readings.values}


# --- What planning reads of telemetry -------------------------------------------------------------------

# A vehicle's own median needs this many days of duty; fewer, and its model's fleet median stands in.
MIN_DUTY_DAYS_FOR_MEDIAN = 3
# The median of the same season's days replaces the plain one once this many such days exist (air
# conditioning in a Sonora summer, heating in a Duisburg winter: the season moves kWh/km by 20-40 %).
MIN_SEASON_DAYS_FOR_MEDIAN = 10
MIN_DUTY_DISTANCE_KM = 5.0  # a day of shunting in the yard says nothing about consumption on the road
CONSUMPTION_WINDOW_DAYS = 30
SEASON_LOOKBACK_DAYS = 365
_MAX_DUTY_DAYS_READ = 20_000  # a model's days over a year; bounds the read for very large fleets


@dataclass(frozen=True)
class LiveSoc:
    """A vehicle's last reported SoC and when it was measured."""

    soc_pct: float
    recorded_at: dt.datetime


@dataclass(frozen=True)
class MeasuredConsumption:
    """Energy per km measured in duty cycles, and where the figure comes from.

    ``scope``: ``"vehicle"`` (its own days) or ``"model"`` (the days of every vehicle of its model);
    ``season``: the meteorological season whose days the median was taken over, or None (all of the last
    ``CONSUMPTION_WINDOW_DAYS`` days); ``days``: how many duty days the median is over."""

    kwh_per_km: float
    scope: str
    days: int
    window_days: int
    season: str | None = None


def live_socs(vehicle_ids: list[int]) -> dict[int, LiveSoc]:
    """Each vehicle's last reported SoC with its time (one query), for vehicles that reported one."""
    rows = VehicleLiveState.objects.filter(vehicle_id__in=vehicle_ids, soc_pct__isnull=False).values_list(
        "vehicle_id", "soc_pct", "recorded_at"
    )
    return {vehicle_id: LiveSoc(soc, recorded_at) for vehicle_id, soc, recorded_at in rows if soc is not None}


def live_soc_pct(vehicle: Vehicle, *, since: dt.datetime) -> float | None:
    """The vehicle's last reported SoC (%), if it was reported at or after ``since`` (e.g. after its last block
    ended: the vehicle is back and says how full it is); None when it has not reported since."""
    state = VehicleLiveState.objects.filter(vehicle=vehicle, recorded_at__gte=since).only("soc_pct").first()
    return state.soc_pct if state is not None else None


def season_of(day: dt.date, *, southern_hemisphere: bool = False) -> str:
    """The meteorological season of a day: ``winter`` (Dec-Feb), ``spring``, ``summer`` (Jun-Aug) or
    ``autumn`` in the northern hemisphere; shifted by six months in the southern one."""
    month = day.month if not southern_hemisphere else (day.month + 5) % 12 + 1
    return ("winter", "spring", "summer", "autumn")[month % 12 // 3]


def measured_consumption(vehicle: Vehicle, *, until: dt.date | None = None) -> MeasuredConsumption | None:
    """Measured energy per km for planning a day up to ``until``, from the vehicle's own duty days, else its
    model's, else None (then the model's nominal figure applies). At each level, in order:

    1. the median of the last ``CONSUMPTION_WINDOW_DAYS`` days that fall in ``until``'s season, when there are
       at least ``MIN_SEASON_DAYS_FOR_MEDIAN`` of them;
    2. the median of the same season's days over the last year (e.g. last summer's for the first days of
       this summer), when there are at least ``MIN_SEASON_DAYS_FOR_MEDIAN``;
    3. the median of all the last ``CONSUMPTION_WINDOW_DAYS`` days, when there are at least
       ``MIN_DUTY_DAYS_FOR_MEDIAN``.
    Days with less than ``MIN_DUTY_DISTANCE_KM`` driven do not count. Two queries at most.
    """
    until = until or timezone.localdate()
    depot = vehicle.home_depot if vehicle.home_depot_id else None
    southern = bool(depot is not None and depot.latitude is not None and depot.latitude < 0)
    season = season_of(until, southern_hemisphere=southern)
    year = DailyDutyCycle.objects.filter(
        date__gt=until - dt.timedelta(days=SEASON_LOOKBACK_DAYS),
        date__lte=until,
        distance_km__gte=MIN_DUTY_DISTANCE_KM,
        kwh_per_km__isnull=False,
    )
    recent_from = until - dt.timedelta(days=CONSUMPTION_WINDOW_DAYS)
    for scope, days in (
        ("vehicle", year.filter(vehicle=vehicle)),
        ("model", year.filter(vehicle__model_id=vehicle.model_id)),
    ):
        rows = [
            (day, value)
            for day, value in days.values_list("date", "kwh_per_km")[:_MAX_DUTY_DAYS_READ]
            if value is not None
        ]
        recent = [value for day, value in rows if day > recent_from]
        recent_in_season = [
            value for day, value in rows if day > recent_from and season_of(day, southern_hemisphere=southern) == season
        ]
        year_in_season = [value for day, value in rows if season_of(day, southern_hemisphere=southern) == season]
        if len(recent_in_season) >= MIN_SEASON_DAYS_FOR_MEDIAN:
            return MeasuredConsumption(
                float(statistics.median(recent_in_season)),
                scope,
                len(recent_in_season),
                CONSUMPTION_WINDOW_DAYS,
                season,
            )
        if len(year_in_season) >= MIN_SEASON_DAYS_FOR_MEDIAN:
            return MeasuredConsumption(
                float(statistics.median(year_in_season)), scope, len(year_in_season), SEASON_LOOKBACK_DAYS, season
            )
        if len(recent) >= MIN_DUTY_DAYS_FOR_MEDIAN:
            return MeasuredConsumption(float(statistics.median(recent)), scope, len(recent), CONSUMPTION_WINDOW_DAYS)
    return None


def measured_consumption_kwh_per_km(vehicle: Vehicle, *, until: dt.date | None = None) -> float | None:
    """``measured_consumption``'s figure alone (kWh/km), or None."""
    measured = measured_consumption(vehicle, until=until)
    return measured.kwh_per_km if measured is not None else None

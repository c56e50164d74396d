"""The telemetry ingest service: validate a batch, store it exactly once, move each vehicle's live state.

Every reading ends with one status:

* ``created``   - stored now;
* ``duplicate`` - the same (vehicle, recorded_at) is already stored with the same values (a re-send);
* ``conflict``  - the same key is stored with *different* values: never overwritten, the client must look;
* ``rejected``  - invalid, with the reasons per field.

Re-sending a batch is always safe: the primary key (vehicle, recorded_at) decides. The caller's response
goes out only after this function returns, i.e. after the commit.

On PostgreSQL the rows go through a binary ``COPY`` into a temporary staging table built as one numpy
buffer, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` whose statement also reports, for the
rows it did not insert, whether the stored row has the same values. Other databases (the embedded SQLite)
take a simpler ORM path with the same results.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import psycopg
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from fleet.models import TelemetryReading, Vehicle, VehicleLiveState
from fleet.telemetry.arrivals import announce_after_commit, depot_entries
from fleet.telemetry.validation import (
    FLOAT_FIELD_NAMES,
    NULL_CHARGING_STATE,
    ONE_MICROSECOND,
    UNIX_EPOCH,
    ValidatedColumns,
    find_repeats,
    same_values,
    validate_readings,
)

CREATED, DUPLICATE, CONFLICT, REJECTED = "created", "duplicate", "conflict", "rejected"
STATUSES = (CREATED, DUPLICATE, CONFLICT, REJECTED)


def max_batch_readings() -> int:
    return int(settings.EVFLEET_TELEMETRY_MAX_BATCH)


def max_batch_bytes() -> int:
    return int(settings.EVFLEET_TELEMETRY_MAX_BYTES)


class BatchTooLarge(Exception):
    """More readings than ``EVFLEET_TELEMETRY_MAX_BATCH`` in one batch (the API answers 413)."""


@dataclass
class IngestResult:
    statuses: list[str]
    errors: dict[int, dict[str, str]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for status in self.statuses:
            counts[status] += 1
        return counts

    def as_dict(self) -> dict:
        return {
            "counts": self.counts,
            "statuses": self.statuses,
            "errors": [{"index": index, "errors": self.errors[index]} for index in sorted(self.errors)],
        }


def telemetry_ingest(
    *,
    readings: list,
    vehicle: Vehicle | None = None,
    allowed_vehicles: QuerySet[Vehicle] | None = None,
    now: dt.datetime | None = None,
) -> IngestResult:
    """Store a batch of readings. Give exactly one of:

    * ``vehicle`` - the batch is that vehicle's own (a vehicle key). Items may not name another vehicle:
      one that does makes the whole batch ``PermissionDenied``.
    * ``allowed_vehicles`` - each item names its vehicle (``vehicle`` id or ``fleet_number``), which must be
      in this queryset (already restricted to the caller's depots); others are rejected as unknown.
    """
    if (vehicle is None) == (allowed_vehicles is None):
        raise TypeError("Give either vehicle or allowed_vehicles.")
    if not isinstance(readings, list) or not readings:
        raise ValidationError({"readings": "Send a non-empty list of readings."})
    if len(readings) > max_batch_readings():
        raise BatchTooLarge(f"At most {max_batch_readings()} readings per batch.")
    now = now or timezone.now()
    columns = validate_readings(readings, now=now)
    if vehicle is not None:
        vehicle_ids = _own_vehicle_ids(columns, vehicle)
    else:
        if allowed_vehicles is None:
            raise TypeError("telemetry_ingest needs the uploading vehicle or the vehicles the uploader may write")
        vehicle_ids = _resolve_vehicle_ids(columns, allowed_vehicles)

    statuses = [REJECTED] * columns.size
    pending = columns.accepted_mask.copy()
    optimistic = True
    # A reading repeated within the batch is judged against what is stored for its key once the batch is in:
    # the first copy's values if the first copy was stored (created) or matched (duplicate). If the first copy
    # conflicted, the stored row is none of the batch's so far: a later copy that differs from the first may be
    # an exact re-send of the stored row, so it goes to the database in the next round (each round the repeats
    # of a key with different values get fewer, so this ends).
    while pending.any():
        repeats = find_repeats(vehicle_ids, columns.recorded_at_us, pending)
        to_store = pending.copy()
        if repeats:
            to_store[list(repeats)] = False
        store_indexes = np.flatnonzero(to_store)
        try:
            _store_and_move_live_states(columns, vehicle_ids, store_indexes, statuses, now=now, optimistic=optimistic)
        except _RaceLost:
            _store_and_move_live_states(columns, vehicle_ids, store_indexes, statuses, now=now, optimistic=False)
        pending = np.zeros(columns.size, dtype=bool)
        for later, first in repeats.items():
            if same_values(columns, later, first):
                statuses[later] = CONFLICT if statuses[first] == CONFLICT else DUPLICATE
            elif statuses[first] == CONFLICT:
                pending[later] = True
            else:
                statuses[later] = CONFLICT
        optimistic = False
    return IngestResult(statuses=statuses, errors=columns.errors)


class _RaceLost(Exception):
    """The optimistic COPY hit a reading a concurrent upload had just stored: redo the batch carefully."""


def _store_and_move_live_states(
    columns: ValidatedColumns,
    vehicle_ids: np.ndarray,
    store_indexes: np.ndarray,
    statuses: list[str],
    *,
    now: dt.datetime,
    optimistic: bool,
) -> None:
    # Owning the transaction (the API's case), a lost race aborts it and the batch is redone in a new one;
    # inside a caller's transaction (imports, tests) the optimistic COPY gets a savepoint instead.
    owns_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql":
            not_created = _store_postgresql(
                columns, vehicle_ids, store_indexes, optimistic=optimistic, savepoint=not owns_transaction
            )
        else:
            not_created = _store_with_orm(columns, vehicle_ids, store_indexes)
        for index in store_indexes.tolist():
            statuses[index] = not_created.get(index, CREATED)
        created = store_indexes[[statuses[i] == CREATED for i in store_indexes.tolist()]]
        # Before the live state moves: an entry compares with the position the vehicle had before the batch.
        announce_after_commit(depot_entries(columns, vehicle_ids, created))
        _move_live_states(columns, vehicle_ids, statuses, store_indexes, received_at=now)


def _own_vehicle_ids(columns: ValidatedColumns, vehicle: Vehicle) -> np.ndarray:
    for ref in columns.vehicle_refs:
        if ref is None:
            continue
        kind, value = ref
        if (kind == "id" and value != vehicle.pk) or (kind == "fleet_number" and value != vehicle.fleet_number):
            raise PermissionDenied("A vehicle key uploads only its own vehicle's telemetry.")
    return np.full(columns.size, vehicle.pk, dtype=np.int64)


def _resolve_vehicle_ids(columns: ValidatedColumns, allowed_vehicles: QuerySet[Vehicle]) -> np.ndarray:
    ids = {value for ref in columns.vehicle_refs if ref and ref[0] == "id" for value in [ref[1]]}
    fleet_numbers = {value for ref in columns.vehicle_refs if ref and ref[0] == "fleet_number" for value in [ref[1]]}
    known_ids: set[int] = set()
    by_fleet_number: dict[str, list[int]] = defaultdict(list)
    if ids or fleet_numbers:
        for pk, fleet_number in allowed_vehicles.filter(Q(pk__in=ids) | Q(fleet_number__in=fleet_numbers)).values_list(
            "pk", "fleet_number"
        ):
            known_ids.add(pk)
            by_fleet_number[fleet_number].append(pk)
    vehicle_ids = np.zeros(columns.size, dtype=np.int64)
    for index, ref in enumerate(columns.vehicle_refs):
        if ref is None:
            if index not in columns.errors:
                columns.reject(index, "vehicle", "Name the vehicle: a vehicle id or a fleet_number.")
            continue
        kind, value = ref
        found = by_fleet_number.get(value, []) if kind == "fleet_number" else [value] * (value in known_ids)
        if len(found) == 1:
            vehicle_ids[index] = found[0]
        elif not found:
            # Same answer for "does not exist" and "not in your depots": existence is not disclosed.
            columns.reject(index, kind if kind == "fleet_number" else "vehicle", "Unknown vehicle.")
        else:
            columns.reject(index, "fleet_number", "Several of your vehicles have this fleet number: use the id.")
    return vehicle_ids


# --- PostgreSQL: binary COPY -------------------------------------------------------------------------------
#
# Fresh data (the normal case: a bus uploads what it has not uploaded before) goes by one binary COPY
# straight into the table, inside a savepoint. A cheap range probe first checks that none of the batch's
# vehicles has a stored reading inside the batch's time span; if one has (a re-send, a back-fill), or if a
# concurrent upload of the same readings wins the race and the COPY hits the primary key, the batch goes
# the careful way: COPY into a temporary staging table, then one INSERT ... ON CONFLICT DO NOTHING whose
# statement also reports, for the rows it did not insert, whether the stored row has the same values.

STAGING_TABLE = "evfleet_telemetry_staging"
# The SQL below is built with f-strings from table and column names that are module constants (bandit's
# B608 is silenced on each statement with "nosec B608"); every value travels as a bound parameter.
_PG_EPOCH_OFFSET_US = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC) - UNIX_EPOCH) // ONE_MICROSECOND
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
_READINGS = TelemetryReading._meta.db_table
_READING_COLUMNS = ("vehicle_id", "recorded_at", *FLOAT_FIELD_NAMES, "charging_state")


def _copy_row_dtype(with_index: bool) -> np.dtype:
    # One binary COPY row: a field count, then per field its length and its big-endian value.
    fields = [("field_count", ">i2")]
    if with_index:
        fields += [("idx_len", ">i4"), ("idx", ">i4")]
    fields += [("vehicle_len", ">i4"), ("vehicle", ">i8"), ("ts_len", ">i4"), ("ts", ">i8")]
    fields += [item for name in FLOAT_FIELD_NAMES for item in ((f"{name}_len", ">i4"), (name, ">f8"))]
    fields += [("cs_len", ">i4"), ("cs", ">i2")]
    return np.dtype(fields)


_STAGING_ROW = _copy_row_dtype(with_index=True)
_READING_ROW = _copy_row_dtype(with_index=False)
_COPY_READINGS = f"COPY {_READINGS} ({', '.join(_READING_COLUMNS)}) FROM STDIN WITH (FORMAT BINARY)"
_CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} (idx int4, vehicle_id int8, recorded_at timestamptz, "
    + ", ".join(f"{name} float8" for name in FLOAT_FIELD_NAMES)
    + ", charging_state int2) ON COMMIT DELETE ROWS"
)
_COPY_STAGING = f"COPY {STAGING_TABLE} FROM STDIN WITH (FORMAT BINARY)"
# LATERAL ... LIMIT 1 makes it one primary-key range probe per vehicle (a plain EXISTS join tempts the
# planner into a sequential scan of the whole table). The batch's own first and last moments, as constants,
# let PostgreSQL keep only the day partitions they span when it plans: the spans alone come from the arrays,
# known only while running, so it would plan (and lock) every partition, the weeks ahead included.
_ANY_STORED_IN_SPAN = f"""
SELECT EXISTS (
    SELECT 1 FROM unnest(%s::int8[], %s::timestamptz[], %s::timestamptz[]) AS span(vehicle_id, first_at, last_at)
    CROSS JOIN LATERAL (
        SELECT 1 FROM {_READINGS} r
        WHERE r.vehicle_id = span.vehicle_id AND r.recorded_at BETWEEN span.first_at AND span.last_at
            AND r.recorded_at BETWEEN %s AND %s LIMIT 1
    ) AS hit
)
"""  # nosec B608
_SAME_VALUES = " AND ".join(
    f"r.{name} IS NOT DISTINCT FROM m.{name}" for name in (*FLOAT_FIELD_NAMES, "charging_state")
)
# The main SELECT runs on the statement's snapshot, which does not contain the rows the INSERT adds: the
# rows it finds were there before (duplicates or conflicts). Sorting the insert takes the key locks in
# one order, so two overlapping batches (a retry racing its original) wait instead of deadlocking.
_INSERT_AND_CLASSIFY = f"""
WITH ins AS (
    INSERT INTO {_READINGS} ({", ".join(_READING_COLUMNS)})
    SELECT {", ".join(_READING_COLUMNS)} FROM {STAGING_TABLE} ORDER BY vehicle_id, recorded_at
    ON CONFLICT (vehicle_id, recorded_at) DO NOTHING
    RETURNING vehicle_id, recorded_at
),
missing AS (
    SELECT s.* FROM {STAGING_TABLE} s
    WHERE NOT EXISTS (SELECT 1 FROM ins i WHERE i.vehicle_id = s.vehicle_id AND i.recorded_at = s.recorded_at)
)
SELECT m.idx, r.vehicle_id IS NOT NULL, {_SAME_VALUES}
FROM missing m LEFT JOIN {_READINGS} r ON r.vehicle_id = m.vehicle_id AND r.recorded_at = m.recorded_at
"""  # nosec B608
# A row inserted by a concurrent transaction that committed after our snapshot is in neither set above;
# a new statement (new snapshot under READ COMMITTED) sees it.
_RECLASSIFY = f"""
SELECT m.idx, {_SAME_VALUES}
FROM {STAGING_TABLE} m JOIN {_READINGS} r ON r.vehicle_id = m.vehicle_id AND r.recorded_at = m.recorded_at
WHERE m.idx = ANY(%s)
"""  # nosec B608


def copy_payload(
    columns: ValidatedColumns, vehicle_ids: np.ndarray, indexes: np.ndarray, *, with_index: bool = False
) -> bytes:
    """The binary COPY data for ``indexes`` (in that order), built as one numpy array.

    Missing values become SQL NULLs: their 8 value bytes are cut out of the row and the length set to -1.
    With ``with_index`` each row starts with its item index (for the staging table). Exposed for the
    benchmark's raw-COPY baseline.
    """
    dtype = _STAGING_ROW if with_index else _READING_ROW
    count = len(indexes)
    rows = np.empty(count, dtype=dtype)
    names, fields = dtype.names, dtype.fields
    assert names is not None and fields is not None  # a structured dtype (_copy_row_dtype)
    rows["field_count"] = len(names) // 2
    if with_index:
        rows["idx_len"], rows["idx"] = 4, indexes
    rows["vehicle_len"], rows["ts_len"], rows["cs_len"] = 8, 8, 2
    rows["vehicle"] = vehicle_ids[indexes]
    rows["ts"] = columns.recorded_at_us[indexes] - _PG_EPOCH_OFFSET_US
    values = columns.values[indexes]
    missing = np.isnan(values)
    for position, name in enumerate(FLOAT_FIELD_NAMES):
        rows[f"{name}_len"] = 8
        rows[name] = values[:, position]
    states = columns.charging_state[indexes]
    rows["cs"] = states
    missing_state = states == NULL_CHARGING_STATE
    if not (missing.any() or missing_state.any()):
        return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER
    raw = rows.view(np.uint8).reshape(count, dtype.itemsize)
    keep = np.ones(raw.shape, dtype=bool)
    null_fields = [(name, missing[:, position]) for position, name in enumerate(FLOAT_FIELD_NAMES)]
    for name, is_null in (*null_fields, ("cs", missing_state)):
        if is_null.any():
            length_field = f"{name}_len"
            rows[length_field][is_null] = -1
            offset = fields[name][1]
            keep[is_null, offset : offset + fields[name][0].itemsize] = False
    return _COPY_HEADER + raw[keep].tobytes() + _COPY_TRAILER


def _store_postgresql(
    columns: ValidatedColumns, vehicle_ids: np.ndarray, indexes: np.ndarray, *, optimistic: bool, savepoint: bool
) -> dict[int, str]:
    ordered = indexes[np.lexsort((columns.recorded_at_us[indexes], vehicle_ids[indexes]))]
    with connection.cursor() as cursor:
        if optimistic and not _any_stored_in_span(cursor, columns, vehicle_ids, ordered):
            try:
                with transaction.atomic(savepoint=savepoint), cursor.cursor.copy(_COPY_READINGS) as copy:
                    copy.write(copy_payload(columns, vehicle_ids, ordered))
                return {}
            except (IntegrityError, psycopg.errors.UniqueViolation) as exc:
                # A concurrent upload of the same readings got there first: classify row by row.
                if not savepoint:
                    raise _RaceLost() from exc
        return _insert_via_staging(cursor, columns, vehicle_ids, ordered)


def _any_stored_in_span(cursor, columns: ValidatedColumns, vehicle_ids: np.ndarray, ordered: np.ndarray) -> bool:
    vehicles = vehicle_ids[ordered]
    micros = columns.recorded_at_us[ordered]
    starts = np.flatnonzero(np.concatenate(([True], vehicles[1:] != vehicles[:-1])))
    ends = np.append(starts[1:], len(ordered)) - 1
    cursor.execute(_ANY_STORED_IN_SPAN, any_stored_in_span_params(vehicles, micros, starts, ends))
    return cursor.fetchone()[0]


def any_stored_in_span_params(vehicles: np.ndarray, micros: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list:
    """``_ANY_STORED_IN_SPAN``'s parameters: each vehicle's span, then the whole batch's (readings ordered by
    vehicle and time: ``starts``/``ends`` index each vehicle's first and last)."""
    return [
        vehicles[starts].tolist(),
        [_datetime_from_us(int(us)) for us in micros[starts]],
        [_datetime_from_us(int(us)) for us in micros[ends]],
        _datetime_from_us(int(micros.min())),
        _datetime_from_us(int(micros.max())),
    ]


def _insert_via_staging(cursor, columns: ValidatedColumns, vehicle_ids: np.ndarray, ordered: np.ndarray):
    cursor.execute(_CREATE_STAGING)
    with cursor.cursor.copy(_COPY_STAGING) as copy:
        copy.write(copy_payload(columns, vehicle_ids, ordered, with_index=True))
    cursor.execute(_INSERT_AND_CLASSIFY)
    not_created: dict[int, str] = {}
    unseen = []
    for index, existed, same in cursor.fetchall():
        if existed:
            not_created[index] = DUPLICATE if same else CONFLICT
        else:
            unseen.append(index)
    if unseen:
        cursor.execute(_RECLASSIFY, [unseen])
        for index, same in cursor.fetchall():
            not_created[index] = DUPLICATE if same else CONFLICT
    # The staging table is emptied at commit (ON COMMIT DELETE ROWS); empty it now too, in case the
    # caller's transaction goes on to ingest another batch before committing (imports, tests).
    cursor.execute(f"DELETE FROM {STAGING_TABLE}")  # nosec B608
    return not_created


# --- Any other database (SQLite, embedded mode): ORM, same statuses ---------------------------------------

_ORM_CHUNK = 500


def _store_with_orm(columns: ValidatedColumns, vehicle_ids: np.ndarray, indexes: np.ndarray) -> dict[int, str]:
    wanted: dict[tuple[int, int], int] = {
        (int(vehicle_ids[i]), int(columns.recorded_at_us[i])): int(i) for i in indexes.tolist()
    }
    by_vehicle: dict[int, list[dt.datetime]] = defaultdict(list)
    for vehicle_id, micros in wanted:
        by_vehicle[vehicle_id].append(_datetime_from_us(micros))
    not_created: dict[int, str] = {}
    fields = ("vehicle_id", "recorded_at", *FLOAT_FIELD_NAMES, "charging_state")
    for vehicle_id, moments in by_vehicle.items():
        for start in range(0, len(moments), _ORM_CHUNK):
            stored = TelemetryReading.objects.filter(
                vehicle_id=vehicle_id, recorded_at__in=moments[start : start + _ORM_CHUNK]
            ).values_list(*fields)
            for row in stored:
                index = wanted[(row[0], (row[1] - UNIX_EPOCH) // ONE_MICROSECOND)]
                not_created[index] = DUPLICATE if _row_equals(columns, index, row[2:]) else CONFLICT
    new = [index for index in wanted.values() if index not in not_created]
    TelemetryReading.objects.bulk_create(
        [_reading(columns, vehicle_ids, index) for index in new], batch_size=_ORM_CHUNK, ignore_conflicts=True
    )
    return not_created


def _row_equals(columns: ValidatedColumns, index: int, stored: tuple) -> bool:
    sent = [None if np.isnan(v) else float(v) for v in columns.values[index]]
    state = int(columns.charging_state[index])
    return sent == list(stored[:-1]) and (None if state == NULL_CHARGING_STATE else state) == stored[-1]


def _reading(columns: ValidatedColumns, vehicle_ids: np.ndarray, index: int) -> TelemetryReading:
    values = {
        name: None if np.isnan(value) else float(value)
        for name, value in zip(FLOAT_FIELD_NAMES, columns.values[index], strict=True)
    }
    state = int(columns.charging_state[index])
    return TelemetryReading(
        vehicle_id=int(vehicle_ids[index]),
        recorded_at=_datetime_from_us(int(columns.recorded_at_us[index])),
        charging_state=None if state == NULL_CHARGING_STATE else state,
        **values,
    )


def _datetime_from_us(micros: int) -> dt.datetime:
    return UNIX_EPOCH + dt.timedelta(microseconds=micros)


# --- Live state: one UPSERT per batch, only forward in time -----------------------------------------------

_LIVE_FIELDS = ("soc_pct", "odometer_km", "latitude", "longitude", "speed_kmh")
_LIVE_TABLE = VehicleLiveState._meta.db_table
_LIVE_CHUNK = 500


def _move_live_states(
    columns: ValidatedColumns,
    vehicle_ids: np.ndarray,
    statuses: list[str],
    store_indexes: np.ndarray,
    *,
    received_at: dt.datetime,
) -> None:
    # Conflicting readings were not stored, so they must not show either.
    stored = np.array([statuses[i] != CONFLICT for i in store_indexes.tolist()], dtype=bool)
    indexes = store_indexes[stored]
    if not len(indexes):
        return
    order = np.lexsort((columns.recorded_at_us[indexes], vehicle_ids[indexes]))
    ordered = indexes[order]
    vehicles = vehicle_ids[ordered]
    last_of_vehicle = np.append(vehicles[1:] != vehicles[:-1], True)
    positions = [FLOAT_FIELD_NAMES.index(name) for name in _LIVE_FIELDS]
    ops = connection.ops
    rows = []
    for index in ordered[last_of_vehicle].tolist():
        values = [None if np.isnan(v) else float(v) for v in columns.values[index, positions]]
        state = int(columns.charging_state[index])
        rows.append(
            [
                int(vehicle_ids[index]),
                ops.adapt_datetimefield_value(_datetime_from_us(int(columns.recorded_at_us[index]))),
                ops.adapt_datetimefield_value(received_at),
                *values,
                None if state == NULL_CHARGING_STATE else state,
            ]
        )
    names = ("vehicle_id", "recorded_at", "received_at", *_LIVE_FIELDS, "charging_state")
    # A field the latest reading does not report keeps its previous value.
    updates = ", ".join(
        ["recorded_at = excluded.recorded_at", "received_at = excluded.received_at"]
        + [f"{name} = COALESCE(excluded.{name}, {_LIVE_TABLE}.{name})" for name in (*_LIVE_FIELDS, "charging_state")]
    )
    row_placeholder = "(" + ", ".join(["%s"] * len(names)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _LIVE_CHUNK):  # stays under SQLite's bound-parameter limit
            chunk = rows[start : start + _LIVE_CHUNK]
            cursor.execute(
                f"INSERT INTO {_LIVE_TABLE} ({', '.join(names)}) VALUES {', '.join([row_placeholder] * len(chunk))} "
                f"ON CONFLICT (vehicle_id) DO UPDATE SET {updates} "
                f"WHERE {_LIVE_TABLE}.recorded_at < excluded.recorded_at",  # nosec B608
                [value for row in chunk for value in row],
            )

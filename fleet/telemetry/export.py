"""The telemetry history export: ``GET /api/v1/telemetry/readings/`` as JSON pages, CSV or JSON Lines.

Readings are read in the order of their primary key ``(vehicle, recorded_at)``, so every page and every stream
walks the primary key's btree. JSON pages carry an opaque keyset cursor (``next``: the last row's key), not an
offset: a page deep in a month of history costs what the first one does. ``?format=csv`` and ``?format=jsonl``
(or the ``Accept`` header) stream the whole selection. On PostgreSQL the database writes the stream itself
(``COPY (SELECT ...) TO STDOUT``) and Python passes its blocks on; elsewhere ``iterator(chunk_size)`` reads it in
chunks. Either way memory stays flat however many rows go out.

Mounted by the telemetry URLconf: ``router.register("telemetry/readings", TelemetryReadingExportViewSet,
basename="telemetry-reading")``.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
from collections.abc import Iterator

import orjson
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, renderers, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from fleet.api.scoped import DepotScopedViewSetMixin
from fleet.models import TelemetryReading
from fleet.models.telemetry import CHARGING_STATE_NAMES
from fleet.telemetry.selectors import READING_MEASUREMENTS

# The columns of every format, in order: the reading's key, its measurements (one list of them, the selectors'),
# and ``charging_state`` spelled as in the upload.
EXPORT_COLUMNS = ("vehicle", "recorded_at", *READING_MEASUREMENTS, "charging_state")
_DB_COLUMNS = tuple("vehicle_id" if c == "vehicle" else c for c in EXPORT_COLUMNS)
_CHARGING_INDEX = EXPORT_COLUMNS.index("charging_state")
_RECORDED_INDEX = EXPORT_COLUMNS.index("recorded_at")
STREAM_CHUNK_ROWS = 5000
STREAM_BLOCK_BYTES = 256 * 1024
PAGE_SIZE_DEFAULT = 500
PAGE_SIZE_MAX = 5000


class CSVRenderer(renderers.BaseRenderer):
    """Marks ``text/csv`` as a format of the export (the view streams it itself)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # errors only: a JSON body
        return orjson.dumps(data)


class JSONLinesRenderer(CSVRenderer):
    media_type = "application/x-ndjson"
    format = "jsonl"


class TelemetryReadingSerializer(serializers.Serializer):
    """One stored reading (the upload's fields, with the vehicle id)."""

    vehicle = serializers.IntegerField()
    recorded_at = serializers.DateTimeField()
    soc_pct = serializers.FloatField(allow_null=True)
    odometer_km = serializers.FloatField(allow_null=True)
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    speed_kmh = serializers.FloatField(allow_null=True)
    pack_voltage_v = serializers.FloatField(allow_null=True)
    pack_current_a = serializers.FloatField(allow_null=True, help_text="Positive = discharge, negative = charge.")
    pack_temp_c = serializers.FloatField(allow_null=True)
    pack_temp_min_c = serializers.FloatField(allow_null=True)
    pack_temp_max_c = serializers.FloatField(allow_null=True)
    energy_discharged_kwh = serializers.FloatField(allow_null=True)
    energy_charged_kwh = serializers.FloatField(allow_null=True)
    charging_state = serializers.ChoiceField(choices=["none", "ac", "dc"], allow_null=True)


class TelemetryReadingPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null after the last reading.")
    results = TelemetryReadingSerializer(many=True)


class ExportQuerySerializer(serializers.Serializer):
    """The export's query parameters; ``vehicle`` or ``depot`` narrows it, the time range is half-open."""

    vehicle = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    depot = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    recorded_after = serializers.DateTimeField(required=False, help_text="Inclusive, with a UTC offset.")
    recorded_before = serializers.DateTimeField(required=False, help_text="Exclusive, with a UTC offset.")
    cursor = serializers.CharField(required=False, help_text="From a page's `next`.")
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=PAGE_SIZE_MAX,
        help_text=f"Rows per JSON page (default {PAGE_SIZE_DEFAULT}).",
    )

    def validate(self, attrs):
        for name in ("recorded_after", "recorded_before"):
            raw = self.initial_data.get(name)
            parsed = parse_datetime(raw) if raw else None
            if parsed is not None and parsed.tzinfo is None:
                raise serializers.ValidationError({name: "Give the time with its UTC offset (…Z or …-07:00)."})
        after, before = attrs.get("recorded_after"), attrs.get("recorded_before")
        if after and before and before <= after:
            raise serializers.ValidationError({"recorded_before": "Must be later than recorded_after."})
        if "cursor" in attrs:
            attrs["cursor"] = decode_cursor(attrs["cursor"])
        return attrs


def connection_vendor(alias: str) -> str:
    from django.db import connections

    return connections[alias].vendor


def encode_cursor(vehicle_id: int, recorded_at: dt.datetime) -> str:
    raw = f"{vehicle_id}|{recorded_at.isoformat()}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, dt.datetime]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        vehicle, at = raw.split("|", 1)
        recorded_at = parse_datetime(at)
        if recorded_at is None or recorded_at.tzinfo is None:
            raise ValueError(at)
        return int(vehicle), recorded_at
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise serializers.ValidationError({"cursor": "Not a cursor this API gave out."}) from exc


# On PostgreSQL the database writes the stream itself (``COPY (SELECT ...) TO STDOUT``): Python only passes bytes
# on, about ten times faster than building each row in Python. The same columns and spellings as ``_csv_lines``.
_PG_CHARGING = "CASE r.charging_state WHEN 0 THEN 'none' WHEN 1 THEN 'ac' WHEN 2 THEN 'dc' END"
_PG_COLUMNS = {
    **{c: f"r.{c}" for c in _DB_COLUMNS},
    "vehicle_id": "r.vehicle_id",
    "recorded_at": "to_json(r.recorded_at) #>> '{}'",  # ISO 8601 (the connection's time zone is UTC)
    "charging_state": _PG_CHARGING,
}
_PG_SELECT_CSV = ", ".join(
    f'{_PG_COLUMNS[db]} AS "{name}"' for db, name in zip(_DB_COLUMNS, EXPORT_COLUMNS, strict=True)
)
# JSON Lines written by concatenation (about a fifth faster than row_to_json here): numbers as PostgreSQL prints a
# float8 (the shortest text that reads back exactly, as JSON wants), null for missing values. None of the texts
# (numbers, null, ISO times, the three state names) needs COPY's text-format escapes.
_PG_JSON_VALUES = {
    **{db: f"coalesce(r.{db}::text, 'null')" for db in _DB_COLUMNS},
    "vehicle_id": "r.vehicle_id::text",
    "recorded_at": "'\"' || (to_json(r.recorded_at) #>> '{}') || '\"'",
    "charging_state": f"coalesce('\"' || {_PG_CHARGING} || '\"', 'null')",
}
_PG_SELECT_JSONL = (
    "'{' || "
    + " || ',' || ".join(
        f"""'"{name}":' || {_PG_JSON_VALUES[db]}""" for db, name in zip(_DB_COLUMNS, EXPORT_COLUMNS, strict=True)
    )
    + " || '}'"
)


def _postgres_copy(rows: QuerySet, export_format: str) -> Iterator[bytes]:
    """Stream ``rows`` (a ``values_list`` of ``_DB_COLUMNS``) with COPY; logged like any query (debug, tests)."""
    from django.db import connections

    connection = connections[rows.db]
    inner, params = rows.query.sql_with_params()
    # Only constants and Django's compiled SQL go into the statement; the values stay parameters.
    select = f"SELECT {_PG_SELECT_CSV} FROM ({inner}) AS r"  # nosec B608
    if export_format == "csv":
        statement = f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER)"
    else:
        statement = f"COPY (SELECT {_PG_SELECT_JSONL} FROM ({inner}) AS r) TO STDOUT"  # nosec B608
    if connection.queries_logged:
        connection.queries_log.append({"sql": statement % tuple(map(repr, params)), "time": "0"})
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        # COPY sends a message a row: gather them into blocks of about 256 kB for the response.
        pending, size = [], 0
        for block in copy:
            pending.append(block)
            size += len(block)
            if size >= STREAM_BLOCK_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)


def _row_dict(row: tuple) -> dict:
    values = dict(zip(EXPORT_COLUMNS, row, strict=True))
    values["charging_state"] = CHARGING_STATE_NAMES.get(values["charging_state"])
    return values


def _csv_lines(rows: Iterator[tuple]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    names = CHARGING_STATE_NAMES
    pending = 0
    for row in rows:
        values = list(row)
        values[_RECORDED_INDEX] = values[_RECORDED_INDEX].isoformat()
        values[_CHARGING_INDEX] = names.get(values[_CHARGING_INDEX], "")
        writer.writerow(values)
        pending += 1
        if pending == 1000:  # one chunk per thousand rows: fewer, larger writes to the socket
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def _jsonl_lines(rows: Iterator[tuple]) -> Iterator[bytes]:
    chunk: list[bytes] = []
    for row in rows:
        chunk.append(orjson.dumps(_row_dict(row)))
        if len(chunk) == 1000:
            yield b"\n".join(chunk) + b"\n"
            chunk = []
    if chunk:
        yield b"\n".join(chunk) + b"\n"


PARAMETERS = [
    OpenApiParameter("vehicle", int, description="Only this vehicle's readings."),
    OpenApiParameter("depot", int, description="Only the readings of vehicles based at this depot."),
    OpenApiParameter("recorded_after", OpenApiTypes.DATETIME, description="Inclusive lower bound (UTC offset)."),
    OpenApiParameter("recorded_before", OpenApiTypes.DATETIME, description="Exclusive upper bound (UTC offset)."),
    OpenApiParameter("cursor", str, description="The `next` cursor of the previous JSON page."),
    OpenApiParameter("limit", int, description=f"JSON page size, 1 to {PAGE_SIZE_MAX} (default {PAGE_SIZE_DEFAULT})."),
    OpenApiParameter(
        "format",
        str,
        enum=["json", "csv", "jsonl"],
        description="`csv` or `jsonl` stream the whole selection (no pages); or send `Accept: text/csv`.",
    ),
]


class TelemetryReadingExportViewSet(DepotScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Raw readings of the user's depots (``restrict``), by vehicle or depot and time range."""

    queryset = TelemetryReading.objects.all()
    serializer_class = TelemetryReadingSerializer
    renderer_classes = [renderers.JSONRenderer, CSVRenderer, JSONLinesRenderer]
    pagination_class = None
    filter_backends: list = []

    def selection(self, params: dict) -> QuerySet[TelemetryReading]:
        readings = self.get_queryset()
        if "vehicle" in params:
            readings = readings.filter(vehicle_id=params["vehicle"])
        if "depot" in params:
            readings = readings.filter(vehicle__home_depot_id=params["depot"])
        if "recorded_after" in params:
            readings = readings.filter(recorded_at__gte=params["recorded_after"])
        if "recorded_before" in params:
            readings = readings.filter(recorded_at__lt=params["recorded_before"])
        return readings.order_by("vehicle_id", "recorded_at")

    @extend_schema(
        operation_id="telemetry_readings_export",
        summary="Telemetry history: raw readings by vehicle or depot and time range",
        description=(
            "JSON pages with a keyset cursor (`next`), or the whole selection streamed as CSV "
            "(`?format=csv`, `text/csv`) or JSON Lines (`?format=jsonl`, `application/x-ndjson`) with the same "
            "columns. Only readings of vehicles in the caller's depots are returned. Rows are ordered by "
            "vehicle, then time."
        ),
        parameters=PARAMETERS,
        responses={
            (200, "application/json"): TelemetryReadingPageSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="A header row, then one row a reading."),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="One JSON object a line."),
        },
        tags=["telemetry"],
    )
    def list(self, request: Request, *args, **kwargs):
        query = ExportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        readings = self.selection(params)
        rows = readings.values_list(*_DB_COLUMNS)
        export_format = request.accepted_renderer.format
        if export_format in ("csv", "jsonl"):
            if "cursor" in params:
                raise exceptions.ValidationError({"cursor": "Streams have no pages: drop the cursor."})
            body: Iterator[str] | Iterator[bytes]
            if rows.db and connection_vendor(rows.db) == "postgresql":
                body = _postgres_copy(rows, export_format)
            else:
                stream = rows.iterator(chunk_size=STREAM_CHUNK_ROWS)
                body = _csv_lines(stream) if export_format == "csv" else _jsonl_lines(stream)
            response = StreamingHttpResponse(
                body, content_type=f"{request.accepted_renderer.media_type}; charset=utf-8"
            )
            response["Content-Disposition"] = f'attachment; filename="telemetry-readings.{export_format}"'
            return response
        if "cursor" in params:
            rows = rows.filter(pk__gt=params["cursor"])
        limit = params.get("limit", PAGE_SIZE_DEFAULT)
        page = list(rows[: limit + 1])
        next_url = None
        if len(page) > limit:
            page = page[:limit]
            last = page[-1]
            query_params = request.query_params.copy()
            query_params["cursor"] = encode_cursor(last[0], last[_RECORDED_INDEX])
            next_url = request.build_absolute_uri(f"{request.path}?{query_params.urlencode()}")
        results = [_row_dict(row) for row in page]
        for item in results:
            item["recorded_at"] = item["recorded_at"].isoformat().replace("+00:00", "Z")
        return Response({"next": next_url, "results": results})


# --- Positions for the city feeds ---------------------------------------------------------------------------


def recent_positions(vehicle_ids, *, at: dt.datetime, max_age: dt.timedelta) -> dict[int, list[TelemetryReading]]:
    """Each vehicle's last two readings with a position in ``(at - max_age, at]``, newest first (one query).

    Two, so that a feed can give the heading from the last move; ``at`` earlier than now publishes late.
    """
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    readings = (
        TelemetryReading.objects.filter(
            vehicle_id__in=vehicle_ids,
            recorded_at__gt=at - max_age,
            recorded_at__lte=at,
            latitude__isnull=False,
            longitude__isnull=False,
        )
        .annotate(rank=Window(RowNumber(), partition_by=[F("vehicle_id")], order_by=F("recorded_at").desc()))
        .filter(rank__lte=2)
        .order_by("vehicle_id", "-recorded_at")
    )
    by_vehicle: dict[int, list[TelemetryReading]] = {}
    for reading in readings:
        by_vehicle.setdefault(reading.vehicle_id, []).append(reading)
    return by_vehicle

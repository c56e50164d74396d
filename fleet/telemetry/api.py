"""Telemetry endpoints: the batch upload (vehicle keys and depot staff), live state and daily duty cycles.

The batch view does not let DRF parse JSON: its parser hands over the raw bytes (bounded by
``EVFLEET_TELEMETRY_MAX_BYTES``), orjson parses them once, and the ingest service validates column-wise.
The serializers below only document the shapes in the OpenAPI schema.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import django_filters as filters
import orjson
import psycopg
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, parsers, permissions, serializers, viewsets
from rest_framework.authentication import BaseAuthentication
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from config.api import RejectUnknownFieldsMixin
from fleet.api.scoped import DepotScopedViewSetMixin
from fleet.models import DailyDutyCycle, Vehicle, VehicleApiKey, VehicleLiveState
from fleet.models.telemetry import CHARGING_STATE_NAMES
from fleet.scoping import Action, restrict
from fleet.telemetry.ingest import BatchTooLarge, max_batch_bytes, max_batch_readings, telemetry_ingest
from fleet.telemetry.keys import VehicleKeyAuthentication
from fleet.telemetry.validation import CHARGING_STATES, FLOAT_FIELDS

# --- The batch upload -------------------------------------------------------------------------------------


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request is too large."
    default_code = "payload_too_large"


class DatabaseUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The database is unavailable; nothing from this batch was acknowledged. Retry."
    default_code = "unavailable"


class RawJSONParser(parsers.BaseParser):
    """Accepts ``application/json`` and returns the body's bytes, at most ``EVFLEET_TELEMETRY_MAX_BYTES``."""

    media_type = "application/json"

    # DRF hands whatever parse returns to request.data; the stubs insist on a mapping.
    def parse(self, stream, media_type=None, parser_context=None) -> bytes:  # type: ignore[override]
        limit = max_batch_bytes()
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"The body exceeds {limit} bytes; send smaller batches.")
        return body


class ReadingSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """One reading (documentation only: the ingest service validates, column by column)."""

    vehicle = serializers.IntegerField(
        required=False, help_text="Vehicle id. Depot staff only; a vehicle key's own vehicle is implied."
    )
    fleet_number = serializers.CharField(required=False, max_length=40, help_text="Instead of `vehicle`.")
    recorded_at = serializers.DateTimeField(
        help_text="ISO 8601 with a UTC offset; at most 5 minutes in the future. One reading per vehicle and instant."
    )
    charging_state = serializers.ChoiceField(choices=list(CHARGING_STATES), required=False, allow_null=True)

    def get_fields(self):
        fields = super().get_fields()
        for name, (low, high) in FLOAT_FIELDS.items():
            fields[name] = serializers.FloatField(required=False, allow_null=True, min_value=low, max_value=high)
        fields["pack_current_a"].help_text = "Positive = discharge, negative = charge."
        return fields


class TelemetryBatchRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    readings = serializers.ListField(  # a ListField, so the schema says minItems: an empty batch is a 400
        child=ReadingSerializer(), min_length=1, help_text="1 to EVFLEET_TELEMETRY_MAX_BATCH (5,000) readings."
    )


class ItemErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the reading in `readings`.")
    # A field, not Serializer.errors: DRF's metaclass moves declared fields away (the stubs cannot see that).
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.CharField(), help_text="Reason per field."
    )


class StatusCountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    conflict = serializers.IntegerField()
    rejected = serializers.IntegerField()


class TelemetryBatchResponseSerializer(serializers.Serializer):
    counts = StatusCountsSerializer()
    statuses = serializers.ListField(
        child=serializers.ChoiceField(choices=["created", "duplicate", "conflict", "rejected"]),
        help_text="One status per reading, in order.",
    )
    errors = ItemErrorSerializer(  # type: ignore[assignment]  # a declared field, as above
        many=True, help_text="Why each rejected reading was rejected."
    )


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


_ALLOWED_BODY_KEYS = frozenset({"readings"})
_CONNECTION_LOST = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
logger = logging.getLogger(__name__)


class TelemetryBatchView(APIView):
    # api_settings imports the configured dotted paths; the stubs type the setting as written (strings).
    authentication_classes = [
        VehicleKeyAuthentication,
        *cast(Sequence[type[BaseAuthentication]], api_settings.DEFAULT_AUTHENTICATION_CLASSES),
    ]
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [RawJSONParser]

    @extend_schema(
        operation_id="telemetry_batch_upload",
        summary="Upload a batch of telemetry readings",
        description=(
            "Stores each reading once. Re-sending a batch is safe: each reading answers `created`, "
            "`duplicate` (already stored with the same values), `conflict` (stored with different values, "
            "not overwritten) or `rejected` (with reasons). The answer is sent after the commit.\n\n"
            "With a vehicle key (`Authorization: Bearer evk_...`) the readings are that vehicle's; "
            "depot staff name each reading's vehicle (`vehicle` id or `fleet_number`) in their depots."
        ),
        request=TelemetryBatchRequestSerializer,
        responses={
            200: TelemetryBatchResponseSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Not JSON, or not a non-empty `readings` list."),
            403: OpenApiResponse(ErrorSerializer, description="A vehicle key naming another vehicle."),
            413: OpenApiResponse(ErrorSerializer, description="Too many readings or too many bytes."),
            415: OpenApiResponse(ErrorSerializer, description="Not application/json."),
            503: OpenApiResponse(ErrorSerializer, description="Database unavailable; retry."),
        },
        tags=["telemetry"],
    )
    def post(self, request):
        readings = _readings_from(request.data)
        if len(readings) > max_batch_readings():
            raise PayloadTooLarge(f"At most {max_batch_readings()} readings per batch.")
        # A vehicle key's readings are its vehicle's; staff name vehicles among those they operate.
        key_vehicle = request.auth.vehicle if isinstance(request.auth, VehicleApiKey) else None
        allowed = None if key_vehicle is not None else restrict(Vehicle.objects.all(), request.user, Action.OPERATE)
        try:
            result = telemetry_ingest(readings=readings, vehicle=key_vehicle, allowed_vehicles=allowed)
        except DjangoPermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from exc
        except BatchTooLarge as exc:
            raise PayloadTooLarge(str(exc)) from exc
        return HttpResponse(orjson.dumps(result.as_dict()), content_type="application/json")

    def handle_exception(self, exc):
        # A lost database connection, wherever it strikes (the key lookup, COPY, the commit), is a 503 the
        # client retries: nothing was acknowledged. psycopg's own errors come from inside COPY, which Django
        # does not wrap.
        if isinstance(exc, _CONNECTION_LOST):
            logger.warning("Telemetry batch: database connection lost (%s); answering 503.", exc)
            exc = DatabaseUnavailable()
        return super().handle_exception(exc)


def _readings_from(body) -> list:
    if not isinstance(body, bytes) or not body:
        raise exceptions.ValidationError({"detail": "Send a JSON object with a `readings` list."})
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # Also NaN/Infinity literals, numbers beyond double range and nesting deeper than 1024 levels.
        raise exceptions.ParseError(f"Invalid JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("readings"), list):
        raise exceptions.ValidationError({"readings": "Send a JSON object with a `readings` list."})
    unknown = set(payload) - _ALLOWED_BODY_KEYS
    if unknown:
        raise exceptions.ValidationError({name: "Unknown field." for name in sorted(map(str, unknown))})
    if not payload["readings"]:
        raise exceptions.ValidationError({"readings": "The batch is empty."})
    return payload["readings"]


# --- Live state and duty cycles (read-only, scoped) -------------------------------------------------------


@extend_schema_field(serializers.ChoiceField(choices=list(CHARGING_STATES), allow_null=True))
class ChargingStateField(serializers.Field):
    def to_representation(self, value):
        return CHARGING_STATE_NAMES.get(value)


class VehicleLiveStateSerializer(serializers.ModelSerializer):
    fleet_number = serializers.CharField(source="vehicle.fleet_number", read_only=True)
    charging_state = ChargingStateField(read_only=True, allow_null=True)

    class Meta:
        model = VehicleLiveState
        fields = [
            "vehicle",
            "fleet_number",
            "recorded_at",
            "received_at",
            "soc_pct",
            "odometer_km",
            "latitude",
            "longitude",
            "speed_kmh",
            "charging_state",
        ]
        read_only_fields = fields


class DailyDutyCycleSerializer(serializers.ModelSerializer):
    fleet_number = serializers.CharField(source="vehicle.fleet_number", read_only=True)

    class Meta:
        model = DailyDutyCycle
        fields = [
            "id",
            "vehicle",
            "fleet_number",
            "date",
            "time_zone",
            "reading_count",
            "distance_km",
            "energy_used_kwh",
            "energy_charged_kwh",
            "kwh_per_km",
            "capacity_kwh",
            "equivalent_full_cycles",
            "soc_min_pct",
            "soc_max_pct",
            "soc_mean_pct",
            "minutes_above_90_soc",
            "pack_temp_mean_c",
            "pack_temp_max_c",
            "max_charge_c_rate",
            "max_discharge_c_rate",
            "computed_at",
        ]
        read_only_fields = fields


class VehicleLiveStateFilter(filters.FilterSet):
    depot = filters.NumberFilter(field_name="vehicle__home_depot_id")
    seen_since = filters.IsoDateTimeFilter(field_name="recorded_at", lookup_expr="gte")

    class Meta:
        model = VehicleLiveState
        fields = ["depot", "seen_since"]


class DailyDutyCycleFilter(filters.FilterSet):
    vehicle = filters.NumberFilter(field_name="vehicle_id")
    depot = filters.NumberFilter(field_name="vehicle__home_depot_id")
    date_from = filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = filters.DateFilter(field_name="date", lookup_expr="lte")

    class Meta:
        model = DailyDutyCycle
        fields = ["vehicle", "depot", "date_from", "date_to"]


@extend_schema_view(
    list=extend_schema(summary="Each vehicle's latest position, SoC and odometer", tags=["telemetry"]),
    retrieve=extend_schema(summary="One vehicle's live state (by vehicle id)", tags=["telemetry"]),
)
class VehicleLiveStateViewSet(DepotScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = VehicleLiveState.objects.select_related("vehicle").order_by("vehicle_id")
    serializer_class = VehicleLiveStateSerializer
    filterset_class = VehicleLiveStateFilter
    ordering_fields = ["recorded_at", "soc_pct", "vehicle"]
    search_fields = ["vehicle__fleet_number"]
    lookup_field = "vehicle"
    lookup_value_regex = r"\d+"


@extend_schema_view(
    list=extend_schema(summary="Daily duty cycles computed from telemetry", tags=["telemetry"]),
    retrieve=extend_schema(summary="One vehicle-day", tags=["telemetry"]),
)
class DailyDutyCycleViewSet(DepotScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = DailyDutyCycle.objects.select_related("vehicle").order_by("vehicle_id", "date")
    serializer_class = DailyDutyCycleSerializer
    filterset_class = DailyDutyCycleFilter
    ordering_fields = ["date", "vehicle", "energy_used_kwh", "distance_km"]
    search_fields = ["vehicle__fleet_number"]

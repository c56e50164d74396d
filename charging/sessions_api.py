"""REST API of charging sessions and the reports on them (plan vs actual, monthly), in JSON or CSV.

CSV: add ``?format=csv`` or send ``Accept: text/csv``. Errors are JSON whatever was asked.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from typing import cast

import django_filters as filters
from django.shortcuts import get_object_or_404
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, permissions, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from charging import reports
from charging.models import ChargingSession, Connector
from charging.planning import current_service_night
from charging.plans_api import scoped_depot
from charging.sessions import (
    SessionConflict,
    charging_session_record,
    session_vehicle_choices,
    sessions_visible_to,
)
from config.api import Conflict, RejectUnknownFieldsMixin
from fleet.api.scoped import ScopedGenericViewSet, ScopedPrimaryKeyRelatedField
from fleet.models import Depot, Vehicle
from fleet.scoping import Action, restrict

MAX_CSV_ROWS = 100_000
MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")

# --- CSV ----------------------------------------------------------------------------------------------------


class CSVRenderer(renderers.BaseRenderer):
    """Flat rows (a list of dicts, or one dict) as CSV; the header is every key in order of appearance."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        rows = data if isinstance(data, list) else [data]
        header: list[str] = []
        for row in rows:
            header += [key for key in row if key not in header]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=header, restval="", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(value) for key, value in row.items()})
        return buffer.getvalue().encode(self.charset)


def _cell(value) -> str:
    # Cells read like the JSON: empty for null, true/false, nested values as JSON.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


class CsvOrJsonMixin(APIView):
    """Views that answer JSON or CSV. Errors stay JSON: a CSV of an error message helps nobody."""

    csv_actions: tuple[str, ...] = ()

    def get_renderers(self):
        if getattr(self, "action", None) in self.csv_actions:
            return [renderers.JSONRenderer(), CSVRenderer()]
        return [renderers.JSONRenderer()]

    def wants_csv(self) -> bool:
        renderer = getattr(self.request, "accepted_renderer", None)
        return renderer is not None and renderer.format == CSVRenderer.format

    def handle_exception(self, exc):
        if self.wants_csv():
            self.request.accepted_renderer = renderers.JSONRenderer()
            self.request.accepted_media_type = renderers.JSONRenderer.media_type
        return super().handle_exception(exc)

    def csv_response(self, rows: list[dict], filename: str) -> Response:
        return Response(rows, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


FORMAT_PARAMETER = OpenApiParameter(
    "format", str, enum=["json", "csv"], description="csv: the same figures as CSV (or send Accept: text/csv)."
)


def csv_responses(json_response, description: str) -> dict:
    return {
        (200, "application/json"): OpenApiResponse(json_response, description=f"JSON, or as CSV: {description}"),
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
    }


# --- Sessions -----------------------------------------------------------------------------------------------


class ChargingSessionSerializer(serializers.ModelSerializer):
    fleet_number = serializers.CharField(source="vehicle.fleet_number", read_only=True)

    class Meta:
        model = ChargingSession
        fields = [
            "id",
            "depot",
            "vehicle",
            "fleet_number",
            "connector",
            "source",
            "external_id",
            "started_at",
            "ended_at",
            "energy_kwh",
            "start_soc_pct",
            "end_soc_pct",
            "max_kw",
            "cost",
            "currency",
            "cost_note",
            "plan",
            "created_at",
        ]
        read_only_fields = fields


class SessionVehicleField(serializers.PrimaryKeyRelatedField):
    """Any vehicle of an organisation whose depot the user operates (``session_vehicle_choices``): a bus from
    another depot that charges here is recorded here. Others read as unknown ids, as everywhere in the API."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:  # schema generation
            return super().get_queryset()
        return session_vehicle_choices(request.user)


class ChargingSessionCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A session that has ended, as depot staff or a charger gateway report it: at one of their depots, for any
    vehicle of that depot's organisation (visiting buses included)."""

    # DRF's metaclass moves declared fields into _declared_fields: this never shadows Field.source, the stubs
    # cannot know that.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=[ChargingSession.Source.STAFF, ChargingSession.Source.CHARGER_GATEWAY],
        default=ChargingSession.Source.STAFF,
    )
    external_id = serializers.CharField(
        max_length=64, help_text="Your id for this session (e.g. the OCPP transactionId); re-sending is safe."
    )
    depot = ScopedPrimaryKeyRelatedField(queryset=Depot.objects.all(), action=Action.OPERATE)
    vehicle = SessionVehicleField(queryset=Vehicle.objects.all())
    connector = ScopedPrimaryKeyRelatedField(
        queryset=Connector.objects.select_related("charger"), required=False, allow_null=True
    )
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField()
    energy_kwh = serializers.FloatField(min_value=0, max_value=100_000, help_text="Energy drawn from the grid.")
    start_soc_pct = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=100)
    end_soc_pct = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=100)
    max_kw = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=10_000)

    def validate(self, attrs):
        # Only someone who operates depots of two organisations gets here with a mismatch; they too are told
        # what an unknown id tells, so the answer never says that the vehicle exists elsewhere.
        vehicle = attrs["vehicle"]
        if vehicle.organization_id != attrs["depot"].organization_id:
            unknown = self.fields["vehicle"].error_messages["does_not_exist"].format(pk_value=vehicle.pk)
            raise serializers.ValidationError({"vehicle": [unknown]})
        return attrs


class ChargingSessionFilter(filters.FilterSet):
    depot = filters.NumberFilter(field_name="depot_id")
    vehicle = filters.NumberFilter(field_name="vehicle_id")
    connector = filters.NumberFilter(field_name="connector_id")
    plan = filters.NumberFilter(field_name="plan_id")
    away = filters.BooleanFilter(field_name="depot", lookup_expr="isnull", label="Away from any depot")
    started_after = filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = ChargingSession
        fields = ["depot", "vehicle", "connector", "plan", "source", "away", "started_after", "started_before"]


@extend_schema_view(
    list=extend_schema(
        summary=(
            "Charging sessions at your depots (visiting vehicles' too), your depots' vehicles' sessions at other "
            "depots, and, for managers, your organisations' cars away from any depot"
        ),
        parameters=[FORMAT_PARAMETER],
        responses=csv_responses(
            ChargingSessionSerializer(many=True), "Every matching session (not paginated), one row each."
        ),
    ),
    retrieve=extend_schema(summary="One charging session"),
    create=extend_schema(
        summary="Record a session that has ended (depot staff, charger gateway); it is priced at the tariff",
        request=ChargingSessionCreateSerializer,
        responses={
            201: ChargingSessionSerializer,
            200: OpenApiResponse(ChargingSessionSerializer, description="Already recorded (same external_id)"),
            409: inline_serializer("SessionConflict", {"detail": serializers.CharField()}),
        },
    ),
)
class ChargingSessionViewSet(
    CsvOrJsonMixin, ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin
):
    queryset = ChargingSession.objects.select_related("vehicle")
    serializer_class = ChargingSessionSerializer
    filterset_class = ChargingSessionFilter
    ordering_fields = ["started_at", "energy_kwh", "cost"]
    csv_actions = ("list",)

    def get_queryset(self):
        # Reads follow the sessions' own rule, which adds the vehicle's side to the depot scope.
        return sessions_visible_to(self.request.user, self.queryset.all())

    def get_serializer_class(self):
        return ChargingSessionCreateSerializer if self.action == "create" else ChargingSessionSerializer

    def list(self, request, *args, **kwargs):
        if not self.wants_csv():
            return super().list(request, *args, **kwargs)
        sessions = self.filter_queryset(self.get_queryset())[:MAX_CSV_ROWS]
        # many=True makes a ListSerializer, whose data is a list of rows; the stubs type it as the single form.
        rows = cast(list[dict], ChargingSessionSerializer(sessions, many=True).data)
        return self.csv_response(rows, "charging-sessions.csv")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            session, created = charging_session_record(recorded_by=request.user, **serializer.validated_data)
        except SessionConflict as exc:
            raise Conflict(f"Session id {exc} was already used for a different session.") from exc
        return Response(
            ChargingSessionSerializer(session).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


# --- Reports ------------------------------------------------------------------------------------------------


class LocalDateTimeField(serializers.DateTimeField):
    """A time in the zone the report gives it (the depot's local time): reports are read by people."""

    def to_representation(self, value):
        return value.isoformat() if value is not None else None


class PlanVsActualVehicleSerializer(serializers.Serializer):
    vehicle = serializers.IntegerField()
    fleet_number = serializers.CharField()
    planned_energy_kwh = serializers.FloatField(allow_null=True)
    planned_departure_soc_pct = serializers.FloatField(allow_null=True)
    required_soc_pct = serializers.FloatField(allow_null=True)
    planned_ready = serializers.BooleanField(allow_null=True)
    actual_energy_kwh = serializers.FloatField()
    actual_energy_cost = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    sessions = serializers.IntegerField()
    actual_start_soc_pct = serializers.FloatField(allow_null=True)
    actual_end_soc_pct = serializers.FloatField(allow_null=True)
    energy_difference_kwh = serializers.FloatField(allow_null=True, help_text="Actual minus planned.")
    soc_difference_pct = serializers.FloatField(allow_null=True, help_text="End SoC minus planned departure SoC.")
    reached_required_soc = serializers.BooleanField(allow_null=True)


class PlanVsActualSerializer(serializers.Serializer):
    depot = serializers.IntegerField()
    depot_code = serializers.CharField()
    service_night = serializers.DateField()
    time_zone = serializers.CharField()
    window_start = LocalDateTimeField()
    window_end = LocalDateTimeField()
    plan = serializers.IntegerField(allow_null=True)
    plan_version = serializers.IntegerField(allow_null=True)
    plan_trigger = serializers.CharField(allow_blank=True)
    plan_horizon_start = LocalDateTimeField(allow_null=True)
    currency = serializers.CharField(allow_blank=True)
    planned_energy_kwh = serializers.FloatField(allow_null=True)
    planned_energy_cost = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    planned_demand_cost = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    planned_peak_kw = serializers.FloatField(allow_null=True, help_text="Base load + charging, demand periods.")
    planned_charging_peak_kw = serializers.FloatField(allow_null=True)
    actual_energy_kwh = serializers.FloatField()
    actual_energy_cost = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    actual_peak_kw = serializers.FloatField(help_text="Base load + sessions' load, demand periods.")
    actual_peak_at = LocalDateTimeField(allow_null=True)
    actual_charging_peak_kw = serializers.FloatField()
    actual_charging_peak_at = LocalDateTimeField(allow_null=True)
    sessions = serializers.IntegerField()
    sessions_without_cost = serializers.IntegerField()
    vehicles = PlanVsActualVehicleSerializer(many=True)


class MonthlyVehicleShareSerializer(serializers.Serializer):
    vehicle = serializers.IntegerField()
    fleet_number = serializers.CharField()
    energy_kwh = serializers.FloatField()
    energy_cost = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    sessions = serializers.IntegerField()
    sessions_without_cost = serializers.IntegerField()
    charging_peak_kw = serializers.FloatField()


class DemandChargeLineSerializer(serializers.Serializer):
    name = serializers.CharField()
    periods = serializers.ListField(child=serializers.CharField())
    peak_kw = serializers.FloatField()
    price_per_kw_month = serializers.DecimalField(max_digits=10, decimal_places=4)
    cost = serializers.DecimalField(max_digits=14, decimal_places=2)


class _MonthlyBase(serializers.Serializer):
    scope = serializers.CharField()
    month = serializers.CharField(help_text="YYYY-MM")
    time_zone = serializers.CharField()
    currency = serializers.CharField(allow_blank=True)
    energy_kwh = serializers.FloatField()
    energy_cost = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    sessions = serializers.IntegerField()
    sessions_without_cost = serializers.IntegerField()
    uncosted_energy_kwh = serializers.FloatField()
    charging_peak_kw = serializers.FloatField()
    charging_peak_at = LocalDateTimeField(allow_null=True)


class DepotMonthSerializer(_MonthlyBase):
    depot = serializers.IntegerField()
    depot_code = serializers.CharField()
    demand_cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    total_cost = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    peak_kw = serializers.FloatField(help_text="Base load + sessions' load.")
    peak_at = LocalDateTimeField(allow_null=True)
    demand_charges = DemandChargeLineSerializer(many=True)
    vehicles = MonthlyVehicleShareSerializer(many=True)


class VehicleMonthPlaceSerializer(serializers.Serializer):
    depot = serializers.IntegerField(allow_null=True)
    depot_code = serializers.CharField(help_text='"away" for charges away from any depot.')
    energy_kwh = serializers.FloatField()
    energy_cost = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    currency = serializers.CharField(allow_blank=True)
    sessions = serializers.IntegerField()
    sessions_without_cost = serializers.IntegerField()


class VehicleMonthSerializer(_MonthlyBase):
    vehicle = serializers.IntegerField()
    fleet_number = serializers.CharField()
    away_energy_kwh = serializers.FloatField()
    places = VehicleMonthPlaceSerializer(many=True)


MONTHLY_REPORT = PolymorphicProxySerializer(
    component_name="MonthlyReport",
    serializers={"depot": DepotMonthSerializer, "vehicle": VehicleMonthSerializer},
    resource_type_field_name="scope",
)


def month_param(request) -> dt.date:
    raw = request.query_params.get("month")
    if not raw:
        return dt.date.today().replace(day=1)
    match = MONTH_PATTERN.match(raw)
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise serializers.ValidationError({"month": ["Give the month as YYYY-MM, e.g. 2026-03."]})
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def report_night_param(request, depot: Depot) -> dt.date:
    raw = request.query_params.get("service_night")
    if not raw:
        return current_service_night(depot) - dt.timedelta(days=1)  # the last night that has ended
    try:
        return serializers.DateField().to_internal_value(raw)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"service_night": exc.detail}) from exc


def scoped_vehicle(request, vehicle_id) -> Vehicle:
    if not str(vehicle_id).isdigit():
        raise serializers.ValidationError({"vehicle": ["Give the vehicle's id."]})
    return get_object_or_404(restrict(Vehicle.objects.select_related("home_depot"), request.user), pk=vehicle_id)


class ReportViewSet(CsvOrJsonMixin, viewsets.GenericViewSet):
    """Reports on what charged: a night's plan against its sessions, and a month per depot or per vehicle."""

    permission_classes = [permissions.IsAuthenticated]
    csv_actions = ("plan_vs_actual", "monthly")
    serializer_class = PlanVsActualSerializer  # for the browsable API; each action names its own
    pagination_class = None
    filter_backends: list = []

    def sessions(self):
        # A depot's report counts what charged at the depot, a vehicle's what it charged anywhere it may be seen.
        return sessions_visible_to(self.request.user)

    @extend_schema(
        summary="A depot night's active plan against the sessions that started in it, overall and per vehicle",
        parameters=[
            OpenApiParameter("depot", int, required=True),
            OpenApiParameter("service_night", OpenApiTypes.DATE, description="Default: the last night that has ended"),
            FORMAT_PARAMETER,
        ],
        responses=csv_responses(
            PlanVsActualSerializer, "One row per vehicle, then a row with the night's totals (column row)."
        ),
    )
    @action(detail=False, methods=["get"], url_path="plan-vs-actual")
    def plan_vs_actual(self, request):
        depot = scoped_depot(request, request.query_params.get("depot"))
        night = report_night_param(request, depot)
        report = reports.plan_vs_actual(depot=depot, service_night=night, sessions=self.sessions())
        data = PlanVsActualSerializer(report).data
        if self.wants_csv():
            return self.csv_response(
                reports.plan_vs_actual_rows(data), f"plan-vs-actual-{slugify(depot.code)}-{night.isoformat()}.csv"
            )
        return Response(data)

    @extend_schema(
        summary="A month's charging energy, cost and peak for a depot (with each vehicle's share) or a vehicle",
        parameters=[
            OpenApiParameter("depot", int, description="Give a depot or a vehicle"),
            OpenApiParameter("vehicle", int, description="Give a depot or a vehicle"),
            OpenApiParameter("month", str, description="YYYY-MM; default: this month"),
            FORMAT_PARAMETER,
        ],
        responses=csv_responses(
            MONTHLY_REPORT,
            "Depot: one row per vehicle, then the depot's totals; vehicle: one row per place, then its totals.",
        ),
    )
    @action(detail=False, methods=["get"])
    def monthly(self, request):
        depot_id, vehicle_id = request.query_params.get("depot"), request.query_params.get("vehicle")
        if bool(depot_id) == bool(vehicle_id):
            raise serializers.ValidationError({"non_field_errors": ["Give either depot or vehicle."]})
        month = month_param(request)
        if depot_id:
            depot = scoped_depot(request, depot_id)
            data = DepotMonthSerializer(reports.monthly_depot(depot=depot, month=month, sessions=self.sessions())).data
            name = f"charging-{slugify(depot.code)}-{data['month']}.csv"
        else:
            vehicle = scoped_vehicle(request, vehicle_id)
            data = VehicleMonthSerializer(
                reports.monthly_vehicle(vehicle=vehicle, month=month, sessions=self.sessions())
            ).data
            name = f"charging-{slugify(vehicle.fleet_number)}-{data['month']}.csv"
        if self.wants_csv():
            return self.csv_response(reports.monthly_rows(data), name)
        return Response(data)

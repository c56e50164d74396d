"""The API depot staff use at night: tonight's plan, what each vehicle does, and events that re-plan."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from charging import measured
from charging.events import EventConflict, depot_event_record
from charging.models import Alert, ChargingPlan, Connector, DepotEvent, PlannedCharge
from charging.plan_delivery import DeliveryStatus, plan_delivery
from charging.planning import current_service_night
from charging.selectors import DeliveredSource, night_costs
from config.api import Conflict, RejectUnknownFieldsMixin
from fleet.api.scoped import ScopedGenericViewSet, ScopedPrimaryKeyRelatedField
from fleet.models import Block, Depot, Vehicle
from fleet.scoping import Action, restrict


class RoundedFloatField(serializers.FloatField):
    """A float read out rounded to ``decimals`` places: the figure as measured, not the solver's binary noise
    (``solve_seconds 0.16316426299999875`` reads ``0.163``)."""

    def __init__(self, *, decimals: int, **kwargs) -> None:
        self.decimals = decimals
        super().__init__(**kwargs)

    def to_representation(self, value) -> float:  # type: ignore[override]  # the stubs say str; a number is right
        return round(float(value), self.decimals)


def _rounded(decimals: int, **kwargs) -> RoundedFloatField:
    return RoundedFloatField(decimals=decimals, read_only=True, **kwargs)


class ArrivalSocSourceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=[
            measured.ARRIVAL_LIVE,
            measured.ARRIVAL_PREDICTED,
            measured.ARRIVAL_BLOCK_ESTIMATE,
            measured.ARRIVAL_REPORTED,
        ],
        help_text="live: a reading after the vehicle's last block returned; predicted_from_live: a fresh reading "
        "on the road minus what is left of its blocks at its measured kWh/km; block_estimate: a full morning "
        "charge minus the day's blocks (no usable reading); reported: the SoC of a depot event.",
    )
    at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When the reading was taken or the event happened."
    )
    live_soc_pct = serializers.FloatField(required=False, help_text="predicted_from_live: the reading's SoC, %.")
    remaining_kwh = serializers.FloatField(
        required=False, help_text="predicted_from_live: energy still to be used by its blocks after the reading."
    )
    blocks_kwh = serializers.FloatField(required=False, help_text="block_estimate: energy of the day's blocks.")
    # DRF's metaclass takes declared fields out of the class, so "label" does not shadow Field.label at runtime.
    label = serializers.CharField(help_text='For people, in the depot\'s time: e.g. "live 14:32".')  # type: ignore[assignment]


class ConsumptionSourceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=[measured.CONSUMPTION_VEHICLE, measured.CONSUMPTION_MODEL, measured.CONSUMPTION_NOMINAL],
        help_text="vehicle_median: the vehicle's own duty days; model_median: its model's vehicles' days; "
        "nominal: the model's figure (too few measured days).",
    )
    kwh_per_km = serializers.FloatField()
    days = serializers.IntegerField(required=False, help_text="Duty days the median is over.")
    window_days = serializers.IntegerField(required=False, help_text="How far back those days were taken from.")
    season = serializers.CharField(
        required=False, allow_null=True, help_text="The season whose days the median is over; null: all days."
    )
    label = serializers.CharField(help_text='For people: e.g. "1.12 kWh/km: vehicle\'s median over 14 days".')  # type: ignore[assignment]


class PlannedValueSourcesSerializer(serializers.Serializer):
    arrival_soc = ArrivalSocSourceSerializer(allow_null=True, help_text="Null for plans stored before 2026-12.")
    consumption = ConsumptionSourceSerializer(allow_null=True, help_text="Null for plans stored before 2026-12.")


class PlannedChargeSerializer(serializers.ModelSerializer):
    arrival_soc_pct = _rounded(2)
    required_soc_pct = _rounded(2)
    departure_soc_pct = _rounded(2)
    energy_kwh = _rounded(3)
    shortfall_kwh = _rounded(3)
    power_kw = serializers.ListField(
        child=RoundedFloatField(decimals=3), read_only=True, help_text="Grid-side kW in each slot of the plan."
    )
    fleet_number = serializers.CharField(source="vehicle.fleet_number", read_only=True)
    connector_label = serializers.SerializerMethodField()
    ready = serializers.BooleanField(read_only=True)
    sources = serializers.SerializerMethodField(
        help_text="Where the arrival SoC and the kWh/km the vehicle was planned with came from."
    )

    class Meta:
        model = PlannedCharge
        fields = [
            "id",
            "vehicle",
            "fleet_number",
            "connector",
            "connector_label",
            "arrival_at",
            "departure_at",
            "plug_in_at",
            "plug_out_at",
            "arrival_soc_pct",
            "required_soc_pct",
            "departure_soc_pct",
            "energy_kwh",
            "shortfall_kwh",
            "shortfall_reason",
            "ready",
            "sources",
            "power_kw",
        ]
        read_only_fields = fields

    @extend_schema_field(PlannedValueSourcesSerializer)
    def get_sources(self, charge: PlannedCharge) -> dict:
        stored = charge.sources or {}
        arrival, consumption = stored.get("arrival_soc"), stored.get("consumption")
        zone = charge.plan.depot.zone
        return {
            "arrival_soc": {**arrival, "label": measured.arrival_source_label(arrival, zone)} if arrival else None,
            "consumption": (
                {**consumption, "label": measured.consumption_source_label(consumption)} if consumption else None
            ),
        }

    def get_connector_label(self, charge: PlannedCharge) -> str | None:
        if charge.connector is None:
            return None
        return f"{charge.connector.charger.name} #{charge.connector.connector_id}"


class ChargingPlanSerializer(serializers.ModelSerializer):
    total_cost = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
    currency = serializers.SerializerMethodField()
    solve_seconds = _rounded(3)
    energy_kwh = _rounded(3)
    peak_kw = _rounded(3, help_text="Peak charging demand inside the main demand charge's window, kW.")
    site_limit_kw = _rounded(3)
    shortfall_kwh = _rounded(3)
    lp_bound = _rounded(2, allow_null=True)
    bound = _rounded(2, allow_null=True)
    gap_pct = _rounded(3, allow_null=True)
    month_peaks_kw = serializers.DictField(
        child=RoundedFloatField(decimals=3),
        read_only=True,
        help_text="Per demand charge of the tariff (by name), the month's peak demand in its periods once this "
        "plan has run, kW: what later nights count as already paid.",
    )

    class Meta:
        model = ChargingPlan
        fields = [
            "id",
            "depot",
            "service_night",
            "version",
            "status",
            "trigger",
            "trigger_detail",
            "created_at",
            "horizon_start",
            "slot_minutes",
            "num_slots",
            "method",
            "solver_status",
            "solve_seconds",
            "energy_kwh",
            "energy_cost",
            "demand_cost",
            "total_cost",
            "currency",
            "peak_kw",
            "month_peaks_kw",
            "site_limit_kw",
            "shortfall_kwh",
            "vehicles_short",
            "lp_bound",
            "bound",
            "gap_pct",
            "optimal",
        ]
        read_only_fields = fields

    def get_currency(self, plan: ChargingPlan) -> str:
        return plan.depot.tariff.currency if plan.depot.tariff else "MXN"


class NightCostSerializer(serializers.Serializer):
    """The night's cost after re-plans: ``total_cost`` of a re-plan is only what remains of the night."""

    delivered = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        help_text="Cost of what the night delivered before this plan started: from the charging sessions' meter "
        "data where it exists, else from the superseded versions' slots (see delivered_source).",
    )
    delivered_source = serializers.ChoiceField(
        choices=[DeliveredSource.METERED, DeliveredSource.PLANNED, DeliveredSource.MIXED, ""],
        help_text="Where the delivered part comes from: metered (the sessions' meter data), planned (the superseded "
        "plans' slots: no meter data), mixed (meter data for some vehicles); empty when nothing was delivered "
        "before this plan.",
    )
    delivered_kwh = serializers.FloatField(help_text="Energy delivered before this plan started (kWh).")
    metered_kwh = serializers.FloatField(help_text="The part of delivered_kwh read from meter data (kWh).")
    remaining_kwh = serializers.FloatField(help_text="This plan's own energy (kWh): its energy_kwh.")
    night_kwh = serializers.FloatField(help_text="The whole night's energy: delivered plus remaining (kWh).")
    remaining = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="This plan's own cost, from its start: its total_cost."
    )
    night = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="The whole night's cost: delivered plus remaining."
    )
    replanned_at = serializers.DateTimeField(
        allow_null=True, help_text="When this plan took over a night in progress; null: it plans the whole night."
    )


class ChargerDeliverySerializer(serializers.Serializer):
    """One charger's delivery of the plan (``charging.plan_delivery.ChargerDelivery``)."""

    charger = serializers.IntegerField(source="charger_id")
    charger_name = serializers.CharField()
    charge_point_id = serializers.CharField(help_text="The charger's OCPP identity; empty when it has none.")
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    status_label = serializers.CharField()
    connected = serializers.BooleanField()
    attempts = serializers.IntegerField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    answered_at = serializers.DateTimeField(allow_null=True)
    answers = serializers.DictField(child=serializers.CharField(), help_text="Per connector id: the charger's answer.")


class ChargingPlanDetailSerializer(ChargingPlanSerializer):
    charges = PlannedChargeSerializer(many=True, read_only=True)
    night_cost = serializers.SerializerMethodField()
    delivery = serializers.SerializerMethodField(
        help_text="Per charger of the depot, whether the plan's charging profiles reached it: accepted, rejected, "
        "error, no_answer (asked again), pending (connected, being sent), offline (sent when it reconnects), "
        "superseded, not_linked (no OCPP link). Null when no OCPP central system is installed."
    )

    class Meta(ChargingPlanSerializer.Meta):
        fields = [*ChargingPlanSerializer.Meta.fields, "night_cost", "charges", "delivery"]
        read_only_fields = fields

    @extend_schema_field(NightCostSerializer)
    def get_night_cost(self, plan: ChargingPlan) -> dict:
        return NightCostSerializer(night_costs([plan])[plan.pk]).data

    @extend_schema_field(ChargerDeliverySerializer(many=True, allow_null=True))
    def get_delivery(self, plan: ChargingPlan) -> list[dict] | None:
        rows = plan_delivery(plan)
        return None if rows is None else list(ChargerDeliverySerializer(rows, many=True).data)


_charges = Prefetch(
    "charges", queryset=PlannedCharge.objects.select_related("vehicle", "connector__charger").order_by("departure_at")
)


@extend_schema_view(
    list=extend_schema(
        summary="Charging plans (every version) of the user's depots",
        parameters=[
            OpenApiParameter("depot", int),
            OpenApiParameter("service_night", OpenApiTypes.DATE),
            OpenApiParameter("status", str, enum=[s.value for s in ChargingPlan.Status]),
        ],
    ),
    retrieve=extend_schema(summary="One plan with every vehicle's connector, times and power per slot"),
)
class ChargingPlanViewSet(ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = ChargingPlan.objects.select_related("depot__tariff")
    serializer_class = ChargingPlanSerializer
    ordering_fields = ["service_night", "version", "created_at"]
    filterset_fields = ["depot", "service_night", "status", "trigger"]

    def get_serializer_class(self):
        return ChargingPlanDetailSerializer if self.action in ("retrieve", "current") else ChargingPlanSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.prefetch_related(_charges) if self.action in ("retrieve", "current") else queryset

    @extend_schema(
        summary="Tonight's active plan of a depot",
        parameters=[
            OpenApiParameter("depot", int, required=True),
            OpenApiParameter("service_night", OpenApiTypes.DATE, description="Default: the current night"),
        ],
        responses={200: ChargingPlanDetailSerializer, 404: OpenApiResponse(description="No plan yet")},
    )
    @action(detail=False, methods=["get"])
    def current(self, request):
        depot = scoped_depot(request, request.query_params.get("depot"))
        active = self.get_queryset().filter(depot=depot, status=ChargingPlan.Status.ACTIVE)
        plan = _first_for(active, "service_night", nights_param(request, depot))
        if plan is None:
            raise Http404("No active plan for that night yet.")
        return Response(self.get_serializer(plan).data)


@extend_schema(
    summary="A vehicle's charge in tonight's active plan: connector, from when, power, departure SoC",
    parameters=[OpenApiParameter("service_night", OpenApiTypes.DATE, description="Default: the current night")],
    responses={200: PlannedChargeSerializer, 404: OpenApiResponse(description="No plan for this vehicle")},
)
class VehiclePlanViewSet(ScopedGenericViewSet):
    queryset = Vehicle.objects.select_related("home_depot")
    serializer_class = PlannedChargeSerializer

    def retrieve(self, request, pk=None):
        vehicle = self.get_object()
        if vehicle.home_depot is None:
            return Response({"detail": "This vehicle has no home depot, so no depot plan."}, status=404)
        charges = PlannedCharge.objects.select_related("vehicle", "connector__charger", "plan__depot").filter(
            vehicle=vehicle, plan__status=ChargingPlan.Status.ACTIVE
        )
        charge = _first_for(charges, "plan__service_night", nights_param(request, vehicle.home_depot))
        if charge is None:
            raise Http404("This vehicle is in no active plan for that night.")
        return Response(self.get_serializer(charge).data)


def scoped_depot(request, depot_id) -> Depot:
    if not depot_id or not str(depot_id).isdigit():
        raise serializers.ValidationError({"depot": ["Give the depot's id."]})
    return get_object_or_404(restrict(Depot.objects.select_related("tariff"), request.user, Action.VIEW), pk=depot_id)


def nights_param(request, depot: Depot) -> list:
    """The night asked for; without one, the night in progress and then the coming one (in the small hours the
    night in progress may have no plan yet while the next one has)."""
    if request.query_params.get("service_night"):
        return [night_param(request, depot)]
    now_night = current_service_night(depot)
    return [now_night, now_night + dt.timedelta(days=1)]


def _first_for(queryset, night_field: str, nights: list):
    for night in nights:
        found = queryset.filter(**{night_field: night}).first()
        if found is not None:
            return found
    return None


def night_param(request, depot: Depot):
    raw = request.query_params.get("service_night")
    if not raw:
        return current_service_night(depot)
    field = serializers.DateField()
    try:
        return field.to_internal_value(raw)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"service_night": exc.detail}) from exc


class DepotEventSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    depot = ScopedPrimaryKeyRelatedField(queryset=Depot.objects.all(), action=Action.OPERATE)
    vehicle = ScopedPrimaryKeyRelatedField(queryset=Vehicle.objects.all(), required=False, allow_null=True)
    connector = ScopedPrimaryKeyRelatedField(queryset=Connector.objects.all(), required=False, allow_null=True)
    block = ScopedPrimaryKeyRelatedField(queryset=Block.objects.all(), required=False, allow_null=True)
    soc_pct = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=100)
    occurred_at = serializers.DateTimeField(required=False)
    client_event_id = serializers.CharField(max_length=64, help_text="Your id for this event; re-sending is safe.")

    class Meta:
        model = DepotEvent
        fields = [
            "id",
            "depot",
            "kind",
            "client_event_id",
            "occurred_at",
            "vehicle",
            "connector",
            "block",
            "soc_pct",
            "note",
            "service_night",
            "received_at",
        ]
        read_only_fields = ["id", "service_night", "received_at"]
        # Re-sending an event id is answered by the service (200 same event, 409 different event), so the
        # serializer must not turn the unique constraint into a 400.
        validators: list = []


@extend_schema_view(
    list=extend_schema(summary="Events reported at the user's depots"),
    retrieve=extend_schema(summary="One event"),
    create=extend_schema(
        summary="Report an event (arrival, plug in/out, connector fault, block change); it triggers a re-plan",
        responses={
            201: DepotEventSerializer,
            200: OpenApiResponse(DepotEventSerializer, description="Already received (same client_event_id)"),
            409: inline_serializer("EventConflict", {"detail": serializers.CharField()}),
        },
    ),
)
class DepotEventViewSet(
    ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin
):
    queryset = DepotEvent.objects.select_related("depot")
    serializer_class = DepotEventSerializer
    filterset_fields = ["depot", "service_night", "kind", "vehicle"]
    ordering_fields = ["occurred_at", "received_at"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        try:
            event, created = depot_event_record(reported_by=request.user, **data)
        except EventConflict as exc:
            raise Conflict(f"Event id {exc} was already used for a different event.") from exc
        return Response(self.get_serializer(event).data, status=status.HTTP_201_CREATED if created else 200)


class AlertSerializer(serializers.ModelSerializer):
    message = serializers.CharField(
        source="text",
        read_only=True,
        help_text="What the alert says, in the request's language (Accept-Language).",
    )
    message_code = serializers.CharField(
        read_only=True, help_text="The message's code (empty for alerts stored before codes: their text is English)."
    )
    message_params = serializers.JSONField(
        read_only=True,
        help_text="The message's parameters; a parameter may itself be a message: {code, params}, or a list of them.",
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "depot",
            "kind",
            "severity",
            "status",
            "message",
            "message_code",
            "message_params",
            "details",
            "vehicle",
            "pack",
            "plan",
            "created_at",
            "updated_at",
            "acknowledged_at",
            "resolved_at",
        ]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="Alerts of the user's depots (open first)"),
    retrieve=extend_schema(summary="One alert"),
)
class AlertViewSet(ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = Alert.objects.all()
    serializer_class = AlertSerializer
    filterset_fields = ["depot", "kind", "severity", "status", "vehicle"]
    ordering_fields = ["created_at", "severity"]

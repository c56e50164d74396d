"""REST API of tariffs and chargers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

if TYPE_CHECKING:
    from rest_framework.validators import Validator
from rest_framework.decorators import action
from rest_framework.response import Response

from charging import selectors, services
from charging.filters import ChargerFilter, ConnectorFilter, TariffFilter
from charging.models import Charger, ChargingPlan, Connector, DemandCharge, Tariff, TariffPeriod, TariffSeason
from config.api import RejectUnknownFieldsMixin
from fleet.api.scoped import ScopedGenericViewSet, ScopedPrimaryKeyRelatedField
from fleet.models import Depot, Organization
from fleet.scoping import Action

# --- Tariffs ------------------------------------------------------------------------------------------------


class TariffPeriodSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = TariffPeriod
        fields = ["id", "day_type", "period", "starts_at", "ends_at", "energy_price_per_kwh"]
        read_only_fields = ["id"]
        validators: list[Validator[Any]] = []


class TariffSeasonSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    periods = TariffPeriodSerializer(many=True, required=False)

    class Meta:
        model = TariffSeason
        fields = ["id", "name", "starts_month", "starts_day", "ends_month", "ends_day", "periods"]
        read_only_fields = ["id"]
        validators: list[Validator[Any]] = []


class DemandChargeSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    applies_in_periods = serializers.ListField(
        child=serializers.CharField(max_length=30),
        required=False,
        help_text=_('Period names where demand counts, e.g. ["punta"]; empty: all hours.'),
    )

    class Meta:
        model = DemandCharge
        fields = ["id", "name", "price_per_kw_month", "applies_in_periods"]
        read_only_fields = ["id"]
        validators: list[Validator[Any]] = []


class TariffSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """A tariff as one document. On update, ``seasons`` / ``demand_charges`` given replace the existing ones."""

    organization: serializers.PrimaryKeyRelatedField[Organization] = ScopedPrimaryKeyRelatedField(
        action=Action.MANAGE, queryset=Organization.objects.all()
    )
    holidays = serializers.ListField(
        child=serializers.DateField(), required=False, help_text=_("Dates priced as Sunday / holiday.")
    )
    seasons = TariffSeasonSerializer(many=True, required=False)
    demand_charges = DemandChargeSerializer(many=True, required=False)

    class Meta:
        model = Tariff
        fields = ["id", "organization", "name", "currency", "holidays", "holiday_calendar", "seasons", "demand_charges"]
        read_only_fields = ["id"]
        validators: list[Validator[Any]] = []

    def validate_holidays(self, value):
        return sorted({day.isoformat() for day in value})  # stored as JSON strings


class TariffUpdateSerializer(TariffSerializer):
    organization: serializers.PrimaryKeyRelatedField[Organization] = serializers.PrimaryKeyRelatedField(read_only=True)


@extend_schema_view(
    list=extend_schema(summary="Tariffs of your organisations"),
    create=extend_schema(summary="Create a tariff with its seasons, periods and demand charges (managers)"),
    update=extend_schema(summary="Replace a tariff (its seasons and demand charges too)"),
    partial_update=extend_schema(summary="Change a tariff; seasons or demand charges given replace the old ones"),
)
class TariffViewSet(ScopedGenericViewSet, viewsets.ModelViewSet):
    queryset = selectors.tariff_queryset()
    serializer_class = TariffSerializer
    update_serializer_class = TariffUpdateSerializer
    write_action = Action.MANAGE
    filterset_class = TariffFilter
    search_fields = ["name"]
    ordering_fields = ["name"]

    def perform_create(self, serializer):
        serializer.instance = services.tariff_create(**serializer.validated_data)

    def perform_update(self, serializer):
        tariff = services.tariff_update(tariff=serializer.instance, data=serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=tariff.pk)  # reload the structure it now has

    def perform_destroy(self, instance):
        services.tariff_delete(tariff=instance)


# --- Chargers -----------------------------------------------------------------------------------------------


class ConnectorBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Connector
        fields = ["id", "connector_id", "standard", "max_kw", "status"]
        read_only_fields = fields


class ChargerSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    depot = ScopedPrimaryKeyRelatedField(action=Action.MANAGE, queryset=Depot.objects.all())
    connectors = ConnectorBriefSerializer(many=True, read_only=True)

    class Meta:
        model = Charger
        fields = ["id", "depot", "ocpp_charge_point_id", "name", "kind", "max_kw", "status", "connectors"]
        read_only_fields = ["id"]
        extra_kwargs = {"max_kw": {"max_value": 10_000}}  # a sanity ceiling: 10 MW (megawatt chargers exist)
        validators: list[Validator[Any]] = []


class ConnectorSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    charger: serializers.PrimaryKeyRelatedField[Charger] = ScopedPrimaryKeyRelatedField(
        action=Action.MANAGE, queryset=Charger.objects.all()
    )

    class Meta:
        model = Connector
        fields = ["id", "charger", "connector_id", "standard", "max_kw", "status"]
        read_only_fields = ["id"]
        validators: list[Validator[Any]] = []


class ConnectorUpdateSerializer(ConnectorSerializer):
    charger: serializers.PrimaryKeyRelatedField[Charger] = serializers.PrimaryKeyRelatedField(read_only=True)


class StatusSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=Charger.Status.choices)


@extend_schema_view(
    list=extend_schema(summary="Chargers of your depots, with their connectors"),
    create=extend_schema(summary="Add a charger (managers); add its connectors under /connectors/"),
)
class ChargerViewSet(ScopedGenericViewSet, viewsets.ModelViewSet):
    queryset = selectors.charger_queryset()
    serializer_class = ChargerSerializer
    write_action = Action.MANAGE
    write_action_by_view_action = {"set_status": Action.OPERATE}
    filterset_class = ChargerFilter
    search_fields = ["name", "ocpp_charge_point_id"]
    ordering_fields = ["name", "max_kw", "status"]

    def get_serializer_class(self):
        return StatusSerializer if self.action == "set_status" else ChargerSerializer

    def perform_create(self, serializer):
        serializer.instance = services.charger_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.charger_update(charger=serializer.instance, data=serializer.validated_data)

    def perform_destroy(self, instance):
        services.charger_delete(charger=instance)

    @extend_schema(
        summary="Report a charger's status (staff): a fault, maintenance, back in service",
        request=StatusSerializer,
        responses={200: ChargerSerializer},
    )
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request, pk=None):
        charger = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        charger = services.charger_set_status(charger=charger, **serializer.validated_data)
        return Response(ChargerSerializer(charger, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="The charger's part of tonight's plan as OCPP SetChargingProfile requests, one per connector",
        parameters=[
            OpenApiParameter("ocpp_version", str, enum=["1.6", "2.0.1"], description="Default 1.6"),
            OpenApiParameter("service_night", OpenApiTypes.DATE, description="Default: the current night"),
        ],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="No active plan for that night")},
    )
    @action(detail=True, methods=["get"], url_path="charging-profiles")
    def charging_profiles(self, request, pk=None):
        from charging.ocpp import charger_profiles
        from charging.plans_api import night_param

        charger = self.get_object()
        version = request.query_params.get("ocpp_version", "1.6")
        if version not in ("1.6", "2.0.1"):
            raise serializers.ValidationError({"ocpp_version": ["Use 1.6 or 2.0.1."]})
        night = night_param(request, charger.depot)
        plan = get_object_or_404(
            ChargingPlan, depot=charger.depot, service_night=night, status=ChargingPlan.Status.ACTIVE
        )
        return Response(
            {
                "charge_point_id": charger.ocpp_charge_point_id,
                "ocpp_version": version,
                "plan": plan.pk,
                "action": "SetChargingProfile",
                "requests": charger_profiles(plan, charger, ocpp_version=version),
            }
        )


class ConnectorViewSet(ScopedGenericViewSet, viewsets.ModelViewSet):
    queryset = selectors.connector_queryset()
    serializer_class = ConnectorSerializer
    update_serializer_class = ConnectorUpdateSerializer
    write_action = Action.MANAGE
    write_action_by_view_action = {"set_status": Action.OPERATE}
    filterset_class = ConnectorFilter
    ordering_fields = ["connector_id", "max_kw", "status"]
    search_fields = ["charger__name"]

    def get_serializer_class(self):
        return StatusSerializer if self.action == "set_status" else super().get_serializer_class()

    def perform_create(self, serializer):
        serializer.instance = services.connector_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.connector_update(connector=serializer.instance, data=serializer.validated_data)

    def perform_destroy(self, instance):
        services.connector_delete(connector=instance)

    @extend_schema(
        summary="Report a connector's status (staff)",
        request=StatusSerializer,
        responses={200: ConnectorSerializer},
    )
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request, pk=None):
        connector = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connector = services.connector_set_status(connector=connector, **serializer.validated_data)
        return Response(ConnectorSerializer(connector, context=self.get_serializer_context()).data)

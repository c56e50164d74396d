"""Serializers of the fleet registry. They check shape and references; services and models check invariants.

Model-level uniqueness is left to the services' ``full_clean`` (``validators = []``): DRF's own unique-together
validators would demand fields the server fills in (a vehicle's organisation comes from its depot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

if TYPE_CHECKING:
    from rest_framework.validators import Validator

from config.api import RejectUnknownFieldsMixin
from fleet.api.scoped import ScopedPrimaryKeyRelatedField
from fleet.models import (
    Block,
    BlockAssignment,
    ConnectorStandard,
    Depot,
    DepotMembership,
    Organization,
    Vehicle,
    VehicleModel,
)
from fleet.scoping import Action
from fleet.selectors import user_manages_organization
from fleet.vin import normalize_vin


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at"]
        read_only_fields = fields


class DepotSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """Everything about a depot; creating one is for superusers (see DepotViewSet)."""

    organization: serializers.PrimaryKeyRelatedField[Organization] = ScopedPrimaryKeyRelatedField(
        action=Action.MANAGE, queryset=Organization.objects.all()
    )
    # The tariff model is the charging app's, above fleet: reached through the relation, not imported.
    tariff = ScopedPrimaryKeyRelatedField(
        action=Action.VIEW,
        queryset=Depot._meta.get_field("tariff").related_model._default_manager.all(),
        required=False,
        allow_null=True,
    )
    base_load_kw = serializers.ListField(
        child=serializers.FloatField(min_value=0),
        required=False,
        help_text=_("Other loads of the site: 24 hourly values in kW, local time (empty: none)."),
    )
    monthly_mean_temperature_c = serializers.ListField(
        child=serializers.FloatField(min_value=-50, max_value=60),
        required=False,
        help_text=_("12 monthly mean temperatures in °C, January first (empty: unknown)."),
    )

    class Meta:
        model = Depot
        fields = [
            "id",
            "organization",
            "name",
            "code",
            "time_zone",
            "latitude",
            "longitude",
            "geofence_radius_m",
            "grid_limit_kw",
            "base_load_kw",
            "tariff",
            "planning_time",
            "monthly_mean_temperature_c",
        ]
        read_only_fields = ["id"]
        # A sanity ceiling (1 GW): a typo of a few digits is a 400, not a depot the planner never limits.
        extra_kwargs = {"grid_limit_kw": {"max_value": 1_000_000}}
        validators: list[Validator[Any]] = []


class DepotUpdateSerializer(DepotSerializer):
    """What a depot's managers may change: its grid connection, tariff, planning time and climate."""

    organization: serializers.PrimaryKeyRelatedField[Organization] = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta(DepotSerializer.Meta):
        read_only_fields = ["id", "name", "code", "time_zone", "latitude", "longitude"]


class DepotMembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = DepotMembership
        fields = ["id", "depot", "user", "username", "role"]
        read_only_fields = fields


class VehicleModelSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    charging_taper = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        required=False,
        help_text=_("Charging power limit by SoC: [[soc %, kW], ...] in increasing SoC."),
    )
    connector_standards = serializers.ListField(
        child=serializers.ChoiceField(choices=ConnectorStandard.choices),
        required=False,
        help_text=_(
            "Connector standards the vehicle charges by. Left out: CCS2 for DC power; Type 2, J1772 and a "
            "household outlet for AC."
        ),
    )
    max_charge_kw = serializers.FloatField(read_only=True)

    class Meta:
        model = VehicleModel
        fields = [
            "id",
            "manufacturer",
            "name",
            "kind",
            "chemistry",
            "nominal_pack_kwh",
            "usable_soc_min_pct",
            "usable_soc_max_pct",
            "consumption_kwh_per_km",
            "max_ac_kw",
            "max_dc_kw",
            "max_charge_kw",
            "charging_taper",
            "connector_standards",
        ]
        read_only_fields = ["id", "max_charge_kw"]
        validators: list[Validator[Any]] = []


class VehicleSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """A vehicle. Its organisation is its home depot's; only a car with no depot names one (that you manage)."""

    organization: serializers.PrimaryKeyRelatedField[Organization] = ScopedPrimaryKeyRelatedField(
        action=Action.MANAGE,
        queryset=Organization.objects.all(),
        required=False,
        help_text=_("Only for a vehicle with no home depot; otherwise it is the home depot's organisation."),
    )
    home_depot = ScopedPrimaryKeyRelatedField(
        action=Action.OPERATE, queryset=Depot.objects.all(), required=False, allow_null=True
    )
    model = serializers.PrimaryKeyRelatedField(queryset=VehicleModel.objects.all())

    class Meta:
        model = Vehicle
        fields = ["id", "organization", "fleet_number", "vin", "plate", "model", "home_depot", "status", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators: list[Validator[Any]] = []

    def validate_vin(self, value: str) -> str:
        return normalize_vin(value)

    def validate(self, attrs):
        depot = attrs.get("home_depot")
        organization = attrs.get("organization")
        if depot is not None:
            if organization is not None and organization != depot.organization:
                raise serializers.ValidationError(
                    {"organization": _("A vehicle belongs to its home depot's organisation.")}
                )
            attrs["organization"] = depot.organization
        elif organization is None:
            raise serializers.ValidationError(
                {"organization": _("A vehicle with no home depot needs an organisation that you manage.")}
            )
        return attrs


class VehicleUpdateSerializer(VehicleSerializer):
    organization: serializers.PrimaryKeyRelatedField[Organization] = serializers.PrimaryKeyRelatedField(read_only=True)

    def validate(self, attrs):
        # Leaving every depot makes the vehicle an organisation-level row: that is a manager's decision.
        vehicle = self.instance  # an update serializer always has its row
        leaves_depot = "home_depot" in attrs and attrs["home_depot"] is None
        if (
            vehicle is not None
            and leaves_depot
            and vehicle.home_depot_id
            and not user_manages_organization(self.context["request"].user, vehicle.organization)
        ):
            raise serializers.ValidationError(
                {"home_depot": _("Only the organisation's managers may take a vehicle out of every depot.")}
            )
        return attrs


class BlockSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    depot: serializers.PrimaryKeyRelatedField[Depot] = ScopedPrimaryKeyRelatedField(
        action=Action.OPERATE, queryset=Depot.objects.all()
    )
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        required=False,
        help_text=_("Days a weekly block runs, 0 = Monday ... 6 = Sunday (empty for a dated block)."),
    )

    class Meta:
        model = Block
        fields = [
            "id",
            "depot",
            "code",
            "service_date",
            "weekdays",
            "valid_from",
            "valid_until",
            "departs_at",
            "returns_at",
            "distance_km",
            "planned_energy_kwh",
        ]
        read_only_fields = ["id"]
        validators: list[Validator[Any]] = []


class BlockUpdateSerializer(BlockSerializer):
    depot: serializers.PrimaryKeyRelatedField[Depot] = serializers.PrimaryKeyRelatedField(read_only=True)


class BlockAssignmentSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    block = ScopedPrimaryKeyRelatedField(action=Action.OPERATE, queryset=Block.objects.select_related("depot"))
    vehicle = ScopedPrimaryKeyRelatedField(action=Action.OPERATE, queryset=Vehicle.objects.all())
    service_date = serializers.DateField(
        required=False, help_text=_("Defaults to the block's service date for a dated block.")
    )
    block_code = serializers.CharField(source="block.code", read_only=True)
    vehicle_fleet_number = serializers.CharField(source="vehicle.fleet_number", read_only=True)

    class Meta:
        model = BlockAssignment
        fields = [
            "id",
            "block",
            "block_code",
            "vehicle",
            "vehicle_fleet_number",
            "service_date",
            "starts_at",
            "ends_at",
        ]
        read_only_fields = ["id", "starts_at", "ends_at"]
        validators: list[Validator[Any]] = []

    def validate(self, attrs):
        if "service_date" not in attrs:
            if attrs["block"].service_date is None:
                raise serializers.ValidationError(
                    {"service_date": _("A weekly block needs the date of the assignment.")}
                )
            attrs["service_date"] = attrs["block"].service_date
        return attrs

"""REST API of the battery registry: packs (and swapping them), their installation history, health observations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status

if TYPE_CHECKING:
    from rest_framework.validators import Validator
from rest_framework.decorators import action
from rest_framework.response import Response

from batteries import selectors, services
from batteries.filters import BatteryPackFilter, HealthObservationFilter, PackInstallationFilter
from batteries.models import BatteryPack, HealthObservation, PackInstallation
from config.api import RejectUnknownFieldsMixin
from fleet.api.scoped import ScopedGenericViewSet, ScopedPrimaryKeyRelatedField
from fleet.models import Organization, Vehicle
from fleet.scoping import Action

# --- Serializers ------------------------------------------------------------------------------------------


class PackInstallationSerializer(serializers.ModelSerializer):
    pack_serial = serializers.CharField(source="pack.serial", read_only=True)
    vehicle_fleet_number = serializers.CharField(source="vehicle.fleet_number", read_only=True)

    class Meta:
        model = PackInstallation
        fields = ["id", "pack", "pack_serial", "vehicle", "vehicle_fleet_number", "installed_at", "removed_at"]
        read_only_fields = fields


class ActiveInstallationSerializer(serializers.ModelSerializer):
    vehicle_fleet_number = serializers.CharField(source="vehicle.fleet_number", read_only=True)
    home_depot = serializers.IntegerField(source="vehicle.home_depot_id", read_only=True, allow_null=True)

    class Meta:
        model = PackInstallation
        fields = ["id", "vehicle", "vehicle_fleet_number", "home_depot", "installed_at"]
        read_only_fields = fields


class BatteryPackSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    organization: serializers.PrimaryKeyRelatedField[Organization] = ScopedPrimaryKeyRelatedField(
        action=Action.MANAGE, queryset=Organization.objects.all()
    )
    active_installation = serializers.SerializerMethodField(
        help_text=_("The vehicle the pack is in now (null: a spare). Changed with the install action.")
    )
    latest_soh_pct = serializers.SerializerMethodField(help_text=_("SoH of the latest health observation, %."))

    class Meta:
        model = BatteryPack
        fields = [
            "id",
            "organization",
            "serial",
            "chemistry",
            "nominal_kwh",
            "nominal_ah",
            "cells_in_series",
            "cells_in_parallel",
            "manufactured_on",
            "as_new_capacity_kwh",
            "warranty_years",
            "warranty_km",
            "warranty_min_soh_pct",
            "active_installation",
            "latest_soh_pct",
        ]
        read_only_fields = ["id"]
        # Sanity ceilings (a 100 MWh pack, a million Ah): typos of a few digits are a 400.
        extra_kwargs = {"nominal_kwh": {"max_value": 100_000}, "nominal_ah": {"max_value": 1_000_000}}
        validators: list[Validator[Any]] = []

    @extend_schema_field(ActiveInstallationSerializer(allow_null=True))
    def get_active_installation(self, pack: BatteryPack) -> dict | None:
        installations = getattr(pack, "active_installations", None)
        if installations is None:  # a pack just written, not loaded through selectors.pack_queryset
            installations = list(pack.installations.filter(removed_at__isnull=True).select_related("vehicle"))
        return ActiveInstallationSerializer(installations[0]).data if installations else None

    def get_latest_soh_pct(self, pack: BatteryPack) -> float | None:
        if hasattr(pack, "latest_observed_soh_pct"):
            return pack.latest_observed_soh_pct
        return selectors.latest_soh_pct(pack)


class BatteryPackUpdateSerializer(BatteryPackSerializer):
    organization: serializers.PrimaryKeyRelatedField[Organization] = serializers.PrimaryKeyRelatedField(read_only=True)


class PackInstallRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    past_timestamps = ("installed_at",)  # a swap that happened; a future one is a clock error
    vehicle = ScopedPrimaryKeyRelatedField(action=Action.MANAGE, queryset=Vehicle.objects.all())
    installed_at = serializers.DateTimeField(required=False, help_text=_("When the swap happened (default: now)."))


class PackRemoveRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    past_timestamps = ("removed_at",)
    removed_at = serializers.DateTimeField(required=False, help_text=_("When the pack came out (default: now)."))


class HealthObservationSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    past_timestamps = ("observed_at",)  # a reading taken; a future one is a clock error
    pack = ScopedPrimaryKeyRelatedField(action=Action.OPERATE, queryset=BatteryPack.objects.all())
    # DRF's metaclass moves declared fields into _declared_fields: this never shadows Field.source, the stubs
    # cannot know that.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=HealthObservation.Source.choices,
        help_text=_("Through the API only capacity_test or manual; telemetry estimates come from the jobs."),
    )

    class Meta:
        model = HealthObservation
        fields = [
            "id",
            "pack",
            "observed_at",
            "source",
            "soh_pct",
            "capacity_kwh",
            "uncertainty_pct",
            "resistance_mohm",
            "notes",
        ]
        read_only_fields = ["id"]
        validators: list[Validator[Any]] = []

    def validate_source(self, value: str) -> str:
        if value == HealthObservation.Source.TELEMETRY:
            raise serializers.ValidationError(
                _("Telemetry estimates are recorded by the overnight jobs; use capacity_test or manual.")
            )
        return value


# --- Viewsets ---------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Battery packs in your depots' vehicles (and spares, for managers)"),
    create=extend_schema(summary="Register a pack (managers)"),
)
class BatteryPackViewSet(
    ScopedGenericViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
):
    queryset = selectors.pack_queryset()
    serializer_class = BatteryPackSerializer
    write_action = Action.MANAGE
    scope_distinct = True  # the scope follows installations (to-many)
    filterset_class = BatteryPackFilter
    search_fields = ["serial"]
    ordering_fields = ["serial", "manufactured_on", "nominal_kwh", "latest_observed_soh_pct"]

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return BatteryPackUpdateSerializer
        if self.action == "install":
            return PackInstallRequestSerializer
        if self.action == "remove":
            return PackRemoveRequestSerializer
        return BatteryPackSerializer

    def perform_create(self, serializer):
        serializer.instance = services.pack_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.pack_update(pack=serializer.instance, data=serializer.validated_data)

    @extend_schema(
        summary="Install the pack in a vehicle (a swap closes the current installations; history is kept)",
        request=PackInstallRequestSerializer,
        responses={201: PackInstallationSerializer},
    )
    @action(detail=True, methods=["post"])
    def install(self, request, pk=None):
        pack = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        installation = services.pack_install(pack=pack, **serializer.validated_data)
        return Response(PackInstallationSerializer(installation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Take the pack out of its vehicle (it becomes a spare)",
        request=PackRemoveRequestSerializer,
        responses={204: None},
    )
    @action(detail=True, methods=["post"])
    def remove(self, request, pk=None):
        pack = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.pack_remove(pack=pack, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PackInstallationViewSet(ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Which pack was in which vehicle when: the history swaps leave behind."""

    queryset = selectors.pack_installation_queryset()
    serializer_class = PackInstallationSerializer
    filterset_class = PackInstallationFilter
    search_fields = ["pack__serial", "vehicle__fleet_number"]
    ordering_fields = ["installed_at", "removed_at"]


@extend_schema_view(
    create=extend_schema(
        summary="Record a capacity test or a manual SoH reading",
        description="Re-sending the same pack, time and source updates that observation (200) instead of "
        "adding a second one (201).",
        responses={201: HealthObservationSerializer, 200: HealthObservationSerializer},
    ),
)
class HealthObservationViewSet(
    ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin
):
    queryset = selectors.health_observation_queryset()
    serializer_class = HealthObservationSerializer
    filterset_class = HealthObservationFilter
    search_fields = ["pack__serial", "notes"]
    ordering_fields = ["observed_at", "soh_pct"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        observation, created = services.health_observation_record(**serializer.validated_data)
        return Response(
            self.get_serializer(observation).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

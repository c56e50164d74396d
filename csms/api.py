"""Read-only API of the chargers' link: charge points (connected, statuses) and profile deliveries per plan."""

from __future__ import annotations

from rest_framework import mixins, serializers

from csms.models import ChargePoint, ProfileDelivery
from fleet.api.scoped import ScopedGenericViewSet


class ChargePointSerializer(serializers.ModelSerializer):
    charge_point_id = serializers.CharField(source="charger.ocpp_charge_point_id", read_only=True)

    class Meta:
        model = ChargePoint
        fields = ["id", "charger", "charge_point_id", "ocpp_version", "connected", "connected_at",
                  "disconnected_at", "last_seen_at", "last_heartbeat_at", "booted_at", "vendor", "model",
                  "firmware_version", "serial_number", "connector_states"]  # fmt: skip
        read_only_fields = fields


class ProfileDeliverySerializer(serializers.ModelSerializer):
    charge_point_id = serializers.CharField(source="charge_point.charger.ocpp_charge_point_id", read_only=True)
    charger = serializers.IntegerField(source="charge_point.charger_id", read_only=True)

    class Meta:
        model = ProfileDelivery
        fields = ["id", "plan", "charger", "charge_point_id", "status", "attempts", "created_at", "last_attempt_at",
                  "answered_at", "answers"]  # fmt: skip
        read_only_fields = fields


class ChargePointViewSet(ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = ChargePoint.objects.select_related("charger").order_by("charger__name")
    serializer_class = ChargePointSerializer
    filterset_fields = ["charger", "charger__depot", "connected", "ocpp_version"]


class ProfileDeliveryViewSet(ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """What each charger answered to each plan's SetChargingProfile (filter by ``plan``)."""

    queryset = ProfileDelivery.objects.select_related("charge_point__charger").order_by("-created_at", "pk")
    serializer_class = ProfileDeliverySerializer
    filterset_fields = ["plan", "status", "charge_point"]

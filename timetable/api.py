"""API of the timetable app: run the energy-aware assignment for a depot's day; pin a bus to a block."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import RejectUnknownFieldsMixin
from fleet.api.scoped import ScopedGenericViewSet, ScopedPrimaryKeyRelatedField
from fleet.models import Block, Depot, Vehicle
from fleet.scoping import Action
from timetable import services
from timetable.models import PinnedAssignment

PLAN_DAYS_AHEAD = 31  # how far ahead an assignment run may also plan the charging night


class AssignmentRunSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    service_date = serializers.DateField()
    dry_run = serializers.BooleanField(default=False)
    with_charging_plan = serializers.BooleanField(
        default=False,
        help_text=_(
            "Plan the night before with the assignment and re-assign with the plan's pull-out SoC until the two "
            "agree (at most 4 plans)."
        ),
    )

    def validate(self, attrs: dict) -> dict:
        # A charging plan needs tonight's tariff, holidays and the fleet as it is: only near nights can be planned.
        if attrs.get("with_charging_plan"):
            today = timezone.localdate()
            earliest, latest = today - dt.timedelta(days=1), today + dt.timedelta(days=PLAN_DAYS_AHEAD)
            if not earliest <= attrs["service_date"] <= latest:
                raise serializers.ValidationError(
                    {
                        "service_date": _(
                            "With a charging plan, the service date must be between %(earliest)s and %(latest)s."
                        )
                        % {"earliest": earliest.isoformat(), "latest": latest.isoformat()}
                    }
                )
        return attrs


class DepotAssignmentViewSet(ScopedGenericViewSet):
    """The energy-aware assignment of a depot's day, addressed by the depot: another depot is a 404, a viewer's
    run a 403."""

    queryset = Depot.objects.all()
    serializer_class = AssignmentRunSerializer

    @extend_schema(
        request=AssignmentRunSerializer,
        responses={200: OpenApiResponse(description="the run's result (docs/timetable.md)"), 400: None, 403: None},
    )
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str | None = None) -> Response:
        """Assign the depot's buses to its blocks on ``service_date`` by energy (pinned assignments are kept).

        The answer lists every assignment with the bus's energy left above its reserve, every uncovered block
        with the reason, and how many buses the naive first-free-bus rule would have left below their reserve."""
        depot = self.get_object()
        serializer = AssignmentRunSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["with_charging_plan"]:
            result = services.vehicles_assign_with_plan(
                depot=depot, service_date=data["service_date"], dry_run=data["dry_run"]
            )
        else:
            result = services.vehicles_assign(depot=depot, service_date=data["service_date"], dry_run=data["dry_run"])
        return Response(result, status=status.HTTP_200_OK)


class PinSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    block = ScopedPrimaryKeyRelatedField(action=Action.OPERATE, queryset=Block.objects.select_related("depot"))
    vehicle = ScopedPrimaryKeyRelatedField(action=Action.OPERATE, queryset=Vehicle.objects.all())

    class Meta:
        model = PinnedAssignment
        fields = ["id", "block", "vehicle", "service_date", "pinned_at"]
        read_only_fields = ["id", "pinned_at"]
        validators: list[object] = []


class PinViewSet(
    ScopedGenericViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
):
    """Assignments pinned by hand: created through fleet's ``block_assign`` checks, kept by the optimiser."""

    queryset = PinnedAssignment.objects.select_related("block__depot", "vehicle")
    serializer_class = PinSerializer

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.assignment_pin(
            block=data["block"], vehicle=data["vehicle"], service_date=data["service_date"], user=self.request.user
        )

    def perform_destroy(self, instance: PinnedAssignment) -> None:
        services.assignment_unpin(pin=instance)

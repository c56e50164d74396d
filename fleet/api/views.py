"""Viewsets of the fleet registry: thin; reads through selectors, writes through fleet.services."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, viewsets

from config.api import destroy_or_conflict
from config.services import model_create, model_update
from fleet import selectors, services
from fleet.api import serializers as s
from fleet.api.scoped import ScopedGenericViewSet
from fleet.filters import (
    BlockAssignmentFilter,
    BlockFilter,
    DepotFilter,
    DepotMembershipFilter,
    VehicleFilter,
    VehicleModelFilter,
)
from fleet.models import DepotMembership, Organization, VehicleModel
from fleet.scoping import Action


class SuperuserCreates(permissions.BasePermission):
    message = _("Only a superuser may create this.")

    def has_permission(self, request, view):
        return view.action != "create" or request.user.is_superuser


class SuperuserWrites(permissions.BasePermission):
    message = _("The catalogue is read-only; a superuser maintains it.")

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or request.user.is_superuser


@extend_schema_view(
    list=extend_schema(summary="Organisations you belong to"),
    retrieve=extend_schema(summary="One organisation"),
)
class OrganizationViewSet(ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = Organization.objects.all()
    serializer_class = s.OrganizationSerializer
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "created_at"]


@extend_schema_view(
    list=extend_schema(summary="Depots you belong to"),
    create=extend_schema(summary="Create a depot (superusers)"),
    update=extend_schema(summary="Change a depot's grid limit, base load, tariff, planning time or climate"),
    partial_update=extend_schema(summary="Change some of a depot's operating settings (managers)"),
)
class DepotViewSet(
    ScopedGenericViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
):
    queryset = selectors.depot_queryset()
    serializer_class = s.DepotSerializer
    update_serializer_class = s.DepotUpdateSerializer
    permission_classes = [*ScopedGenericViewSet.permission_classes, SuperuserCreates]
    write_action = Action.MANAGE
    filterset_class = DepotFilter
    search_fields = ["name", "code"]
    ordering_fields = ["name", "code", "grid_limit_kw"]

    def perform_create(self, serializer):
        serializer.instance = services.depot_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.depot_update(depot=serializer.instance, data=serializer.validated_data)


@extend_schema_view(list=extend_schema(summary="Your memberships, and everyone's in the depots you manage"))
class DepotMembershipViewSet(ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = DepotMembership.objects.none()  # names the model for the schema; rows come from get_queryset
    serializer_class = s.DepotMembershipSerializer
    filterset_class = DepotMembershipFilter
    search_fields = ["user__username"]
    ordering_fields = ["depot", "role"]

    def get_queryset(self):
        return selectors.memberships_visible_to(self.request.user)


class VehicleModelViewSet(viewsets.ModelViewSet):
    """The make-and-model catalogue: shared by every organisation, maintained by superusers."""

    queryset = VehicleModel.objects.all()
    serializer_class = s.VehicleModelSerializer
    permission_classes = [permissions.IsAuthenticated, SuperuserWrites]
    filterset_class = VehicleModelFilter
    search_fields = ["manufacturer", "name"]
    ordering_fields = ["manufacturer", "name", "nominal_pack_kwh"]

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.instance = model_create(VehicleModel, **serializer.validated_data)

    def perform_update(self, serializer):
        fields = [name for name, field in serializer.fields.items() if not field.read_only]
        with transaction.atomic():
            serializer.instance = model_update(
                instance=serializer.instance, fields=fields, data=serializer.validated_data
            )[0]

    def perform_destroy(self, instance):
        destroy_or_conflict(instance)


class VehicleViewSet(ScopedGenericViewSet, viewsets.ModelViewSet):
    queryset = selectors.vehicle_queryset()
    serializer_class = s.VehicleSerializer
    update_serializer_class = s.VehicleUpdateSerializer
    filterset_class = VehicleFilter
    search_fields = ["fleet_number", "vin", "plate"]
    ordering_fields = ["fleet_number", "vin", "status", "created_at"]

    def perform_create(self, serializer):
        serializer.instance = services.vehicle_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.vehicle_update(vehicle=serializer.instance, data=serializer.validated_data)


class BlockViewSet(ScopedGenericViewSet, viewsets.ModelViewSet):
    queryset = selectors.block_queryset()
    serializer_class = s.BlockSerializer
    update_serializer_class = s.BlockUpdateSerializer
    filterset_class = BlockFilter
    search_fields = ["code"]
    ordering_fields = ["code", "service_date", "departs_at", "distance_km"]

    def perform_create(self, serializer):
        serializer.instance = services.block_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.block_update(block=serializer.instance, data=serializer.validated_data)


@extend_schema_view(
    create=extend_schema(
        summary="Assign a vehicle to a block on a service date",
        description="Rejected (400, reason under `vehicle`) when the vehicle already does an overlapping block. "
        "Assigning a block and date that already has a vehicle gives it to the new vehicle.",
    ),
)
class BlockAssignmentViewSet(
    ScopedGenericViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
):
    queryset = selectors.block_assignment_queryset()
    serializer_class = s.BlockAssignmentSerializer
    filterset_class = BlockAssignmentFilter
    search_fields = ["block__code", "vehicle__fleet_number"]
    ordering_fields = ["starts_at", "service_date"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.block_assign(
            block=data["block"], vehicle=data["vehicle"], service_date=data["service_date"]
        )

    def perform_destroy(self, instance):
        services.block_unassign(assignment=instance)

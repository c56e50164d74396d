"""Reads of the fleet registry. Every function that answers a user takes the user and goes through restrict()."""

from __future__ import annotations

from django.db.models import QuerySet

from fleet.models import Block, BlockAssignment, Depot, DepotMembership, Organization, Vehicle
from fleet.scoping import Action, restrict


def vehicle_queryset() -> QuerySet[Vehicle]:
    """Vehicles with what their list shows, in one query (callers restrict it)."""
    return Vehicle.objects.select_related("organization", "model", "home_depot")


def depot_queryset() -> QuerySet[Depot]:
    return Depot.objects.select_related("organization", "tariff")


def block_queryset() -> QuerySet[Block]:
    return Block.objects.select_related("depot")


def block_assignment_queryset() -> QuerySet[BlockAssignment]:
    return BlockAssignment.objects.select_related("block__depot", "vehicle")


def memberships_visible_to(user) -> QuerySet[DepotMembership]:
    """A member sees their own memberships; a depot's managers see everyone's in that depot."""
    mine = DepotMembership.objects.filter(user_id=user.pk) if user.is_authenticated else DepotMembership.objects.none()
    managed = restrict(DepotMembership.objects.all(), user, Action.MANAGE)
    return (mine | managed).select_related("user", "depot")


def user_manages_organization(user, organization: Organization) -> bool:
    return restrict(Organization.objects.filter(pk=organization.pk), user, Action.MANAGE).exists()


def depot_vehicle_ids(depot: Depot) -> list[int]:
    """The depot's vehicles that still run (not retired): what its nightly jobs cover."""
    return list(depot.vehicles.exclude(status=Vehicle.Status.RETIRED).values_list("pk", flat=True))


def depotless_vehicle_ids() -> list[int]:
    """Vehicles with no home depot (cars charging from outlets), not retired: covered by daily, not per-depot, jobs."""
    return list(
        Vehicle.objects.filter(home_depot__isnull=True)
        .exclude(status=Vehicle.Status.RETIRED)
        .values_list("pk", flat=True)
    )

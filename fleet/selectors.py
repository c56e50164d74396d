"""Reads of the fleet registry. Every function that answers a user takes the user and goes through restrict()."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Count, QuerySet

from fleet.models import Block, BlockAssignment, Depot, DepotMembership, Organization, Vehicle
from fleet.scoping import Action, restrict

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


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


def all_depots() -> QuerySet[Depot]:
    """Every depot of every organisation, with its organisation, oldest first: what the overnight machinery
    covers (commands, schedules, health checks; no user to scope to)."""
    return Depot.objects.select_related("organization").order_by("pk")


def depots_with_code(code: str, *, organization_slug: str = "") -> list[Depot]:
    """The depots whose code is ``code`` (any case), in the organisation ``organization_slug`` when given."""
    depots = all_depots().filter(code__iexact=code)
    if organization_slug:
        depots = depots.filter(organization__slug=organization_slug)
    return list(depots)


def depot_codes() -> list[str]:
    return list(Depot.objects.order_by("code").values_list("code", flat=True))


def depots_visible_to(user) -> list[Depot]:
    """The depots ``user`` may see, with their organisation, by name. One query."""
    return list(restrict(Depot.objects.all(), user, Action.VIEW).select_related("organization").order_by("name", "pk"))


@dataclass(frozen=True)
class VehicleCounts:
    by_status: list[tuple[str, StrOrPromise, int]]  # (status, label, count) for every status, in the model's order
    in_service: int


def vehicle_counts_by_depot(user, depot_ids: list[int]) -> dict[int, VehicleCounts]:
    """Per depot of ``depot_ids``, the vehicles based there that ``user`` may see, counted by status. One query."""
    counts: dict[int, dict[str, int]] = {depot_id: {} for depot_id in depot_ids}
    vehicles = restrict(Vehicle.objects.filter(home_depot_id__in=depot_ids), user, Action.VIEW)
    for row in vehicles.order_by().values("home_depot_id", "status").annotate(n=Count("pk")):
        counts[row["home_depot_id"]][row["status"]] = row["n"]
    return {
        depot_id: VehicleCounts(
            by_status=[(status, label, by_status.get(status, 0)) for status, label in Vehicle.Status.choices],
            in_service=by_status.get(Vehicle.Status.IN_SERVICE, 0),
        )
        for depot_id, by_status in counts.items()
    }

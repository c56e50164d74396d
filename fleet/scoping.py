"""The one place that decides which depots' data a user may see or change.

Every queryset served to a user (API, admin, exports) goes through ``restrict(queryset, user, action)``.
Models say how they reach a depot by mixing in ``DepotScoped`` (defined in ``fleet.models.scoped`` so that
models never import this module, re-exported here); nothing else in the code base filters by membership by hand.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from fleet.models import Depot, DepotMembership, Organization
from fleet.models.scoped import DepotScoped, OrganizationScoped, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

# The mixins and roles are re-exported: code and older migrations (``bases=(fleet.scoping.DepotScoped, ...)``)
# import them from here.
__all__ = [
    "ROLES_ALLOWED",
    "Action",
    "DepotScoped",
    "OrganizationScoped",
    "Role",
    "can",
    "depot_ids_for",
    "organization_ids_for",
    "restrict",
]


class Action(StrEnum):
    VIEW = "view"  # any member: manager, staff or viewer
    OPERATE = "operate"  # day-to-day changes: manager or staff (arrivals, faults, vehicles, blocks)
    MANAGE = "manage"  # depot settings, tariffs, memberships: managers only


ROLES_ALLOWED = {
    Action.VIEW: (Role.MANAGER, Role.STAFF, Role.VIEWER),
    Action.OPERATE: (Role.MANAGER, Role.STAFF),
    Action.MANAGE: (Role.MANAGER,),
}


def _is_unrestricted(user) -> bool:
    return bool(user and user.is_active and user.is_superuser)


def depot_ids_for(user: AbstractBaseUser | AnonymousUser, action: Action = Action.VIEW) -> QuerySet:
    """The ids of the depots where ``user`` holds a role allowing ``action`` (a subquery, not a list)."""
    if _is_unrestricted(user):
        return Depot.objects.values("pk")
    if not (user and user.is_authenticated and user.is_active):
        return Depot.objects.none().values("pk")
    return DepotMembership.objects.filter(user_id=user.pk, role__in=ROLES_ALLOWED[Action(action)]).values("depot_id")


def organization_ids_for(user, action: Action = Action.VIEW) -> QuerySet:
    """Organisations in which ``user`` holds a role allowing ``action`` in at least one depot."""
    if _is_unrestricted(user):
        return Organization.objects.values("pk")
    if not (user and user.is_authenticated and user.is_active):
        return Organization.objects.none().values("pk")
    return DepotMembership.objects.filter(user=user, role__in=ROLES_ALLOWED[Action(action)]).values(
        "depot__organization_id"
    )


def restrict(queryset: QuerySet, user, action: Action = Action.VIEW) -> QuerySet:
    """``queryset`` narrowed to the rows ``user`` may ``action``; superusers see everything."""
    if _is_unrestricted(user):
        return queryset
    model = queryset.model
    depot_ids = depot_ids_for(user, action)
    # Org-level rows (no depot) are a manager's business, whatever the action.
    managed_org_ids = organization_ids_for(user, Action.MANAGE)
    if issubclass(model, OrganizationScoped):
        org_action = Action.VIEW if Action(action) == Action.VIEW else Action.MANAGE
        q = model.scope_q(depot_ids, managed_org_ids, member_organization_ids=organization_ids_for(user, org_action))
    elif issubclass(model, DepotScoped):
        q = model.scope_q(depot_ids, managed_org_ids)
    else:
        raise TypeError(f"{model.__name__} declares no depot scope: mix in DepotScoped or OrganizationScoped")
    return queryset.filter(q)


def can(user, action: Action, obj) -> bool:
    """Whether ``user`` may ``action`` this one object (used by the admin's per-object permissions)."""
    return restrict(type(obj)._default_manager.filter(pk=obj.pk), user, action).exists()

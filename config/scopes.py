"""How a model says which depot (or organisation) its rows belong to, and the membership roles.

The model half of ``fleet.scoping``: models mix these in, and ``fleet.scoping.restrict`` reads them. It lives
below every app, importing none, so that any app's models (the ``jobs`` app's job records too) declare their
scope without importing the module that queries them. ``fleet.scoping`` and ``fleet.models.scoped`` re-export
every name; ``fleet.scoping.DepotScoped`` is also the path older migrations record in their ``bases``: keep
those re-exports.
"""

from __future__ import annotations

from enum import StrEnum

from django.db.models import Q, QuerySet


class Role(StrEnum):
    MANAGER = "manager"
    STAFF = "staff"
    VIEWER = "viewer"


class DepotScoped:
    """Mixin for models whose rows belong to a depot.

    ``depot_path`` is the ORM path from the model to the depot's primary key. Rows with no depot (a car
    that charges away from any depot, a spare pack) belong to their organisation: ``organization_path``
    lets the organisation's managers see them.
    """

    depot_path: str = "depot"
    organization_path: str | None = None

    @classmethod
    def scope_q(cls, depot_ids: QuerySet, managed_organization_ids: QuerySet) -> Q:
        q = Q(**{f"{cls.depot_path}__in": depot_ids})
        if cls.organization_path:
            q |= Q(
                **{
                    f"{cls.depot_path}__isnull": True,
                    f"{cls.organization_path}__in": managed_organization_ids,
                }
            )
        return q


class OrganizationScoped:
    """Mixin for organisation-wide rows (tariffs): visible to any member, changed by its managers."""

    organization_path: str = "organization"

    @classmethod
    def scope_q(cls, depot_ids: QuerySet, managed_organization_ids: QuerySet, *, member_organization_ids) -> Q:
        return Q(**{f"{cls.organization_path}__in": member_organization_ids})

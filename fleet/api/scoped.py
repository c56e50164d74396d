"""Depot scoping for DRF: viewsets and relation fields narrow every queryset with ``fleet.scoping.restrict``,
so another depot's object is a 404 when addressed by URL and a 400 "does not exist" when referenced in a body."""

from django.utils.translation import gettext_lazy as _
from rest_framework import generics, permissions, serializers, viewsets

from config.api import destroy_or_conflict
from fleet.scoping import Action, depot_ids_for, restrict

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def request_action(request, write_action: Action = Action.OPERATE) -> Action:
    return write_action if request.method in WRITE_METHODS else Action.VIEW


class DepotScopedViewSetMixin(generics.GenericAPIView):
    """``get_queryset`` restricted to the user's depots. Reads need any role, writes ``write_action``.

    A row the user may see but not change answers 403 on writes (via ``ScopedWritePermission``); a row the
    user may not see answers 404. ``write_action_by_view_action`` lets one extra action ask for less (e.g.
    staff may set a charger's status where only managers may change the charger). Set ``scope_distinct``
    for models whose scope follows a to-many relation (battery packs): the join would repeat rows.
    A delete that other rows still protect answers 409 with the reason, not a 500.
    """

    write_action: Action = Action.OPERATE
    write_action_by_view_action: dict[str, Action] = {}
    scope_distinct: bool = False

    def get_write_action(self) -> Action:
        action: str | None = getattr(self, "action", None)  # set by the viewset router, not by plain views
        if action is None:
            return self.write_action
        return self.write_action_by_view_action.get(action, self.write_action)

    def _scoped(self, queryset, action: Action):
        scoped = restrict(queryset, self.request.user, action)
        if self.scope_distinct:
            # A subquery rather than DISTINCT: ordering by any field stays possible on PostgreSQL.
            return queryset.filter(pk__in=scoped.values("pk"))
        return scoped

    def get_queryset(self):
        return self._scoped(super().get_queryset(), Action.VIEW)

    def get_write_queryset(self):
        return self._scoped(super().get_queryset(), self.get_write_action())

    def perform_destroy(self, instance):
        destroy_or_conflict(instance)


class ScopedWritePermission(permissions.BasePermission):
    """Writes need ``view.get_write_action()`` on the object, and creating needs that role in some depot.

    Without the second rule a viewer's POST would fail later as "invalid depot" (400), which hides the
    real reason: their role does not allow changes at all (403).
    """

    message = _("Your role in this depot does not allow changes.")

    def has_permission(self, request, view):
        if request.method != "POST" or getattr(view, "detail", False) or request.user.is_superuser:
            return True
        return depot_ids_for(request.user, view.get_write_action()).exists()

    def has_object_permission(self, request, view, obj):
        if request.method not in WRITE_METHODS:
            return True
        return view.get_write_queryset().filter(pk=obj.pk).exists()


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference to another object, accepted only if the requesting user may ``action`` it."""

    def __init__(self, *, action: Action = Action.OPERATE, **kwargs):
        self.scope_action = action
        super().__init__(**kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        if request is None or queryset is None:  # schema generation; read-only fields have no queryset
            return queryset
        # pk__in keeps ``get(pk=...)`` single-valued when the scope joins a to-many relation (packs).
        return queryset.filter(pk__in=restrict(queryset, request.user, self.scope_action).values("pk"))


class ScopedGenericViewSet(DepotScopedViewSetMixin, viewsets.GenericViewSet):
    """Scoped reads, scoped writes, and an optional narrower serializer for PUT/PATCH.

    Combine with DRF's mixins (or ``viewsets.ModelViewSet``) *after* it, so the scoped ``perform_destroy``
    wins. ``update_serializer_class`` is for fields that may be set on create but never changed (a
    vehicle's organisation, a block's depot): the schema then documents them as read-only on updates.
    """

    permission_classes = [permissions.IsAuthenticated, ScopedWritePermission]
    update_serializer_class: type[serializers.Serializer] | None = None

    def get_serializer_class(self):
        if self.update_serializer_class is not None and self.action in ("update", "partial_update"):
            return self.update_serializer_class
        return super().get_serializer_class()

"""API-wide plumbing: the exception handler that keeps every error a JSON 4xx."""

import itertools

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    # Services raise Django's ValidationError (the same one the admin shows as form errors);
    # the API answers it as DRF would answer a serializer error: 400 with field-level JSON.
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {("non_field_errors" if k == "__all__" else k): v for k, v in exc.message_dict.items()}
        else:
            detail = {"non_field_errors": exc.messages}
        exc = serializers.ValidationError(detail=detail)
    return drf_exception_handler(exc, context)


# --- Depot scoping for DRF -------------------------------------------------------------------------------
# Viewsets and relation fields narrow every queryset with fleet.scoping.restrict, so another depot's
# object is a 404 when addressed by URL and a 400 "does not exist" when referenced in a body.

import datetime as dt  # noqa: E402
from collections.abc import Mapping  # noqa: E402

from django.db import transaction  # noqa: E402
from django.db.models import ProtectedError  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.dateparse import parse_datetime  # noqa: E402
from django.utils.translation import gettext_lazy as _  # noqa: E402
from rest_framework import exceptions, permissions  # noqa: E402

from fleet.scoping import Action, depot_ids_for, restrict  # noqa: E402

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def request_action(request, write_action: Action = Action.OPERATE) -> Action:
    return write_action if request.method in WRITE_METHODS else Action.VIEW


class DepotScopedViewSetMixin:
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
        return self.write_action_by_view_action.get(getattr(self, "action", None), self.write_action)

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


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = _("The request conflicts with the current state of the data.")
    default_code = "conflict"


def destroy_or_conflict(instance) -> None:
    """Delete ``instance``; if other rows still protect it (``on_delete=PROTECT``) answer 409 with the reason."""
    try:
        with transaction.atomic():
            instance.delete()
    except ProtectedError as exc:
        # Name the kinds of blocking rows from a sample: a bus can have millions of readings.
        sample = itertools.islice(exc.protected_objects, 1000)
        blocking = sorted({str(obj._meta.verbose_name_plural) for obj in sample})
        raise Conflict(
            _("%(object)s is still referenced by %(blocking)s; remove those first.")
            % {"object": instance, "blocking": ", ".join(blocking)}
        ) from exc


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
        if request is None:  # schema generation
            return queryset
        # pk__in keeps ``get(pk=...)`` single-valued when the scope joins a to-many relation (packs).
        return queryset.filter(pk__in=restrict(queryset, request.user, self.scope_action).values("pk"))


# --- Strict writes ----------------------------------------------------------------------------------------


class RejectUnknownFieldsMixin:
    """A serializer mixin: a write naming a field the serializer does not accept answers 400.

    DRF silently drops unknown and read-only keys, so a typo (``grid_limt_kw``) or an attempt to set a
    computed field (``organization``, ``id``) would "succeed" while changing nothing. Works for nested
    serializers too (it checks each mapping ``to_internal_value`` receives).

    It also refuses values DRF would coerce or crash on (``strict_value_error``): ``true`` as a number, a
    number as text, a float or an out-of-range number as an id, a timestamp without a UTC offset or before
    2000, and, for the fields named in ``past_timestamps`` (when something was observed or done), a time in
    the future.
    """

    past_timestamps: tuple[str, ...] = ()

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for name in data:
                field = self.fields.get(name)
                if field is None:
                    errors[name] = [_("Unknown field.")]
                elif field.read_only:
                    errors[name] = [_("This field is read-only.")]
                else:
                    problem = strict_value_error(field, data[name], past_only=name in self.past_timestamps)
                    if problem:
                        errors[name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


BIGINT_MAX = 2**63 - 1
EARLIEST_EVENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(minutes=5)
_NUMBER_FIELDS = (serializers.FloatField, serializers.IntegerField, serializers.DecimalField)


def strict_value_error(field: serializers.Field, value, *, past_only: bool = False) -> str | None:
    """Why ``value`` must not reach ``field`` although DRF would take it (``None``: no objection)."""
    if isinstance(value, bool) and isinstance(field, _NUMBER_FIELDS + (serializers.PrimaryKeyRelatedField,)):
        return _("Give a number, not true or false.")
    if isinstance(field, serializers.CharField) and isinstance(value, int | float) and not isinstance(value, bool):
        return _("Give text, not a number.")  # DRF would store str(value): 1e16 becomes "1e+16"
    numbers = isinstance(field, serializers.ListField) and isinstance(field.child, _NUMBER_FIELDS)
    if numbers and isinstance(value, list) and any(isinstance(item, bool) for item in value):
        return _("Give numbers, not true or false.")
    not_an_id = isinstance(value, float) or (isinstance(value, int) and abs(value) > BIGINT_MAX)
    if isinstance(field, serializers.PrimaryKeyRelatedField) and not_an_id:
        return _("Give the id of an existing object (an integer).")
    if isinstance(field, serializers.DateTimeField) and isinstance(value, str):
        at = parse_datetime_or_none(value)
        if at is None:
            return None  # DRF says what is wrong with the format
        if timezone.is_naive(at):
            return _("Give the time with its UTC offset (e.g. 2026-01-31T22:15:00-07:00 or ...Z).")
        if at < EARLIEST_EVENT:
            return _("This is before 2000: check the clock of the device that sent it.")
        if past_only and at > timezone.now() + CLOCK_SKEW:
            return _("This is in the future: check the clock of the device that sent it.")
    return None


def parse_datetime_or_none(value: str) -> dt.datetime | None:
    try:
        return parse_datetime(value)
    except ValueError:  # well-formed but impossible (month 13, year 99999)
        return None


# --- The base every depot-scoped viewset starts from ------------------------------------------------------

from rest_framework import viewsets  # noqa: E402


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

"""API-wide plumbing that knows no app: the exception handler that keeps every error a JSON 4xx, 409 on
protected deletes, strict writes and values. Depot scoping for DRF is fleet's (``fleet/api/scoped.py``)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers
from rest_framework.views import exception_handler as drf_exception_handler

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


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


# --- Strict writes ----------------------------------------------------------------------------------------


class RejectUnknownFieldsMixin(serializers.Serializer):
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
            errors: dict[str, list[StrOrPromise]] = {}
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


def strict_value_error(field: serializers.Field, value, *, past_only: bool = False) -> StrOrPromise | None:
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

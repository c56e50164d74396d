"""The API's filter backend: django-filter's, strict about values its filters would otherwise ignore or crash on.

django-filter answers a malformed number with 400, but lets through what its form fields accept yet the
database cannot take or the filter silently drops:

- a number beyond the 64-bit range of an id column (``?depot=1e308``): the database raises (a 500);
- a boolean that is neither true nor false (``?installed=maybe``): the filter is skipped, the page looks
  filtered but is not;
- an empty value (``?service_night=``): skipped the same way;
- a time with a UTC offset PostgreSQL does not take (beyond ±15:59): compared in UTC instead.

Each of those is now a 400 naming the parameter, as the schema (integer, boolean, date) says it should be.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import django_filters
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend as BaseDjangoFilterBackend
from rest_framework import serializers

BIGINT_MAX = 2**63 - 1
BOOLEAN_VALUES = frozenset({"true", "false", "True", "False", "1", "0"})


def strict_filter_errors(filterset, query_params) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name, value in filterset.form.cleaned_data.items():
        number = value if isinstance(value, Decimal | float | int) and not isinstance(value, bool) else None
        if number is not None and (number > BIGINT_MAX or number < -BIGINT_MAX):  # abs() would type as object
            errors[name] = ["The number is out of range."]
    for name, field in filterset.filters.items():
        # A range filter is given as name_after / name_before (name_min / name_max): its widget's suffixes.
        suffixes = getattr(field.field.widget, "suffixes", None)
        for param in [f"{name}_{suffix}" for suffix in suffixes] if suffixes else [name]:
            raw = query_params.get(param)
            if raw == "":
                errors.setdefault(param, ["Give a value or leave the parameter out."])
            elif raw is not None and isinstance(field, django_filters.BooleanFilter) and raw not in BOOLEAN_VALUES:
                errors.setdefault(param, ["Give true or false."])
    return errors


class DjangoFilterBackend(BaseDjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise django_filters.utils.translate_validation(filterset.errors)
        errors = strict_filter_errors(filterset, request.query_params)
        if errors:
            raise serializers.ValidationError(errors)
        for name, value in filterset.form.cleaned_data.items():
            # PostgreSQL refuses UTC offsets beyond ±15:59, which ISO 8601 (and Python) allow: compare in UTC.
            if isinstance(value, dt.datetime) and timezone.is_aware(value):
                filterset.form.cleaned_data[name] = value.astimezone(dt.UTC)
        return filterset.qs

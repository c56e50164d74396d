"""Form fields for a depot's fixed-length series: 24 hourly base-load values (kW) and 12 monthly mean
temperatures (°C), each value in its own labelled number input instead of a JSON text box.

Plain Django: a MultiWidget of NumberInputs and a MultiValueField whose errors name the value they belong to
("03:00: Ensure this value is greater than or equal to 0."). All values or none: an empty series is stored as
``[]`` (the model's "empty: none/unknown"). The model's ``clean()`` keeps its own checks (the grid limit).
"""

from __future__ import annotations

from collections.abc import Sequence

from django import forms
from django.core.exceptions import ValidationError
from django.utils.dates import MONTHS_3
from django.utils.functional import lazy
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

HOUR_LABELS = [f"{hour:02d}:00" for hour in range(24)]
MONTH_LABELS = [lazy(capfirst, str)(MONTHS_3[month]) for month in range(1, 13)]  # in the reader's language


class SeriesWidget(forms.MultiWidget):
    template_name = "fleet/widgets/series.html"

    def __init__(self, labels: Sequence, attrs: dict | None = None) -> None:
        self.labels = list(labels)
        cell = {"step": "any", "class": "evf-series-input", **(attrs or {})}
        super().__init__([forms.NumberInput(attrs=cell) for _ in self.labels])

    def decompress(self, value) -> list:
        if isinstance(value, list | tuple) and len(value) == len(self.labels):
            return list(value)
        return [None] * len(self.labels)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        for cell, label in zip(context["widget"]["subwidgets"], self.labels, strict=True):
            cell["series_label"] = label
            cell["attrs"]["aria-label"] = label
        return context


class SeriesField(forms.MultiValueField):
    """A list of ``len(labels)`` numbers between ``min_value`` and ``max_value``, or ``[]``."""

    def __init__(self, *, labels: Sequence, min_value: float | None = None, max_value: float | None = None, **kwargs):
        self.labels = list(labels)
        fields = [forms.FloatField(required=False, min_value=min_value, max_value=max_value) for _ in self.labels]
        kwargs.setdefault("required", False)
        super().__init__(fields, widget=SeriesWidget(self.labels), require_all_fields=False, **kwargs)

    def clean(self, value):
        values = value if isinstance(value, list | tuple) else self.widget.decompress(value)
        cleaned: list[float | None] = []
        errors: list[str] = []
        for label, field, raw in zip(self.labels, self.fields, values, strict=True):
            try:
                cleaned.append(field.clean(raw))
            except ValidationError as error:
                errors.extend(f"{label}: {message}" for message in error.messages)
        if errors:
            raise ValidationError(errors)
        series = self.compress(cleaned)
        self.validate(series)
        self.run_validators(series)
        return series

    def compress(self, data_list) -> list[float]:
        given = [v for v in data_list or [] if v is not None]
        if not given:
            return []
        if len(given) < len(self.labels):
            missing = ", ".join(str(label) for label, v in zip(self.labels, data_list, strict=True) if v is None)
            raise ValidationError(_("Give every value or none; missing: %(missing)s.") % {"missing": missing})
        return [float(v) for v in data_list]

    def has_changed(self, initial, data) -> bool:
        try:
            return self.clean(data) != list(initial or [])
        except ValidationError:
            return True


def base_load_field(**kwargs) -> SeriesField:
    return SeriesField(labels=HOUR_LABELS, min_value=0, **kwargs)


def monthly_temperature_field(**kwargs) -> SeriesField:
    return SeriesField(labels=MONTH_LABELS, min_value=-50, max_value=60, **kwargs)

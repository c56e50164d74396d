"""Small helpers every app's services share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def model_update(*, instance: M, fields: Iterable[str], data: Mapping[str, Any]) -> tuple[M, bool]:
    """Set those of ``fields`` present in ``data`` on ``instance``, validate, save only what changed.

    Returns the instance and whether anything changed. Validation is ``full_clean`` so the API and the
    admin enforce the same invariants (``clean()`` and field validators).
    """
    changed = []
    for field in fields:
        if field in data and getattr(instance, field) != data[field]:
            setattr(instance, field, data[field])
            changed.append(field)
    if changed:
        instance.full_clean()
        instance.save(update_fields=changed)
    return instance, bool(changed)


def model_create(model: type[M], /, **fields: Any) -> M:
    """Create a row after ``full_clean``, so constraint errors become field errors, not 500s."""
    instance = model(**fields)
    instance.full_clean()
    instance.save()
    return instance

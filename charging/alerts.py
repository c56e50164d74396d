"""Opening and closing alerts. ``key`` says what an alert is about: one unresolved alert per key."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from charging.models import Alert

UNRESOLVED = (Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED)


@transaction.atomic
def alert_raise(*, key: str, **fields) -> Alert:
    """Open the alert for ``key``, or refresh the unresolved one (keeping its acknowledgement)."""
    alert, _created = Alert.objects.update_or_create(
        key=key, status__in=UNRESOLVED, defaults=fields, create_defaults={**fields, "key": key}
    )
    return alert


@transaction.atomic
def alert_resolve(*, key: str) -> int:
    return Alert.objects.filter(key=key, status__in=UNRESOLVED).update(
        status=Alert.Status.RESOLVED, resolved_at=timezone.now()
    )

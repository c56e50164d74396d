"""Opening and closing alerts. ``key`` says what an alert is about: one unresolved alert per key."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from batteries.signals import pack_ageing_checked
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


@receiver(pack_ageing_checked)
def pack_ageing_alert(*, pack, vehicle, depot, reasons: list[str], **_signal) -> Alert | None:
    """The pack's abnormal-ageing alert, raised (or refreshed) with the reasons, or resolved when there are none."""
    key = f"ageing:{pack.pk}"
    if not reasons:
        alert_resolve(key=key)
        return None
    return alert_raise(
        key=key,
        kind="abnormal_ageing",
        severity="warning",
        organization_id=pack.organization_id,
        depot=depot,
        vehicle=vehicle,
        pack=pack,
        message=f"Pack {pack.serial} ages abnormally: " + "; ".join(reasons) + ".",
        details={"reasons": reasons},
    )

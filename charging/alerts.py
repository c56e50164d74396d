"""Opening and closing alerts. ``key`` says what an alert is about: one unresolved alert per key.

What an alert says is stored as a message code and parameters (``charging.alert_messages``, the catalogue),
worded when it is shown in the reader's language."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from batteries.signals import pack_ageing_checked
from charging.alert_messages import message
from charging.models import Alert, Charger, Connector

UNRESOLVED = (Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED)


@transaction.atomic
def alert_raise(*, key: str, says: dict, **fields) -> Alert:
    """Open the alert for ``key``, or refresh the unresolved one (keeping its acknowledgement). ``says`` is its
    message (``charging.alert_messages.message(code, **params)``)."""
    fields |= {"message_code": says["code"], "message_params": says["params"], "message": ""}
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
def pack_ageing_alert(*, pack, vehicle, depot, reasons: list[dict], **_signal) -> Alert | None:
    """The pack's abnormal-ageing alert, raised (or refreshed) with the reasons (each ``{"code", "params"}`` of
    ``charging.alert_messages``), or resolved when there are none."""
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
        says=message("pack_ages_abnormally", pack=pack.serial, reasons=reasons),
        details={"reasons": reasons},
    )


# A charger or connector out of order: one alert per piece of equipment, raised when it leaves service and
# resolved when it is back (available or charging). Severity says how much it costs tonight's plan.
EQUIPMENT_ALERT_SEVERITY: dict[str, Alert.Severity] = {
    Charger.Status.FAULTED: Alert.Severity.CRITICAL,
    Charger.Status.OFFLINE: Alert.Severity.WARNING,
    Charger.Status.MAINTENANCE: Alert.Severity.INFO,
}


def equipment_alert_key(equipment: Charger | Connector) -> str:
    return f"equipment:{type(equipment).__name__.lower()}:{equipment.pk}"


def equipment_status_alert(equipment: Charger | Connector, *, reported: str = "") -> Alert | None:
    """Raise, refresh or resolve the alert for a charger or connector after its status changed; ``reported`` is
    what whoever reported it said (staff's note, or the charger's own OCPP status and error code)."""
    key = equipment_alert_key(equipment)
    severity = EQUIPMENT_ALERT_SEVERITY.get(equipment.status)
    if severity is None:
        alert_resolve(key=key)
        return None
    depot = equipment.depot if isinstance(equipment, Charger) else equipment.charger.depot
    what = "charger" if isinstance(equipment, Charger) else "connector"
    state = "in_maintenance" if equipment.status == Charger.Status.MAINTENANCE else equipment.status
    says = message(f"{what}_{state}", equipment=str(equipment), depot=depot.name)
    if reported:
        says = message("equipment_reported", status=says, reported=reported[:300])
    return alert_raise(
        key=key,
        kind=Alert.Kind.CHARGER_FAULT,
        severity=severity,
        depot=depot,
        organization_id=depot.organization_id,
        says=says,
        details={"equipment": type(equipment).__name__.lower(), "id": equipment.pk, "status": equipment.status},
    )

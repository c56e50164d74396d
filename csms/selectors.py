"""Reads of the central system's state: the charger board of a depot and the delivery of plans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from charging.models import Charger, ChargingPlan
from charging.plan_delivery import ChargerDelivery, DeliveryStatus
from charging.selectors import charger_queryset
from csms.models import ChargePoint, ProfileDelivery
from fleet.models import Depot

OUT_OF_SERVICE = {"Faulted", "Unavailable"}


@dataclass
class BoardRow:
    charger: Charger
    connected: bool
    ocpp_version: str
    last_heartbeat_at: Any
    connectors: list[dict] = field(default_factory=list)
    delivery: ProfileDelivery | None = None

    @property
    def faulted(self) -> bool:
        return any(c["faulted"] for c in self.connectors)


def depot_board(depot: Depot) -> list[BoardRow]:
    """Every charger of the depot: link, last heartbeat, status per connector (the charger's own report, else the
    registry's) and the delivery of the newest active plan; faulted ones first, then offline, then by name."""
    chargers = list(charger_queryset().filter(depot=depot))
    points = {cp.charger_id: cp for cp in ChargePoint.objects.filter(charger__in=chargers)}
    latest: dict[int, ProfileDelivery] = {}
    for delivery in (
        ProfileDelivery.objects.filter(charge_point__in=points.values(), plan__status=ChargingPlan.Status.ACTIVE)
        .select_related("plan")
        .order_by("charge_point_id", "-plan__service_night", "-plan__version")
    ):
        latest.setdefault(delivery.charge_point_id, delivery)
    rows = []
    for charger in chargers:
        cp = points.get(charger.pk)
        states = cp.connector_states if cp else {}
        connectors = []
        for connector in charger.connectors.all():
            reported = states.get(str(connector.connector_id)) or states.get("0") or {}
            status = reported.get("status") or connector.get_status_display()
            connectors.append(
                {
                    "number": connector.connector_id,
                    "status": status,
                    "error_code": reported.get("error_code", ""),
                    "faulted": status in OUT_OF_SERVICE or connector.status == Charger.Status.FAULTED,
                }
            )
        rows.append(
            BoardRow(
                charger=charger,
                connected=bool(cp and cp.connected),
                ocpp_version=cp.ocpp_version if cp else "",
                last_heartbeat_at=cp.last_heartbeat_at if cp else None,
                connectors=connectors,
                delivery=latest.get(cp.pk) if cp else None,
            )
        )
    rows.sort(key=lambda r: (not r.faulted, r.connected, r.charger.name))
    return rows


# What a charger's outbox row says about a plan, read together with whether the charger is connected.
_DELIVERY_STATUS = {
    ProfileDelivery.Status.ACCEPTED: DeliveryStatus.ACCEPTED,
    ProfileDelivery.Status.REJECTED: DeliveryStatus.REJECTED,
    ProfileDelivery.Status.ERROR: DeliveryStatus.ERROR,
    ProfileDelivery.Status.SUPERSEDED: DeliveryStatus.SUPERSEDED,
}


def plan_delivery(plan: ChargingPlan) -> list[ChargerDelivery]:
    """Per charger of the plan's depot (by name), whether this plan's profiles reached it, from the outbox:
    the charger's answer (Accepted / Rejected / an error), no answer yet (asked again), pending while it is
    connected, "offline - pending" while it is not (it gets them when it reconnects), superseded, or no OCPP
    link at all. Two queries whatever the depot's size."""
    chargers = Charger.objects.filter(depot_id=plan.depot_id).select_related("charge_point").order_by("name", "pk")
    rows = {d.charge_point_id: d for d in ProfileDelivery.objects.filter(plan=plan)}
    out = []
    for charger in chargers:
        charge_point = getattr(charger, "charge_point", None)
        linked = charge_point is not None and bool(charge_point.password_hash) and bool(charger.ocpp_charge_point_id)
        connected = bool(charge_point and charge_point.connected)
        row = rows.get(charge_point.pk) if charge_point is not None else None
        if row is None:
            # Not in the outbox (yet): the central system has not seen the plan, or the charger has no link.
            status = DeliveryStatus.NOT_LINKED if not linked else _waiting(connected, plan)
        elif row.status in _DELIVERY_STATUS:
            status = _DELIVERY_STATUS[ProfileDelivery.Status(row.status)]
        elif not connected:
            status = DeliveryStatus.OFFLINE
        elif row.status == ProfileDelivery.Status.NO_ANSWER:
            status = DeliveryStatus.NO_ANSWER
        else:
            status = DeliveryStatus.PENDING
        out.append(
            ChargerDelivery(
                charger_id=charger.pk,
                charger_name=charger.name,
                charge_point_id=charger.ocpp_charge_point_id,
                status=status,
                connected=connected,
                attempts=row.attempts if row else 0,
                last_attempt_at=row.last_attempt_at if row else None,
                answered_at=row.answered_at if row else None,
                answers=dict(row.answers) if row else {},
            )
        )
    return out


def _waiting(connected: bool, plan: ChargingPlan) -> DeliveryStatus:
    if plan.status != ChargingPlan.Status.ACTIVE:
        return DeliveryStatus.SUPERSEDED
    return DeliveryStatus.PENDING if connected else DeliveryStatus.OFFLINE

"""Reads of the central system's state: the charger board of a depot and the delivery of plans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from charging.models import Charger, ChargingPlan
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

"""Whether a plan reached the chargers: per charger, the answer to its charging profiles, as the plan page and
the plan API show it.

Charging does not know who delivers plans: the OCPP central system (``csms``, a floor above) keeps the outbox
and hands charging its reader at start-up (``CsmsConfig.ready`` -> ``plan_delivery_source``), as batteries hands
fleet the installed pack's capacity. Without a central system installed there is nothing to show (None).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import models
from django.utils.translation import gettext_lazy as _

from charging.models import ChargingPlan


class DeliveryStatus(models.TextChoices):
    """A charger's state for one plan. ``OFFLINE``: not sent yet because the charger is not connected (it gets the
    profiles when it reconnects); ``PENDING``: connected, being sent; ``NOT_LINKED``: the charger has no OCPP link
    (no charge point id or password), so nothing is sent to it."""

    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    ERROR = "error", _("Answered with an error")
    NO_ANSWER = "no_answer", _("No answer (asked again)")
    PENDING = "pending", _("Pending: being sent")
    OFFLINE = "offline", _("Offline - pending")
    SUPERSEDED = "superseded", _("Superseded by a newer plan")
    NOT_LINKED = "not_linked", _("No OCPP link")


@dataclass(frozen=True)
class ChargerDelivery:
    charger_id: int
    charger_name: str
    charge_point_id: str
    status: DeliveryStatus
    connected: bool
    attempts: int = 0
    last_attempt_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    answers: dict[str, str] = field(default_factory=dict)  # per connector id: the charger's answer

    @property
    def status_label(self) -> str:
        return str(self.status.label)


PlanDeliveryReader = Callable[[ChargingPlan], list[ChargerDelivery]]
_reader: PlanDeliveryReader | None = None


def plan_delivery_source(reader: PlanDeliveryReader | None) -> None:
    """Set how to read a plan's delivery per charger (the central system does, at start-up)."""
    global _reader
    _reader = reader


def plan_delivery(plan: ChargingPlan) -> list[ChargerDelivery] | None:
    """Per charger of the plan's depot, whether its profiles were delivered; None when no central system is
    installed to deliver plans."""
    return _reader(plan) if _reader is not None else None

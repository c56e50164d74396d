"""What alerts say, in one place: the catalogue of alert messages and how a stored message is rendered.

An alert row is read by people of every language (a manager in es-MX, a German operator, a webhook receiver),
so it stores what to say, not the words: ``Alert.message_code`` (a key of ``ALERT_MESSAGES``) and
``Alert.message_params`` (JSON). The words are chosen when the alert is shown, in the language active then
(the request's in the admin and the API, the recipient's in notifications).

A parameter may itself be a message: ``{"code": ..., "params": {...}}`` (rendered in the same language), or a
list of them (joined with "; "). The optimizer's shortfall reasons and the ageing checks' reasons travel
this way. Alerts stored before codes existed have only their English ``Alert.message``; they keep showing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_noop as _

from charging.optimizer import reasons

# Code -> English template with named parameters. Marked for makemessages here, translated when rendered
# (``gettext(template)`` in the active language), so changing the language never needs the row rewritten.
ALERT_MESSAGES: dict[str, str] = {
    # Planning (charging.planning._raise_alerts)
    "no_compatible_connector": _("%(vehicle)s has no compatible working connector at %(depot)s tonight."),
    "vehicle_short": _("%(vehicle)s will leave %(shortfall_kwh).0f kWh short."),
    "vehicle_short_because": _("%(vehicle)s will leave %(shortfall_kwh).0f kWh short: %(reason)s."),
    "grid_limit_too_low": _(
        "The grid limit of %(depot)s (%(grid_limit_kw).0f kW) is too low to charge %(vehicles)d vehicle(s) "
        "for their blocks tonight."
    ),
    # Why a vehicle leaves short (charging.optimizer.reasons), a parameter of "vehicle_short_because"
    "reason_no_connector": _("no compatible connector"),
    "reason_not_enough_time": _("not enough time"),
    "reason_taper": _("the battery's taper slows charging too much"),
    "reason_no_free_connector": _("no free connector"),
    "reason_connector_time": _("plugged in for too short a time"),
    "reason_charger_limit": _("the charger's limit"),
    "reason_grid_limit": _("the grid limit"),
    # Battery ageing (charging.alerts.pack_ageing_alert; reasons from batteries.forecast_service)
    "pack_ages_abnormally": _("Pack %(pack)s ages abnormally: %(reasons)s."),
    "ageing_below_forecast": _("observed %(soh_pct).1f %% on %(date)s is below the forecast's P10 of %(p10_pct).1f %%"),
    "ageing_faster_than_peers": _(
        "fades %(fade_pct_per_year).1f %%/yr, %(ratio).1fx the median of %(peers)d comparable packs "
        "(%(median_pct_per_year).1f %%/yr)"
    ),
    # Equipment out of order (charging.alerts.equipment_status_alert, csms.services)
    "charger_faulted": _("Charger %(equipment)s at %(depot)s is faulted."),
    "charger_offline": _("Charger %(equipment)s at %(depot)s is offline."),
    "charger_in_maintenance": _("Charger %(equipment)s at %(depot)s is in maintenance."),
    "connector_faulted": _("Connector %(equipment)s at %(depot)s is faulted."),
    "connector_offline": _("Connector %(equipment)s at %(depot)s is offline."),
    "connector_in_maintenance": _("Connector %(equipment)s at %(depot)s is in maintenance."),
    "equipment_reported": _("%(status)s Reported: %(reported)s."),
    "charge_point_offline": _("Charger %(charger)s (%(charge_point_id)s) is offline."),
}

# The optimizer's shortfall reasons (plain English constants of the pure core) and their messages.
SHORTFALL_REASON_CODES: dict[str, str] = {
    reasons.NO_CONNECTOR: "reason_no_connector",
    reasons.NOT_ENOUGH_TIME: "reason_not_enough_time",
    reasons.TAPER: "reason_taper",
    reasons.NO_FREE_CONNECTOR: "reason_no_free_connector",
    reasons.CONNECTOR_TIME: "reason_connector_time",
    reasons.CHARGER_LIMIT: "reason_charger_limit",
    reasons.GRID_LIMIT: "reason_grid_limit",
}


def message(code: str, **params: Any) -> dict[str, Any]:
    """A message to store (or to pass as another message's parameter): its code and its parameters."""
    if code not in ALERT_MESSAGES:
        raise KeyError(f"no alert message {code!r} in charging.alert_messages.ALERT_MESSAGES")
    return {"code": code, "params": params}


def shortfall_reason(reason: str) -> dict[str, Any] | str:
    """The optimizer's reason as a message; a reason this catalogue does not know stays as it came."""
    code = SHORTFALL_REASON_CODES.get(reason)
    return message(code) if code else reason


def render_message(code: str, params: Mapping[str, Any] | None) -> str:
    """The message in the active language, its parameters filled in (nested messages rendered too). An unknown
    code (a catalogue entry removed since the alert was stored) shows the code and its parameters rather than
    failing the page that lists it."""
    template = ALERT_MESSAGES.get(code)
    values = {name: _rendered(value) for name, value in (params or {}).items()}
    if template is None:
        return f"{code} {values}" if values else code
    return gettext(template) % values


def _rendered(value: Any) -> Any:
    if isinstance(value, Mapping) and "code" in value:
        return render_message(value["code"], value.get("params"))
    if isinstance(value, list):
        return "; ".join(str(_rendered(item)) for item in value)
    return value

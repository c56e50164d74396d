"""Writes to tariffs and chargers. Views, admin actions, commands and tasks call these, nothing else saves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from charging.alerts import equipment_status_alert
from charging.models import Alert, Charger, Connector, DemandCharge, Tariff, TariffPeriod, TariffSeason
from config.services import model_create, model_update
from fleet.models import Depot, Organization

TARIFF_UPDATABLE_FIELDS = ("name", "currency", "holidays", "holiday_calendar")
CHARGER_UPDATABLE_FIELDS = ("depot", "ocpp_charge_point_id", "name", "kind", "max_kw", "status")
CONNECTOR_UPDATABLE_FIELDS = ("connector_id", "standard", "max_kw", "status")


# --- Tariffs: a tariff and its structure (seasons with periods, demand charges) are written as one document.


@transaction.atomic
def tariff_create(
    *,
    organization: Organization,
    name: str,
    currency: str = "MXN",
    holidays: Iterable[str] = (),
    holiday_calendar: str = "",
    seasons: Iterable[Mapping[str, Any]] = (),
    demand_charges: Iterable[Mapping[str, Any]] = (),
) -> Tariff:
    """Create a tariff with its seasons (each with ``periods``) and demand charges.

    ``holidays`` are ISO dates (YYYY-MM-DD); ``holiday_calendar`` adds a country's (and state's) public
    holidays, e.g. ``"MX"`` or ``"DE-NW"``. A nested error is reported under ``seasons`` or
    ``demand_charges`` with the item's position, e.g. ``seasons[0].periods[2].ends_at: ...``.
    """
    tariff = model_create(
        Tariff,
        organization=organization,
        name=name,
        currency=currency,
        holidays=list(holidays),
        holiday_calendar=holiday_calendar,
    )
    _replace_seasons(tariff, seasons)
    _replace_demand_charges(tariff, demand_charges)
    return tariff


@transaction.atomic
def tariff_update(*, tariff: Tariff, data: Mapping[str, Any]) -> Tariff:
    """Change a tariff. ``seasons`` / ``demand_charges``, when given, replace the existing ones entirely."""
    data = dict(data)
    if "holidays" in data:
        data["holidays"] = list(data["holidays"])
    model_update(instance=tariff, fields=TARIFF_UPDATABLE_FIELDS, data=data)
    if "seasons" in data:
        _replace_seasons(tariff, data["seasons"])
    if "demand_charges" in data:
        _replace_demand_charges(tariff, data["demand_charges"])
    return tariff


@transaction.atomic
def tariff_delete(*, tariff: Tariff) -> None:
    # Depot.tariff is SET_NULL: deleting a tariff in use would silently leave depots unpriced.
    in_use = list(Depot.objects.filter(tariff=tariff).values_list("name", flat=True))
    if in_use:
        raise ValidationError(
            _("The tariff is in use by %(depots)s; give those depots another tariff first.")
            % {"depots": ", ".join(in_use)}
        )
    tariff.delete()


def _replace_seasons(tariff: Tariff, seasons: Iterable[Mapping[str, Any]]) -> None:
    tariff.seasons.all().delete()
    for i, season_data in enumerate(seasons):
        season_fields = {k: v for k, v in season_data.items() if k != "periods"}
        with _nested_errors(f"seasons[{i}]", "seasons"):
            season = model_create(TariffSeason, tariff=tariff, **season_fields)
        for j, period_data in enumerate(season_data.get("periods", ())):
            with _nested_errors(f"seasons[{i}].periods[{j}]", "seasons"):
                model_create(TariffPeriod, season=season, **period_data)


def _replace_demand_charges(tariff: Tariff, demand_charges: Iterable[Mapping[str, Any]]) -> None:
    tariff.demand_charges.all().delete()
    for i, charge_data in enumerate(demand_charges):
        with _nested_errors(f"demand_charges[{i}]", "demand_charges"):
            model_create(DemandCharge, tariff=tariff, **charge_data)


class _nested_errors:
    """Re-raise a child row's validation error under the parent's field, saying which item and field failed."""

    def __init__(self, where: str, parent_field: str):
        self.where, self.parent_field = where, parent_field

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None or not issubclass(exc_type, ValidationError):
            return False
        if hasattr(exc, "error_dict"):
            messages = [
                f"{self.where}{'' if field == '__all__' else '.' + field}: {message}"
                for field, field_messages in exc.message_dict.items()
                for message in field_messages
            ]
        else:
            messages = [f"{self.where}: {message}" for message in exc.messages]
        raise ValidationError({self.parent_field: messages}) from exc


# --- Chargers and connectors ---------------------------------------------------------------------------------


@transaction.atomic
def charger_create(
    *,
    depot: Depot,
    ocpp_charge_point_id: str,
    name: str,
    kind: str,
    max_kw: float,
    status: str = Charger.Status.AVAILABLE,
) -> Charger:
    return model_create(
        Charger,
        depot=depot,
        ocpp_charge_point_id=ocpp_charge_point_id,
        name=name,
        kind=kind,
        max_kw=max_kw,
        status=status,
    )


@transaction.atomic
def charger_update(*, charger: Charger, data: Mapping[str, Any]) -> Charger:
    if "max_kw" in data and data["max_kw"] is not None:
        strongest = charger.connectors.order_by("-max_kw").values_list("max_kw", flat=True).first()
        if strongest is not None and data["max_kw"] < strongest:
            raise ValidationError(
                {"max_kw": _("A connector of this charger delivers %(kw)s kW; lower it first.") % {"kw": strongest}}
            )
    status_before = charger.status
    charger = model_update(instance=charger, fields=CHARGER_UPDATABLE_FIELDS, data=data)[0]
    if charger.status != status_before:
        equipment_status_alert(charger)
    return charger


@transaction.atomic
def charger_set_status(*, charger: Charger, status: str) -> Charger:
    """What depot staff report (a fault, maintenance, back in service); managers change the rest."""
    return charger_update(charger=charger, data={"status": status})


@transaction.atomic
def charger_delete(*, charger: Charger) -> None:
    charger.delete()  # its connectors go with it


@transaction.atomic
def connector_create(
    *,
    charger: Charger,
    connector_id: int,
    standard: str,
    max_kw: float,
    status: str = Charger.Status.AVAILABLE,
) -> Connector:
    return model_create(
        Connector, charger=charger, connector_id=connector_id, standard=standard, max_kw=max_kw, status=status
    )


@transaction.atomic
def connector_update(*, connector: Connector, data: Mapping[str, Any]) -> Connector:
    status_before = connector.status
    connector = model_update(instance=connector, fields=CONNECTOR_UPDATABLE_FIELDS, data=data)[0]
    if connector.status != status_before:
        equipment_status_alert(connector)
    return connector


@transaction.atomic
def connector_set_status(*, connector: Connector, status: str) -> Connector:
    return connector_update(connector=connector, data={"status": status})


@transaction.atomic
def connector_delete(*, connector: Connector) -> None:
    connector.delete()


@transaction.atomic
def alerts_acknowledge(*, alerts) -> int:
    return alerts.filter(status=Alert.Status.OPEN).update(
        status=Alert.Status.ACKNOWLEDGED, acknowledged_at=timezone.now()
    )


@transaction.atomic
def alerts_resolve(*, alerts) -> int:
    return alerts.exclude(status=Alert.Status.RESOLVED).update(status=Alert.Status.RESOLVED, resolved_at=timezone.now())

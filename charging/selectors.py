"""Reads of tariffs and chargers. Callers restrict the querysets to the user (the viewsets do it)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from charging.models import Charger, Connector, Tariff, TariffSeason


def tariff_choices() -> QuerySet[Tariff]:
    """Tariffs as something to point at (a depot's tariff): no structure loaded."""
    return Tariff.objects.all()


def tariff_queryset() -> QuerySet[Tariff]:
    """Tariffs with their whole structure (seasons, periods, demand charges) in four queries."""
    return Tariff.objects.select_related("organization").prefetch_related(
        Prefetch("seasons", queryset=TariffSeason.objects.prefetch_related("periods")),
        "demand_charges",
    )


def charger_queryset() -> QuerySet[Charger]:
    return Charger.objects.select_related("depot").prefetch_related(
        Prefetch("connectors", queryset=Connector.objects.order_by("connector_id"))
    )


def connector_queryset() -> QuerySet[Connector]:
    return Connector.objects.select_related("charger__depot")

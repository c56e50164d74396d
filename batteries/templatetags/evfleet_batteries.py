"""``{% load evfleet_batteries %}`` then ``{{ forecast|remaining_life }}``."""

from __future__ import annotations

from django import template

from batteries.models import SoHForecast
from batteries.selectors import remaining_life_label

register = template.Library()


@register.filter
def remaining_life(forecast: SoHForecast | None) -> str:
    """A forecast's remaining life for people; a life capped at the forecast horizon reads "> 10 years"."""
    return remaining_life_label(forecast) if forecast is not None else "—"

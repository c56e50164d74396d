"""``{% load evfleet_time %}`` then ``{{ plan.created_at|local_time:plan.depot }}``: see fleet/local_time.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template

from fleet.local_time import local_datetime_label

register = template.Library()


@register.filter
def local_time(value: dt.datetime | None, place: Any = None) -> str:
    """A datetime in a depot's zone (or a zone, or the default depot zone), labelled with the zone."""
    return local_datetime_label(value, place)

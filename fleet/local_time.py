"""Times shown to people: in the depot's time zone (or the default depot zone on cross-depot pages), in the
short date-and-time format of the active language, labelled with the zone's abbreviation ("MST", "CEST").

The API never uses this: it keeps ISO 8601 with offsets.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.conf import settings
from django.utils import formats, timezone


def default_zone() -> zoneinfo.ZoneInfo:
    """The zone of pages that span depots (settings ``EVFLEET_DEFAULT_DEPOT_TIME_ZONE``)."""
    return zoneinfo.ZoneInfo(settings.EVFLEET_DEFAULT_DEPOT_TIME_ZONE)


def zone_of(place: Any) -> dt.tzinfo:
    """A depot's zone (anything with ``.zone``), a tzinfo, a zone name, or the default zone for None/""."""
    if place is None or place == "":
        return default_zone()
    if isinstance(place, dt.tzinfo):
        return place
    if hasattr(place, "zone"):
        return place.zone
    return zoneinfo.ZoneInfo(str(place))


def local_datetime_label(value: dt.datetime | None, place: Any = None) -> str:
    """``value`` as e.g. ``03/12/2026 20:25 MST``: short date and time of the active language, in the zone of
    ``place`` (see ``zone_of``), with the zone's abbreviation; "" for None."""
    if value is None:
        return ""
    local = timezone.localtime(value, zone_of(place))
    return f"{formats.date_format(local, 'SHORT_DATETIME_FORMAT')} {local.tzname()}"

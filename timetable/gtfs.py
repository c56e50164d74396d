"""Read a GTFS feed into plain trips per service date, with distances. No Django here.

Reading (CSV parsing with GTFS dtypes, distance units, which services run on a date from calendar and
calendar_dates) is gtfs-kit's; this module checks the feed is whole and turns it into ``FeedTrip`` rows.

Distance of a trip, first that applies:
1. ``shape_dist_traveled`` in stop_times (last - first stop), in the feed's distance units (gtfs-kit infers
   them from the shapes when the feed does not say);
2. the length of the trip's shape (haversine over its points);
3. the straight lines between its consecutive stops (a lower estimate; reported as such).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import gtfs_kit
import pandas as pd

REQUIRED_FILES = ("stops.txt", "trips.txt", "stop_times.txt", "routes.txt")
TO_KM = {"km": 1.0, "m": 0.001, "mi": 1.609344, "ft": 0.0003048}
EARTH_RADIUS_KM = 6371.0088


class FeedError(Exception):
    """The feed cannot be imported; ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class FeedTrip:
    trip_id: str
    service_id: str
    route_id: str
    block_id: str  # "" when the feed gives none
    start_min: float  # minutes after the service day's midnight (may exceed 1,440)
    end_min: float
    start_stop: str
    end_stop: str
    distance_km: float
    distance_source: str  # "shape_dist_traveled", "shape", "stops"


@dataclass(frozen=True)
class Stop:
    lat: float
    lon: float


@dataclass
class Feed:
    sha256: str
    version: str
    trips: dict[str, FeedTrip]
    stops: dict[str, Stop]
    first_date: dt.date | None
    last_date: dt.date | None
    _gtfs: gtfs_kit.Feed

    def trips_on(self, day: dt.date) -> list[FeedTrip]:
        services = set(gtfs_kit.trips.get_active_services(self._gtfs, day.strftime("%Y%m%d")))
        return [t for t in self.trips.values() if t.service_id in services]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


def _haversine_series(lat1: pd.Series, lon1: pd.Series, lat2: pd.Series, lon2: pd.Series) -> pd.Series:
    import numpy as np

    p1, p2 = np.radians(lat1.astype(float)), np.radians(lat2.astype(float))
    dp, dl = p2 - p1, np.radians(lon2.astype(float) - lon1.astype(float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def _minutes(value: object) -> float | None:
    if not isinstance(value, str) or not value.strip():
        return None
    parts = value.strip().split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    h, m, s = (int(p) for p in parts)
    if m > 59 or s > 59:
        return None
    return h * 60 + m + s / 60


def read_feed(path: Path) -> Feed:
    """Read and check the feed at ``path`` (a .zip); raises ``FeedError`` with every problem found."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = {Path(n).name for n in archive.namelist()}
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    except (OSError, zipfile.BadZipFile) as exc:
        raise FeedError([f"{path.name} is not a readable zip archive ({exc})"]) from exc
    missing = [f for f in REQUIRED_FILES if f not in names]
    if "calendar.txt" not in names and "calendar_dates.txt" not in names:
        missing.append("calendar.txt or calendar_dates.txt")
    if missing:
        raise FeedError([f"missing file: {name}" for name in missing])
    try:
        feed = gtfs_kit.read_feed(path, dist_units=None)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, KeyError) as exc:
        raise FeedError([f"cannot parse the feed's CSV files: {exc}"]) from exc

    problems: list[str] = []
    for table, columns in {
        "stops": ("stop_id", "stop_lat", "stop_lon"),
        "trips": ("trip_id", "route_id", "service_id"),
        "stop_times": ("trip_id", "stop_id", "stop_sequence", "arrival_time", "departure_time"),
    }.items():
        frame = getattr(feed, table)
        if frame is None or frame.empty:
            problems.append(f"{table}.txt has no rows")
            continue
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            problems.append(f"{table}.txt lacks column(s) {', '.join(absent)}")
    if problems:
        raise FeedError(problems)

    stops_df = feed.stops.dropna(subset=["stop_lat", "stop_lon"])
    stops = {str(r.stop_id): Stop(float(r.stop_lat), float(r.stop_lon)) for r in stops_df.itertuples()}
    stop_times = feed.stop_times.sort_values(["trip_id", "stop_sequence"])
    unknown_stops = sorted(set(stop_times["stop_id"].astype(str)) - set(feed.stops["stop_id"].astype(str)))
    if unknown_stops:
        problems.append(f"stop_times.txt refers to unknown stop ids: {', '.join(unknown_stops[:5])}")
    unknown_trips = sorted(set(stop_times["trip_id"].astype(str)) - set(feed.trips["trip_id"].astype(str)))
    if unknown_trips:
        problems.append(f"stop_times.txt refers to unknown trip ids: {', '.join(unknown_trips[:5])}")
    no_position = sorted(set(stop_times["stop_id"].astype(str)) - set(stops) - set(unknown_stops))
    if no_position:
        problems.append(f"stops without a position: {', '.join(no_position[:5])}")
    if problems:
        raise FeedError(problems)

    trips = _trips(feed, stop_times, stops, problems)
    if problems:
        raise FeedError(problems)
    dates = gtfs_kit.calendar.get_dates(feed)
    version = ""
    if feed.feed_info is not None and "feed_version" in feed.feed_info.columns and not feed.feed_info.empty:
        version = str(feed.feed_info["feed_version"].iloc[0] or "")
    return Feed(
        sha256=sha256,
        version=version,
        trips=trips,
        stops=stops,
        first_date=dt.datetime.strptime(dates[0], "%Y%m%d").date() if dates else None,
        last_date=dt.datetime.strptime(dates[-1], "%Y%m%d").date() if dates else None,
        _gtfs=feed,
    )


def _trips(
    feed: gtfs_kit.Feed, stop_times: pd.DataFrame, stops: dict[str, Stop], problems: list[str]
) -> dict[str, FeedTrip]:
    to_km = TO_KM.get(feed.dist_units or "km", 1.0)
    shape_km = _shape_lengths_km(feed)
    st = stop_times.copy()
    st["stop_id"] = st["stop_id"].astype(str)
    st["lat"] = st["stop_id"].map(lambda s: stops[s].lat)
    st["lon"] = st["stop_id"].map(lambda s: stops[s].lon)
    same_trip = st["trip_id"].eq(st["trip_id"].shift())
    st["hop_km"] = _haversine_series(st["lat"].shift(), st["lon"].shift(), st["lat"], st["lon"]).where(same_trip, 0.0)
    has_sdt = "shape_dist_traveled" in st.columns
    trips_df = feed.trips.set_index("trip_id")
    result: dict[str, FeedTrip] = {}
    bad_times: list[str] = []
    for trip_id, group in st.groupby("trip_id", sort=False):
        trip_id = str(trip_id)
        if len(group) < 2:
            problems.append(f"trip {trip_id} has fewer than two stop times")
            continue
        departures = [
            t if isinstance(t, str) and t.strip() else a
            for a, t in zip(group["arrival_time"], group["departure_time"], strict=True)
        ]
        arrivals = [
            a if isinstance(a, str) and a.strip() else t
            for a, t in zip(group["arrival_time"], group["departure_time"], strict=True)
        ]
        start, end = _minutes(departures[0]), _minutes(arrivals[-1])
        if start is None or end is None or end < start:
            bad_times.append(trip_id)
            continue
        source, km = "stops", float(group["hop_km"].sum())
        trip = trips_df.loc[trip_id]
        shape_id = trip.get("shape_id") if "shape_id" in trips_df.columns else None
        if has_sdt and group["shape_dist_traveled"].notna().iloc[[0, -1]].all():
            sdt = float(group["shape_dist_traveled"].iloc[-1]) - float(group["shape_dist_traveled"].iloc[0])
            if sdt > 0:
                source, km = "shape_dist_traveled", sdt * to_km
        elif isinstance(shape_id, str) and shape_id in shape_km:
            source, km = "shape", shape_km[shape_id]
        block_id = trip.get("block_id") if "block_id" in trips_df.columns else None
        result[trip_id] = FeedTrip(
            trip_id=trip_id,
            service_id=str(trip["service_id"]),
            route_id=str(trip["route_id"]),
            block_id=str(block_id) if isinstance(block_id, str) and block_id.strip() else "",
            start_min=start,
            end_min=end,
            start_stop=str(group["stop_id"].iloc[0]),
            end_stop=str(group["stop_id"].iloc[-1]),
            distance_km=km,
            distance_source=source,
        )
    if bad_times:
        problems.append(f"trips with missing or unreadable first/last times: {', '.join(bad_times[:5])}")
    return result


def _shape_lengths_km(feed: gtfs_kit.Feed) -> dict[str, float]:
    shapes = feed.shapes
    if shapes is None or shapes.empty:
        return {}
    s = shapes.sort_values(["shape_id", "shape_pt_sequence"])
    same = s["shape_id"].eq(s["shape_id"].shift())
    hop = _haversine_series(s["shape_pt_lat"].shift(), s["shape_pt_lon"].shift(), s["shape_pt_lat"], s["shape_pt_lon"])
    lengths = hop.where(same, 0.0).groupby(s["shape_id"]).sum()
    return {str(k): float(v) for k, v in lengths.items()}

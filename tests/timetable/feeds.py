"""Small GTFS feeds written on the fly for the edge cases (the real sample feed is in data/)."""

from __future__ import annotations

import zipfile
from pathlib import Path

# Hermosillo-like coordinates; the depot used by the tests sits next to stop S1.
DEPOT_LAT, DEPOT_LON = 29.0700, -110.9600

EDGE_FEED: dict[str, str | None] = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Sonora Bus,http://example.org,America/Hermosillo\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,A,1,3\nR2,A,2,3\n",
    "stops.txt": (
        "stop_id,stop_name,stop_lat,stop_lon\n"
        "S1,Centro,29.0700,-110.9500\n"
        "S2,Norte,29.1000,-110.9500\n"
        "S3,Oriente,29.1000,-110.9000\n"
    ),
    # Weekdays in January 2026; the Tuesday 6th removed, the Sunday 11th added (calendar exceptions).
    "calendar.txt": (
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
        "WK,1,1,1,1,1,0,0,20260105,20260130\n"
    ),
    "calendar_dates.txt": "service_id,date,exception_type\nWK,20260106,2\nWK,20260111,1\n",
    "shapes.txt": (
        "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n"
        "SH1,29.0700,-110.9500,1,0\n"
        "SH1,29.0850,-110.9450,2,1740\n"
        "SH1,29.1000,-110.9500,3,3480\n"
    ),
    # B1: two trips with block_id and shape_dist_traveled in metres (the shapes tell gtfs-kit the unit).
    # N1: a night trip past midnight (24:30-25:10), no shape. L1-L3: no block_id, chained by evfleet.
    "trips.txt": (
        "route_id,service_id,trip_id,block_id,shape_id\n"
        "R1,WK,T1,B1,SH1\n"
        "R1,WK,T2,B1,\n"
        "R2,WK,N1,NIGHT,\n"
        "R2,WK,L1,,\n"
        "R2,WK,L2,,\n"
        "R2,WK,L3,,\n"
    ),
    "stop_times.txt": (
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n"
        "T1,06:00:00,06:00:00,S1,1,0\n"
        "T1,06:30:00,06:30:00,S2,2,3480\n"
        "T2,07:00:00,07:00:00,S2,1,\n"
        "T2,07:30:00,07:30:00,S1,2,\n"
        "N1,24:30:00,24:30:00,S1,1,\n"
        "N1,25:10:00,25:10:00,S3,2,\n"
        "L1,08:00:00,08:00:00,S1,1,\n"
        "L1,08:40:00,08:40:00,S3,2,\n"
        "L2,09:00:00,09:00:00,S3,1,\n"
        "L2,09:40:00,09:40:00,S1,2,\n"
        "L3,08:10:00,08:10:00,S2,1,\n"
        "L3,08:50:00,08:50:00,S3,2,\n"
    ),
}


def write_feed(directory: Path, name: str = "feed.zip", **changes: str | None) -> Path:
    """The edge feed with some files replaced (``stops_txt="..."``) or left out (``stops_txt=None``)."""
    files = dict(EDGE_FEED)
    for key, value in changes.items():
        files[key.replace("_txt", ".txt")] = value
    path = directory / name
    with zipfile.ZipFile(path, "w") as archive:
        for file_name, text in files.items():
            if text is not None:
                archive.writestr(file_name, text)
    return path

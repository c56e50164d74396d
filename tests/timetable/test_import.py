"""import_gtfs on the real sample feed (gtfs-kit's, vendored) and on edge cases; bad feeds change nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from fleet import services as fleet_services
from fleet.models import Block, BlockAssignment
from tests.factories import BlockAssignmentFactory, DepotFactory, VehicleFactory
from tests.timetable.feeds import DEPOT_LAT, DEPOT_LON, EDGE_FEED, write_feed
from timetable import services
from timetable.models import FeedImport, TimetableBlock

SAMPLE = Path(__file__).parent / "data" / "sample_gtfs.zip"
pytestmark = pytest.mark.django_db


@pytest.fixture
def depot():
    depot = DepotFactory(code="hmo", latitude=DEPOT_LAT, longitude=DEPOT_LON, monthly_mean_temperature_c=[17] * 12)
    VehicleFactory(organization=depot.organization, home_depot=depot)  # its model prices the energy (1.2 kWh/km)
    return depot


def services_depot_update(depot, **data) -> None:
    fleet_services.depot_update(depot=depot, data=data)


def test_real_sample_feed_chains_by_block_id_and_honours_its_calendar_exception(depot, tmp_path):
    # The sample is Google's demo agency in Nevada: put the depot at Beatty.
    services_depot_update(depot, latitude=36.9, longitude=-116.76)
    # 2007-06-04 is a Monday whose FULLW service the feed removes; 2007-06-05 runs it.
    call_command("import_gtfs", str(SAMPLE), "--depot", "hmo", "--from", "2007-06-04", "--to", "2007-06-05")
    assert not Block.objects.filter(depot=depot, service_date=dt.date(2007, 6, 4)).exists()
    links = TimetableBlock.objects.filter(block__depot=depot, block__service_date=dt.date(2007, 6, 5))
    trips = sorted(t for link in links for t in link.trip_ids)
    assert trips == ["AB1", "AB2", "BFC1", "BFC2", "CITY1", "CITY2", "STBA"]  # the FULLW trips, each once
    by_gtfs_block = {link.gtfs_block_id: link.trip_ids for link in links if link.gtfs_block_id}
    assert by_gtfs_block == {"1": ["AB1", "BFC1"], "2": ["BFC2", "AB2"]}  # in driving order
    for link in links:
        block = link.block
        assert block.distance_km == pytest.approx(link.service_km + link.deadhead_km, abs=0.01)
        assert block.planned_energy_kwh == pytest.approx(block.distance_km * 1.2, rel=1e-3)  # 17 °C: no HVAC
    record = FeedImport.objects.get()
    assert record.blocks_created == links.count() and record.report["days"][0]["trips"] == 0


def test_reimport_is_idempotent_and_keeps_assignments(depot, tmp_path):
    feed = write_feed(tmp_path)
    args = ("import_gtfs", str(feed), "--depot", "hmo", "--from", "2026-01-05", "--to", "2026-01-07")
    call_command(*args)
    before = {(b.code, b.service_date): b.pk for b in Block.objects.filter(depot=depot)}
    block = Block.objects.get(depot=depot, code="B1", service_date=dt.date(2026, 1, 5))
    assignment = BlockAssignmentFactory(
        block=block, vehicle=VehicleFactory(organization=depot.organization, home_depot=depot)
    )
    report = services.gtfs_import(depot=depot, path=feed, date_from=dt.date(2026, 1, 5), date_to=dt.date(2026, 1, 7))
    assert report.created == [] and report.updated == [] and report.withdrawn == []
    assert {(b.code, b.service_date): b.pk for b in Block.objects.filter(depot=depot)} == before
    assert BlockAssignment.objects.filter(pk=assignment.pk).exists()

    # A new feed version drops L3 and moves B1 later: B1 is updated in place, its assignment follows it.
    trips = EDGE_FEED["trips.txt"].replace("R2,WK,L3,,\n", "")
    stop_times = "\n".join(line for line in EDGE_FEED["stop_times.txt"].splitlines() if not line.startswith("L3"))
    stop_times = stop_times.replace("T1,06:00:00,06:00:00", "T1,06:10:00,06:10:00") + "\n"
    newer = write_feed(tmp_path, "v2.zip", trips_txt=trips, stop_times_txt=stop_times)
    report = services.gtfs_import(depot=depot, path=newer, date_from=dt.date(2026, 1, 5), date_to=dt.date(2026, 1, 7))
    assert "B1@2026-01-05" in report.updated
    assignment.refresh_from_db()
    assert assignment.block_id == block.pk
    assert BlockAssignment.objects.get(pk=assignment.pk).starts_at > assignment.starts_at - dt.timedelta(hours=1)


def test_edge_cases_midnight_exceptions_shapes_and_no_block_id(depot, tmp_path):
    feed = write_feed(tmp_path)
    report = services.gtfs_import(depot=depot, path=feed, date_from=dt.date(2026, 1, 5), date_to=dt.date(2026, 1, 11))
    # Calendar: Tuesday 6th removed, Sunday 11th added, Saturday 10th never ran.
    ran = {day["date"]: day["trips"] for day in report.days}
    assert ran["2026-01-06"] == 0 and ran["2026-01-10"] == 0 and ran["2026-01-11"] == 6 and ran["2026-01-05"] == 6

    monday = dt.date(2026, 1, 5)
    # The night trip (24:30 on Monday's service) leaves the depot on Tuesday morning.
    night = Block.objects.get(depot=depot, code="NIGHT", service_date=monday + dt.timedelta(days=1))
    assert night.service_date == monday + dt.timedelta(days=1)
    assert dt.time(0, 0) < night.departs_at < dt.time(0, 30) and night.returns_at > dt.time(1, 10)

    # B1: 3.48 km each way from shape_dist_traveled in metres (T1) and from the stops' straight line (T2).
    b1 = TimetableBlock.objects.get(block__code="B1", block__service_date=monday)
    assert b1.trip_ids == ["T1", "T2"]
    assert b1.service_km == pytest.approx(3.48 + 3.336, abs=0.05)
    assert any("no shape" in w for w in report.warnings)

    # No block_id: L1 (08:00-08:40 S1->S3) and L2 (09:00 from S3) chain; L3 overlaps L1, so two blocks.
    chained = [link.trip_ids for link in TimetableBlock.objects.filter(block__service_date=monday, gtfs_block_id="")]
    assert sorted(chained) == [["L1", "L2"], ["L3"]]
    day = next(d for d in report.days if d["date"] == "2026-01-05")
    assert day["chained_blocks"] == day["lower_bound"] == 2 and day["optimal"]


def test_a_depot_without_location_counts_no_deadhead_and_says_so(tmp_path):
    depot = DepotFactory(code="nog")
    VehicleFactory(organization=depot.organization, home_depot=depot)
    report = services.gtfs_import(
        depot=depot, path=write_feed(tmp_path), date_from=dt.date(2026, 1, 5), date_to=dt.date(2026, 1, 5)
    )
    assert any("no location" in w for w in report.warnings)
    assert TimetableBlock.objects.get(block__code="B1").deadhead_km == 0


def test_preview_writes_nothing(depot, tmp_path):
    report = services.gtfs_import(
        depot=depot, path=write_feed(tmp_path), date_from=dt.date(2026, 1, 5), date_to=dt.date(2026, 1, 5), dry_run=True
    )
    assert len(report.created) == 4  # B1, NIGHT and two chained blocks
    assert not Block.objects.exists() and not FeedImport.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stops_txt": None}, "missing file: stops.txt"),
        ({"calendar_txt": None, "calendar_dates_txt": None}, "missing file: calendar.txt or calendar_dates.txt"),
        ({"trips_txt": 'route_id,service_id,trip_id\nR1,WK,T1,extra,"unclosed\n'}, "cannot parse"),
        (
            {"stop_times_txt": EDGE_FEED["stop_times.txt"] + "L3,09:10:00,09:10:00,NOWHERE,3,\n"},
            "unknown stop ids: NOWHERE",
        ),
        ({"stop_times_txt": EDGE_FEED["stop_times.txt"].replace("25:10:00,25:10:00", "xx,xx")}, "unreadable"),
    ],
)
def test_bad_feed_is_reported_and_nothing_is_imported(depot, tmp_path, changes, message):
    # One good import first: a failed one must leave it exactly as it was.
    call_command(
        "import_gtfs",
        str(write_feed(tmp_path, "good.zip")),
        "--depot",
        "hmo",
        "--from",
        "2026-01-05",
        "--to",
        "2026-01-05",
    )
    blocks_before = sorted(Block.objects.values_list("pk", "distance_km"))
    bad = write_feed(tmp_path, "bad.zip", **changes)
    with pytest.raises(CommandError, match=message):
        call_command("import_gtfs", str(bad), "--depot", "hmo", "--from", "2026-01-05", "--to", "2026-01-12")
    assert sorted(Block.objects.values_list("pk", "distance_km")) == blocks_before
    assert FeedImport.objects.count() == 1


def test_not_a_zip_is_reported(depot, tmp_path):
    path = tmp_path / "feed.zip"
    path.write_text("hello")
    with pytest.raises(CommandError, match="not a readable zip"):
        call_command("import_gtfs", str(path), "--depot", "hmo")

"""The telemetry history export: pages by cursor, CSV and JSON Lines streams, depot scoping, bounded queries."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.telemetry.ingest import telemetry_ingest
from tests.citydata.conftest import token_client
from tests.fleet.test_telemetry_support import readings

pytestmark = pytest.mark.django_db
URL = "/api/v1/telemetry/readings/"


def streamed(response) -> str:
    assert response.streaming, response.content
    return b"".join(response.streaming_content).decode()


def test_pages_walk_the_history_by_cursor_without_gaps_or_repeats(api_client, two_depots, recorded):
    client = token_client(api_client, two_depots["manager_a"])
    seen, url = [], f"{URL}?vehicle={two_depots['vehicle_a'].pk}&limit=7"
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.content
        body = page.json()
        seen += [row["recorded_at"] for row in body["results"]]
        url = body["next"]
    assert len(seen) == 20
    assert seen == sorted(seen) and len(set(seen)) == 20
    assert seen[0] == recorded.isoformat().replace("+00:00", "Z")


def test_time_range_is_half_open_and_needs_an_offset(api_client, two_depots, recorded):
    client = token_client(api_client, two_depots["manager_a"])
    after = recorded + dt.timedelta(minutes=5)
    before = recorded + dt.timedelta(minutes=8)
    params = {
        "vehicle": two_depots["vehicle_a"].pk,
        "recorded_after": after.isoformat(),
        "recorded_before": before.isoformat(),
    }
    rows = client.get(URL, params).json()["results"]
    assert [r["recorded_at"][:19] for r in rows] == [
        (after + dt.timedelta(minutes=i)).isoformat()[:19] for i in range(3)
    ]
    naive = client.get(URL, {"recorded_after": "2026-01-01T00:00:00"})
    assert naive.status_code == 400 and "recorded_after" in naive.json()
    assert client.get(URL, {"cursor": "not-a-cursor"}).status_code == 400
    assert (
        client.get(URL, {"recorded_after": after.isoformat(), "recorded_before": after.isoformat()}).status_code == 400
    )


def test_another_depots_readings_never_appear_in_any_format(api_client, two_depots, recorded):
    client = token_client(api_client, two_depots["staff_a"])
    vehicle_b = two_depots["vehicle_b"].pk
    page = client.get(URL).json()
    assert page["results"] and {r["vehicle"] for r in page["results"]} == {two_depots["vehicle_a"].pk}
    assert client.get(URL, {"vehicle": vehicle_b}).json()["results"] == []
    assert client.get(URL, {"depot": two_depots["depot_b"].pk}).json()["results"] == []
    for fmt in ("csv", "jsonl"):
        text = streamed(client.get(URL, {"format": fmt}))
        assert "33.3" not in text  # B's SoC
        assert str(two_depots["vehicle_a"].pk) in text
        assert streamed(client.get(URL, {"format": fmt, "vehicle": vehicle_b})).count("\n") == (
            1 if fmt == "csv" else 0
        )


def test_csv_and_json_lines_carry_every_reading_with_the_same_columns(api_client, two_depots, recorded):
    client = token_client(api_client, two_depots["manager_a"])
    vehicle = two_depots["vehicle_a"].pk
    rows = list(csv.DictReader(io.StringIO(streamed(client.get(URL, {"format": "csv", "vehicle": vehicle})))))
    lines = [
        json.loads(line)
        for line in streamed(client.get(URL, {"vehicle": vehicle}, HTTP_ACCEPT="application/x-ndjson")).splitlines()
    ]
    assert len(rows) == len(lines) == 20
    assert list(rows[0]) == list(lines[0])
    assert float(rows[3]["soc_pct"]) == lines[3]["soc_pct"] == 61.0
    assert rows[3]["charging_state"] == lines[3]["charging_state"] == "none"


def test_the_query_count_does_not_grow_with_the_rows(api_client, two_depots, recorded):
    client = token_client(api_client, two_depots["manager_a"])
    vehicle = two_depots["vehicle_a"]

    def queries(params) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(URL, params)
            if response.streaming:
                b"".join(response.streaming_content)
        return len(captured)

    small = {fmt: queries({"format": fmt, "vehicle": vehicle.pk}) for fmt in ("json", "csv", "jsonl")}
    for batch in range(3):  # 12,000 more readings (5,000 per batch at most)
        start = recorded - dt.timedelta(days=1, hours=batch * 6)
        telemetry_ingest(readings=readings(start, 4_000, step_s=5), vehicle=vehicle)
    large = {fmt: queries({"format": fmt, "vehicle": vehicle.pk, "limit": 1000}) for fmt in ("json", "csv", "jsonl")}
    assert large == small
    assert max(large.values()) <= 4  # token, user, the readings (and a savepoint-free server-side cursor)


def test_anonymous_and_vehicle_keys_are_refused(api_client, two_depots):
    assert api_client.get(URL).status_code == 401

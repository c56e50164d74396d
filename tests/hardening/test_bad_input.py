"""The bad-input catalogue: every write endpoint, fed what a buggy gateway, a fat finger or an attacker sends.

Table-driven: ``ENDPOINTS`` says, per write endpoint, a valid body and which of its fields are a number, a
text, a timestamp, a reference, a computed or fixed field. ``cases_for`` derives the bad requests from that:
non-finite and boolean numbers, huge values (``10**400`` in the JSON), wrong types, naive / far-future /
ancient timestamps, duplicates, empty and oversized bodies, 10,000 nested lists, a wrong content type,
unknown and forbidden fields, unknown and foreign references. Each must answer a 4xx with a JSON reason and
leave every table of the project exactly as it was. The valid body itself must be accepted (the control:
without it a broken fixture would make every case "pass").
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.apps import apps
from django.utils import timezone

from tests import factories as f
from tests.hardening.conftest import token_headers

pytestmark = pytest.mark.django_db

NaN, INF = float("nan"), float("inf")
HUGE = 10**400


@dataclass
class Endpoint:
    method: str
    url: Callable[[dict], str]
    body: Callable[[dict], dict]
    success: int = 201
    number: str | None = None
    text: str | None = None
    timestamp: str | None = None
    reference: str | None = None
    foreign: Callable[[dict], int] | None = None  # depot B's row the reference must not accept
    forbidden: dict = field(default_factory=dict)  # fields a client may not set (mass assignment)
    duplicate: bool = False  # posting the valid body twice is refused (a unique name/number)
    future_ok: bool = False  # the timestamp may lie ahead (an event stamped for the coming night)
    user: str = "manager_a"


def soon(days: int = 1) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


def an_hour_ago() -> str:
    return (timezone.now() - dt.timedelta(hours=1)).isoformat()


ENDPOINTS: dict[str, Endpoint] = {
    "vehicle create": Endpoint(
        "post",
        lambda w: "/api/v1/vehicles/",
        lambda w: {
            "fleet_number": "B-9001",
            "vin": f.make_vin(9001),
            "plate": "SON-9001",
            "model": w["vehicle_a"].model_id,
            "home_depot": w["depot_a"].pk,
        },
        number="model",
        text="fleet_number",
        reference="home_depot",
        foreign=lambda w: w["depot_b"].pk,
        forbidden={"id": 4242, "created_at": "2020-01-01T00:00:00Z"},
        duplicate=True,
    ),
    "depot settings": Endpoint(
        "patch",
        lambda w: f"/api/v1/depots/{w['depot_a'].pk}/",
        lambda w: {"grid_limit_kw": 1200.0, "base_load_kw": [50.0] * 24},
        success=200,
        number="grid_limit_kw",
        text="planning_time",
        reference="tariff",
        foreign=lambda w: w["other_tariff"].pk,
        forbidden={"organization": 4242, "code": "xyz", "id": 4242},
    ),
    "block create": Endpoint(
        "post",
        lambda w: "/api/v1/blocks/",
        lambda w: {
            "depot": w["depot_a"].pk,
            "code": "NEW-1",
            "service_date": soon(2),
            "departs_at": "06:00",
            "returns_at": "12:00",
            "distance_km": 120.0,
        },
        number="distance_km",
        text="code",
        reference="depot",
        foreign=lambda w: w["depot_b"].pk,
        forbidden={"id": 4242},
        duplicate=True,
    ),
    "battery pack create": Endpoint(
        "post",
        lambda w: "/api/v1/battery-packs/",
        lambda w: {
            "organization": w["org"].pk,
            "serial": "NEW-PACK-1",
            "chemistry": "LFP",
            "nominal_kwh": 350.0,
            "nominal_ah": 544.0,
            "cells_in_series": 200,
            "cells_in_parallel": 2,
        },
        number="nominal_kwh",
        text="serial",
        reference="organization",
        foreign=lambda w: w["other_org"].pk,
        forbidden={"active_installation": None, "latest_soh_pct": 100.0, "id": 4242},
        duplicate=True,
    ),
    "pack install": Endpoint(
        "post",
        lambda w: f"/api/v1/battery-packs/{w['spare_pack'].pk}/install/",
        lambda w: {"vehicle": w["vehicle_a"].pk, "installed_at": an_hour_ago()},
        timestamp="installed_at",
        reference="vehicle",
        foreign=lambda w: w["vehicle_b"].pk,
        forbidden={"pack": 4242},
    ),
    "health observation": Endpoint(
        "post",
        lambda w: "/api/v1/health-observations/",
        lambda w: {"pack": w["pack_a"].pk, "observed_at": an_hour_ago(), "source": "manual", "soh_pct": 91.0},
        number="soh_pct",
        text="source",
        timestamp="observed_at",
        reference="pack",
        foreign=lambda w: w["pack_b"].pk,
        forbidden={"id": 4242},
        user="staff_a",
    ),
    "tariff create": Endpoint(
        "post",
        lambda w: "/api/v1/tariffs/",
        lambda w: {
            "organization": w["org"].pk,
            "name": "GDMTH 2027",
            "currency": "MXN",
            "seasons": [
                {
                    "name": "all year",
                    "starts_month": 1,
                    "starts_day": 1,
                    "ends_month": 12,
                    "ends_day": 31,
                    "periods": [
                        {
                            "day_type": "weekday",
                            "period": "base",
                            "starts_at": "00:00",
                            "ends_at": "00:00",
                            "energy_price_per_kwh": "1.10",
                        }
                    ],
                }
            ],
            "demand_charges": [{"name": "capacity", "price_per_kw_month": "350.00", "applies_in_periods": ["punta"]}],
        },
        text="name",
        reference="organization",
        foreign=lambda w: w["other_org"].pk,
        forbidden={"id": 4242},
    ),
    "charger create": Endpoint(
        "post",
        lambda w: "/api/v1/chargers/",
        lambda w: {
            "depot": w["depot_a"].pk,
            "ocpp_charge_point_id": "HMO-NEW",
            "name": "DC new",
            "kind": "dc",
            "max_kw": 150,
        },
        number="max_kw",
        text="name",
        reference="depot",
        foreign=lambda w: w["depot_b"].pk,
        forbidden={"connectors": [], "id": 4242},
        duplicate=True,
    ),
    "charger status": Endpoint(
        "post",
        lambda w: f"/api/v1/chargers/{w['charger_a'].pk}/status/",
        lambda w: {"status": "faulted"},
        success=200,
        text="status",
        forbidden={"max_kw": 1.0},
        user="staff_a",
    ),
    "connector create": Endpoint(
        "post",
        lambda w: "/api/v1/connectors/",
        lambda w: {"charger": w["charger_a"].pk, "connector_id": 2, "standard": "ccs2", "max_kw": 150},
        number="max_kw",
        text="standard",
        reference="charger",
        foreign=lambda w: w["charger_b"].pk,
        forbidden={"id": 4242},
        duplicate=True,
    ),
    "depot event": Endpoint(
        "post",
        lambda w: "/api/v1/depot-events/",
        lambda w: {
            "depot": w["depot_a"].pk,
            "kind": "connector_faulted",
            "client_event_id": "gw-77",
            "connector": w["connector_a"].pk,
            "occurred_at": an_hour_ago(),
        },
        number="soc_pct",
        text="client_event_id",
        timestamp="occurred_at",
        reference="connector",
        foreign=lambda w: w["connector_b"].pk,
        forbidden={"service_night": soon(), "received_at": an_hour_ago(), "id": 4242},
        future_ok=True,
        user="staff_a",
    ),
}


def nested_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def cases_for(endpoint: Endpoint, world: dict) -> list[tuple[str, bytes, str]]:
    """(label, raw body, content type) of every bad request for ``endpoint``."""
    base = endpoint.body(world)

    def with_(**changes) -> bytes:
        return json.dumps({**base, **changes}).encode()

    def raw_value(name: str, literal: str) -> bytes:
        # A literal json.dumps cannot write (10**400 it can, but say it the way a client would).
        return json.dumps({**base, name: "__RAW__"}).replace('"__RAW__"', literal).encode()

    cases = [
        ("empty body", b"", "application/json"),
        ("not JSON", b"{'fleet': ", "application/json"),
        ("a list, not an object", json.dumps([base]).encode(), "application/json"),
        ("a string, not an object", b'"hello"', "application/json"),
        ("10,000 nested lists", nested_lists(10_000).encode(), "application/json"),
        ("form-encoded body", b"a=1&b=2", "application/x-www-form-urlencoded"),
        ("text body", b"hello", "text/plain"),
        ("unknown field", with_(colour_of_the_bus="red"), "application/json"),
        ("unknown field nested 10,000 deep", raw_value("colour", nested_lists(10_000)), "application/json"),
    ]
    for name, value in endpoint.forbidden.items():
        cases.append((f"forbidden field {name}", with_(**{name: value}), "application/json"))
    if endpoint.number:
        n = endpoint.number
        cases += [
            ("NaN literal", raw_value(n, "NaN"), "application/json"),
            ("Infinity literal", raw_value(n, "Infinity"), "application/json"),
            ("-Infinity literal", raw_value(n, "-Infinity"), "application/json"),
            ("1e400 literal", raw_value(n, "1e400"), "application/json"),
            ("10**400", raw_value(n, str(HUGE)), "application/json"),
            ("-10**400", raw_value(n, str(-HUGE)), "application/json"),
            ("2**63", with_(**{n: 2**63}), "application/json"),
            ('"Infinity" string', with_(**{n: "Infinity"}), "application/json"),
            ('"NaN" string', with_(**{n: "NaN"}), "application/json"),
            ("boolean true as number", with_(**{n: True}), "application/json"),
            ("boolean false as number", with_(**{n: False}), "application/json"),
            ("text as number", with_(**{n: "fast"}), "application/json"),
            ("object as number", with_(**{n: {"value": 1}}), "application/json"),
            ("list as number", with_(**{n: [1]}), "application/json"),
            ("negative number", with_(**{n: -1}), "application/json"),
        ]
    if endpoint.text:
        t = endpoint.text
        cases += [
            ("object as text", with_(**{t: {"a": 1}}), "application/json"),
            ("list as text", with_(**{t: ["a"]}), "application/json"),
            ("number as text of a choice", with_(**{t: 12}), "application/json")
            if t in ("source", "status", "standard")
            else ("100,000-character text", with_(**{t: "x" * 100_000}), "application/json"),
            ("NUL in text", with_(**{t: "a\u0000b"}), "application/json"),
            ("number as text", with_(**{t: 10**16}), "application/json"),
            ("null text", with_(**{t: None}), "application/json"),
        ]
    if endpoint.timestamp:
        s = endpoint.timestamp
        cases += [
            ("naive timestamp", with_(**{s: "2026-11-20T10:00:00"}), "application/json"),
            ("ancient timestamp", with_(**{s: "0001-01-01T00:00:00Z"}), "application/json"),
            ("timestamp out of any range", with_(**{s: "99999-01-01T00:00:00Z"}), "application/json"),
            ("not a timestamp", with_(**{s: "yesterday"}), "application/json"),
            ("epoch number as timestamp", with_(**{s: 1763719200}), "application/json"),
        ]
        if not endpoint.future_ok:
            cases.append(("far-future timestamp", with_(**{s: "2999-01-01T00:00:00Z"}), "application/json"))
    if endpoint.reference:
        r = endpoint.reference
        cases += [
            ("unknown reference", with_(**{r: 999_999}), "application/json"),
            ("reference beyond 64 bits", with_(**{r: 2**64}), "application/json"),
            ("reference as text", with_(**{r: "depot-a"}), "application/json"),
            ("reference as object", with_(**{r: {"id": 1}}), "application/json"),
            ("foreign reference (depot B)", with_(**{r: endpoint.foreign(world)}), "application/json"),
        ]
    return cases


def snapshot() -> dict:
    """Every row of every project table (the worlds here are small)."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for app in ("fleet", "batteries", "charging")
        for model in apps.get_app_config(app).get_models()
    }


@pytest.fixture
def world(world):
    world["spare_pack"] = f.BatteryPackFactory(organization=world["org"], serial="SPARE-1")
    return world


def _call(client, endpoint: Endpoint, world, body: bytes, content_type: str):
    method = getattr(client, endpoint.method)
    headers = token_headers(world[f"{endpoint.user.split('_')[0]}_token"])
    return method(endpoint.url(world), data=body, content_type=content_type, **headers)


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_each_bad_input_is_a_4xx_with_a_reason_and_changes_nothing(name, world, client):
    endpoint = ENDPOINTS[name]
    failures = []
    before = snapshot()
    cases = cases_for(endpoint, world)
    for label, body, content_type in cases:
        response = _call(client, endpoint, world, body, content_type)
        reason = response.content[:200]
        if label == "empty body" and endpoint.method == "patch" and response.status_code == 200:
            pass  # an empty PATCH changes nothing, and says so: allowed (the snapshot below still applies)
        elif not 400 <= response.status_code < 500:
            failures.append(f"{label}: {response.status_code} {reason!r}")
        elif response["Content-Type"] != "application/json" or not response.json():
            failures.append(f"{label}: {response.status_code} without a JSON reason: {reason!r}")
        if snapshot() != before:
            failures.append(f"{label}: {response.status_code}, and the database changed")
            before = snapshot()
    print(json.dumps({"catalogue": name, "cases": len(cases)}))  # counts for docs/security.md (pytest -s)
    assert not failures, f"{name}: {len(failures)} of {len(cases)} bad inputs got through:\n" + "\n".join(failures)


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_the_valid_body_of_each_endpoint_is_accepted(name, world, client):
    """The control: the catalogue's bad inputs fail for their badness, not because the base body is wrong."""
    endpoint = ENDPOINTS[name]
    body = json.dumps(endpoint.body(world)).encode()

    response = _call(client, endpoint, world, body, "application/json")

    assert response.status_code == endpoint.success, response.content[:500]
    if endpoint.duplicate:
        again = snapshot()
        duplicate = _call(client, endpoint, world, body, "application/json")
        assert duplicate.status_code == 400, duplicate.content[:300]
        assert duplicate.json()
        assert snapshot() == again


def test_an_oversized_body_is_a_413_with_json_before_anything_is_parsed(world, client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    before = snapshot()
    body = json.dumps({**ENDPOINTS["block create"].body(world), "code": "x" * 20_000}).encode()

    response = client.post(
        "/api/v1/blocks/", data=body, content_type="application/json", **token_headers(world["manager_token"])
    )

    assert response.status_code == 413
    assert "10000 bytes" in response.json()["detail"]
    assert snapshot() == before


def test_every_method_a_route_does_not_offer_is_a_405_with_json(world, client):
    """Walks the schema: for each route, each of GET/POST/PUT/PATCH/DELETE it does not document. As a
    superuser, whom no permission stops first (DRF checks permissions before the method: a viewer's PUT on
    the read-only catalogue is a 403, which refuses it as well)."""
    import re

    from drf_spectacular.generators import SchemaGenerator
    from rest_framework.authtoken.models import Token

    schema = SchemaGenerator().get_schema(request=None, public=True)
    root_token = Token.objects.create(user=f.UserFactory(username="root", is_superuser=True)).key
    before = snapshot()
    failures, tried = [], 0
    for path, item in schema["paths"].items():
        url = re.sub(r"\{[^}]+\}", str(world["vehicle_a"].pk), path)
        for method in {"get", "post", "put", "patch", "delete"} - set(item):
            tried += 1
            body = {} if method == "get" else {"data": "{}", "content_type": "application/json"}
            response = getattr(client, method)(url, **body, **token_headers(root_token))
            if response.status_code != 405 or "detail" not in response.json():
                failures.append(f"{method.upper()} {url}: {response.status_code} {response.content[:100]!r}")
    print(json.dumps({"catalogue": "wrong methods", "cases": tried}))
    assert tried > 50
    assert not failures, "\n".join(failures)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/v1/vehicles/?limit=abc", 400),
        ("/api/v1/vehicles/?limit=0", 400),
        ("/api/v1/vehicles/?offset=-1", 400),
        ("/api/v1/vehicles/?depot=1e308", 400),  # was a 500: the id overflows the database's integer
        ("/api/v1/vehicles/?depot=", 400),
        ("/api/v1/vehicles/?has_depot=maybe", 400),
        ("/api/v1/battery-packs/?installed=-401", 400),  # was ignored: the page looked filtered
        ("/api/v1/blocks/?service_date_after=", 400),
        ("/api/v1/vehicles/?limit=1000000", 200),  # capped at 1,000 rows, not refused
        # PostgreSQL refuses offsets beyond ±15:59 (a 500 before); ISO 8601 allows them: compared in UTC.
        ("/api/v1/charging-sessions/?started_after=2026-01-01T00:00:00-20:04", 200),
    ],
)
def test_bad_query_strings_are_a_400_with_the_parameter_named(world, client, url, status):
    response = client.get(url, **token_headers(world["manager_token"]))

    assert response.status_code == status, response.content[:300]
    if status == 400:
        name = url.split("?")[1].split("=")[0]
        assert name in response.json(), response.json()

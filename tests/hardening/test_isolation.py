"""Depot isolation, walked over the whole API and the whole admin: nothing of depot B is visible or changeable
for depot A's manager, and nothing at all for a vehicle key.

Nothing here lists endpoints by hand. The API routes come from the OpenAPI schema (every operation the
router serves), each route's model from its view; the admin pages from ``admin.site``. A new endpoint or
admin is therefore walked automatically, and fails until the world below has a row of its model in depot B
(``hidden_from_manager_a``) and the view keeps it hidden. Shared data (the vehicle-model catalogue) is the
one declared exception.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, resolve, reverse
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from fleet.api.scoped import DepotScopedViewSetMixin
from tests.hardening.conftest import bearer_headers, token_headers
from tests.hardening.test_bad_input import snapshot

pytestmark = pytest.mark.django_db

# Views that are deliberately not depot-scoped, and why. Anything else must mix in DepotScopedViewSetMixin.
UNSCOPED_BY_DESIGN = {
    "VehicleModelViewSet": "the make-and-model catalogue is shared by every organisation (superusers write)",
    "ThrottledObtainAuthToken": "exchanges a password for the user's own token",
    "TelemetryBatchView": "scopes each reading itself: restrict(Vehicle, OPERATE) or the key's own vehicle",
    "ReportViewSet": "no rows of its own: each report restricts its depot, vehicle and sessions (walked below)",
    "ApiRootView": "a map of the API's areas and endpoints, no rows",
}
REJECTED = {401, 403, 404, 405}


def api_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(path, method.upper()) for path, item in schema["paths"].items() for method in item]


def view_of(path: str):
    match = resolve(re.sub(r"\{[^}]+\}", "1", path))
    return getattr(match.func, "cls", None) or getattr(match.func, "view_class", None)


def model_of(view_class):
    queryset = getattr(view_class, "queryset", None)
    return None if queryset is None else queryset.model


@pytest.fixture
def world(world):
    """``depot_world`` plus the telemetry rows (live state, duty cycle) of each depot's bus."""
    from charging.models import Connector
    from fleet.models import DailyDutyCycle, VehicleLiveState
    from fleet.telemetry.duty import duty_cycle_compute, local_day_window, vehicle_zone
    from fleet.telemetry.ingest import telemetry_ingest
    from tests.fleet.test_telemetry_support import readings

    w = world
    for side in ("a", "b"):
        vehicle = w[f"vehicle_{side}"]
        day = timezone.localdate() - dt.timedelta(days=1)
        start, _end = local_day_window(day, vehicle_zone(vehicle))
        telemetry_ingest(readings=readings(start + dt.timedelta(hours=8), 30, step_s=60), vehicle=vehicle)
        w[f"duty_{side}"] = duty_cycle_compute(vehicle=vehicle, day=day)
    w["hidden_from_manager_a"][VehicleLiveState] = VehicleLiveState.objects.get(vehicle=w["vehicle_b"])
    w["hidden_from_manager_a"][DailyDutyCycle] = w["duty_b"]
    w["hidden_from_manager_a"][Connector] = w["connector_b"]
    w["seen_by_manager_a"][VehicleLiveState] = VehicleLiveState.objects.get(vehicle=w["vehicle_a"])
    w["seen_by_manager_a"][DailyDutyCycle] = w["duty_a"]
    return w


def foreign_markers(w) -> list[str]:
    """Strings that only depot B's (and the other organisation's) rows contain."""
    markers = [
        w["depot_b"].name,
        w["vehicle_b"].fleet_number,
        w["vehicle_b"].vin,
        w["vehicle_b"].plate,
        w["block_b"].code,
        w["pack_b"].serial,
        w["charger_b"].ocpp_charge_point_id,
        w["alert_b"].message,
        w["event_b"].client_event_id,
        w["api_key_b"].prefix,
        w["other_org"].name,
        w["other_tariff"].name,
        "staff_b",
    ]
    if "session_b" in w:
        markers.append(w["session_b"].external_id)
    return [m for m in markers if m]


def leaks(text: str, markers: list[str]) -> list[str]:
    return [m for m in markers if m in text]


def test_every_api_view_is_depot_scoped_or_declared_shared():
    unscoped = sorted(
        {
            view.__name__
            for path, _method in api_operations()
            if (view := view_of(path)) is not None
            and not issubclass(view, DepotScopedViewSetMixin)
            and view.__name__ not in UNSCOPED_BY_DESIGN
        }
    )
    assert not unscoped, f"views without depot scoping (mix in DepotScopedViewSetMixin): {unscoped}"


def test_depot_a_reads_nothing_of_depot_b_anywhere_in_the_api(world, client):
    w = world
    markers = foreign_markers(w)
    headers = token_headers(w["manager_token"])
    hidden = w["hidden_from_manager_a"]
    problems, walked = [], 0
    for path, method in api_operations():
        if method != "GET":
            continue
        if "{" in path:
            model = model_of(view_of(path))
            if model not in hidden:
                problems.append(f"{path}: no row of {model} in depot B to prove it hidden (extend the world)")
                continue
            if hidden[model] is None:
                continue  # shared catalogue
            url = re.sub(r"\{[^}]+\}", str(hidden[model].pk), path, count=1)
            urls = [url]
        else:
            # The list itself, and the list asked for depot B's rows by every filter that names an object.
            urls = [path] + [f"{path}?{name}={w[f'{name}_b'].pk}" for name in ("depot", "vehicle")]
        for url in urls:
            walked += 1
            response = client.get(url, **headers)
            if response.status_code >= 500:
                problems.append(f"GET {url}: {response.status_code}")
            if "{" in path and response.status_code not in REJECTED:
                problems.append(f"GET {url}: {response.status_code}, expected 404")
            if found := leaks(response.content.decode(errors="replace"), markers):
                problems.append(f"GET {url}: shows {found}")
    print(json.dumps({"isolation": "api reads", "requests": walked}))
    assert walked > 40
    assert not problems, "\n".join(problems)


def test_depot_a_changes_nothing_of_depot_b_through_the_api(world, client):
    w = world
    headers = token_headers(w["manager_token"])
    hidden = w["hidden_from_manager_a"]
    before = snapshot()
    problems, walked = [], 0
    for path, method in api_operations():
        if method == "GET" or "{" not in path:
            continue
        model = model_of(view_of(path))
        if model not in hidden:
            problems.append(f"{method} {path}: no row of {model} in depot B to attack (extend the world)")
            continue
        if hidden[model] is None:
            continue
        url = re.sub(r"\{[^}]+\}", str(hidden[model].pk), path, count=1)
        walked += 1
        response = getattr(client, method.lower())(url, data=json.dumps({}), content_type="application/json", **headers)
        if response.status_code not in REJECTED:
            problems.append(f"{method} {url}: {response.status_code} {response.content[:150]!r}")
    print(json.dumps({"isolation": "api writes", "requests": walked}))
    assert walked >= 15
    assert not problems, "\n".join(problems)
    assert snapshot() == before


def test_a_vehicle_key_reads_nothing_and_changes_nothing_outside_its_upload(world, client):
    w = world
    before = snapshot()
    problems = []
    for path, method in api_operations():
        if path in ("/api/v1/telemetry/batch/", "/api/v1/auth/token/"):
            continue
        url = re.sub(r"\{[^}]+\}", str(w["vehicle_a"].pk), path)
        body = {} if method == "GET" else {"data": json.dumps({}), "content_type": "application/json"}
        response = getattr(client, method.lower())(url, **body, **bearer_headers(w["vehicle_key"]))
        if response.status_code != 401:
            problems.append(f"{method} {url}: {response.status_code}")
    assert not problems, "\n".join(problems)
    assert snapshot() == before


def admin_url(model, view: str, *args) -> str | None:
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)
    except NoReverseMatch:
        return None


def test_depot_a_sees_and_changes_nothing_of_depot_b_in_the_admin(world, client):
    """Every registered admin: its list shows none of B's markers; B's row's change, history and delete
    pages are not found; posting to B's change and delete pages changes nothing."""
    w = world
    client.force_login(w["manager_a"])
    markers = foreign_markers(w)
    hidden = {**w["hidden_from_manager_a"]}
    before = snapshot()
    problems, walked = [], 0
    for model in admin.site._registry:
        if model._meta.app_label not in ("fleet", "batteries", "charging"):
            continue
        changelist = admin_url(model, "changelist")
        response = client.get(changelist)
        walked += 1
        if response.status_code not in (200, 403):
            problems.append(f"{changelist}: {response.status_code}")
        if found := leaks(response.content.decode(), markers):
            problems.append(f"{changelist}: shows {found}")
        if model not in hidden:
            if model._meta.model_name not in ADMIN_WITHOUT_DEPOT_ROWS:
                problems.append(f"{model.__name__}: no row in depot B to prove hidden (extend the world)")
            continue
        if hidden[model] is None:
            continue
        for view in ("change", "history", "delete"):
            url = admin_url(model, view, hidden[model].pk)
            if url is None:
                continue
            response = client.get(url, follow=True)
            walked += 1
            if found := leaks(response.content.decode(), markers):
                problems.append(f"{url}: shows {found}")
            if response.status_code == 200 and not response.redirect_chain:
                problems.append(f"{url}: answered 200 for depot B's row")
            response = client.post(url, {"post": "yes"})
            if response.status_code not in (302, 403, 404):
                problems.append(f"POST {url}: {response.status_code}")
    print(json.dumps({"isolation": "admin pages", "requests": walked}))
    assert walked > 40
    assert not problems, "\n".join(problems)
    assert snapshot() == before


# Admins whose rows have no depot (or that depot_world does not fill): their lists are still walked.
ADMIN_WITHOUT_DEPOT_ROWS = {"forecastrun"}


def test_the_markers_are_there_to_be_found(world, client):
    """The control: a superuser's lists do show depot B's markers, so their absence above means something."""
    from tests import factories as f

    root = f.UserFactory(username="root", is_superuser=True)
    client.force_login(root)
    shown = " ".join(
        client.get(url).content.decode()
        for url in ("/api/v1/vehicles/", "/api/v1/battery-packs/", "/api/v1/alerts/", "/api/v1/depot-events/")
    )
    shown += client.get(admin_url(type(world["block_b"]), "changelist")).content.decode()

    assert set(leaks(shown, foreign_markers(world))) >= {
        world["vehicle_b"].fleet_number,
        world["pack_b"].serial,
        world["alert_b"].message,
        world["event_b"].client_event_id,
        world["block_b"].code,
    }

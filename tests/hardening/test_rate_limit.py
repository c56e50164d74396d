"""The API rate limit: each user and each vehicle has its own budget of requests a minute, the telemetry upload has
a budget of its own, and a spent budget answers 429 with JSON and ``Retry-After``.

The test run's rates are out of the way (tests/conftest.py); ``low_rates`` brings them down to a few requests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from django.utils import timezone

from fleet.telemetry.keys import vehicle_key_issue, vehicle_key_rotate
from tests.fleet.test_telemetry_support import readings
from tests.hardening.conftest import bearer_headers, token_headers

pytestmark = pytest.mark.django_db

VEHICLES = "/api/v1/vehicles/"
BATCH = "/api/v1/telemetry/batch/"
USER_RATE, VEHICLE_RATE, BATCH_RATE = 5, 4, 3


@pytest.fixture
def low_rates(settings):
    rates = {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "user": f"{USER_RATE}/min",
        "vehicle": f"{VEHICLE_RATE}/min",
        "telemetry_batch": f"{BATCH_RATE}/min",
    }
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def upload(client, headers: dict, vehicle=None):
    rows = readings(timezone.now() - dt.timedelta(minutes=10), 3, step_s=60)
    if vehicle is not None:  # depot staff name the vehicle
        rows = [{**row, "vehicle": vehicle.pk} for row in rows]
    return client.post(BATCH, data=json.dumps({"readings": rows}), content_type="application/json", **headers)


def assert_throttled(response) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert "throttled" in response.json()["detail"].lower()
    assert 1 <= int(response["Retry-After"]) <= 60


def test_a_user_over_the_budget_gets_429_json_with_retry_after(world, client, low_rates):
    manager = token_headers(world["manager_token"])

    answers = [client.get(VEHICLES, **manager).status_code for _ in range(USER_RATE)]
    throttled = client.get(VEHICLES, **manager)

    assert answers == [200] * USER_RATE
    assert_throttled(throttled)


def test_each_user_has_a_budget_of_their_own_whatever_the_credential(world, client, low_rates):
    for _ in range(USER_RATE):
        client.get(VEHICLES, **token_headers(world["manager_token"]))

    assert client.get(VEHICLES, **token_headers(world["staff_token"])).status_code == 200
    client.force_login(world["manager_a"])  # the same user in a session: the same, spent budget
    assert client.get(VEHICLES).status_code == 429


def test_the_telemetry_upload_has_a_budget_per_vehicle_of_its_own(world, client, low_rates):
    vehicle_a = bearer_headers(world["vehicle_key"])
    vehicle_b = bearer_headers(vehicle_key_issue(vehicle=world["vehicle_b"])[1])

    answers = [upload(client, vehicle_a).status_code for _ in range(BATCH_RATE)]
    throttled = upload(client, vehicle_a)

    assert answers == [200] * BATCH_RATE
    assert_throttled(throttled)
    assert upload(client, vehicle_b).status_code == 200  # another bus is not held up by this one


def test_a_vehicle_is_counted_by_the_vehicle_not_by_the_key(world, client, low_rates):
    """During a rotation both keys work, and share the vehicle's budget."""
    _new, new_key = vehicle_key_rotate(vehicle=world["vehicle_a"], grace=dt.timedelta(hours=1))
    for _ in range(BATCH_RATE):
        assert upload(client, bearer_headers(world["vehicle_key"])).status_code == 200

    assert upload(client, bearer_headers(new_key)).status_code == 429


def test_reading_the_api_and_uploading_do_not_starve_each_other(world, client, low_rates):
    """Depot staff (a gateway) upload within the upload budget, read within the user budget."""
    staff = token_headers(world["staff_token"])
    for _ in range(USER_RATE):
        assert client.get(VEHICLES, **staff).status_code == 200
    assert client.get(VEHICLES, **staff).status_code == 429

    uploads = [upload(client, staff, vehicle=world["vehicle_a"]).status_code for _ in range(BATCH_RATE)]

    assert uploads == [200] * BATCH_RATE
    assert upload(client, staff, vehicle=world["vehicle_a"]).status_code == 429
    assert upload(client, bearer_headers(world["vehicle_key"])).status_code == 200  # the bus's own budget


def test_every_operation_documents_429(client):
    schema = client.get("/api/schema/?format=json").json()
    operations = {
        f"{method.upper()} {path}": responses["responses"]
        for path, item in schema["paths"].items()
        for method, responses in item.items()
    }

    assert len(operations) >= 80
    assert [name for name, responses in operations.items() if "429" not in responses] == []


def settings_in_a_new_process(**env) -> subprocess.CompletedProcess:
    script = "import django; django.setup(); from django.conf import settings; "
    script += "import json; print(json.dumps(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']))"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    return subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60)


def test_the_rates_are_read_from_the_environment_and_a_malformed_one_stops_the_start():
    configured = settings_in_a_new_process(
        EVFLEET_API_RATE_USER="7/min", EVFLEET_API_RATE_VEHICLE="8/hour", EVFLEET_API_RATE_TELEMETRY_BATCH="9/s"
    )
    malformed = settings_in_a_new_process(EVFLEET_API_RATE_USER="600 per minute")

    assert configured.returncode == 0, configured.stderr
    rates = json.loads(configured.stdout.strip().splitlines()[-1])
    assert (rates["user"], rates["vehicle"], rates["telemetry_batch"]) == ("7/min", "8/hour", "9/s")
    assert malformed.returncode != 0
    assert "EVFLEET_API_RATE_USER" in malformed.stderr and "ImproperlyConfigured" in malformed.stderr


@pytest.mark.services
def test_the_count_lives_in_the_shared_redis_cache(world, client, low_rates, redis_url):
    import redis
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    manager = token_headers(world["manager_token"])
    for _ in range(USER_RATE):
        client.get(VEHICLES, **manager)

    assert isinstance(caches["default"], RedisCache)
    keys = redis.Redis.from_url(redis_url).keys(f"*throttle_user_user-{world['manager_a'].pk}")
    assert len(keys) == 1  # every worker process reads and writes this one count
    assert client.get(VEHICLES, **manager).status_code == 429
    redis.Redis.from_url(redis_url).delete(*keys)
    assert client.get(VEHICLES, **manager).status_code == 200  # the count was that key, nothing per process

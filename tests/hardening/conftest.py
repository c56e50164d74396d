"""The seeded world the hardening tests attack: ``depot_world`` (one row of every admin model per depot),
a DRF token for depot A's manager, and a vehicle key for depot A's bus."""

from __future__ import annotations

import pytest

from tests.fleet.test_admin_support import depot_world, fast_passwords  # noqa: F401  (fixtures)


@pytest.fixture
def world(depot_world):  # noqa: F811
    from rest_framework.authtoken.models import Token

    from fleet.telemetry.keys import vehicle_key_issue

    w = depot_world
    w["manager_token"] = Token.objects.create(user=w["manager_a"]).key
    w["staff_token"] = Token.objects.create(user=w["staff_a"]).key
    w["staff_b_token"] = Token.objects.create(user=w["staff_b"]).key
    w["vehicle_key"] = vehicle_key_issue(vehicle=w["vehicle_a"])[1]
    return w


def token_headers(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {token}"}


def bearer_headers(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}

"""The client address that sign-in throttling counts by, in both set-ups: gunicorn reached directly
(``NUM_PROXIES=0``, the default) and behind one reverse proxy (``NUM_PROXIES=1``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hardening.test_credentials import LOGIN_RATE, ask_for_token

ROOT_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


@pytest.fixture
def num_proxies(settings):
    def set_to(value: int) -> None:
        # A new REST_FRAMEWORK dict: DRF reloads its settings on the setting_changed signal.
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": value}

    return set_to


def test_reached_directly_a_forged_forwarded_for_header_never_buys_another_attempt(world, client, num_proxies):
    num_proxies(0)

    answers = [
        ask_for_token(client, address="203.0.113.20", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(LOGIN_RATE + 3)
    ]

    assert answers == [400] * LOGIN_RATE + [429] * 3


def test_behind_one_proxy_the_address_the_proxy_saw_is_counted_not_what_the_client_wrote(world, client, num_proxies):
    num_proxies(1)
    proxy = "10.0.0.2"  # every request reaches gunicorn from the proxy

    def through_proxy(client_address: str, forged: str | None = None):
        # The proxy appends the address it sees to whatever the client sent.
        header = f"{forged}, {client_address}" if forged else client_address
        return ask_for_token(client, address=proxy, HTTP_X_FORWARDED_FOR=header).status_code

    guesser = [through_proxy("203.0.113.30", forged=f"198.51.100.{n}") for n in range(LOGIN_RATE + 3)]
    neighbour = through_proxy("203.0.113.31")  # another client behind the same proxy: a budget of its own

    assert guesser == [400] * LOGIN_RATE + [429] * 3
    assert neighbour == 400


@pytest.mark.parametrize(("environment", "expected"), [({}, 0), ({"NUM_PROXIES": "1"}, 1), ({"NUM_PROXIES": "2"}, 2)])
def test_num_proxies_comes_from_the_environment_and_defaults_to_0_in_production(environment, expected):
    env = {
        **{k: v for k, v in os.environ.items() if k != "NUM_PROXIES"},
        "DJANGO_ENV": "production",
        "SECRET_KEY": "a-long-random-production-like-secret-key-for-the-check-" + "x" * 20,
        "ALLOWED_HOSTS": "evfleet.example",
        **environment,
    }
    script = "from rest_framework.settings import api_settings; print(api_settings.NUM_PROXIES)"

    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(expected)

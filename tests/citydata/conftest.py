"""Fixtures of the city data tests: two depots with readings, tokens for their people, a loopback receiver of
NGSI-LD notifications."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import threading
from collections.abc import Iterator

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from citydata.services import SIGNATURE_HEADER, TIMESTAMP_HEADER
from fleet.telemetry.ingest import telemetry_ingest
from tests.fleet.test_telemetry_support import fast_password_hashing, readings

_fast_hashing = pytest.fixture(autouse=True)(fast_password_hashing)


def token_client(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return api_client


@pytest.fixture
def recorded(two_depots):
    """Twenty minutes of one-minute readings for each depot's bus, ending a minute ago; B's at a distinct SoC."""
    start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=21)
    telemetry_ingest(readings=readings(start, 20, step_s=60, soc_pct=61.0), vehicle=two_depots["vehicle_a"])
    telemetry_ingest(readings=readings(start, 20, step_s=60, soc_pct=33.3), vehicle=two_depots["vehicle_b"])
    return start


class Receiver:
    """A real HTTP server on 127.0.0.1 that answers the given statuses in turn and keeps what it got."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.received: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made: list[Receiver] = []

    def make(statuses):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for each in made:
        each.close()


def valid_signature(message: dict, secret: str) -> bool:
    mac = hmac.new(
        secret.encode(), f"{message['headers'][TIMESTAMP_HEADER]}.".encode() + message["body"], hashlib.sha256
    )
    return hmac.compare_digest(message["headers"][SIGNATURE_HEADER], f"sha256={mac.hexdigest()}")

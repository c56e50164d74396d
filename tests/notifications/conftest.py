"""A loopback webhook receiver: a real HTTP server on 127.0.0.1 that checks each request's signature itself
(hashlib/hmac, not evfleet's code) and answers from a script of status codes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    body: dict
    timestamp: int
    signature_valid: bool
    status_answered: int
    delivery_id: str = ""  # the X-Evfleet-Delivery header


@dataclass
class Receiver:
    secret: str
    url: str = ""
    answers: list[int] = field(default_factory=list)  # status codes to answer, in order; then 200
    requests: list[Received] = field(default_factory=list)

    def valid(self, raw: bytes, timestamp: str, signature: str) -> bool:
        expected = hmac.new(self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(timestamp)) < 300
        return fresh and hmac.compare_digest(f"sha256={expected}", signature)


@pytest.fixture
def receiver():
    state = Receiver(secret="test-secret-" + "x" * 20)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            timestamp = self.headers.get("X-Evfleet-Timestamp", "0")
            valid = state.valid(raw, timestamp, self.headers.get("X-Evfleet-Signature", ""))
            status = state.answers.pop(0) if state.answers else 200
            if not valid:
                status = 401
            delivery_id = self.headers.get("X-Evfleet-Delivery", "")
            state.requests.append(Received(json.loads(raw), int(timestamp), valid, status, delivery_id))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/evfleet"
    yield state
    server.shutdown()
    server.server_close()

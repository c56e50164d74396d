"""Errors no view answers are JSON on the API, shaped like every other API error (``{"detail": ...}``), and an
outage of the database or of the task queue is a 503 with Retry-After (a page in the admin), never a 500.

The views below stand for "any view meeting the error": the real outages (PostgreSQL stopped and restarted,
Redis stopped, gunicorn workers killed) are in tests/faults/.
"""

from __future__ import annotations

import kombu.exceptions
import psycopg
import pytest
from django.db import OperationalError
from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from config.urls import urlpatterns as project_urlpatterns
from tests.hardening.conftest import token_headers

pytestmark = pytest.mark.django_db


@api_view(["GET"])
@permission_classes([AllowAny])
def database_gone(request):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


@api_view(["GET"])
@permission_classes([AllowAny])
def copy_interrupted(request):
    raise psycopg.OperationalError("server closed the connection unexpectedly")


@api_view(["GET"])
@permission_classes([AllowAny])
def broker_gone(request):
    raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@api_view(["GET"])
@permission_classes([AllowAny])
def bug(request):
    raise RuntimeError("a bug")


def admin_page_database_gone(request):
    raise OperationalError("the database system is shutting down")


failing = [
    path("database-gone/", database_gone),
    path("copy-interrupted/", copy_interrupted),
    path("broker-gone/", broker_gone),
    path("bug/", bug),
]
urlpatterns = [
    path("api/v1/test-errors/", include(failing)),
    path("admin/test-errors/database-gone/", admin_page_database_gone),
    *project_urlpatterns,
]
# The project's handlers, as config.urls declares them.
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"


@pytest.fixture
def plain_client(client):
    client.raise_request_exception = False  # answer as in production, not re-raise into the test
    return client


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail"} and body["detail"]
    return body


def test_an_unknown_api_url_is_a_json_404(world, client):
    response = client.get("/api/v1/no-such-endpoint/", **token_headers(world["manager_token"]))

    assert "/api/docs/" in assert_json_error(response, 404)["detail"]


def test_an_unknown_page_outside_the_api_is_still_the_html_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_method_the_route_does_not_offer_is_a_json_405(world, client):
    response = client.delete("/api/v1/vehicles/", **token_headers(world["manager_token"]))

    assert_json_error(response, 405)


def test_a_host_not_allowed_is_a_json_400_on_the_api(client):
    response = client.get("/api/v1/vehicles/", HTTP_HOST="evil.example")

    assert_json_error(response, 400)


@pytest.mark.urls(__name__)
def test_a_bug_in_an_api_view_is_a_json_500(plain_client):
    assert "logged" in assert_json_error(plain_client.get("/api/v1/test-errors/bug/"), 500)["detail"]


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("url", ["/api/v1/test-errors/database-gone/", "/api/v1/test-errors/copy-interrupted/"])
def test_the_database_away_is_a_json_503_with_retry_after(plain_client, url):
    response = plain_client.get(url)

    assert "database is unavailable" in assert_json_error(response, 503)["detail"]
    assert int(response["Retry-After"]) > 0


@pytest.mark.urls(__name__)
def test_the_task_queue_away_is_a_json_503_with_retry_after(plain_client):
    response = plain_client.get("/api/v1/test-errors/broker-gone/")

    assert "task queue" in assert_json_error(response, 503)["detail"]
    assert int(response["Retry-After"]) > 0


@pytest.mark.urls(__name__)
def test_the_admin_shows_a_friendly_503_page_when_the_database_is_away(plain_client):
    response = plain_client.get("/admin/test-errors/database-gone/")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("text/html")
    assert b"briefly unavailable" in response.content


def test_the_api_root_says_where_things_are(client):
    root = client.get("/api/")
    post = client.post("/api/")

    assert root.status_code == 200 and root.json()["docs"] == "/api/docs/"
    assert client.get(root.json()["v1"] + "vehicles/").status_code == 401  # the links lead somewhere real
    assert_json_error(post, 405)


class DatabaseGoneBeforeTheView:
    """Stands for a middleware meeting the outage (a session or user read before any view runs)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.endswith("/outage-in-middleware/"):
            raise OperationalError("the database system is starting up")
        return self.get_response(request)


@pytest.mark.parametrize(
    ("url", "content_type"),
    [("/api/v1/outage-in-middleware/", "application/json"), ("/admin/outage-in-middleware/", "text/html")],
)
def test_an_outage_met_outside_any_view_is_a_503_too(plain_client, settings, url, content_type):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.DatabaseGoneBeforeTheView"]

    response = plain_client.get(url)

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith(content_type)

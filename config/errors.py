"""Error answers outside the views: JSON on the API, a friendly page elsewhere, 503 while the database is away.

Django answers what no view handled (an unknown URL, an uncaught exception, a bad request caught by Django
itself) with HTML pages: on ``/api/`` these views answer ``{"detail": "..."}`` instead, the shape of every other
API error. An uncaught database error - the database stopped, restarting, or unreachable - is not a bug of the
request: it answers **503 with ``Retry-After``** (JSON on the API, a short page in the admin) rather than a
500. Django drops the broken connection when the request ends, so the first request after the database is
back opens a new one (``CONN_HEALTH_CHECKS`` checks a kept one before reuse).

Wired as ``handler400/403/404/500`` in ``config/urls.py``; the DRF views' own errors are JSON already.
"""

from __future__ import annotations

import logging
import sys

import kombu.exceptions
import psycopg
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
DATABASE_RETRY_AFTER_S = 5
# psycopg's own errors escape Django's wrapper where the driver is used directly (the telemetry COPY).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
# The task queue (Redis) refusing a task sent after a commit: what was committed stays, and a re-sent request is
# answered as already done (telemetry and depot events are idempotent), so the client may retry.
BROKER_UNAVAILABLE = (kombu.exceptions.OperationalError,)


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def api_error(status: int, detail: str, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status, headers=headers)


def database_unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503 + Retry-After for a request that met a database outage.

    Nothing to clean up here: at the end of the request Django closes a connection that raised, and at the
    start of the next one checks a kept connection before using it (``CONN_HEALTH_CHECKS``).
    """
    logger.warning("Database unavailable during %s %s: %s; answering 503.", request.method, request.path, exc)
    headers = {"Retry-After": str(DATABASE_RETRY_AFTER_S)}
    if is_api(request):
        return api_error(503, "The database is unavailable; nothing was changed. Retry shortly.", headers)
    body = loader.render_to_string("503.html", {"retry_after_s": DATABASE_RETRY_AFTER_S})
    return HttpResponse(body, status=503, headers=headers)


def broker_unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    logger.error("Task queue unavailable during %s %s: %s; answering 503.", request.method, request.path, exc)
    headers = {"Retry-After": str(DATABASE_RETRY_AFTER_S)}
    if is_api(request):
        return api_error(503, "The task queue is unavailable. Retry shortly: a re-sent request is safe.", headers)
    body = loader.render_to_string("503.html", {"retry_after_s": DATABASE_RETRY_AFTER_S})
    return HttpResponse(body, status=503, headers=headers)


def bad_request(request: HttpRequest, exception: Exception, template_name: str = "400.html") -> HttpResponse:
    if is_api(request):
        return api_error(400, "Bad request.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception, template_name: str = "403.html") -> HttpResponse:
    if is_api(request):
        return api_error(403, "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception, template_name: str = "404.html") -> HttpResponse:
    if is_api(request):
        return api_error(404, "Not found: no API endpoint at this address (see /api/docs/).")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    # Django calls this while it handles the exception: sys.exc_info() is the error that got here.
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return database_unavailable(request, exc)
    if isinstance(exc, BROKER_UNAVAILABLE):
        return broker_unavailable(request, exc)
    if is_api(request):
        return api_error(500, "Internal server error; it has been logged.")
    return defaults.server_error(request)


class DatabaseUnavailableMiddleware:
    """Answer a view's database outage with 503 (``database_unavailable``) instead of a logged 500.

    Errors raised in other middleware (a session read before the view) still reach ``server_error``, which
    answers them the same way.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_UNAVAILABLE):
            return database_unavailable(request, exception)
        if isinstance(exception, BROKER_UNAVAILABLE):
            return broker_unavailable(request, exception)
        return None


def api_root(request: HttpRequest) -> JsonResponse:
    """``/api/``: where things are, so that the API's own root is not a 404."""
    if request.method not in ("GET", "HEAD"):
        return api_error(405, f'Method "{request.method}" not allowed.', {"Allow": "GET, HEAD"})
    return JsonResponse(
        {"v1": "/api/v1/", "schema": "/api/schema/", "docs": "/api/docs/", "redoc": "/api/redoc/"},
        headers={"Allow": "GET, HEAD"},
    )

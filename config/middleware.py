"""Request hardening that has to happen before a view runs: body size limits answered as JSON on the API."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse

API_PREFIX = "/api/"
TELEMETRY_BATCH_PATH = "/api/v1/telemetry/batch/"


def body_limit_bytes(path: str) -> int | None:
    """The largest body accepted at ``path``: telemetry batches have their own (larger) limit."""
    if path == TELEMETRY_BATCH_PATH:
        return settings.EVFLEET_TELEMETRY_MAX_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _too_large(limit: int | None) -> JsonResponse:
    return JsonResponse({"detail": f"The request body exceeds {limit} bytes."}, status=413)


class BodySizeLimitMiddleware:
    """Answer an oversized API body with 413 JSON before anything reads it.

    DRF parses JSON from the request stream, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (checked only when
    ``request.body`` or ``request.POST`` is read) would never stop a 1 GB JSON body; and where Django does
    raise ``RequestDataTooBig`` it answers an HTML 400. The declared Content-Length is checked here; a body
    sent without one (chunked) reaches Django as an empty stream, so nothing unbounded is read either way.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path.startswith(API_PREFIX):
            limit = body_limit_bytes(request.path)
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0  # Django reads a malformed length as an empty body
            if limit is not None and declared > limit:
                return _too_large(limit)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, RequestDataTooBig) and request.path.startswith(API_PREFIX):
            return _too_large(body_limit_bytes(request.path))
        return None

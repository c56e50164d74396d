"""The OpenAPI generator: drf-spectacular's, plus the error answers every operation can give.

drf-spectacular documents only the success code of an operation. The errors below are answered by the
plumbing every view shares (authentication, depot scoping, serializers, the body size limit, the parser,
``destroy_or_conflict``, throttles), so they are added here once instead of on every view. An operation
that documents a code itself (``@extend_schema(responses=...)``) keeps its own description.
"""

from __future__ import annotations

import threading

from django.utils.translation import get_language
from drf_spectacular import openapi
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import permissions

from config.api import RejectUnknownFieldsMixin

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` says why; a validation error names each offending field instead, with its reasons.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}


# The API's areas, by the Python package of the view that answers (the first matching prefix wins). Config
# names no app: these are module names, as in INSTALLED_APPS. The schema's tags and the API root use them;
# each area's description is its tag's, in SPECTACULAR_SETTINGS["TAGS"].
API_AREAS: tuple[tuple[str, str], ...] = (
    ("fleet.telemetry", "telemetry"),
    ("fleet", "registry"),
    ("batteries", "batteries"),
    ("charging", "charging"),
    ("notifications", "notifications"),
    ("csms", "ocpp"),
    ("timetable", "timetable"),
    ("citydata", "city data"),
    ("config", "auth"),
)


def api_area(module: str) -> str:
    """The area (tag) of a view defined in ``module``; "other" if no area claims it."""
    for prefix, tag in API_AREAS:
        if module == prefix or module.startswith(prefix + "."):
            return tag
    return "other"


class CachedSchemaGenerator(SchemaGenerator):
    """Builds the schema once per process and language (it is 350 KB and took seconds per request): it changes
    only with the code, which a deploy restarts. A schema for a non-public view of it is not cached."""

    _cache: dict[tuple, dict] = {}
    _lock = threading.Lock()

    def get_schema(self, request=None, public=False):
        if not public:
            return super().get_schema(request=request, public=public)
        key = (get_language(), self.api_version, self.urlconf)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = super().get_schema(request=request, public=public)
            return self._cache[key]


class AutoSchema(openapi.AutoSchema):
    def get_tags(self) -> list[str]:
        """One tag per area of the API (registry, telemetry, batteries, charging, ...), not per path."""
        return [api_area(type(self.view).__module__)]

    def error_responses(self) -> dict[str, str]:
        """Status code -> description of the errors this operation can answer."""
        view, method = self.view, self.method
        codes: dict[str, str] = {}
        has_query = any(parameter.get("in") == "query" for parameter in self._get_parameters())
        if method in BODY_METHODS or method == "DELETE" or has_query:
            codes["400"] = "Invalid input: the reason is given per field (or under `detail`)."
        public = all(isinstance(p, permissions.AllowAny) for p in view.get_permissions())
        if not public:
            codes["401"] = "No or invalid credentials."
            codes["403"] = "Your role (or credential type) does not allow this."
        if "{" in self.path or has_query:
            # Also for a query naming an object you may not see, and DRF's answer to an unknown ?format=.
            codes["404"] = "No such object among those you may see."
        if method == "DELETE":
            codes["409"] = "Other records still depend on this one; the reason names them."
        if method in BODY_METHODS:
            codes["413"] = "The request body is too large."
            codes["415"] = "The body is not JSON (Content-Type must be application/json)."
        if getattr(view, "throttle_classes", None):
            codes["429"] = "Too many requests; retry after the number of seconds in `Retry-After`."
        return codes

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        # Writes refuse unknown fields (config.api.RejectUnknownFieldsMixin): the request schema says so.
        if direction == "request" and isinstance(serializer, RejectUnknownFieldsMixin):
            schema["additionalProperties"] = False
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        component = ResolvedComponent(
            name="ApiError", type=ResolvedComponent.SCHEMA, object="ApiError", schema=ERROR_SCHEMA
        )
        self.registry.register_on_missing(component)
        for code, description in self.error_responses().items():
            error = {"content": {"application/json": {"schema": component.ref}}, "description": description}
            responses.setdefault(code, error)
        return dict(sorted(responses.items()))

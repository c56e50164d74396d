"""A read-only NGSI-LD API subset: ``GET /ngsi-ld/v1/entities`` (by type and id) and ``/entities/{id}``.

Content negotiation as NGSI-LD asks: ``Accept: application/ld+json`` puts the ``@context`` in the body;
``application/json`` (the default) leaves it out and sends it as a ``Link`` header instead. ``options=keyValues``
gives the simplified form (what the Smart Data Models schemas describe). Errors are NGSI-LD ProblemDetails.
Scoped like every read (``restrict``): a token sees the vehicles and chargers of the holder's depots.
Documented in docs/city-data.md (the OpenAPI schema covers the JSON API under /api/v1/ only).
"""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, renderers
from rest_framework.response import Response

from citydata import entities, ngsi_ld
from citydata.models import EntityType
from citydata.throttling import CityFeedThrottle
from fleet.api.scoped import DepotScopedViewSetMixin
from fleet.models import Vehicle
from fleet.scoping import Action, restrict

JSON_LD = "application/ld+json"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
LIMIT_DEFAULT, LIMIT_MAX = 20, 1000


class JSONLDRenderer(renderers.JSONRenderer):
    media_type = JSON_LD
    format = "jsonld"


class NgsiLdError(exceptions.APIException):
    def __init__(self, status: int, kind: str, detail: str):
        self.status_code = status
        self.kind = kind
        super().__init__(detail)


def problem(status: int, kind: str, title: str, detail: str) -> JsonResponse:
    body = {"type": ERRORS + kind, "title": title, "status": status, "detail": detail}
    return JsonResponse(body, status=status, content_type="application/json")


@extend_schema(exclude=True)
class NgsiLdView(DepotScopedViewSetMixin, generics.GenericAPIView):
    queryset = Vehicle.objects.all()
    renderer_classes = [renderers.JSONRenderer, JSONLDRenderer]
    throttle_classes = [CityFeedThrottle]
    pagination_class = None
    filter_backends: list = []

    def handle_exception(self, exc):
        if isinstance(exc, NgsiLdError):
            return problem(exc.status_code, exc.kind, exc.kind, str(exc.detail))
        response = super().handle_exception(exc)
        kind = {400: "BadRequestData", 401: "NotAuthenticated", 403: "PermissionDenied", 404: "ResourceNotFound"}
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        out = problem(response.status_code, kind.get(response.status_code, "InternalError"), "", str(detail))
        for header in ("WWW-Authenticate", "Retry-After"):
            if header in response:
                out[header] = response[header]
        return out

    def scoped(self):
        from charging.models import Charger

        user = self.request.user
        return restrict(entities.all_vehicles(), user, Action.VIEW), restrict(Charger.objects.all(), user, Action.VIEW)

    def answer(self, request, data):
        context_url = request.build_absolute_uri(reverse("ngsi-ld-context"))
        if request.accepted_renderer.media_type == JSON_LD:
            if isinstance(data, list):
                data = [{**item, "@context": [context_url]} for item in data]
            else:
                data = {**data, "@context": [context_url]}
            return Response(data, content_type=JSON_LD)
        response = Response(data, content_type="application/json")
        response["Link"] = f'<{context_url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
        return response

    @staticmethod
    def shape(items: list[dict], options: str) -> list[dict]:
        if "keyValues" in options.split(","):
            return items
        return [ngsi_ld.normalized(item) for item in items]


def _int_param(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise NgsiLdError(400, "BadRequestData", f"{name} must be an integer from {low} to {high}.")
    return int(raw)


class EntityListView(NgsiLdView):
    def get(self, request):
        entity_type = request.query_params.get("type")
        ids_param = request.query_params.get("id")
        if not entity_type and not ids_param:
            raise NgsiLdError(400, "BadRequestData", "Give type= (Vehicle or EVChargingStation) or id=.")
        ids = [i for i in ids_param.split(",") if i] if ids_param else None
        types = [entity_type] if entity_type else sorted({t for i in ids or [] if (t := entities.entity_type_of(i))})
        for each in types:
            if each not in EntityType.values:
                raise NgsiLdError(400, "BadRequestData", f"Unknown type {each!r}: Vehicle or EVChargingStation.")
        limit = _int_param(request, "limit", LIMIT_DEFAULT, 0, LIMIT_MAX)
        offset = _int_param(request, "offset", 0, 0, 10**9)
        vehicles, chargers = self.scoped()
        found: list[dict] = []
        for each in types:
            found += entities.entities_of(each, vehicles, chargers, ids=ids, limit=limit, offset=offset)
        return self.answer(request, self.shape(found[:limit], request.query_params.get("options", "")))


class EntityDetailView(NgsiLdView):
    def get(self, request, entity_id: str):
        entity_type = entities.entity_type_of(entity_id)
        if entity_type is None:
            raise NgsiLdError(404, "ResourceNotFound", f"No entity {entity_id}.")
        vehicles, chargers = self.scoped()
        found = entities.entities_of(entity_type, vehicles, chargers, ids=[entity_id], limit=1, offset=0)
        found = [item for item in found if item["id"] == entity_id]
        if not found:
            raise NgsiLdError(404, "ResourceNotFound", f"No entity {entity_id}.")
        return self.answer(request, self.shape(found, request.query_params.get("options", ""))[0])


def context_document(request):
    """evfleet's @context: the Smart Data Models terms, evfleet's own terms and the NGSI-LD core."""
    return JsonResponse({"@context": ngsi_ld.context()}, content_type=JSON_LD)

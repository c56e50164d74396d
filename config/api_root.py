"""``GET /api/v1/``: the API's areas, each with its description and its list endpoints (instead of a 404)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver, path, reverse
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import API_AREAS, api_area

API_NAMESPACE = "v1"


def _list_routes(resolver: URLResolver) -> list[tuple[str, str]]:
    """(url name, area) of every list endpoint (a DRF router's ``<basename>-list``) under ``resolver``."""
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found.extend(_list_routes(entry))
        elif isinstance(entry, URLPattern) and entry.name and entry.name.endswith("-list"):
            view_class = getattr(entry.callback, "cls", None)
            if view_class is not None:
                found.append((entry.name, api_area(view_class.__module__)))
    return found


class ApiRootView(APIView):
    """A map of the API, no rows (so no depot scoping); for signed-in users like every other endpoint."""

    @extend_schema(
        summary="The API's areas and their list endpoints",
        responses=inline_serializer(
            "ApiRoot",
            {
                "docs": serializers.URLField(),
                "schema": serializers.URLField(),
                "areas": serializers.DictField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        _namespace, v1 = get_resolver().namespace_dict[API_NAMESPACE]
        descriptions = {tag["name"]: tag.get("description", "") for tag in spectacular_settings.TAGS}
        areas: dict[str, dict] = {
            tag: {"description": descriptions.get(tag, ""), "endpoints": {}} for _prefix, tag in API_AREAS
        }
        for name, area in sorted(_list_routes(v1)):
            url = request.build_absolute_uri(reverse(f"{API_NAMESPACE}:{name}"))
            areas.setdefault(area, {"description": "", "endpoints": {}})["endpoints"][name.removesuffix("-list")] = url
        return Response(
            {
                "docs": request.build_absolute_uri(reverse("api-docs")),
                "schema": request.build_absolute_uri(reverse("schema")),
                "areas": {tag: area for tag, area in areas.items() if area["endpoints"]},
            }
        )


api_root = ApiRootView.as_view()

urlpatterns = [path("", api_root, name="api-root")]  # included by config/urls.py at /api/v1/

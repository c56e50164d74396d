"""The OpenAPI schema generates cleanly and the interactive docs work on a machine with no internet."""

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_generates_and_validates_without_a_single_warning(tmp_path):
    out = tmp_path / "schema.yaml"

    # --fail-on-warn turns any warning (untyped field, enum collision, unresolvable path) into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    schema = yaml.safe_load(out.read_text())
    for path in [
        "/api/v1/vehicles/",
        "/api/v1/blocks/",
        "/api/v1/block-assignments/",
        "/api/v1/battery-packs/{id}/install/",
        "/api/v1/health-observations/",
        "/api/v1/tariffs/",
        "/api/v1/chargers/{id}/status/",
    ]:
        assert path in schema["paths"], path
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    # Writes and reads are described separately, and the server-computed fields are not in the request.
    assert "organization" not in schema["components"]["schemas"]["PatchedVehicleUpdateRequest"]["properties"]
    assert "id" not in schema["components"]["schemas"]["VehicleRequest"]["properties"]


def test_schema_endpoint_answers_json(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["info"]["title"] == "evfleet API"


def test_docs_page_loads_swagger_ui_from_our_own_static_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="/static/(drf_spectacular_sidecar/[^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert all(finders.find(asset) for asset in assets), "every asset the page loads ships with the app"
    assert not re.search(r"(?:src|href)=\"https?://", html), "no CDN: the docs must work offline"


def test_redoc_loads_from_our_own_static_files_without_web_fonts(client):
    response = client.get("/api/redoc/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="/static/(drf_spectacular_sidecar/[^"]+)"', html)
    assert any(a.endswith("redoc.standalone.js") for a in assets)
    assert all(finders.find(asset) for asset in assets)
    assert "https://" not in html and "http://" not in html, "no CDN, no Google Fonts: the docs work offline"


def test_the_schema_is_built_once_not_per_request(client, monkeypatch):
    from drf_spectacular.generators import SchemaGenerator

    from config.schema import CachedSchemaGenerator

    monkeypatch.setattr(CachedSchemaGenerator, "_cache", {})
    builds = []
    build = SchemaGenerator.get_schema

    def counted(self, request=None, public=False):
        builds.append(1)
        return build(self, request=request, public=public)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    first = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    second = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert first == second and "/api/v1/vehicles/" in first["paths"]
    assert len(builds) == 1


def test_operations_are_tagged_by_area():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    tags = {
        path: operation["tags"]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert tags["/api/v1/vehicles/"] == ["registry"]
    assert tags["/api/v1/battery-packs/"] == ["batteries"]
    assert tags["/api/v1/chargers/"] == ["charging"]
    assert tags["/api/v1/charging-plans/"] == ["charging"]
    assert tags["/api/v1/telemetry/live/"] == ["telemetry"]
    used = {tag for each in tags.values() for tag in each}
    assert {"registry", "batteries", "charging", "telemetry"} <= used
    assert "v1" not in used and "other" not in used


def test_the_api_root_lists_the_areas_and_their_endpoints(client, django_user_model):
    assert client.get("/api/v1/").status_code == 401  # like every endpoint: for signed-in users
    client.force_login(django_user_model.objects.create_user("reader", password="x"))
    response = client.get("/api/v1/")

    assert response.status_code == 200
    body = response.json()
    areas = body["areas"]
    assert {"registry", "batteries", "charging", "telemetry"} <= set(areas)
    assert areas["registry"]["endpoints"]["vehicle"].endswith("/api/v1/vehicles/")
    assert areas["charging"]["endpoints"]["charging-plan"].endswith("/api/v1/charging-plans/")
    assert areas["charging"]["description"]
    assert body["docs"].endswith("/api/docs/")
    for area in areas.values():  # every listed endpoint answers, none is a 404
        for url in area["endpoints"].values():
            assert client.get(url).status_code in (200, 403), url

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

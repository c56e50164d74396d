"""The NGSI-LD entities: validated against the vendored Smart Data Models schemas, content types, scoping."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from citydata import ngsi_ld
from tests import factories as f
from tests.citydata.conftest import token_client

pytestmark = pytest.mark.django_db
SCHEMAS = Path(__file__).resolve().parents[2] / "citydata" / "schemas"
ENTITIES = "/ngsi-ld/v1/entities"


def validator(entity_type: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / f"{entity_type}.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture
def fleet(two_depots, recorded):
    w = two_depots
    w["org"].slug = "sonora-bus"
    w["org"].save()
    pack = f.BatteryPackFactory(organization=w["org"])
    f.PackInstallationFactory(pack=pack, vehicle=w["vehicle_a"])
    f.HealthObservationFactory(pack=pack, soh_pct=93.5)
    for side in ("a", "b"):
        charger = f.ChargerFactory(depot=w[f"depot_{side}"], name=f"Charger {side.upper()}")
        f.ConnectorFactory(charger=charger, connector_id=1)
        f.ConnectorFactory(charger=charger, connector_id=2, standard="type2", status="charging")
        w[f"charger_{side}"] = charger
    return w


def test_vehicles_and_stations_validate_against_the_smart_data_models_schemas(api_client, fleet):
    client = token_client(api_client, fleet["manager_a"])
    for entity_type in ("Vehicle", "EVChargingStation"):
        response = client.get(ENTITIES, {"type": entity_type, "options": "keyValues"})
        assert response.status_code == 200, response.content
        found = response.json()
        assert len(found) == 1
        errors = [e.message for item in found for e in validator(entity_type).iter_errors(item)]
        assert not errors, errors
    vehicle = client.get(ENTITIES, {"type": "Vehicle", "options": "keyValues"}).json()[0]
    assert vehicle["id"] == ngsi_ld.vehicle_urn("sonora-bus", fleet["vehicle_a"].pk)
    assert vehicle["battery"] == 0.61  # the last reading's SoC, as a fraction
    assert vehicle["batteryStateOfHealth"] == 93.5
    assert vehicle["location"] == {"type": "Point", "coordinates": [-110.9559, 29.0729]}
    station = client.get(ENTITIES, {"type": "EVChargingStation", "options": "keyValues"}).json()[0]
    assert station["socketType"] == ["CCS/SAE", "Type2"] and station["capacity"] == 2
    assert station["availableCapacity"] == 1


def test_the_schemas_refuse_what_the_data_model_forbids():
    """The control: a wrong vehicle type or a missing required attribute fails validation."""
    good = ngsi_ld.vehicle_entity(
        organization_slug="o",
        vehicle_id=1,
        fleet_number="B-1",
        plate="",
        kind="bus",
        status="in_service",
        on_block=True,
        live={"latitude": 29.0, "longitude": -110.9},
        soh_pct=None,
    )
    assert validator("Vehicle").is_valid(good)
    assert not validator("Vehicle").is_valid({**good, "vehicleType": "spaceship"})
    assert not validator("Vehicle").is_valid({k: v for k, v in good.items() if k != "location"})
    assert not validator("Vehicle").is_valid({**good, "battery": 61})  # a percentage where a fraction belongs
    assert not validator("Vehicle").is_valid({**good, "refVehicleModel": "not an id"})  # spaces: neither id nor URI


def test_the_station_schema_has_upstreams_integer_counts_and_unique_sockets():
    """The rules tightened after the check against upstream's schema.json: counts are integers, sockets unique."""
    station = {
        "id": "urn:ngsi-ld:EVChargingStation:o:1",
        "type": "EVChargingStation",
        "socketType": ["CCS/SAE"],
        "capacity": 2,
        "socketNumber": 2,
        "allowedVehicleType": ["bus"],
    }
    check = validator("EVChargingStation")
    assert check.is_valid(station)
    assert not check.is_valid({**station, "capacity": 1.5})
    assert not check.is_valid({**station, "socketNumber": 0})
    assert not check.is_valid({**station, "socketType": ["CCS/SAE", "CCS/SAE"]})


def test_normalized_form_content_types_and_link_header(api_client, fleet):
    client = token_client(api_client, fleet["manager_a"])
    plain = client.get(ENTITIES, {"type": "Vehicle"})
    assert plain["Content-Type"] == "application/json"
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in plain["Link"]
    entity = plain.json()[0]
    assert "@context" not in entity
    assert entity["location"]["type"] == "GeoProperty"
    assert entity["speed"] == {"type": "Property", "value": 31.0, "observedAt": entity["speed"]["observedAt"]}
    linked = client.get(ENTITIES, {"type": "Vehicle"}, HTTP_ACCEPT="application/ld+json")
    assert linked["Content-Type"] == "application/ld+json"
    assert linked.json()[0]["@context"] and "Link" not in linked
    context = client.get("/ngsi-ld/contexts/evfleet.jsonld").json()["@context"]
    assert ngsi_ld.SDM_TRANSPORTATION_CONTEXT in context


def test_by_id_and_another_depots_entities_are_not_found(api_client, fleet):
    client = token_client(api_client, fleet["staff_a"])
    urn_a = ngsi_ld.vehicle_urn("sonora-bus", fleet["vehicle_a"].pk)
    urn_b = ngsi_ld.vehicle_urn("sonora-bus", fleet["vehicle_b"].pk)
    station_b = ngsi_ld.station_urn("sonora-bus", fleet["charger_b"].pk)
    assert client.get(f"{ENTITIES}/{urn_a}").json()["id"] == urn_a
    wrong_org = ngsi_ld.vehicle_urn("elsewhere", fleet["vehicle_a"].pk)
    huge = "urn:ngsi-ld:Vehicle:sonora-bus:99999999999999999999999"
    for urn in (urn_b, station_b, wrong_org, huge, "urn:ngsi-ld:Vehicle:sonora-bus:999999", "nonsense"):
        response = client.get(f"{ENTITIES}/{urn}")
        assert response.status_code == 404
        assert response.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    listed = client.get(ENTITIES, {"id": f"{urn_a},{urn_b},{station_b}"}).json()
    assert [e["id"] for e in listed] == [urn_a]
    text = client.get(ENTITIES, {"type": "EVChargingStation"}).content.decode()
    assert "Charger A" in text and "Charger B" not in text


def test_bad_requests_are_problem_details(api_client, fleet):
    client = token_client(api_client, fleet["manager_a"])
    for params in ({}, {"type": "Spaceship"}, {"type": "Vehicle", "limit": "-1"}, {"type": "Vehicle", "limit": "x"}):
        response = client.get(ENTITIES, params)
        assert response.status_code == 400, params
        assert response.json()["type"].endswith("BadRequestData")
    anonymous = api_client.__class__().get(ENTITIES, {"type": "Vehicle"})
    assert anonymous.status_code == 401

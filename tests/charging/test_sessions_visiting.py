"""A bus that charges at another depot of its organisation (a visiting bus): recorded where it charged.

Nogales' bus B visits Hermosillo and charges on Hermosillo's charger. Hermosillo's staff record the session; it is
priced at Hermosillo's tariff and counted in Hermosillo's month. Nogales' staff read it (read-only) because it is
their bus's history; San Luis Río Colorado's staff, a third depot, see nothing of it. A bus of another
organisation is refused exactly as an id that does not exist.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.urls import reverse

from charging.models import ChargingSession, TariffPeriod
from tests import factories as f

HMO = zoneinfo.ZoneInfo("America/Hermosillo")
SESSIONS_URL = reverse("v1:charging-session-list")
MONTHLY = reverse("v1:report-monthly")
HERMOSILLO_PRICE, NOGALES_PRICE = Decimal("2.0000"), Decimal("1.0000")


def session_url(session: ChargingSession) -> str:
    return reverse("v1:charging-session-detail", args=[session.pk])


def flat_tariff(organization, price: Decimal):
    """One price at every hour of every day type, so a session's cost says which tariff priced it."""
    tariff = f.TariffFactory(organization=organization)
    season = f.TariffSeasonFactory(tariff=tariff)
    for day_type in TariffPeriod.DayType.values:
        f.TariffPeriodFactory(season=season, day_type=day_type, energy_price_per_kwh=price)
    return tariff


@pytest.fixture
def visit(two_depots):
    """``two_depots`` (A = Hermosillo, B = Nogales) with a tariff each, a charger at A, a third depot C with its
    own staff, and another organisation with a bus."""
    w = two_depots
    for depot, price in ((w["depot_a"], HERMOSILLO_PRICE), (w["depot_b"], NOGALES_PRICE)):
        depot.tariff = flat_tariff(w["org"], price)
        depot.save()
    w["connector_a"] = f.ConnectorFactory(charger=f.ChargerFactory(depot=w["depot_a"]), connector_id=1)
    w["depot_c"] = f.DepotFactory(organization=w["org"], name="San Luis Río Colorado", code="slrc")
    w["staff_c"] = f.UserFactory(username="staff_c")
    f.MembershipFactory(user=w["staff_c"], depot=w["depot_c"], role="staff")
    w["other_org"] = f.OrganizationFactory(name="Transportes del Puerto")
    w["other_bus"] = f.VehicleFactory(
        organization=w["other_org"], home_depot=f.DepotFactory(organization=w["other_org"], name="Guaymas")
    )
    return w


def payload(w, **changes) -> dict:
    """Bus B's session on Hermosillo's connector: 50 minutes, 25 kWh, on Tuesday 10 March 2026."""
    return {
        "source": "charger_gateway",
        "external_id": "hmo-tx-4401",
        "depot": w["depot_a"].pk,
        "vehicle": w["vehicle_b"].pk,
        "connector": w["connector_a"].pk,
        "started_at": "2026-03-10T17:40:00-07:00",
        "ended_at": "2026-03-10T18:30:00-07:00",
        "energy_kwh": 25.0,
        **changes,
    }


def visiting_session(w) -> ChargingSession:
    return f.ChargingSessionFactory(
        depot=w["depot_a"],
        vehicle=w["vehicle_b"],
        connector=w["connector_a"],
        started_at=dt.datetime(2026, 3, 10, 17, 40, tzinfo=HMO),
        ended_at=dt.datetime(2026, 3, 10, 18, 30, tzinfo=HMO),
        energy_kwh=25.0,
    )


def listed_ids(api_client, user, **params) -> list[int]:
    api_client.force_authenticate(user)
    response = api_client.get(SESSIONS_URL, params)
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- Recording ------------------------------------------------------------------------------------------------


def test_a_visiting_bus_is_recorded_at_the_depot_that_charged_it_and_priced_at_that_depots_tariff(visit, api_client):
    api_client.force_authenticate(visit["staff_a"])  # a gateway posting with Hermosillo staff's token
    response = api_client.post(SESSIONS_URL, payload(visit), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["depot"] == visit["depot_a"].pk and body["vehicle"] == visit["vehicle_b"].pk
    assert body["cost"] == str(25 * HERMOSILLO_PRICE.quantize(Decimal("0.01")))  # "50.00"; at Nogales: 25.00
    assert body["fleet_number"] == visit["vehicle_b"].fleet_number
    again = api_client.post(SESSIONS_URL, payload(visit), format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]


def test_the_visiting_bus_still_cannot_be_recorded_at_a_depot_the_poster_does_not_work_at(visit, api_client):
    api_client.force_authenticate(visit["staff_a"])
    response = api_client.post(SESSIONS_URL, payload(visit, depot=visit["depot_c"].pk, connector=None), format="json")
    assert response.status_code == 400 and "depot" in response.json()
    assert not ChargingSession.objects.exists()


def test_another_organisations_bus_is_refused_exactly_like_an_id_that_does_not_exist(visit, api_client):
    missing_pk = f.VehicleFactory(organization=visit["org"]).pk + 1000
    api_client.force_authenticate(visit["staff_a"])

    foreign = api_client.post(SESSIONS_URL, payload(visit, vehicle=visit["other_bus"].pk), format="json")
    missing = api_client.post(SESSIONS_URL, payload(visit, vehicle=missing_pk), format="json")

    assert foreign.status_code == missing.status_code == 400
    assert foreign["Content-Type"].startswith("application/json")
    assert foreign.json() == {"vehicle": [f'Invalid pk "{visit["other_bus"].pk}" - object does not exist.']}
    assert missing.json() == {"vehicle": [f'Invalid pk "{missing_pk}" - object does not exist.']}
    assert not ChargingSession.objects.exists()


def test_someone_working_in_both_organisations_cannot_mix_them_and_is_told_the_same(visit, api_client):
    # They may name the other organisation's bus in its own depots' sessions, so it passes the field's scope;
    # the pairing with a Hermosillo depot is refused with the unknown-id answer all the same.
    f.MembershipFactory(user=visit["staff_a"], depot=visit["other_bus"].home_depot, role="staff")
    api_client.force_authenticate(visit["staff_a"])
    response = api_client.post(SESSIONS_URL, payload(visit, vehicle=visit["other_bus"].pk), format="json")
    assert response.status_code == 400
    assert response.json() == {"vehicle": [f'Invalid pk "{visit["other_bus"].pk}" - object does not exist.']}
    assert not ChargingSession.objects.exists()


# --- Reading --------------------------------------------------------------------------------------------------


def test_the_charging_depot_sees_the_visitors_session_but_not_the_visitors_sessions_at_home(visit, api_client):
    here = visiting_session(visit)
    at_home = f.ChargingSessionFactory(depot=visit["depot_b"], vehicle=visit["vehicle_b"])

    assert listed_ids(api_client, visit["staff_a"]) == [here.pk]
    assert api_client.get(session_url(here)).status_code == 200
    assert api_client.get(session_url(at_home)).status_code == 404


def test_the_home_depot_reads_its_bus_sessions_elsewhere_but_not_the_rest_of_that_depot(visit, api_client):
    elsewhere = visiting_session(visit)
    hermosillo_own = f.ChargingSessionFactory(depot=visit["depot_a"], vehicle=visit["vehicle_a"])
    at_home = f.ChargingSessionFactory(depot=visit["depot_b"], vehicle=visit["vehicle_b"])

    assert sorted(listed_ids(api_client, visit["staff_b"])) == sorted([elsewhere.pk, at_home.pk])
    assert listed_ids(api_client, visit["staff_b"], depot=visit["depot_a"].pk) == [elsewhere.pk]
    assert api_client.get(session_url(elsewhere)).json()["cost"] == "50.00"
    assert api_client.get(session_url(hermosillo_own)).status_code == 404
    # Read-only: Hermosillo's month is not Nogales' to read, and a session cannot be changed by anyone.
    assert api_client.get(MONTHLY, {"depot": visit["depot_a"].pk, "month": "2026-03"}).status_code == 404
    assert api_client.patch(session_url(elsewhere), {"energy_kwh": 1.0}, format="json").status_code == 405


def test_a_third_depot_sees_nothing_of_the_visit(visit, api_client):
    elsewhere = visiting_session(visit)
    f.ChargingSessionFactory(depot=visit["depot_b"], vehicle=visit["vehicle_b"])

    assert listed_ids(api_client, visit["staff_c"]) == []
    assert listed_ids(api_client, visit["staff_c"], vehicle=visit["vehicle_b"].pk) == []
    assert api_client.get(session_url(elsewhere)).status_code == 404
    assert api_client.get(MONTHLY, {"vehicle": visit["vehicle_b"].pk, "month": "2026-03"}).status_code == 404


def test_the_home_depot_still_does_not_see_its_bus_charging_away_from_any_depot(visit, api_client):
    # Telemetry-detected charges away from every depot stay the organisation's managers' business.
    away = f.ChargingSessionFactory(depot=None, vehicle=visit["vehicle_b"], source=ChargingSession.Source.TELEMETRY)
    assert away.pk not in listed_ids(api_client, visit["staff_b"])
    assert listed_ids(api_client, visit["manager_a"], away="true") == [away.pk]


# --- Reports --------------------------------------------------------------------------------------------------


def test_the_depot_month_counts_the_visit_where_it_charged_and_the_vehicle_month_counts_it_for_the_bus(
    visit, api_client
):
    visiting_session(visit)
    f.ChargingSessionFactory(
        depot=visit["depot_b"],
        vehicle=visit["vehicle_b"],
        started_at=dt.datetime(2026, 3, 11, 1, 0, tzinfo=HMO),
        ended_at=dt.datetime(2026, 3, 11, 3, 0, tzinfo=HMO),
        energy_kwh=40.0,
    )

    api_client.force_authenticate(visit["staff_a"])
    hermosillo = api_client.get(MONTHLY, {"depot": visit["depot_a"].pk, "month": "2026-03"}).json()
    assert (hermosillo["energy_kwh"], hermosillo["energy_cost"], hermosillo["sessions"]) == (25.0, "50.00", 1)
    assert [row["vehicle"] for row in hermosillo["vehicles"]] == [visit["vehicle_b"].pk]

    api_client.force_authenticate(visit["staff_b"])
    nogales = api_client.get(MONTHLY, {"depot": visit["depot_b"].pk, "month": "2026-03"}).json()
    assert (nogales["energy_kwh"], nogales["energy_cost"], nogales["sessions"]) == (40.0, "40.00", 1)
    bus = api_client.get(MONTHLY, {"vehicle": visit["vehicle_b"].pk, "month": "2026-03"}).json()
    assert (bus["energy_kwh"], bus["energy_cost"], bus["sessions"]) == (65.0, "90.00", 2)
    assert {place["depot_code"]: place["energy_cost"] for place in bus["places"]} == {"hmo": "50.00", "nog": "40.00"}


def test_admin_session_list_follows_the_same_reading_rule(visit, client):
    # The home depot's manager sees the bus's session at Hermosillo in the admin too (read-only);
    # a manager of the third depot does not.
    w = visit
    session = visiting_session(w)
    url = reverse("admin:charging_chargingsession_changelist")
    manager_b = f.manager_of(w["depot_b"], username="manager_b", is_staff=True)
    manager_c = f.manager_of(w["depot_c"], username="manager_c", is_staff=True)

    client.force_login(manager_b)
    listed = client.get(url)
    assert listed.status_code == 200
    assert session.pk in [s.pk for s in listed.context["cl"].result_list]
    assert client.get(reverse("admin:charging_chargingsession_change", args=[session.pk])).status_code == 200

    client.force_login(manager_c)
    assert session.pk not in [s.pk for s in client.get(url).context["cl"].result_list]
    assert client.get(reverse("admin:charging_chargingsession_change", args=[session.pk])).status_code in (302, 404)

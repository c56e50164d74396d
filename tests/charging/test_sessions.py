"""Charging sessions: priced at the tariff minute by minute, recorded once, seen only by their depot.

The tariff is GDMTH-like (weekdays: base 00-06, intermedia 06-18, punta 18-22, intermedia 22-24); the depot
is in Hermosillo (UTC-7, no daylight saving). 10 March 2026 is a Tuesday.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from charging.models import ChargingSession, TariffPeriod
from charging.sessions import SessionConflict, charging_session_record
from tests import factories as f

HMO = zoneinfo.ZoneInfo("America/Hermosillo")
WEEKDAY, SATURDAY, SUNDAY = (
    TariffPeriod.DayType.WEEKDAY,
    TariffPeriod.DayType.SATURDAY,
    TariffPeriod.DayType.SUNDAY_HOLIDAY,
)
BASE, INTERMEDIA, PUNTA = Decimal("0.9000"), Decimal("1.2345"), Decimal("2.8765")


def local(day: int, hour: int, minute: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=HMO)


def gdmth_tariff(organization):
    """Weekdays in three periods; weekends all base. Capacity charge on punta, distribution on all hours."""
    tariff = f.TariffFactory(organization=organization, name="GDMTH Sonora")
    season = f.TariffSeasonFactory(tariff=tariff)
    for day_type, period, starts, ends, price in [
        (WEEKDAY, "base", 0, 6, BASE),
        (WEEKDAY, "intermedia", 6, 18, INTERMEDIA),
        (WEEKDAY, "punta", 18, 22, PUNTA),
        (WEEKDAY, "intermedia", 22, 0, INTERMEDIA),
        (SATURDAY, "base", 0, 0, BASE),
        (SUNDAY, "base", 0, 0, BASE),
    ]:
        f.TariffPeriodFactory(
            season=season,
            day_type=day_type,
            period=period,
            starts_at=dt.time(starts),
            ends_at=dt.time(ends),
            energy_price_per_kwh=price,
        )
    f.DemandChargeFactory(tariff=tariff, name="capacity", price_per_kw_month="350.00", applies_in_periods=["punta"])
    f.DemandChargeFactory(tariff=tariff, name="distribution", price_per_kw_month="100.00", applies_in_periods=[])
    return tariff


@pytest.fixture
def world(two_depots):
    w = two_depots
    w["tariff"] = gdmth_tariff(w["org"])
    for depot in (w["depot_a"], w["depot_b"]):
        depot.tariff = w["tariff"]
        depot.save()
    w["viewer_a"] = f.UserFactory(username="viewer_a")
    f.MembershipFactory(user=w["viewer_a"], depot=w["depot_a"], role="viewer")
    w["connector_a"] = f.ConnectorFactory(charger=f.ChargerFactory(depot=w["depot_a"]), connector_id=1)
    return w


# --- Cost -----------------------------------------------------------------------------------------------------


def test_a_session_across_the_start_of_punta_pays_each_minute_at_its_own_price(world):
    # 17:40-18:30 is 50 minutes drawing 25 kWh evenly: 20 minutes (10 kWh) in intermedia, 30 (15 kWh) in punta.
    session = f.ChargingSessionFactory(
        depot=world["depot_a"],
        vehicle=world["vehicle_a"],
        started_at=local(10, 17, 40),
        ended_at=local(10, 18, 30),
        energy_kwh=25.0,
    )
    expected = 10 * INTERMEDIA + 15 * PUNTA  # 12.345 + 43.1475 = 55.4925
    assert session.cost == Decimal("55.49") == expected.quantize(Decimal("0.01"))
    assert session.currency == "MXN"
    assert session.cost_note == ""


def test_partial_minutes_are_priced_by_their_share_of_the_session(world):
    # 17:59:30-18:00:30: half the energy in the last intermedia minute, half in the first punta minute.
    session = f.ChargingSessionFactory(
        depot=world["depot_a"],
        vehicle=world["vehicle_a"],
        started_at=local(10, 17, 59) + dt.timedelta(seconds=30),
        ended_at=local(10, 18, 0) + dt.timedelta(seconds=30),
        energy_kwh=2.0,
    )
    assert session.cost == (INTERMEDIA + PUNTA).quantize(Decimal("0.01"))  # 4.111 -> 4.11


def test_a_night_over_midnight_into_saturday_is_priced_at_the_weekend_base(world):
    # Friday 13 March 23:00 to Saturday 01:00, 40 kWh: 20 kWh intermedia (Friday) + 20 kWh base (Saturday).
    session = f.ChargingSessionFactory(
        depot=world["depot_a"],
        vehicle=world["vehicle_a"],
        started_at=local(13, 23),
        ended_at=local(14, 1),
        energy_kwh=40.0,
    )
    assert session.cost == (20 * INTERMEDIA + 20 * BASE).quantize(Decimal("0.01"))  # 42.69


def test_a_depot_without_tariff_records_the_session_without_cost_and_says_why(world):
    depot = world["depot_a"]
    depot.tariff = None
    depot.save()
    session = f.ChargingSessionFactory(depot=depot, vehicle=world["vehicle_a"])
    assert session.cost is None
    assert "has no tariff" in session.cost_note


def test_an_away_session_has_no_cost_without_an_organisation_default_tariff(world):
    car = f.VehicleFactory(organization=world["org"], home_depot=None)
    session, created = charging_session_record(
        source=ChargingSession.Source.TELEMETRY,
        external_id="outlet-1",
        vehicle=car,
        started_at=local(10, 19),
        ended_at=local(10, 21),
        energy_kwh=3.8,
    )
    assert created and session.depot is None and session.cost is None
    assert "no default tariff" in session.cost_note


def test_an_away_session_is_priced_at_the_organisation_default_tariff_when_there_is_one(world):
    organization = world["tariff"].organization
    organization.default_tariff = world["tariff"]
    organization.save()
    car = f.VehicleFactory(organization=world["org"], home_depot=None)
    session, _ = charging_session_record(
        source=ChargingSession.Source.TELEMETRY,
        external_id="outlet-2",
        vehicle=car,
        started_at=local(10, 21),
        ended_at=local(10, 23),
        energy_kwh=4.0,
    )
    assert session.cost == (2 * PUNTA + 2 * INTERMEDIA).quantize(Decimal("0.01"))  # 8.222 -> 8.22


def test_the_session_points_at_the_night_plan(world):
    from charging.planning import plan_depot_night

    plan = plan_depot_night(depot=world["depot_a"], service_night=dt.date(2026, 3, 10))
    session = f.ChargingSessionFactory(
        depot=world["depot_a"], vehicle=world["vehicle_a"], started_at=local(11, 1), ended_at=local(11, 3)
    )
    assert session.plan == plan  # 01:00 on the 11th still belongs to the night of the 10th


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ended_at": local(10, 17)}, "ended_at"),  # before the start
        ({"ended_at": local(14, 18)}, "ended_at"),  # four days: longer than any session
        ({"energy_kwh": -1.0}, "energy_kwh"),
        ({"end_soc_pct": 120.0}, "end_soc_pct"),
    ],
)
def test_impossible_sessions_are_refused_with_the_field_at_fault(world, change, field):
    values = {
        "source": ChargingSession.Source.STAFF,
        "external_id": "bad",
        "depot": world["depot_a"],
        "vehicle": world["vehicle_a"],
        "started_at": local(10, 18),
        "ended_at": local(10, 19),
        "energy_kwh": 10.0,
        **change,
    }
    with pytest.raises(ValidationError) as error:
        charging_session_record(**values)
    assert field in error.value.message_dict
    assert not ChargingSession.objects.exists()


def test_the_service_refuses_a_reused_id_for_another_session(world):
    values = {
        "source": ChargingSession.Source.CHARGER_GATEWAY,
        "external_id": "tx-77",
        "depot": world["depot_a"],
        "vehicle": world["vehicle_a"],
        "started_at": local(10, 18),
        "ended_at": local(10, 19),
        "energy_kwh": 10.0,
    }
    first, created = charging_session_record(**values)
    again, created_again = charging_session_record(**values)
    assert created and not created_again and again.pk == first.pk
    with pytest.raises(SessionConflict):
        charging_session_record(**{**values, "energy_kwh": 11.0})
    # The same id from another source is another session (staff and gateway number independently).
    other, created_other = charging_session_record(**{**values, "source": ChargingSession.Source.STAFF})
    assert created_other and other.pk != first.pk


# --- API ------------------------------------------------------------------------------------------------------

SESSIONS_URL = reverse("v1:charging-session-list")


def payload(w, **changes) -> dict:
    return {
        "source": "charger_gateway",
        "external_id": "tx-1001",
        "depot": w["depot_a"].pk,
        "vehicle": w["vehicle_a"].pk,
        "connector": w["connector_a"].pk,
        "started_at": "2026-03-10T17:40:00-07:00",
        "ended_at": "2026-03-10T18:30:00-07:00",
        "energy_kwh": 25.0,
        "start_soc_pct": 40.0,
        "end_soc_pct": 47.5,
        "max_kw": 31.2,
        **changes,
    }


def test_a_gateway_posts_a_session_and_reposting_it_is_safe(world, api_client):
    api_client.force_authenticate(world["staff_a"])
    response = api_client.post(SESSIONS_URL, payload(world), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["cost"] == "55.49" and body["currency"] == "MXN"
    assert body["fleet_number"] == world["vehicle_a"].fleet_number

    again = api_client.post(SESSIONS_URL, payload(world), format="json")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert ChargingSession.objects.count() == 1


def test_reusing_a_session_id_for_different_figures_is_a_conflict(world, api_client):
    api_client.force_authenticate(world["staff_a"])
    api_client.post(SESSIONS_URL, payload(world), format="json")
    response = api_client.post(SESSIONS_URL, payload(world, energy_kwh=26.0), format="json")
    assert response.status_code == 409
    assert "tx-1001" in response.json()["detail"]
    assert ChargingSession.objects.get().energy_kwh == 25.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ended_at": "2026-03-10T17:00:00-07:00"}, "ended_at"),
        ({"end_soc_pct": 101}, "end_soc_pct"),
        ({"energy_kwh": -5}, "energy_kwh"),
        ({"source": "telemetry"}, "source"),  # detected by the server, never posted
        ({"cost": "1.00"}, "cost"),  # computed at the tariff, not sent
        ({"ended_at": "2999-01-01T00:00:00Z"}, "ended_at"),
    ],
)
def test_bad_sessions_are_a_400_naming_the_field(world, api_client, change, field):
    api_client.force_authenticate(world["staff_a"])
    response = api_client.post(SESSIONS_URL, payload(world, **change), format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not ChargingSession.objects.exists()


def test_staff_cannot_post_for_another_depot_and_viewers_cannot_post_at_all(world, api_client):
    api_client.force_authenticate(world["staff_a"])
    elsewhere = api_client.post(
        SESSIONS_URL,
        payload(world, depot=world["depot_b"].pk, vehicle=world["vehicle_b"].pk, connector=None),
        format="json",
    )
    assert elsewhere.status_code == 400 and "depot" in elsewhere.json()
    wrong_connector = api_client.post(
        SESSIONS_URL,
        payload(world, connector=f.ConnectorFactory(charger=f.ChargerFactory(depot=world["depot_b"])).pk),
        format="json",
    )
    assert wrong_connector.status_code == 400 and "connector" in wrong_connector.json()

    api_client.force_authenticate(world["viewer_a"])
    assert api_client.post(SESSIONS_URL, payload(world), format="json").status_code == 403


def test_another_depots_sessions_are_not_listed_and_are_a_404(world, api_client):
    mine = f.ChargingSessionFactory(depot=world["depot_a"], vehicle=world["vehicle_a"])
    theirs = f.ChargingSessionFactory(depot=world["depot_b"], vehicle=world["vehicle_b"])
    api_client.force_authenticate(world["staff_a"])
    listed = api_client.get(SESSIONS_URL).json()
    assert [row["id"] for row in listed["results"]] == [mine.pk]
    assert api_client.get(reverse("v1:charging-session-detail", args=[theirs.pk])).status_code == 404
    assert api_client.get(reverse("v1:charging-session-detail", args=[mine.pk])).status_code == 200


def test_away_sessions_are_for_the_organisations_managers_only(world, api_client):
    car = f.VehicleFactory(organization=world["org"], home_depot=None)
    away = f.ChargingSessionFactory(depot=None, vehicle=car, source=ChargingSession.Source.TELEMETRY)
    api_client.force_authenticate(world["staff_a"])
    assert api_client.get(SESSIONS_URL, {"away": "true"}).json()["count"] == 0
    api_client.force_authenticate(world["manager_a"])
    assert [row["id"] for row in api_client.get(SESSIONS_URL, {"away": "true"}).json()["results"]] == [away.pk]


def test_the_list_filters_by_vehicle_and_start(world, api_client):
    other_bus = f.VehicleFactory(organization=world["org"], home_depot=world["depot_a"])
    early = f.ChargingSessionFactory(
        depot=world["depot_a"], vehicle=world["vehicle_a"], started_at=local(10, 19), ended_at=local(10, 20)
    )
    f.ChargingSessionFactory(
        depot=world["depot_a"], vehicle=world["vehicle_a"], started_at=local(12, 19), ended_at=local(12, 20)
    )
    f.ChargingSessionFactory(
        depot=world["depot_a"], vehicle=other_bus, started_at=local(10, 19), ended_at=local(10, 20)
    )
    api_client.force_authenticate(world["staff_a"])
    response = api_client.get(
        SESSIONS_URL,
        {"vehicle": world["vehicle_a"].pk, "started_before": "2026-03-11T00:00:00-07:00"},
    )
    assert [row["id"] for row in response.json()["results"]] == [early.pk]


def test_the_session_list_downloads_as_csv_with_the_same_figures(world, api_client):
    f.ChargingSessionFactory(
        depot=world["depot_a"],
        vehicle=world["vehicle_a"],
        started_at=local(10, 17, 40),
        ended_at=local(10, 18, 30),
        energy_kwh=25.0,
    )
    f.ChargingSessionFactory(depot=world["depot_b"], vehicle=world["vehicle_b"])
    api_client.force_authenticate(world["staff_a"])
    as_json = api_client.get(SESSIONS_URL).json()["results"]
    response = api_client.get(SESSIONS_URL, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == len(as_json) == 1
    assert rows[0]["cost"] == as_json[0]["cost"] == "55.49"
    assert float(rows[0]["energy_kwh"]) == as_json[0]["energy_kwh"]
    assert rows[0]["started_at"] == as_json[0]["started_at"]

    by_header = api_client.get(SESSIONS_URL, HTTP_ACCEPT="text/csv")
    assert by_header["Content-Type"].startswith("text/csv")


def test_errors_stay_json_when_csv_was_asked(world, api_client):
    api_client.force_authenticate(world["staff_a"])
    response = api_client.get(SESSIONS_URL, {"format": "csv", "started_after": "not a date"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "started_after" in response.json()


def test_the_session_list_costs_the_same_few_queries_for_many_sessions(
    world, api_client, django_assert_max_num_queries
):
    for hour in range(8):
        f.ChargingSessionFactory(
            depot=world["depot_a"], vehicle=world["vehicle_a"], started_at=local(10, hour), ended_at=local(10, hour, 30)
        )
    api_client.force_authenticate(world["staff_a"])
    with django_assert_max_num_queries(6):
        response = api_client.get(SESSIONS_URL)
    assert response.json()["count"] == 8


# --- Admin ----------------------------------------------------------------------------------------------------


def test_a_manager_exports_their_depots_sessions_as_csv_from_the_admin(world, client):
    mine = f.ChargingSessionFactory(
        depot=world["depot_a"],
        vehicle=world["vehicle_a"],
        started_at=local(10, 17, 40),
        ended_at=local(10, 18, 30),
        energy_kwh=25.0,
    )
    theirs = f.ChargingSessionFactory(depot=world["depot_b"], vehicle=world["vehicle_b"])
    client.force_login(world["manager_a"])
    response = client.post(
        reverse("admin:charging_chargingsession_changelist"),
        {"action": "export_csv", "_selected_action": [mine.pk, theirs.pk]},
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(row["id"]) for row in rows] == [mine.pk]  # depot B's row is not theirs to export
    assert rows[0]["cost"] == "55.49" and rows[0]["fleet_number"] == world["vehicle_a"].fleet_number


def test_sessions_are_read_only_in_the_admin(world, client):
    session = f.ChargingSessionFactory(depot=world["depot_a"], vehicle=world["vehicle_a"])
    client.force_login(world["manager_a"])
    page = client.get(reverse("admin:charging_chargingsession_change", args=[session.pk]))
    assert page.status_code == 200
    assert not page.context["has_change_permission"] and not page.context["has_delete_permission"]
    assert client.get(reverse("admin:charging_chargingsession_add")).status_code == 403


def test_a_twin_stored_between_the_lookup_and_the_insert_is_returned_not_duplicated(world, monkeypatch):
    # What a concurrent re-send looks like from the losing side: the first lookup saw nothing, the insert meets
    # the twin. The service must answer with the twin (or a conflict), never a 500 or a second row.
    import charging.sessions as sessions

    values = {
        "source": ChargingSession.Source.CHARGER_GATEWAY,
        "external_id": "tx-race",
        "depot": world["depot_a"],
        "vehicle": world["vehicle_a"],
        "started_at": local(10, 18),
        "ended_at": local(10, 19),
        "energy_kwh": 10.0,
    }
    twin, _ = charging_session_record(**values)
    real_existing, calls = sessions._existing, []

    def blind_first_lookup(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else real_existing(**kwargs)

    monkeypatch.setattr(sessions, "_existing", blind_first_lookup)
    again, created = charging_session_record(**values)
    assert not created and again.pk == twin.pk
    calls.clear()
    with pytest.raises(SessionConflict):
        charging_session_record(**{**values, "energy_kwh": 12.0})
    assert ChargingSession.objects.count() == 1

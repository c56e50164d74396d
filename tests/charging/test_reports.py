"""Plan vs actual for a night, and monthly energy, cost and peak, on a small hand-computed fixture.

Depot A (Hermosillo, UTC-7) has the GDMTH-like tariff of test_sessions (punta 18-22 on weekdays) and a base
load of 10 kW, 20 kW from 18:00 to 22:00. The night of Tuesday 10 March 2026:

    bus 1   19:00-20:00   60 kWh   60 kW   SoC 50 -> 80     all punta:          60 x 2.8765 = 172.59
    bus 2   19:30-22:30  120 kWh   40 kW   SoC 35 -> 90     100 kWh punta + 20 kWh intermedia
                                                           = 287.65 + 24.69   = 312.34

15-minute loads: 19:00-19:30 60 kW, 19:30-20:00 100 kW, 20:00-22:30 40 kW. Peak with the base load, in punta:
100 + 20 = 120 kW at 19:30. Later in March bus 2 charges 80 kWh 01:00-03:00 on Friday the 20th (base,
0.90: 72.00, 40 kW); on Sunday the 15th it charges 10 kWh away from any depot (no tariff: no cost); an April
session and depot B's session are outside depot A's March.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from charging.models import ChargingSession
from charging.planning import plan_depot_night
from tests import factories as f
from tests.charging.test_sessions import gdmth_tariff, local

NIGHT = dt.date(2026, 3, 10)
BASE_LOAD_KW = [10.0] * 18 + [20.0] * 4 + [10.0] * 2


@pytest.fixture
def month(two_depots):
    w = two_depots
    depot = w["depot_a"]
    depot.tariff = gdmth_tariff(w["org"])
    depot.base_load_kw = BASE_LOAD_KW
    depot.save()
    w["bus_1"], w["bus_2"] = w["vehicle_a"], f.VehicleFactory(organization=w["org"], home_depot=depot)
    w["plan"] = plan_depot_night(depot=depot, service_night=NIGHT)

    def session(bus, start, end, kwh, soc=(None, None), **extra):
        return f.ChargingSessionFactory(
            depot=extra.pop("depot", depot),
            vehicle=bus,
            started_at=start,
            ended_at=end,
            energy_kwh=kwh,
            start_soc_pct=soc[0],
            end_soc_pct=soc[1],
            **extra,
        )

    w["s1"] = session(w["bus_1"], local(10, 19), local(10, 20), 60.0, (50.0, 80.0))
    w["s2"] = session(w["bus_2"], local(10, 19, 30), local(10, 22, 30), 120.0, (35.0, 90.0))
    w["s3"] = session(w["bus_2"], local(20, 1), local(20, 3), 80.0)
    w["away"] = session(
        w["bus_2"], local(15, 10), local(15, 12), 10.0, depot=None, source=ChargingSession.Source.TELEMETRY
    )
    session(w["bus_2"], local(1, 1, month=4), local(1, 2, month=4), 50.0)
    session(w["vehicle_b"], local(10, 19), local(10, 20), 70.0, depot=w["depot_b"])
    return w


PLAN_VS_ACTUAL = reverse("v1:report-plan-vs-actual")
MONTHLY = reverse("v1:report-monthly")


def test_plan_vs_actual_shows_the_nights_energy_cost_and_peak_against_the_plan(month, api_client):
    api_client.force_authenticate(month["staff_a"])
    response = api_client.get(PLAN_VS_ACTUAL, {"depot": month["depot_a"].pk, "service_night": "2026-03-10"})
    assert response.status_code == 200, response.json()
    report = response.json()
    plan = month["plan"]

    assert report["plan"] == plan.pk and report["plan_version"] == plan.version
    assert report["planned_energy_kwh"] == pytest.approx(plan.energy_kwh, abs=1e-3)
    assert Decimal(report["planned_energy_cost"]) == plan.energy_cost
    assert report["planned_peak_kw"] == pytest.approx(plan.peak_kw, abs=1e-3)

    assert report["actual_energy_kwh"] == 180.0
    assert report["actual_energy_cost"] == "484.93"  # 172.59 + 312.34
    assert report["actual_peak_kw"] == 120.0
    assert report["actual_peak_at"] == "2026-03-10T19:30:00-07:00"
    assert report["actual_charging_peak_kw"] == 100.0
    assert report["sessions"] == 2

    by_bus = {row["fleet_number"]: row for row in report["vehicles"]}
    bus_2 = by_bus[month["bus_2"].fleet_number]
    planned_2 = plan.charges.get(vehicle=month["bus_2"])
    assert bus_2["actual_energy_kwh"] == 120.0 and bus_2["actual_energy_cost"] == "312.34"
    assert bus_2["actual_start_soc_pct"] == 35.0 and bus_2["actual_end_soc_pct"] == 90.0
    assert bus_2["planned_departure_soc_pct"] == planned_2.departure_soc_pct
    assert bus_2["soc_difference_pct"] == pytest.approx(90.0 - planned_2.departure_soc_pct, abs=0.01)
    assert bus_2["energy_difference_kwh"] == pytest.approx(120.0 - planned_2.energy_kwh, abs=1e-3)
    assert bus_2["reached_required_soc"] is (planned_2.required_soc_pct - 0.05 <= 90.0)


def test_the_plan_vs_actual_csv_has_a_row_per_vehicle_and_the_nights_totals(month, api_client):
    api_client.force_authenticate(month["staff_a"])
    params = {"depot": month["depot_a"].pk, "service_night": "2026-03-10"}
    as_json = api_client.get(PLAN_VS_ACTUAL, params).json()
    response = api_client.get(PLAN_VS_ACTUAL, {**params, "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "plan-vs-actual-" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))

    assert [row["row"] for row in rows] == ["vehicle"] * len(as_json["vehicles"]) + ["night"]
    for row, vehicle in zip(rows, as_json["vehicles"], strict=False):
        assert row["fleet_number"] == vehicle["fleet_number"]
        assert float(row["actual_energy_kwh"]) == vehicle["actual_energy_kwh"]
        assert row["actual_energy_cost"] == vehicle["actual_energy_cost"]
    night = rows[-1]
    assert night["actual_energy_cost"] == as_json["actual_energy_cost"] == "484.93"
    assert float(night["actual_peak_kw"]) == as_json["actual_peak_kw"]
    assert night["service_night"] == "2026-03-10"


def test_a_depots_month_adds_up_energy_cost_peaks_and_demand_charges(month, api_client):
    api_client.force_authenticate(month["staff_a"])
    response = api_client.get(MONTHLY, {"depot": month["depot_a"].pk, "month": "2026-03"})
    assert response.status_code == 200, response.json()
    report = response.json()

    assert report["scope"] == "depot" and report["month"] == "2026-03"
    assert report["energy_kwh"] == 260.0  # 60 + 120 + 80: not April, not depot B, not the away charge
    assert report["energy_cost"] == "556.93"  # 484.93 + 72.00
    assert report["sessions"] == 3 and report["sessions_without_cost"] == 0
    assert report["charging_peak_kw"] == 100.0
    assert report["peak_kw"] == 120.0 and report["peak_at"] == "2026-03-10T19:30:00-07:00"
    demand = {line["name"]: line for line in report["demand_charges"]}
    # Capacity on the punta peak (120 kW x 350) and distribution on the month's peak (120 kW x 100).
    assert demand["capacity"]["peak_kw"] == 120.0 and demand["capacity"]["cost"] == "42000.00"
    assert demand["distribution"]["peak_kw"] == 120.0 and demand["distribution"]["cost"] == "12000.00"
    assert report["demand_cost"] == "54000.00" and report["total_cost"] == "54556.93"

    by_bus = {row["fleet_number"]: row for row in report["vehicles"]}
    assert by_bus[month["bus_1"].fleet_number] == {
        "vehicle": month["bus_1"].pk,
        "fleet_number": month["bus_1"].fleet_number,
        "energy_kwh": 60.0,
        "energy_cost": "172.59",
        "sessions": 1,
        "sessions_without_cost": 0,
        "charging_peak_kw": 60.0,
    }
    assert by_bus[month["bus_2"].fleet_number]["energy_cost"] == "384.34"  # 312.34 + 72.00
    assert by_bus[month["bus_2"].fleet_number]["charging_peak_kw"] == 40.0


def test_the_depot_month_csv_matches_the_json(month, api_client):
    api_client.force_authenticate(month["staff_a"])
    params = {"depot": month["depot_a"].pk, "month": "2026-03"}
    as_json = api_client.get(MONTHLY, params).json()
    response = api_client.get(MONTHLY, params, HTTP_ACCEPT="text/csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    vehicles, total = rows[:-1], rows[-1]
    assert [row["fleet_number"] for row in vehicles] == [v["fleet_number"] for v in as_json["vehicles"]]
    assert [row["energy_cost"] for row in vehicles] == [v["energy_cost"] for v in as_json["vehicles"]]
    assert total["row"] == "depot"
    assert total["energy_cost"] == as_json["energy_cost"] and total["total_cost"] == as_json["total_cost"]
    assert float(total["peak_kw"]) == as_json["peak_kw"] and total["peak_at"] == as_json["peak_at"]


def test_a_vehicles_month_counts_every_place_it_charged_that_the_user_may_see(month, api_client):
    params = {"vehicle": month["bus_2"].pk, "month": "2026-03"}
    api_client.force_authenticate(month["manager_a"])
    report = api_client.get(MONTHLY, params).json()
    assert report["scope"] == "vehicle"
    assert report["energy_kwh"] == 210.0  # 120 + 80 at the depot, 10 away
    assert report["energy_cost"] == "384.34"
    assert report["sessions"] == 3 and report["sessions_without_cost"] == 1
    assert report["uncosted_energy_kwh"] == 10.0 and report["away_energy_kwh"] == 10.0
    assert report["charging_peak_kw"] == 40.0
    assert [(p["depot_code"], p["energy_kwh"], p["sessions"]) for p in report["places"]] == [
        (month["depot_a"].code, 200.0, 2),
        ("away", 10.0, 1),
    ]
    csv_rows = list(csv.DictReader(io.StringIO(api_client.get(MONTHLY, {**params, "format": "csv"}).content.decode())))
    assert [row["row"] for row in csv_rows] == ["place", "place", "vehicle"]
    assert csv_rows[-1]["energy_cost"] == "384.34" and float(csv_rows[-1]["energy_kwh"]) == 210.0

    # Away charges are the organisation managers' business: depot staff see the depot's part only.
    api_client.force_authenticate(month["staff_a"])
    staff_view = api_client.get(MONTHLY, params).json()
    assert staff_view["energy_kwh"] == 200.0 and staff_view["sessions"] == 2


def test_reports_of_another_depot_or_its_vehicles_are_a_404(month, api_client):
    api_client.force_authenticate(month["staff_a"])
    assert api_client.get(PLAN_VS_ACTUAL, {"depot": month["depot_b"].pk}).status_code == 404
    assert api_client.get(MONTHLY, {"depot": month["depot_b"].pk, "month": "2026-03"}).status_code == 404
    assert api_client.get(MONTHLY, {"vehicle": month["vehicle_b"].pk, "month": "2026-03"}).status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"month": "2026-03"}, "non_field_errors"),  # neither depot nor vehicle
        ({"depot": "x", "month": "2026-03"}, "depot"),
        ({"depot": "DEPOT", "vehicle": "1"}, "non_field_errors"),  # both
        ({"depot": "DEPOT", "month": "2026-13"}, "month"),
        ({"depot": "DEPOT", "month": "March", "format": "csv"}, "month"),  # errors stay JSON
    ],
)
def test_bad_report_parameters_are_a_400_naming_the_parameter(month, api_client, params, field):
    params = {k: (month["depot_a"].pk if v == "DEPOT" else v) for k, v in params.items()}
    api_client.force_authenticate(month["staff_a"])
    response = api_client.get(MONTHLY, params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert field in response.json()


def test_a_night_without_plan_or_sessions_reports_zeros_not_errors(month, api_client):
    api_client.force_authenticate(month["staff_a"])
    report = api_client.get(PLAN_VS_ACTUAL, {"depot": month["depot_a"].pk, "service_night": "2026-02-02"}).json()
    assert report["plan"] is None and report["planned_energy_kwh"] is None
    assert report["actual_energy_kwh"] == 0 and report["actual_energy_cost"] == "0.00"
    assert report["actual_charging_peak_kw"] == 0 and report["vehicles"] == []
    # The site still draws its base load: 20 kW in punta (18-22) on a Monday.
    assert report["actual_peak_kw"] == 20.0

"""The historic import and the retention commands, run as an operator would run them."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from fleet.models import DailyDutyCycle, TelemetryMinute, TelemetryReading
from fleet.telemetry.duty import duty_cycle_compute
from fleet.telemetry.ingest import telemetry_ingest
from tests import factories as f

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write_csv(tmp_path, text: str):
    path = tmp_path / "history.csv"
    path.write_text(text)
    return path


def test_a_historic_import_is_idempotent_and_reports_each_bad_line(tmp_path):
    bus = f.VehicleFactory(fleet_number="HMO-042")
    path = write_csv(
        tmp_path,
        "recorded_at,soc_pct,odometer_km,charging_state\n"
        "2025-06-01T08:00:00-07:00,81.5,120000.5,none\n"
        "2025-06-01T08:00:10-07:00,81.4,120000.6,\n"
        "2025-06-01T08:00:20-07:00,abc,120000.7,none\n"
        "2025-06-01T08:00:30-07:00,nan,120000.8,none\n"
        "2025-06-01T08:00:40-07:00,81.2,,dc\n",
    )

    out, err = run("import_telemetry", str(path), "--vehicle", "HMO-042")
    again, _ = run("import_telemetry", str(path), "--vehicle", str(bus.pk))

    assert "3 created, 0 duplicate, 0 conflict, 2 rejected" in out
    assert "line 4: rejected" in err and "line 5: rejected" in err
    assert "0 created, 3 duplicate, 0 conflict, 2 rejected" in again
    assert TelemetryReading.objects.filter(vehicle=bus).count() == 3


def test_an_import_names_vehicles_per_row_without_vehicle_option(tmp_path):
    a, b = f.VehicleFactory(), f.VehicleFactory()
    path = write_csv(
        tmp_path,
        "fleet_number,vehicle,recorded_at,soc_pct\n"
        f"{a.fleet_number},,2025-06-01T08:00:00Z,50\n"
        f",{b.pk},2025-06-01T08:00:00Z,60\n"
        ",999999,2025-06-01T08:00:00Z,70\n",
    )

    out, _ = run("import_telemetry", str(path))

    assert "2 created, 0 duplicate, 0 conflict, 1 rejected" in out


def test_an_import_refuses_unknown_columns(tmp_path):
    path = write_csv(tmp_path, "recorded_at,rpm\n2025-06-01T08:00:00Z,1200\n")

    with pytest.raises(CommandError, match="Unknown column"):
        run("import_telemetry", str(path))


def test_pruning_downsamples_old_readings_and_keeps_the_duty_cycle():
    bus = f.VehicleFactory()
    now = timezone.now()
    old_day = (now - dt.timedelta(days=100)).replace(hour=17, minute=0, second=0, microsecond=0)  # 10:00 local
    old = [
        {"recorded_at": (old_day + dt.timedelta(seconds=5)).isoformat(), "soc_pct": 80.0, "odometer_km": 100.0},
        {"recorded_at": (old_day + dt.timedelta(seconds=35)).isoformat(), "soc_pct": 78.0, "odometer_km": 101.0},
        {"recorded_at": (old_day + dt.timedelta(seconds=70)).isoformat(), "soc_pct": 77.0, "odometer_km": 102.0},
    ]
    recent = {"recorded_at": (now - dt.timedelta(days=1)).isoformat(), "soc_pct": 50.0}
    telemetry_ingest(readings=[*old, recent], vehicle=bus)

    out, _ = run("prune_telemetry", "--older-than-days", "30")

    assert "3 readings became 2 minutes; 1 duty cycles computed first" in out
    assert list(TelemetryReading.objects.filter(vehicle=bus).values_list("soc_pct", flat=True)) == [50.0]
    first_minute = TelemetryMinute.objects.filter(vehicle=bus).order_by("minute").first()
    assert (first_minute.reading_count, first_minute.soc_mean_pct, first_minute.soc_min_pct) == (2, 79.0, 78.0)
    assert first_minute.odometer_max_km == 101.0
    cycle = DailyDutyCycle.objects.get(vehicle=bus)
    assert cycle.distance_km == 2.0

    # The day's raw data is gone: recomputing keeps the stored duty cycle, and a second prune has nothing to do.
    assert duty_cycle_compute(vehicle=bus, day=cycle.date).distance_km == 2.0
    out_again, _ = run("prune_telemetry", "--older-than-days", "30")
    assert "0 vehicles" in out_again


def test_pruning_refuses_zero_days():
    with pytest.raises(CommandError):
        run("prune_telemetry", "--older-than-days", "0")

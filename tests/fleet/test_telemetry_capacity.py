"""Capacity from charging telemetry: a synthetic pack of known capacity, noisy SoC, and the segment rule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from batteries.models import HealthObservation
from batteries.telemetry_capacity import capacity_observation_record
from fleet.telemetry.capacity import estimate_capacity
from fleet.telemetry.ingest import telemetry_ingest
from tests import factories as f

TRUE_CAPACITY_AH = 500.0
DC, NONE = 2.0, 0.0


def synthetic_charge(
    *, soc_from=20.0, soc_to=80.0, current_a=-150.0, step_s=10.0, soc_noise=0.5, seed=7, capacity=TRUE_CAPACITY_AH
):
    """A depot charge at constant current with sensor noise; SoC reported to 0.1 % with Gaussian noise."""
    rng = np.random.default_rng(seed)
    duration_s = (soc_to - soc_from) / 100.0 * capacity * 3600.0 / -current_a
    t = np.arange(0.0, duration_s, step_s)
    true_current = np.full(len(t), current_a) * (1 + 0.02 * np.sin(t / 600.0))  # a slow ripple
    charge_ah = np.concatenate(([0.0], np.cumsum(-(true_current[1:] + true_current[:-1]) / 2 * np.diff(t)) / 3600))
    soc = soc_from + 100.0 * charge_ah / capacity
    measured_soc = np.round(soc + rng.normal(0, soc_noise, len(t)), 1)
    measured_current = true_current + rng.normal(0, 2.0, len(t))
    return t, measured_soc, measured_current


def estimate(t, soc, current, state=DC):
    return estimate_capacity(t_s=t, soc_pct=soc, current_a=current, charging_state=np.full(len(t), state))


def test_a_noisy_charge_gives_the_capacity_within_two_percent():
    result = estimate(*synthetic_charge())

    assert result.capacity_ah == pytest.approx(TRUE_CAPACITY_AH, rel=0.02)
    assert 1.0 <= result.uncertainty_pct < 2.0  # the 1 % sensor floor plus a little noise
    assert len(result.segments) == 1


def test_many_seeds_stay_within_two_percent():
    errors = [abs(estimate(*synthetic_charge(seed=seed)).capacity_ah / TRUE_CAPACITY_AH - 1) for seed in range(20)]

    assert max(errors) < 0.02


def test_a_charge_with_a_narrow_soc_span_does_not_count():
    assert estimate(*synthetic_charge(soc_from=50, soc_to=85)) is None  # 35 % < 40 %


def test_a_non_monotone_soc_does_not_count():
    t, soc, current = synthetic_charge()
    soc[len(soc) // 2 :] -= 10.0  # a jump down mid-charge: a BMS recalibration, not a charge

    assert estimate(t, soc, current) is None


def test_readings_while_driving_are_no_charge():
    assert estimate(*synthetic_charge(), state=NONE) is None


def test_two_charges_separated_by_driving_combine():
    t1, soc1, i1 = synthetic_charge(seed=1)
    t2, soc2, i2 = synthetic_charge(seed=2)
    drive_t = t1[-1] + 10 + np.arange(0, 3600, 10.0)
    t = np.concatenate([t1, drive_t, drive_t[-1] + 10 + t2])
    soc = np.concatenate([soc1, np.linspace(80, 20, len(drive_t)), soc2])
    current = np.concatenate([i1, np.full(len(drive_t), 200.0), i2])
    state = np.concatenate([np.full(len(t1), DC), np.full(len(drive_t), NONE), np.full(len(t2), DC)])

    result = estimate_capacity(t_s=t, soc_pct=soc, current_a=current, charging_state=state)

    assert len(result.segments) == 2
    assert result.capacity_ah == pytest.approx(TRUE_CAPACITY_AH, rel=0.02)


@pytest.mark.django_db
def test_the_estimate_is_recorded_as_a_telemetry_health_observation():
    installation = f.PackInstallationFactory()  # nominal 544 Ah / 350 kWh
    vehicle = installation.vehicle
    t, soc, current = synthetic_charge()
    start = dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC)
    items = [
        {
            "recorded_at": (start + dt.timedelta(seconds=float(s))).isoformat(),
            "soc_pct": float(np.clip(x, 0, 100)),
            "pack_current_a": float(i),
            "charging_state": "dc",
        }
        for s, x, i in zip(t, soc, current, strict=True)
    ]
    telemetry_ingest(readings=items, vehicle=vehicle, now=start + dt.timedelta(days=1))

    observation = capacity_observation_record(vehicle=vehicle, since=start, until=start + dt.timedelta(days=1))
    again = capacity_observation_record(vehicle=vehicle, since=start, until=start + dt.timedelta(days=1))

    assert observation.source == HealthObservation.Source.TELEMETRY
    assert observation.soh_pct == pytest.approx(100 * TRUE_CAPACITY_AH / 544, rel=0.02)
    assert observation.capacity_kwh == pytest.approx(TRUE_CAPACITY_AH * 350 / 544, rel=0.02)
    assert observation.uncertainty_pct > 0
    assert again.pk == observation.pk  # re-running updates, never duplicates
    assert HealthObservation.objects.filter(pack=installation.pack).count() == 1

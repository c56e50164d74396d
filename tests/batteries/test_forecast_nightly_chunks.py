"""The nightly forecast job's plan: chunks of whole duty groups, so each group is simulated once a night."""

import datetime as dt

import pytest
from django.utils import timezone

from batteries.forecast.duty import representative_day
from batteries.forecast.fleet import _fits_from
from batteries.forecast.forecast import prepare
from batteries.forecast_service import pack_job
from batteries.models import ForecastRun, SoHForecast
from batteries.nightly import duty_chunks, forecast_depot_packs
from fleet.services import block_assign
from tests import factories as f
from tests.support.climates import HERMOSILLO_C

AS_OF = dt.date(2026, 11, 21)


def test_chunks_hold_whole_duty_groups_and_split_only_a_group_larger_than_a_chunk():
    groups = [[1, 2], [3, 4, 5], [6], [7, 8, 9, 10, 11, 12, 13], [14]]

    chunks = duty_chunks(groups, 4)

    # [3, 4, 5] does not fit after [1, 2]: it starts the next chunk instead of being cut in two.
    assert chunks == [[1, 2], [3, 4, 5, 6], [7, 8, 9, 10], [11, 12, 13, 14]]
    assert sorted(pk for chunk in chunks for pk in chunk) == list(range(1, 15))
    assert duty_chunks([], 4) == []
    with pytest.raises(ValueError):
        duty_chunks(groups, 0)


def _bus_with_pack(depot, *, km_per_day):
    bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    pack = f.BatteryPackFactory(organization=depot.organization, manufactured_on=AS_OF - dt.timedelta(days=700))
    f.PackInstallationFactory(pack=pack, vehicle=bus, installed_at=timezone.now() - dt.timedelta(days=900))
    for offset in range(-10, 10):
        day = AS_OF + dt.timedelta(days=offset)
        block = f.BlockFactory(depot=depot, service_date=day, distance_km=km_per_day)
        block_assign(block=block, vehicle=bus, service_date=day)
    return pack


@pytest.mark.slow
@pytest.mark.django_db
def test_a_duty_group_is_simulated_once_even_where_a_count_cut_would_split_it(
    settings, eager_tasks, django_capture_on_commit_callbacks
):
    depot = f.DepotFactory(monthly_mean_temperature_c=list(HERMOSILLO_C))
    settings.EVFLEET_FORECAST_CHUNK_SIZE = 3
    settings.EVFLEET_FORECAST_HORIZON_YEARS = 1.0
    # Two duty groups of two packs: cut every 3 packs, the second group straddled the chunks and was simulated
    # twice (3 group runs); in whole groups each chunk holds one group (2 group runs).
    packs = [_bus_with_pack(depot, km_per_day=km) for km in (60, 60, 220, 220)]

    with django_capture_on_commit_callbacks(execute=True):
        outcome = forecast_depot_packs(depot=depot, night=AS_OF)

    assert outcome.counts == {"packs": 4, "chunks": 2}
    runs = ForecastRun.objects.filter(as_of=AS_OF)
    assert sorted(run.packs_total for run in runs) == [2, 2]
    assert sum(run.duty_groups for run in runs) == 2
    assert SoHForecast.objects.filter(pack__in=packs, as_of=AS_OF).count() == 4


@pytest.mark.django_db
def test_the_duty_fits_threshold_answers_like_the_representative_day_at_every_soh():
    depot = f.DepotFactory(monthly_mean_temperature_c=list(HERMOSILLO_C))
    job = pack_job(_bus_with_pack(depot, km_per_day=220), AS_OF)
    assert job is not None
    prepared = prepare(job)

    def day_fits(soh_pct: float) -> bool:
        day = representative_day(prepared.profile, soh_pct / 100.0, prepared.season_temps_k[0], prepared.usable_soc_min)
        return day.feasible

    fits = _fits_from(day_fits)
    grid = [k / 100 for k in range(0, 10_001)]  # 0.00 .. 100.00 % in 0.01 pp
    answers = [day_fits(soh) for soh in grid]
    assert any(answers) and not all(answers)  # the threshold lies inside: a real check, not a constant
    assert [fits(soh) for soh in grid] == answers


class _CellThatCannotTakeAFullCharge:
    """A stand-in for ``DayModel``: lithium fades 0.01 Ah a day; once below 90 % SoH, a day charged above
    95 % stops at the upper voltage limit (as PyBaMM reports it), whatever the floor. Counts failed days."""

    def __init__(self):
        self.failed_days = 0

    def new_state(self):
        from batteries.forecast.state import DegradationState

        return DegradationState(100.0, 5e-9, 0.75)

    def soh_pct(self, state) -> float:
        return state.lithium_ah

    def inputs(self, state, day, rate_factor, cycling_factor=None, sei_diffusivity_factor=None) -> dict:
        return {"soh": state.lithium_ah, "start_soc": day.start_soc}

    def run(self, inputs_list):
        import numpy as np

        from batteries.forecast.simulate import DayOutcome

        out = []
        for inputs in inputs_list:
            if inputs["soh"] < 90.0 and inputs["start_soc"] > 0.95 + 1e-9:
                self.failed_days += 1
                out.append(
                    DayOutcome(False, np.zeros(3), float("nan"), "day stopped early: event: Maximum voltage [V]")
                )
            else:
                out.append(DayOutcome(True, np.array([-0.01, 0.0, 0.0]), 0.01))
        return out


def test_a_day_stopping_at_the_upper_voltage_limit_is_cut_at_the_top_without_trying_every_floor_first():
    from batteries.forecast.duty import DutyProfile
    from batteries.forecast.trajectory import (
        CUT_DATE_MONTHS,
        FLAG_DUTY_EXCEEDS_CAPACITY,
        TrajectorySettings,
        simulate_members,
    )

    model = _CellThatCannotTakeAFullCharge()
    duty = DutyProfile(0.3, 1.0, 0.3, 12.0, 0, 1.0, 2.0, None)  # charged to 100 %, a light day
    # Steps no longer than the cut's dating (CUT_DATE_MONTHS), so every failed day counted here is the order
    # of cuts, not the halving that dates a cut found by a longer step (tested in test_forecast_fleet_gap).
    short_steps = TrajectorySettings(first_jump_months=1, max_jump_months=CUT_DATE_MONTHS)

    (member,), _days = simulate_members(
        model, duty, [298.0] * 4, 0.1, dt.date(2024, 1, 1), dt.date(2034, 1, 1), [1.0], short_steps
    )

    # The top comes down 100 -> 97.5 -> 95 % (two cuts of 2.5 %, 4 seasonal days failing each) and the member
    # goes on to the horizon. Raising the floor first (the old order) tried 10 floors before each top cut: 88
    # failed days, each also re-solved on a dense grid by the real model.
    assert member.stopped is None and member.dates[-1] >= dt.date(2034, 1, 1)
    assert FLAG_DUTY_EXCEEDS_CAPACITY in member.flags and member.duty_end is not None
    assert model.failed_days == 8

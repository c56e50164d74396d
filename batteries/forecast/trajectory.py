"""Accelerated ageing trajectory ("cycle jumping") with error control and a deep-fade guard.

Several *members* (the same pack and duty at different ageing rate factors: the P10/P50/P90 of one
pack, or a grid of factors for a group of packs or for calibration) advance in lockstep on a monthly
calendar grid, so each re-simulation is one batched IDAKLU call.

One step, from anchor month ``a`` over ``J`` months (a predictor-corrector with step control):

1. At the anchor state, simulate one representative day per season (4 days per member; a cold and a warm
   day in the seasons where a cold pack plates lithium, ``duty.representative_temperatures_k``) and read
   the per-day change of the degradation state (lithium Ah, SEI m, active fraction): the rates ``r_a``.
2. Predictor: walk month by month, adding days-in-month x the month's rate (its days' weighted mean).
3. Simulate the same days at the predicted end state: ``r_b``.
4. Corrector: walk again with the rate interpolated linearly in time between ``r_a`` and ``r_b``
   (second order). The SoH difference between predictor and corrector estimates the first-order error.
   Above ``tol_pp``: halve ``J`` and redo from step 2 (``r_a`` is kept). Far below: double ``J`` next
   time (up to ``max_jump_months``). Accepted end rates ``r_b`` become the next anchor's ``r_a``.

In lockstep (``TrajectorySettings``' default) every member takes the same step, set by the largest error of any
member. With ``per_member_steps`` (one pack's forecast, the fleet's group runs) each member has its own anchor
and step, and the members due a re-simulation are still solved in one batch; a duty cut found at the end of a
step that is then rejected is undone with it. A member's trajectory then does not depend on what it is simulated
with. The member reported as the P50 (``median``) takes steps of at most ``median_max_jump_months``.

Guard: each member's representative day is checked against its current capacity. When the day's
deepest discharge no longer fits the usable SoC window, the day is cut at the window's floor and the
member goes on, with ``duty_end`` at the first month that did not fit and the flag
``duty_exceeds_capacity``. When a day cannot be completed even on a dense grid (a voltage limit or a
solver failure), the duty is cut further: where the days stop at the upper voltage limit, the charge
target is lowered in steps (the top of the window, down to 60 %) - a higher floor does not move where the
charge ends; otherwise, and once the top cannot come down further, the floor is raised in steps. Only when
that fails too does the member stop, with a flag.
Nothing raises.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .duty import DutyProfile, RepresentativeDay, day_temperatures, representative_day
from .simulate import DayModel
from .state import DegradationState

FLAG_DUTY_EXCEEDS_CAPACITY = "duty_exceeds_capacity"
FLAG_SOLVER_FAILED = "solver_failed"
FLAG_DAY_NOT_COMPLETED = "duty_not_completed"
FLAG_EXTRAPOLATED = "extrapolated_past_model_range"
#: A member whose simulation cannot go on below this SoH (far past any traction end of life, where the
#: cell model leaves its range) is continued at its last year's mean monthly fade, flagged.
EXTRAPOLATE_BELOW_SOH_PCT = 60.0


def add_months(date: dt.date, months: int) -> dt.date:
    year, month0 = divmod(date.month - 1 + months, 12)
    year += date.year
    day = min(date.day, 28) if month0 + 1 == 2 else min(date.day, 30 if month0 + 1 in (4, 6, 9, 11) else 31)
    return dt.date(year, month0 + 1, day)


@dataclass
class MemberTrajectory:
    """A member's monthly trajectory. ``soh_pct``/``resistance_factor`` align with ``dates`` (the
    first is the start). ``duty_end`` is the first date its whole duty no longer fits (it goes on with
    the duty cut); ``stopped`` is set when the simulation itself could not go on (the flag says why)."""

    rate_factor: float
    dates: list[dt.date] = field(default_factory=list)
    soh_pct: list[float] = field(default_factory=list)
    resistance_factor: list[float] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    stopped: dt.date | None = None
    duty_end: dt.date | None = None
    _ordinals: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: The loss-of-active-material factor when it differs from ``rate_factor`` (two-factor calibration).
    cycling_factor: float | None = None
    #: The SEI's shape (``presets.sei_shape_input``, an option); None: the preset's.
    sei_diffusivity_factor: float | None = None

    def value_at(self, date: dt.date, values: list[float]) -> float:
        """``values`` (aligned with ``dates``) interpolated linearly in time; NaN past the last point."""
        if not self.dates or date > self.dates[-1]:
            return float("nan")
        if self._ordinals is None or len(self._ordinals) != len(self.dates):
            self._ordinals = np.array([d.toordinal() for d in self.dates], dtype=float)
        return float(np.interp(date.toordinal(), self._ordinals, values))

    def mark_duty_end(self, date: dt.date) -> None:
        if self.duty_end is None or date < self.duty_end:
            self.duty_end = date
        if FLAG_DUTY_EXCEEDS_CAPACITY not in self.flags:
            self.flags.append(FLAG_DUTY_EXCEEDS_CAPACITY)


@dataclass(frozen=True)
class TrajectorySettings:
    #: Accepted predictor-corrector difference per step, SoH percentage points. It estimates the
    #: first-order (predictor) error; the accepted corrector is second order, far more accurate.
    tol_pp: float = 0.3
    #: The first months fade fastest (thin SEI): a 12-month first step was nearly always rejected and
    #: halved twice. Starting at 3 months (the step doubles while the error stays small) simulates 14-15 %
    #: fewer days for the same 10-year answer (<= 0.04 pp; docs/forecast.md, "Speed").
    first_jump_months: int = 3
    max_jump_months: int = 48
    #: Each member its own step size (still one batched solve per round) instead of lockstep.
    per_member_steps: bool = False
    #: With ``per_member_steps``, the longest step of the member whose trajectory is the forecast's P50
    #: (``simulate_members(median=...)``). Its error estimate (predictor minus corrector) did not bound the
    #: corrector's own error on long steps: on the cold 1C NMC bus the P50's 24-month steps, estimated at
    #: 0.04-0.10 pp each, were 0.44 pp off its own every-day run at 9 years; capped at 8 months, 0.05 pp (at 12,
    #: still 0.40). The band's edges keep ``max_jump_months`` (docs/forecast.md, "Speed", session 9).
    median_max_jump_months: int = 8


#: A step whose end state first cuts a member's duty is halved down to this many months, so the cut is dated
#: within them (the step comes back after it). Without it a cut found by a 24-48-month step was dated at that
#: step's end: end-of-duty dates 89-730 days apart between step sizes (docs/forecast.md, "Fleet").
CUT_DATE_MONTHS = 2
#: When a day cannot be completed even on the dense grid, the duty is cut by raising the usable floor
#: in these steps (SoC fraction), up to ``MAX_FLOOR_RAISE``; beyond that the member stops.
FLOOR_RAISE_STEP = 0.05
MAX_FLOOR_RAISE = 0.5
#: A day that stops at the upper voltage limit has its charge target lowered in these steps, down to
#: ``TOP_CUT_DOWN_TO_SOC``, before any floor is raised: on an aged cell the top of the window is where a
#: charge hits the voltage limit (the graphite, with less active material left, fills up), and a CC-CV
#: charger ends the charge lower. A top-up day (2 EFC/day bus, two 1C top-ups to 90 %) needs that as much
#: as a charge to 100 %: it used to try ten floor raises, which cannot help, and stop (refused).
TOP_CUT_STEP = 0.025
TOP_CUT_DOWN_TO_SOC = 0.6
#: With its own steps, a member's step that first cuts its duty skips the search of the cut's depth where the step is
#: rejected anyway (``simulate_members``). False: the search runs to the end (before session 8; same trajectories).
SKIP_DECIDED_CUT_SEARCH = True
#: ``_Rates.flag`` of a member whose rates were not computed because its duty was found cut (``rates``).
_CUT_FOUND = "cut_found"
#: How PyBaMM's termination names the upper voltage event (``DayOutcome.message``).
_MAX_VOLTAGE = "Maximum voltage"


@dataclass
class _Rates:
    ok: bool
    per_season: np.ndarray  # (days, 3) state change per day, one row per representative day
    resistance: np.ndarray  # (days,)
    flag: str = ""


def simulate_members(
    model: DayModel,
    profile: DutyProfile,
    season_temps_k: list[float],
    usable_soc_min: float,
    start: dt.date,
    end: dt.date,
    rate_factors: Sequence[float | tuple[float, float] | tuple[float, float, float]],
    settings: TrajectorySettings | None = None,
    until: dt.date | None = None,
    median: int | None = None,
) -> tuple[list[MemberTrajectory], int]:
    """Trajectories from a new pack at ``start`` to ``end`` for each rate factor: one common factor,
    or a pair (calendar/SEI factor, cycling/LAM factor), or a triple with the SEI's shape third (only for a preset
    with that option, ``presets.sei_shape_input``). ``season_temps_k``: 4 season temperatures, or k
    equally weighted temperatures per month (``duty.day_temperatures``: one day per distinct temperature).
    ``until`` (before ``end``): a member takes no step that would start after it - its trajectory up to ``until``
    is the run to ``end``'s, month for month (the steps are chosen for ``end``), and it ends with the step that
    reaches ``until`` - unless its duty is not cut while another member's is: it then goes on to ``end``, so that
    its cut is dated as in the run to ``end``.
    ``median``: the index of the member whose trajectory is reported as the P50; with ``per_member_steps`` its
    steps are at most ``settings.median_max_jump_months`` long.

    Returns the trajectories and the number of simulated (representative) days.
    """
    settings = settings or TrajectorySettings()
    day_temps_k, month_weights = day_temperatures(season_temps_k)
    n_days = len(day_temps_k)
    n_months = 0
    while add_months(start, n_months) < end:
        n_months += 1
    dates = [add_months(start, k) for k in range(n_months + 1)]
    n_until = n_months if until is None else min(n_months, sum(1 for d in dates[1:] if d < until) + 1)
    members = [
        MemberTrajectory(f[0], cycling_factor=f[1], sei_diffusivity_factor=f[2] if len(f) > 2 else None)
        if isinstance(f, tuple)
        else MemberTrajectory(f)
        for f in rate_factors
    ]
    states = [model.new_state().as_array() for _ in rate_factors]
    floor_raise = [0.0 for _ in rate_factors]
    top_cut = [0.0 for _ in rate_factors]
    top_room = max(profile.start_soc - max(TOP_CUT_DOWN_TO_SOC, usable_soc_min + FLOOR_RAISE_STEP), 0.0)
    counter = [0]

    def soh(state: np.ndarray) -> float:
        return model.soh_pct(DegradationState.from_array(state))

    def days_for(i: int, state: np.ndarray) -> list[RepresentativeDay]:
        floor = usable_soc_min + floor_raise[i]
        cut = replace(profile, start_soc=profile.start_soc - top_cut[i]) if top_cut[i] else profile
        return [representative_day(cut, soh(state) / 100.0, t, floor) for t in day_temps_k]

    def fits(i: int, state: np.ndarray) -> bool:
        return floor_raise[i] == 0.0 and top_cut[i] == 0.0 and all(d.feasible for d in days_for(i, state))

    def rates(
        indices: list[int],
        member_states: list[np.ndarray],
        when: dt.date | dict[int, dt.date],
        first_cut_only: frozenset[int] = frozenset(),
    ) -> dict[int, _Rates]:
        """Each member's rates at its state (cutting its duty where a day cannot be completed). A member of
        ``first_cut_only`` whose days do not all complete only has its duty cut (dated ``when``) and gets no rates
        (``_Rates.ok`` False, flag ``_CUT_FOUND``): its step is rejected whatever they would be."""
        result: dict[int, _Rates] = {}
        pending = list(zip(indices, member_states, strict=True))
        while pending:
            batch, owners = [], []
            for i, state in pending:
                ds = DegradationState.from_array(state)
                m = members[i]
                batch += [
                    model.inputs(ds, d, m.rate_factor, m.cycling_factor, m.sei_diffusivity_factor)
                    for d in days_for(i, state)
                ]
                owners.append((i, state))
            outcomes = model.run(batch)
            counter[0] += len(batch)
            pending = []
            for n, (i, state) in enumerate(owners):
                date = when[i] if isinstance(when, dict) else when
                chunk = outcomes[n_days * n : n_days * (n + 1)]
                if all(o.ok for o in chunk):
                    per_season = np.array([o.delta for o in chunk])
                    result[i] = _Rates(True, per_season, np.array([o.resistance_ohm_ah for o in chunk]))
                    continue
                if i in first_cut_only:
                    members[i].mark_duty_end(date)
                    result[i] = _Rates(False, np.zeros((n_days, 3)), np.zeros(n_days), _CUT_FOUND)
                    continue
                bad = next(o for o in chunk if not o.ok)
                at_top = all(_MAX_VOLTAGE in o.message for o in chunk if not o.ok)
                if at_top and top_cut[i] < top_room - 1e-9:
                    # Every failed day stops at the upper voltage limit: the aged cell cannot take the charge
                    # to (near) 100 %, and a higher floor does not change where the charge ends. Charge it a
                    # little less - the duty is cut at the top of the window - with the floor back at its
                    # place, and try again. (The floor was raised first until 2026-12-06: up to 10 raises, each
                    # a batch and a dense re-solve per failed day, ~30 % of a group's CPU; the rare day it did
                    # complete moved results by <= 0.5 pp, past 60 % SoH: docs/forecast.md, "Robust days".)
                    top_cut[i] = min(top_cut[i] + TOP_CUT_STEP, top_room)
                    floor_raise[i] = 0.0
                    members[i].mark_duty_end(date)
                    pending.append((i, state))
                    continue
                if floor_raise[i] < MAX_FLOOR_RAISE - 1e-9:
                    # The cell cannot deliver the day here (or the solver fails on it): cut the duty
                    # further and try again; the duty no longer fits from this date.
                    floor_raise[i] += FLOOR_RAISE_STEP
                    members[i].mark_duty_end(date)
                    pending.append((i, state))
                    continue
                if _MAX_VOLTAGE in bad.message and top_cut[i] < top_room - 1e-9:
                    # No floor helps: the day stops at the upper voltage limit, the aged cell cannot take
                    # the charge to (near) 100 %. Charge it a little less - the duty is cut at the top of
                    # the window - with the floor back where it was, and try again.
                    top_cut[i] = min(top_cut[i] + TOP_CUT_STEP, top_room)
                    floor_raise[i] = 0.0
                    members[i].mark_duty_end(date)
                    pending.append((i, state))
                    continue
                flag = FLAG_SOLVER_FAILED if bad.message.startswith("solver") else FLAG_DAY_NOT_COMPLETED
                result[i] = _Rates(False, np.zeros((n_days, 3)), np.zeros(n_days), flag)
        return result

    def walk(state: np.ndarray, a: int, j: int, r_a: np.ndarray, r_b: np.ndarray | None) -> list[np.ndarray]:
        """Monthly states from month a to a+j. With r_b: rate interpolated in time (corrector)."""
        days = [(dates[k + 1] - dates[k]).days for k in range(a, a + j)]
        total = float(sum(days))
        out, elapsed = [], 0.0
        for k, n in zip(range(a, a + j), days, strict=True):
            weights = month_weights[dates[k].month - 1]
            rate = weights @ r_a
            if r_b is not None:
                w = (elapsed + n / 2) / total
                rate = (1 - w) * rate + w * (weights @ r_b)
            state = state + n * rate
            out.append(state)
            elapsed += n
        return out

    alive = list(range(len(members)))
    for i in alive:
        if not fits(i, states[i]):
            members[i].mark_duty_end(dates[0])
    first = rates(alive, [states[i] for i in alive], dates[0])
    r_new = {i: r.resistance for i, r in first.items() if r.ok}
    current: dict[int, _Rates] = first
    for i, member in enumerate(members):
        member.dates.append(dates[0])
        member.soh_pct.append(soh(states[i]))
        member.resistance_factor.append(1.0)

    def stop(i: int, k: int, flag: str) -> None:
        members[i].stopped = dates[k]
        if flag not in members[i].flags:
            members[i].flags.append(flag)

    def accept(i: int, a: int, jump: int, corrected: list[np.ndarray], end: _Rates) -> None:
        r0 = _mean_ratio(current[i].resistance, r_new.get(i, current[i].resistance))
        r1 = r0
        if end.ok:
            r1 = _mean_ratio(end.resistance, r_new.get(i, end.resistance))
        for n, state in enumerate(corrected, start=1):
            members[i].dates.append(dates[a + n])
            members[i].soh_pct.append(soh(state))
            members[i].resistance_factor.append(float(r0 + (r1 - r0) * n / jump))
            if members[i].duty_end is None and not fits(i, state):
                members[i].mark_duty_end(dates[a + n])
        states[i] = corrected[-1]
        current[i] = end

    def corrector(
        i: int, a: int, jump: int, predicted: list[np.ndarray], end: _Rates
    ) -> tuple[list[np.ndarray], float]:
        if not end.ok:  # the end state cannot be simulated: keep the predictor, the member stops next
            return predicted, 0.0
        corrected = walk(states[i], a, jump, current[i].per_season, end.per_season)
        return corrected, abs(soh(corrected[-1]) - soh(predicted[-1]))

    def last_month(i: int) -> int:
        """The month member ``i`` steps to: ``until``'s, unless another member's duty is cut and its own is not
        (yet) - where it is cut decides the cut age of factors between them (``fleet._GroupRun.cut_month``)."""
        if members[i].duty_end is None and any(m.duty_end is not None for m in members):
            return n_months
        return n_until

    if settings.per_member_steps:
        # Each member its own step (one batched solve per round still): in lockstep the member that fades
        # fastest (a design corner far past end of life) set every member's step.
        anchor = {i: 0 for i in alive}
        resume: dict[int, int] = {}
        median_longest = min(settings.max_jump_months, settings.median_max_jump_months)
        longest = {i: median_longest if i == median else settings.max_jump_months for i in alive}
        jumps = {i: min(settings.first_jump_months, longest[i]) for i in alive}
        while True:
            for i in list(alive):
                if anchor[i] < last_month(i) and not current[i].ok:
                    stop(i, anchor[i], current[i].flag)
                    alive.remove(i)
            active = [i for i in alive if anchor[i] < last_month(i)]
            if not active:
                break
            for i in active:
                jumps[i] = min(jumps[i], n_months - anchor[i])
            predicted = {i: walk(states[i], anchor[i], jumps[i], current[i].per_season, None) for i in active}
            # A cut found at a predicted end state belongs to that step: undone if the step is rejected (else
            # a 24-month predictor far past the duty's limit cut the member's duty 2 years early).
            cuts = {i: (top_cut[i], floor_raise[i], members[i].duty_end, list(members[i].flags)) for i in active}
            # A step that first cuts the member's duty is rejected (halved to date the cut) whatever its error, which
            # only sets the step to come back to after the cut (``resume``): once that is at least this step, the
            # first day that does not fit decides, and the cut's search (several batches, each failed day re-solved)
            # would be thrown away with the step. The same trajectories; ~a fifth fewer simulated days in the
            # nightly group runs (docs/forecast.md, "Speed").
            decided = frozenset(
                i
                for i in active
                if SKIP_DECIDED_CUT_SEARCH
                and members[i].duty_end is None
                and jumps[i] > max(CUT_DATE_MONTHS, 1)
                and resume.get(i, 0) >= jumps[i]
            )
            end_rates = rates(
                active, [predicted[i][-1] for i in active], {i: dates[anchor[i] + jumps[i]] for i in active}, decided
            )
            for i in active:
                a, jump = anchor[i], jumps[i]
                if end_rates[i].flag == _CUT_FOUND:
                    jumps[i] = max(1, jump // 2)
                    top_cut[i], floor_raise[i], members[i].duty_end, members[i].flags = cuts[i]
                    continue
                stepped, error = corrector(i, a, jump, predicted[i], end_rates[i])
                new_cut = cuts[i][2] is None and members[i].duty_end is not None
                if (error > settings.tol_pp or (new_cut and jump > CUT_DATE_MONTHS)) and jump > 1:
                    if error <= settings.tol_pp:  # halved only to date the cut: the step comes back after it
                        resume[i] = max(resume.get(i, 0), jump)
                    jumps[i] = max(1, jump // 2)  # redo from the same anchor (its rates are kept)
                    top_cut[i], floor_raise[i], members[i].duty_end, members[i].flags = cuts[i]
                    continue
                accept(i, a, jump, stepped, end_rates[i])
                anchor[i] = a + jump
                if error < settings.tol_pp / 4:
                    jumps[i] = min(2 * jump, longest[i])
                if new_cut and i in resume:
                    jumps[i] = max(jumps[i], resume.pop(i))
    else:
        a = 0
        jump = settings.first_jump_months
        resume_jump = 0
        while a < (n_until if len({m.duty_end is None for m in members}) == 1 else n_months):
            for i in list(alive):
                if not current[i].ok:
                    stop(i, a, current[i].flag)
                    alive.remove(i)
            if not alive:
                break
            jump = min(jump, n_months - a)
            while True:
                predicted = {i: walk(states[i], a, jump, current[i].per_season, None) for i in alive}
                snap = {i: (top_cut[i], floor_raise[i], members[i].duty_end, list(members[i].flags)) for i in alive}
                end_rates = rates(alive, [predicted[i][-1] for i in alive], dates[a + jump])
                corrected, error = {}, 0.0
                for i in alive:
                    if end_rates[i].ok:
                        corrected[i] = walk(states[i], a, jump, current[i].per_season, end_rates[i].per_season)
                        error = max(error, abs(soh(corrected[i][-1]) - soh(predicted[i][-1])))
                    else:  # the end state cannot be simulated: keep the predictor, the member stops next
                        corrected[i] = predicted[i]
                new_cut = any(snap[i][2] is None and members[i].duty_end is not None for i in alive)
                if (error <= settings.tol_pp and not (new_cut and jump > CUT_DATE_MONTHS)) or jump == 1:
                    break
                for i in alive:
                    top_cut[i], floor_raise[i], members[i].duty_end, members[i].flags = snap[i]
                if error <= settings.tol_pp:  # halved only to date the cut: the step comes back after it
                    resume_jump = max(resume_jump, jump)
                jump = max(1, jump // 2)
            for i in list(alive):
                r0 = _mean_ratio(current[i].resistance, r_new.get(i, current[i].resistance))
                r1 = r0
                if end_rates[i].ok:
                    r1 = _mean_ratio(end_rates[i].resistance, r_new.get(i, end_rates[i].resistance))
                for n, state in enumerate(corrected[i], start=1):
                    members[i].dates.append(dates[a + n])
                    members[i].soh_pct.append(soh(state))
                    members[i].resistance_factor.append(float(r0 + (r1 - r0) * n / jump))
                    if members[i].duty_end is None and not fits(i, state):
                        members[i].mark_duty_end(dates[a + n])
                states[i] = corrected[i][-1]
                current[i] = end_rates[i]
            a += jump
            if error < settings.tol_pp / 4:
                jump = min(2 * jump, settings.max_jump_months)
            if new_cut and resume_jump:
                jump, resume_jump = max(jump, resume_jump), 0
    for member in members:
        _extrapolate_deep_fade(member, dates)
    return members, counter[0]


def _extrapolate_deep_fade(member: MemberTrajectory, dates: list[dt.date]) -> None:
    """Continue a member that stopped deep past end of life at its last year's mean monthly fade."""
    if member.stopped is None or len(member.soh_pct) < 2 or member.soh_pct[-1] >= EXTRAPOLATE_BELOW_SOH_PCT:
        return
    last = member.soh_pct[-13:] if len(member.soh_pct) > 12 else member.soh_pct
    slope = max((last[0] - last[-1]) / (len(last) - 1), 0.0)
    for date in dates[len(member.dates) :]:
        member.dates.append(date)
        member.soh_pct.append(max(float(member.soh_pct[-1]) - slope, 0.0))
        member.resistance_factor.append(member.resistance_factor[-1])
    member.stopped = None
    if FLAG_EXTRAPOLATED not in member.flags:
        member.flags.append(FLAG_EXTRAPOLATED)


def simulate_day_by_day(
    model: DayModel,
    profile: DutyProfile,
    season_temps_k: list[float],
    usable_soc_min: float,
    start: dt.date,
    end: dt.date,
    rate_factor: float,
) -> tuple[MemberTrajectory, int]:
    """Reference for the accelerated method: every calendar day simulated from the previous day's end
    state (same model, same representative days, no extrapolation). Monthly SoH points; slow."""
    member = MemberTrajectory(rate_factor)
    state = model.new_state().as_array()
    n_days = 0
    day_temps_k, month_weights = day_temperatures(season_temps_k)

    def soh(values: np.ndarray) -> float:
        return model.soh_pct(DegradationState.from_array(values))

    date, next_month = start, 0
    while date <= end:
        if date >= add_months(start, next_month):
            member.dates.append(date)
            member.soh_pct.append(soh(state))
            member.resistance_factor.append(float("nan"))
            next_month += 1
        # A month weighing several days (a cold and a warm one): each gets its share of the month's days.
        weights = month_weights[date.month - 1]
        share = (date.day - 0.5) / calendar.monthrange(date.year, date.month)[1]
        temperature_k = day_temps_k[min(int(np.searchsorted(np.cumsum(weights), share)), len(weights) - 1)]
        day = representative_day(profile, soh(state) / 100.0, temperature_k, usable_soc_min)
        if not day.feasible and member.duty_end is None:
            member.mark_duty_end(date)
        (outcome,) = model.run([model.inputs(DegradationState.from_array(state), day, rate_factor)])
        n_days += 1
        if not outcome.ok:
            member.stopped, member.flags = date, [FLAG_SOLVER_FAILED]
            break
        state = state + outcome.delta
        date += dt.timedelta(days=1)
    return member, n_days


def _mean_ratio(resistance: np.ndarray, resistance_new: np.ndarray) -> float:
    """Mean resistance factor over the seasons where it could be read; NaN if none could.

    The resistance is read under load after departure: a pack whose day has (almost) no current, a spare
    bus, has no reading, and its factor is unknown rather than 1.
    """
    ratio = np.asarray(resistance, dtype=float) / np.asarray(resistance_new, dtype=float)
    finite = ratio[np.isfinite(ratio)]
    return float(finite.mean()) if finite.size else float("nan")

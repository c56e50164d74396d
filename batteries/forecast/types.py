"""Plain input/output dataclasses of the battery-health forecast.

Everything here is plain Python (no PyBaMM, no Django) so the Django side can build inputs from its
models and store outputs with ``to_dict()`` (JSON-safe: dates as ISO strings).

Units are in the field names. SoC values are fractions (0-1); SoH values are percent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

Chemistry = Literal["LFP", "NMC"]
CalibrationSource = Literal["pack", "cluster", "prior"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class _ToDict:
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (dates as ISO strings)."""
        result: dict[str, Any] = _jsonable(self)
        return result


@dataclass(frozen=True)
class PackSpec(_ToDict):
    """A traction pack as built.

    ``nominal_kwh``/``nominal_ah`` are the pack's nameplate values; the pack's nominal voltage is their
    ratio. The electrochemical model is one representative cell driven at the pack cell's C-rate
    (pack current / ``cells_parallel``, divided by the cell capacity ``nominal_ah / cells_parallel``).
    ``usable_soc_min``/``usable_soc_max`` are the BMS window the duty must fit in.
    """

    chemistry: Chemistry
    nominal_kwh: float
    nominal_ah: float
    cells_series: int
    cells_parallel: int
    warranty_floor_soh_pct: float = 70.0
    usable_soc_min: float = 0.10
    usable_soc_max: float = 0.95

    @property
    def nominal_voltage_v(self) -> float:
        return 1000.0 * self.nominal_kwh / self.nominal_ah

    @property
    def cell_ah(self) -> float:
        return self.nominal_ah / self.cells_parallel


@dataclass(frozen=True)
class DutyStats(_ToDict):
    """A pack's typical day from telemetry (e.g. the median of the last 30-90 DailyDutyCycle rows).

    ``month`` (1-12) is the calendar month the statistics come from; with ``pack_temp_mean_c`` it gives
    the pack's self-heating offset over the depot's climate. Without it a default offset is used.
    """

    energy_used_kwh: float
    efc_per_day: float
    soc_min: float
    soc_max: float
    soc_mean: float
    hours_above_90_soc: float
    pack_temp_mean_c: float
    pack_temp_max_c: float
    max_charge_c_rate: float
    max_discharge_c_rate: float
    energy_charged_kwh: float
    km_per_day: float | None = None
    operating_hours: float = 14.0
    month: int | None = None


@dataclass(frozen=True)
class BlockPlan(_ToDict):
    """A pack's duty without telemetry: the planned blocks and how the depot charges it."""

    km_per_day: float
    kwh_per_km: float
    charge_c_rate: float = 0.3
    target_soc: float = 0.95
    operating_hours: float = 14.0
    #: True if the depot's smart charging finishes just before departure (little time at high SoC);
    #: False (default, conservative) if the bus charges on arrival and sits full overnight.
    charge_late: bool = False
    #: Charging events during the day between blocks (opportunity charging at the charger's C-rate).
    top_ups_per_day: int = 0


@dataclass(frozen=True)
class Climate(_ToDict):
    """The depot's climate: 12 monthly mean air temperatures (Jan..Dec) and the mean daily swing."""

    monthly_mean_c: tuple[float, ...]
    diurnal_amplitude_c: float = 7.0

    def __post_init__(self) -> None:
        if len(self.monthly_mean_c) != 12:
            raise ValueError("monthly_mean_c needs 12 values (January..December)")


@dataclass(frozen=True)
class HealthObservation(_ToDict):
    """A measured or estimated SoH: a capacity test (small uncertainty) or a telemetry estimate."""

    date: dt.date
    soh_pct: float
    uncertainty_pct: float = 1.0


@dataclass(frozen=True)
class AgeingCalibration(_ToDict):
    """The pack's ageing-rate factor(s) (1.0 = the chemistry prior) with their lognormal spread.

    ``log_sigma`` is the standard deviation of ln(rate_factor): narrow when fitted to the pack's own
    observations, wider for a cluster value, widest for the uncalibrated prior.
    """

    rate_factor: float = 1.0
    log_sigma: float = 0.45
    source: CalibrationSource = "prior"
    n_observations: int = 0
    #: Observations left out of the fit, each as (date ISO, SoH as given, reason).
    set_aside: tuple[tuple[str, str, str], ...] = ()
    #: Two-parameter fits (``calibrate_pack``, the fleet's own and cluster fits): the cycling (loss of
    #: active material) rate factor, and ``rate_factor``/``log_sigma`` are then the calendar (SEI) one's.
    #: None: one common factor for both mechanisms (the prior).
    cycling_factor: float | None = None
    #: Standard deviation of ln(cycling_factor) and its correlation with ln(rate_factor) (posterior).
    cycling_log_sigma: float = 0.0
    log_correlation: float = 0.0
    #: The battery model's C-rate stress factor of the loss of active material (1.0 = the preset's; 0 =
    #: throughput only), shared by all its packs and fitted across them (``pooled.fit_lam_stress``): an
    #: input of every simulation of the pack, not a per-pack fit. Its posterior standard deviation (0 = the
    #: preset's value, not fitted) is recorded but not part of the band.
    lam_stress_factor: float = 1.0
    lam_stress_sigma: float = 0.0
    #: The date of the last capacity check the fit used (a pack's own fit; None for the prior and a
    #: cluster value). Beyond it the band adds the shape-of-fade discrepancy (``forecast.SHAPE_EXPONENT_SIGMA``).
    calibrated_until: dt.date | None = None
    #: What the pack's own checks say, without any prior: the fit's data term as a Gaussian in (ln calendar,
    #: ln cycling), information form (I11, I12, I22, h1, h2) with I the information and h = I x the factors
    #: the checks alone point to (a pack's own fit; None otherwise). A direction the checks cannot tell has
    #: no information. Its battery model's other packs build their prior from it (``pooled.model_prior``).
    evidence: tuple[float, float, float, float, float] | None = None
    #: A prior learnt from this many other packs of the battery model (``pooled.model_prior``), or a fit made
    #: against such a prior; 0: the chemistry preset's prior.
    model_packs: int = 0

    @property
    def two_factors(self) -> bool:
        return self.cycling_factor is not None


@dataclass(frozen=True)
class ForecastJob(_ToDict):
    """One pack to forecast. The trajectory starts new at ``in_service_date`` and is reported from
    ``as_of`` to ``as_of + horizon_years``."""

    pack_id: str
    pack: PackSpec
    duty: DutyStats | BlockPlan
    climate: Climate
    in_service_date: dt.date
    as_of: dt.date
    calibration: AgeingCalibration = field(default_factory=AgeingCalibration)
    horizon_years: float = 10.0


@dataclass(frozen=True)
class ForecastPoint(_ToDict):
    """A monthly point: median SoH with its P10/P90 band (P10 = the pessimistic, fast-ageing case)."""

    date: dt.date
    soh_pct: float
    soh_p10_pct: float
    soh_p90_pct: float
    resistance_factor: float | None  # None where the duty has no load to read it under


@dataclass(frozen=True)
class Crossing(_ToDict):
    """When SoH falls below ``threshold_pct``: median date and band (None: not within the horizon)."""

    threshold_pct: float
    date: dt.date | None
    date_p10: dt.date | None
    date_p90: dt.date | None


@dataclass(frozen=True)
class ForecastResult(_ToDict):
    """A pack's forecast. ``flags`` names anything the manager must know, e.g. ``duty_exceeds_capacity``
    (from ``end_of_duty_date`` the pack can no longer do its whole day: the trajectory goes on with the
    duty cut at the usable window's floor, ``undelivered_kwh_per_day`` short at the horizon).
    Every number is finite: a pack the model cannot forecast raises ``ForecastRefused`` instead.

    Remaining useful life counts from ``as_of`` to the median 80 % crossing (or the end of duty, or
    the horizon if neither happens: then ``rul_censored`` is True).
    """

    pack_id: str
    as_of: dt.date
    soh_now_pct: float
    resistance_factor_now: float | None
    fade_pct_per_year: float
    points: list[ForecastPoint]
    eol_80: Crossing
    warranty: Crossing
    rul_days: int
    rul_km: float | None
    rul_efc: float
    rul_censored: bool
    calibration: AgeingCalibration
    flags: list[str] = field(default_factory=list)
    end_of_duty_date: dt.date | None = None
    #: Daily energy the pack can no longer deliver at the horizon (0 while the duty fits).
    undelivered_kwh_per_day: float = 0.0
    simulated_days: int = 0


class ForecastRefused(Exception):
    """The model cannot give this pack a forecast (a duty outside its range, a failed simulation, a
    value that would not be finite). ``flag`` names the kind, ``reason`` says it for a person."""

    def __init__(self, pack_id: str, flag: str, reason: str) -> None:
        super().__init__(f"pack {pack_id}: {reason}")
        self.pack_id = pack_id
        self.flag = flag
        self.reason = reason

"""Chemistry presets: a PyBaMM parameter set plus the ageing parameters and their sources.

Model (both chemistries): single-particle model (SPM), isothermal at the day's pack temperature, with

* **SEI growth, "reaction limited"** (Butler-Volmer side reaction, rate parameter
  "SEI reaction exchange current density [A.m-2]", Arrhenius through
  "SEI growth activation energy [J.mol-1]"). It makes calendar ageing depend on temperature and on the
  time spent at high SoC (low graphite potential), which is what depot charging policy changes.
* **Loss of active material in the negative electrode, "current-driven"**: a rate proportional to the
  current density (Ah throughput), with the same Arrhenius factor. It carries the cycle-ageing part, so
  that more (and deeper) cycling ages a pack faster; SEI alone would not do that.
* **NMC only, calendar lithium loss driven by the positive electrode's potential**
  (``add_positive_side_loss``): graphite is on one potential plateau above ~60 % SoC, so the SEI alone
  hardly ages a pack parked at 95 % faster than at 70 %; NMC cells do (Schmalstieg et al. 2014).

Each rate is multiplied by a dimensionless factor, a PyBaMM ``InputParameter`` (1.0 is the chemistry
prior): ``AGEING_FACTOR`` the SEI and the positive-side loss (calendar ageing), ``CYCLING_FACTOR`` the
loss of active material (cycling ageing). One common factor passes the same value to both;
``calibrate_pack`` fits the two.

The prior rate constants are literature values times a *calibration factor* chosen so that an
uncalibrated pack at about one equivalent full cycle per day at 25 degC loses roughly 2 % SoH per year,
the average of large field studies of EV fleets (1.8-2.3 %/yr). See docs/forecast.md, "Prior tuning".
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import numpy as np

from .types import Chemistry

FARADAY = 96485.33212  # C/mol
GAS_CONSTANT = 8.314462618  # J/(mol K)
T_REF_K = 298.15

# Names of the PyBaMM input parameters this package varies without rebuilding the model.
AGEING_FACTOR = "Ageing rate factor"
#: Multiplies the loss of active material (cycling ageing) only; ``AGEING_FACTOR`` the SEI (calendar ageing).
CYCLING_FACTOR = "Cycling ageing rate factor"
#: Multiplies the C-rate stress term of the loss of active material (1.0 = the preset's, 0 = throughput
#: only). A property of the cell, shared by the packs of one battery model (``pooled.fit_lam_stress``).
LAM_STRESS_FACTOR = "LAM C-rate stress factor"
#: Multiplies the loss of active material by the self-limiting law's factor at the day's start state
#: (``ChemistryPreset.lam_self_limit_factor``); only in models of presets with ``lam_self_limit_loss`` > 0.
LAM_SELF_LIMIT_FACTOR = "LAM self-limiting factor"
#: Multiplies the SEI's EC diffusivity alone (``AGEING_FACTOR`` scales its rate constant and EC diffusivity
#: together): the SEI's shape in time, << 1 diffusion-limited from the start (loss ~ sqrt(t)), >> 1 reaction-limited
#: (about linear). Only in models of presets with the option on (``sei_shape_input``).
SEI_DIFFUSIVITY_FACTOR = "SEI diffusivity factor"
TEMPERATURE = "Ambient temperature [K]"


@dataclass(frozen=True)
class ChemistryPreset:
    """Everything needed to build the ageing model of one chemistry.

    ``sei_exchange_current_a_m2`` and ``lam_rate_per_a_m2`` are the *tuned* prior values
    (literature value x calibration factor, both kept here so the tuning is visible).
    """

    chemistry: Chemistry
    parameter_set: str
    sei_exchange_current_literature_a_m2: float
    sei_calibration_factor: float
    lam_rate_per_a_m2: float  # s^-1 per (A/m^2) of electrode current density
    #: Apparent activation energy of capacity fade (literature); used for the LAM rate and for the
    #: Arrhenius averaging of temperatures.
    activation_energy_j_mol: float
    #: The SEI model's own parameter. Its Butler-Volmer term (overpotential over RT) already lowers the
    #: rate when hot, which cuts the *apparent* activation energy by about alpha*F*(U_SEI - U_n)
    #: ~ 12-14 kJ/mol; this parameter is raised by that much so the simulated fade shows the apparent
    #: (literature) value. Checked in docs/forecast.md, "Prior tuning".
    sei_activation_energy_j_mol: float
    sei_overrides: dict[str, float] = field(default_factory=dict)
    #: "ec reaction limited" SEI (Yang et al. 2017): kinetic rate constant and EC diffusivity through the
    #: SEI, both x the ageing factor (which then multiplies the SEI current at any thickness).
    sei_kinetic_rate_m_s: float = 0.0
    ec_diffusivity_m2_s: float = 0.0
    #: Calendar lithium loss driven by the positive electrode's potential (see ``add_positive_side_loss``):
    #: fraction of the nominal capacity lost per year at 25 degC per volt of positive potential above
    #: ``positive_loss_onset_v`` (vs Li/Li+). 0 = none (LFP: its positive sits at 3.4 V).
    positive_loss_per_year_v: float = 0.0
    positive_loss_onset_v: float = 4.0
    positive_loss_activation_energy_j_mol: float = 58_000.0
    #: Lithium plating (see ``add_plating_loss``): exchange current density of Li deposition on the graphite
    #: surface [A/m2 of particle surface] and its cathodic transfer coefficient. 0 = none.
    plating_exchange_current_a_m2: float = 0.0
    plating_transfer_coefficient: float = 0.65
    prior_log_sigma: float = 0.45
    sources: tuple[str, ...] = ()
    #: Self-limiting loss of active material (an option, off at 0.0): the LAM rate is divided by
    #: (1 + lost / ``lam_self_limit_loss``), lost = 1 - eps / eps_new the share of the new negative's active
    #: material already lost, and multiplied by ``lam_self_limit_rate_scale`` (sized so that the first year on
    #: the reference duty loses what the linear law loses). Loss then grows as sqrt(throughput) once lost >>
    #: ``lam_self_limit_loss``. See ``lam_self_limited`` and docs/forecast.md, "Model and why".
    lam_self_limit_loss: float = 0.0
    lam_self_limit_rate_scale: float = 1.0
    #: The SEI's shape as an input (an option, off at None): the EC diffusivity x ``SEI_DIFFUSIVITY_FACTOR``,
    #: whose value is this unless a simulated member gives its own. See ``sei_shape_input``.
    sei_diffusivity_factor: float | None = None

    def lam_self_limit_factor(self, eps_negative: float, eps_negative_new: float) -> float:
        """The LAM rate's multiplier at ``eps_negative`` (1.0 when the option is off)."""
        if self.lam_self_limit_loss <= 0.0:
            return 1.0
        lost = max(0.0, 1.0 - eps_negative / eps_negative_new)
        return self.lam_self_limit_rate_scale / (1.0 + lost / self.lam_self_limit_loss)

    @property
    def sei_exchange_current_a_m2(self) -> float:
        return self.sei_exchange_current_literature_a_m2 * self.sei_calibration_factor

    @property
    def key(self) -> str:
        return f"{self.chemistry}:{self.parameter_set}"


#: Ethylene carbonate in the electrolyte (Yang et al. 2017, also PyBaMM's OKane2022).
EC_CONCENTRATION_MOL_M3 = 4541.0
#: At the initial SEI thickness and a mid SoC the EC-limited SEI current is this share of the purely
#: reaction-limited one: thin SEI grows reaction-limited (fast, SoC-dependent), thick SEI diffusion-limited
#: (slowing as 1/thickness: the field's fast-then-slower fade). See docs/forecast.md, "SEI model".
SEI_INITIAL_REACTION_SHARE = 0.5

# SEI block for the graphite anode of the LFP cell. Prada2013 ships none, so the graphite SEI values of
# O'Kane et al. 2022 (PyBaMM set "OKane2022", which takes them from Yang et al. 2017 / Single et al.)
# are used: the anode material (graphite) and the electrolyte family (LiPF6 in carbonates) are the same.
# 2 Li per SEI molecule (Li2CO3 / (CH2OCO2Li)2), as in Safari et al. 2009 and PyBaMM's Mohtat2020.
_GRAPHITE_SEI = {
    "Ratio of lithium moles to SEI moles": 2.0,
    "SEI partial molar volume [m3.mol-1]": 9.585e-05,
    "SEI resistivity [Ohm.m]": 200000.0,
    "SEI open-circuit potential [V]": 0.4,
    "Initial SEI thickness [m]": 5e-09,
    "SEI solvent diffusivity [m2.s-1]": 2.5e-22,
    "Bulk solvent concentration [mol.m-3]": 2636.0,
    "SEI growth transfer coefficient": 0.5,
    "EC initial concentration in electrolyte [mol.m-3]": EC_CONCENTRATION_MOL_M3,
}

PRESETS: dict[str, ChemistryPreset] = {
    "LFP": ChemistryPreset(
        chemistry="LFP",
        parameter_set="Prada2013",
        # O'Kane et al. 2022 (PCCP 24, 7909) graphite SEI exchange current density, x calibration factor.
        sei_exchange_current_literature_a_m2=1.5e-07,
        sei_calibration_factor=0.021,
        lam_rate_per_a_m2=5.6e-10,
        # Wang et al. 2011, "Cycle-life model for graphite-LiFePO4 cells", J. Power Sources 196, 3942:
        # Ea = 31.5 kJ/mol for capacity loss of A123 26650 cells (the cell Prada2013 describes).
        activation_energy_j_mol=31_500.0,
        sei_activation_energy_j_mol=38_000.0,
        sei_overrides=_GRAPHITE_SEI,
        sei_kinetic_rate_m_s=2.0e-17,
        ec_diffusivity_m2_s=2.3e-23,
        # No lithium plating (add_plating_loss): Prada2013 borrows the LG M50 energy cell's graphite kinetics
        # (Chen 2020) for the A123 power cell, rated for fast charge; with them this cell drops below 0 V vs Li
        # at 1C from ~15 degC once its negative has lost active material, and the 2 EFC/day reference duty lost
        # 2.9 pp more in 3 years, where the forecast missed its reference by 1.4 pp (docs/forecast.md).
        sources=(
            "Prada et al. 2013, J. Electrochem. Soc. 160, A616 (cell parameters, PyBaMM 'Prada2013')",
            "O'Kane et al. 2022, Phys. Chem. Chem. Phys. 24, 7909 (graphite SEI parameters)",
            "Wang et al. 2011, J. Power Sources 196, 3942 (Ea = 31.5 kJ/mol, LFP/graphite)",
            "Field fade 1.8-2.3 %/yr: large EV telematics studies (see docs/forecast.md)",
        ),
    ),
    "NMC": ChemistryPreset(
        chemistry="NMC",
        parameter_set="OKane2022",
        sei_exchange_current_literature_a_m2=1.5e-07,
        sei_calibration_factor=0.023,
        lam_rate_per_a_m2=2.6e-10,
        # O'Kane et al. 2022: "SEI growth activation energy [J.mol-1]" = 38 kJ/mol.
        activation_energy_j_mol=38_000.0,
        sei_activation_energy_j_mol=44_000.0,
        sei_overrides={
            "Ratio of lithium moles to SEI moles": 2.0,
            "EC initial concentration in electrolyte [mol.m-3]": EC_CONCENTRATION_MOL_M3,
        },
        sei_kinetic_rate_m_s=2.0e-17,
        ec_diffusivity_m2_s=2.3e-23,
        # Sized on Schmalstieg et al. 2014's calendar law for an NMC/graphite cell (fade rate linear in the
        # cell voltage, (7.543 V - 23.75), Ea = 6976 K x R = 58 kJ/mol): at this cell's voltages at 70 / 95 /
        # 100 % SoC that is 1.22x from 70 to 95 % and 1.08x from 95 to 100 %, where the graphite SEI alone
        # gives 1.05x and 1.04x (docs/forecast.md, "SEI model": positive-side loss).
        positive_loss_per_year_v=0.0078,
        # Lithium plating (add_plating_loss), per m2 of graphite surface. Sized so that a new cell discharged
        # 80 % at 0.2C and charged back at 1C at 5 degC loses 4.8x the lithium of the same day at 25 degC
        # (2.5 vs 0.53 mAh on the 5 Ah cell; 0.17 mAh at 5 degC without plating): the ~5x of Waldmann et al.
        # 2014's cycle-ageing Arrhenius branch below 25 degC (about -55 kJ/mol) at 1C between 5 and 25 degC.
        # PyBaMM's OKane2022 plating exchange current (F x k x c_e = 0.096 A/m2) is 56x larger.
        plating_exchange_current_a_m2=1.7e-3,
        sources=(
            "O'Kane et al. 2022, Phys. Chem. Chem. Phys. 24, 7909 (LG M50 NMC811/graphite-SiOx, "
            "SEI parameters, Ea = 38 kJ/mol; PyBaMM 'OKane2022')",
            "Schmalstieg et al. 2014, J. Power Sources 257, 325 (NMC calendar fade vs voltage, Ea 58 kJ/mol)",
            "Waldmann et al. 2014, J. Power Sources 262, 129 (1C cycling, ageing rate vs temperature: lithium "
            "plating below 25 degC; sizes the plating exchange current)",
            "Field fade 1.8-2.3 %/yr: large EV telematics studies (see docs/forecast.md)",
        ),
    ),
}


#: Share of the new negative's active material the linear LAM law loses in the first year at the prior on the
#: chemistry's issue duty (bench/forecast_reference.py: LFP bus at 25 degC 2.34 %; NMC car in Hermosillo 4.55 %;
#: new-cell rates of the four seasonal days x 365). Sizes the self-limiting option.
LAM_FIRST_YEAR_LOSS: dict[str, float] = {"LFP": 0.0234, "NMC": 0.0455}
#: The self-limiting option's bend: that first year's loss over ``lam_self_limit_loss``. At 4 the local exponent
#: of loss vs throughput there is (1 + 4/2) / (1 + 4) = 0.6 (Wang et al. 2011: 0.55 for the whole fade of cycled
#: LFP/graphite cells); the rate scale 1 + bend / 2 keeps that first year's loss (L + L^2 / (2 L0) = scale x k Q).
LAM_SELF_LIMIT_BEND = 4.0


def lam_self_limited(preset: ChemistryPreset, bend: float = LAM_SELF_LIMIT_BEND) -> ChemistryPreset:
    """``preset`` with the self-limiting LAM option on (experiment of session 8, default off; docs/forecast.md,
    "Model and why")."""
    return replace(
        preset,
        lam_self_limit_loss=LAM_FIRST_YEAR_LOSS[preset.chemistry] / bend,
        lam_self_limit_rate_scale=1.0 + bend / 2.0,
    )


def sei_shape_input(preset: ChemistryPreset, diffusivity_factor: float = 1.0) -> ChemistryPreset:
    """``preset`` with the SEI's shape as an input (experiment of session 10, default off; docs/forecast.md,
    "Independent reference"): the EC diffusivity times ``SEI_DIFFUSIVITY_FACTOR``, ``diffusivity_factor`` unless a
    member passes its own (``DayModel.inputs``). At 1.0 the model is today's; a factor s also scales the new SEI's
    rate, by (1 + q) / (1 + q / s) at the initial thickness and mid SoC (q = (1 - share) / share, share
    ``SEI_INITIAL_REACTION_SHARE``; ``sei_initial_rate_scale``)."""
    return replace(preset, sei_diffusivity_factor=diffusivity_factor)


def sei_initial_rate_scale(diffusivity_factor: float) -> float:
    """The SEI current at the initial thickness and mid SoC with the EC diffusivity x ``diffusivity_factor``, over
    today's (1.0): j = F c k e / (1 + L k e / D), with L k e / D = q = (1 - share) / share there."""
    q = (1.0 - SEI_INITIAL_REACTION_SHARE) / SEI_INITIAL_REACTION_SHARE
    return (1.0 + q) / (1.0 + q / diffusivity_factor)


def get_preset(chemistry: str) -> ChemistryPreset:
    try:
        return PRESETS[chemistry]
    except KeyError:
        raise ValueError(f"unknown chemistry {chemistry!r}; known: {sorted(PRESETS)}") from None


def arrhenius_factor(temperature_k: float, activation_energy_j_mol: float) -> float:
    """Rate multiplier at ``temperature_k`` relative to 25 degC."""
    return math.exp(activation_energy_j_mol / GAS_CONSTANT * (1.0 / T_REF_K - 1.0 / temperature_k))


@dataclass(frozen=True)
class CellConstants:
    """Numbers of the model cell the forecast needs outside PyBaMM (capacity bookkeeping)."""

    nominal_ah: float
    electrode_area_m2: float
    negative_volume_m3: float  # electrode volume (active material fraction not included)
    c_max_negative: float
    c_max_positive: float
    positive_capacity_ah: float
    eps_negative_new: float
    lithium_ah_new: float  # cyclable lithium of a new cell, in Ah
    v_min: float
    v_max: float
    sto_grid: np.ndarray
    ocp_negative: np.ndarray
    ocp_positive: np.ndarray

    def negative_capacity_ah(self, eps_negative: float) -> float:
        return eps_negative * self.negative_volume_m3 * self.c_max_negative * FARADAY / 3600.0


def parameter_values(preset: ChemistryPreset) -> Any:
    """PyBaMM ParameterValues of the preset, with the ageing rates tied to ``AGEING_FACTOR``."""
    # Imported lazily: importing the package must stay cheap.
    import pybamm

    values = pybamm.ParameterValues(preset.parameter_set)
    values.update(dict(preset.sei_overrides), check_already_exists=False)
    factor = pybamm.InputParameter(AGEING_FACTOR)
    cycling_factor = pybamm.InputParameter(CYCLING_FACTOR)
    stress_factor = pybamm.InputParameter(LAM_STRESS_FACTOR)
    lam_k = preset.lam_rate_per_a_m2
    e_a = preset.activation_energy_j_mol
    # The cell's current density (current per electrode area, what the LAM rate function is given) at 1C:
    # the scale of the stress term below.
    area_m2 = (
        values["Electrode height [m]"]
        * values["Electrode width [m]"]
        * values["Number of electrodes connected in parallel to make a cell"]
    )
    j_1c = values["Nominal cell capacity [A.h]"] / area_m2

    ec_diffusivity = preset.ec_diffusivity_m2_s * factor
    if preset.sei_diffusivity_factor is not None:  # the option: the SEI's shape, an input (``sei_shape_input``)
        ec_diffusivity = ec_diffusivity * pybamm.InputParameter(SEI_DIFFUSIVITY_FACTOR)

    def lam_rate(current_density: Any, temperature: Any) -> Any:
        # Smooth |i| so the Jacobian stays continuous when the current changes sign.
        magnitude = pybamm.sqrt(current_density**2 + 1e-12 * j_1c**2)
        arrhenius = pybamm.exp(e_a / GAS_CONSTANT * (1 / T_REF_K - 1 / temperature))
        # Throughput-driven, plus a stress term that grows with the square of the C-rate (particle
        # cracking: diffusion-induced stress scales with the current): 2x at 1C, 5x at 2C, ~1.1x at 0.3C
        # at the preset's stress (``LAM_STRESS_FACTOR`` 1.0).
        stress = 1.0 + stress_factor * (magnitude / j_1c) ** 2
        rate = -cycling_factor * lam_k * magnitude * stress * arrhenius
        if preset.lam_self_limit_loss > 0.0:  # the option: an input, set per day from the day's start state
            rate = rate * pybamm.InputParameter(LAM_SELF_LIMIT_FACTOR)
        return rate

    values.update(
        {
            "SEI reaction exchange current density [A.m-2]": preset.sei_exchange_current_a_m2 * factor,
            "SEI kinetic rate constant [m.s-1]": preset.sei_kinetic_rate_m_s * factor,
            "EC diffusivity [m2.s-1]": ec_diffusivity,
            "SEI growth activation energy [J.mol-1]": preset.sei_activation_energy_j_mol,
            "Negative electrode current-driven LAM rate": lam_rate,
            "Reference temperature [K]": T_REF_K,
        },
        check_already_exists=False,
    )
    return values


#: Output variable of ``add_positive_side_loss``: lithium lost on the positive side since the day began.
POSITIVE_LOSS = "Positive-side lithium loss [A.h]"
SECONDS_PER_YEAR = 365.25 * 86400.0
#: Smoothing width [V] of the onset (a softplus ramp: smooth for the solver, ~0 40 mV below the onset).
POSITIVE_LOSS_SMOOTHING_V = 0.02


def add_positive_side_loss(model: Any, preset: ChemistryPreset) -> bool:
    """Add the positive electrode's calendar lithium loss to ``model`` (before it is built); False if none.

    Rate [Ah/s] = calendar factor x k x Q_nominal x softplus(U_p - U_onset) x Arrhenius(E_a), U_p the positive
    electrode's potential vs Li/Li+ (surface potential difference, overpotential included), k per volt and
    year. It stands for the high-potential positive-side reactions (electrolyte oxidation, transition-metal
    dissolution) whose products are reduced at the negative and consume cyclable lithium. It is not fed back
    into the particles within the day (~1e-5 of the capacity a day): the day's outcome subtracts it from the
    lithium inventory. Scaled by ``AGEING_FACTOR``: it is calendar ageing, calibrated with the SEI.
    """
    if preset.positive_loss_per_year_v <= 0.0:
        return False
    import pybamm

    potential = model.variables["X-averaged positive electrode surface potential difference [V]"]
    temperature = model.variables["X-averaged cell temperature [K]"]
    width = POSITIVE_LOSS_SMOOTHING_V
    above = width * pybamm.log(1.0 + pybamm.exp((potential - preset.positive_loss_onset_v) / width))
    e_a = preset.positive_loss_activation_energy_j_mol
    arrhenius = pybamm.exp(e_a / GAS_CONSTANT * (1.0 / T_REF_K - 1.0 / temperature))
    rate = preset.positive_loss_per_year_v / SECONDS_PER_YEAR * pybamm.Parameter("Nominal cell capacity [A.h]")
    _add_lithium_loss_variable(model, POSITIVE_LOSS, pybamm.InputParameter(AGEING_FACTOR) * rate * above * arrhenius)
    return True


def _ocp_table(values: Any, name: str, sto: np.ndarray) -> np.ndarray:
    import pybamm

    function = values[name]
    n_args = len(inspect.signature(function).parameters)
    args = {"sto": pybamm.Vector(sto), "T": pybamm.Scalar(T_REF_K)}
    symbol = pybamm.FunctionParameter(name, dict(list(args.items())[:n_args]))
    return np.asarray(values.process_symbol(symbol).evaluate()).ravel()


@cache
def cell_constants(chemistry: str) -> CellConstants:
    """Geometry, lithium inventory and tabulated OCPs of the preset's model cell (cached)."""
    preset = get_preset(chemistry)
    values = parameter_values(preset)
    area = values["Electrode height [m]"] * values["Electrode width [m]"]
    area *= values["Number of electrodes connected in parallel to make a cell"]
    vol_n = values["Negative electrode thickness [m]"] * area
    vol_p = values["Positive electrode thickness [m]"] * area
    c_n = values["Maximum concentration in negative electrode [mol.m-3]"]
    c_p = values["Maximum concentration in positive electrode [mol.m-3]"]
    eps_n = values["Negative electrode active material volume fraction"]
    eps_p = values["Positive electrode active material volume fraction"]
    q_p = eps_p * vol_p * c_p * FARADAY / 3600.0
    q_n = eps_n * vol_n * c_n * FARADAY / 3600.0
    x_init = values["Initial concentration in negative electrode [mol.m-3]"] / c_n
    y_init = values["Initial concentration in positive electrode [mol.m-3]"] / c_p
    # Stoichiometry grid avoids the exact ends, where some OCP fits diverge (log terms).
    sto = np.linspace(1e-4, 1 - 1e-4, 4001)
    return CellConstants(
        nominal_ah=values["Nominal cell capacity [A.h]"],
        electrode_area_m2=area,
        negative_volume_m3=vol_n,
        c_max_negative=c_n,
        c_max_positive=c_p,
        positive_capacity_ah=q_p,
        eps_negative_new=eps_n,
        lithium_ah_new=x_init * q_n + y_init * q_p,
        v_min=values["Lower voltage cut-off [V]"],
        v_max=values["Upper voltage cut-off [V]"],
        sto_grid=sto,
        ocp_negative=_ocp_table(values, "Negative electrode OCP [V]", sto),
        ocp_positive=_ocp_table(values, "Positive electrode OCP [V]", sto),
    )


#: Output variable of ``add_plating_loss``: lithium lost to plating since the day began.
PLATING_LOSS = "Lithium plating loss [A.h]"
#: Smoothing width [V] of the 0 V onset (a softplus: ~0 10 mV above 0 V vs Li, -eta below).
PLATING_SMOOTHING_V = 0.002


def add_plating_loss(model: Any, preset: ChemistryPreset) -> bool:
    """Add irreversible lithium plating on the negative electrode to ``model`` (before it is built); False if none.

    Plating current [A] = cycling factor x i0 x S_n x (exp(alpha F eta- / RT) - 1), S_n the graphite particles'
    surface area (a_n x L_n x electrode area), eta- = softplus of minus the negative electrode's potential vs
    Li/Li+ (surface potential difference plus SEI film overpotential, as PyBaMM's plating model): zero while
    the graphite sits above 0 V vs Li (always at rest, and while charging slowly or warm), a cathodic
    Butler-Volmer branch with lithium metal at unit activity below. Cold and fast charging push the surface
    potential below 0 V through the graphite's own kinetics and solid diffusion (their Arrhenius terms in the
    parameter set), which is where the temperature dependence comes from. Every plated atom counts as lost
    (no stripping): it stands for the irreversible part. Like the positive-side loss it is taken off the
    lithium inventory at the day's end, not fed back within the day. Scaled by ``CYCLING_FACTOR``: it only
    happens while charging (docs/forecast.md, "Lithium plating").

    Not PyBaMM's "lithium plating" option: its exchange currents are proportional to the electrolyte's and
    the plated lithium's concentrations, so it plates at rest above 0 V ("irreversible": a Tafel branch with
    no back reaction, 10-15 % of the capacity a day) or keeps a Boltzmann stock of plated lithium that grows
    with temperature ("partially reversible"), see docs/forecast.md, Limits.
    """
    if preset.plating_exchange_current_a_m2 <= 0.0:
        return False
    import pybamm

    potential = (
        model.variables["X-averaged negative electrode surface potential difference [V]"]
        + model.variables["X-averaged negative electrode SEI film overpotential [V]"]
    )
    temperature = model.variables["X-averaged cell temperature [K]"]
    width = PLATING_SMOOTHING_V
    below = width * pybamm.log(1.0 + pybamm.exp(-potential / width))
    drive = pybamm.exp(preset.plating_transfer_coefficient * FARADAY * below / (GAS_CONSTANT * temperature)) - 1.0
    surface_m2 = (
        model.variables["X-averaged negative electrode surface area to volume ratio [m-1]"]
        * pybamm.Parameter("Negative electrode thickness [m]")
        * pybamm.Parameter("Electrode height [m]")
        * pybamm.Parameter("Electrode width [m]")
        * pybamm.Parameter("Number of electrodes connected in parallel to make a cell")
    )
    _add_lithium_loss_variable(
        model,
        PLATING_LOSS,
        pybamm.InputParameter(CYCLING_FACTOR) * preset.plating_exchange_current_a_m2 * surface_m2 * drive / 3600.0,
    )
    return True


def add_lithium_losses(model: Any, preset: ChemistryPreset) -> tuple[str, ...]:
    """Add the preset's lithium losses outside PyBaMM's own options (positive side, plating) to ``model``
    before it is built; returns their output variables. The day's outcome subtracts each one's change from
    the lithium inventory."""
    added = (
        (POSITIVE_LOSS, add_positive_side_loss(model, preset)),
        (PLATING_LOSS, add_plating_loss(model, preset)),
    )
    return tuple(name for name, was_added in added if was_added)


def _add_lithium_loss_variable(model: Any, name: str, rate: Any) -> None:
    """A state ``name`` [A.h] on ``model``: lithium lost since the day began at ``rate`` [A.h/s]."""
    import pybamm

    loss = pybamm.Variable(name, domain="current collector")
    model.rhs[loss] = rate
    model.initial_conditions[loss] = pybamm.Scalar(0.0)
    model.variables[name] = loss

"""The demand-charge rule, in one place: what a night's load costs in demand charges.

A demand charge is paid once a month per kW of the month's highest demand (base load + charging) in its
slots. A night pays only for raising that peak: demand up to ``month_peak_kw`` (the month's peak so far in
the charge's slots) is already paid. A tariff may have several (GDMTH: capacity on *punta*, distribution on
every hour), each on its own slots and with its own month peak.

``DemandCharges`` is that list for one run of slots (a night, a month). It is built once from a tariff
(``charging.tariffs.demand_charges_on``, the Django side) or read back from an instance
(``Instance.demand_charges()``, ``demand_charges_from_dict`` for a stored plan's JSON), and everything that
prices demand reads it: the planner, the LP (``lp._add_demand``), the evaluator, the reports and the plan
page. A new kind of demand rule changes this module and the builder, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

# The name the instance's top-level charge gets when the instance does not name it (instances stored before
# ``demand_charge_name`` existed, hand-written ones).
PRIMARY_DEMAND_CHARGE_NAME = "demand"


@dataclass(frozen=True)
class DemandCharge:
    """A charge per kW of the month's peak demand (``base_load_kw + charging``) over ``slots``.

    Only a new peak costs: demand up to ``month_peak_kw`` (the month's peak so far in those slots)
    is already paid. ``slots`` is None when every slot counts (GDMTH's distribution charge on the
    month's maximum demand); a capacity charge on *punta* demand flags the punta slots. ``periods``
    names the tariff periods the slots were drawn from, for people (empty: every hour, or not known).
    """

    name: str
    mxn_per_kw: float
    slots: tuple[bool, ...] | None = None
    month_peak_kw: float = 0.0
    periods: tuple[str, ...] = ()

    def mask(self, num_slots: int) -> list[bool]:
        return list(self.slots) if self.slots is not None else [True] * num_slots

    def peak_kw(self, load_kw: Sequence[float] | np.ndarray) -> float:
        """The highest of ``load_kw`` (kW per slot, from slot 0) in this charge's slots; 0 when none count."""
        load = np.asarray(load_kw, dtype=float)
        if self.slots is None:
            return float(load.max(initial=0.0))
        counts = np.zeros(load.size, dtype=bool)
        shared = min(load.size, len(self.slots))
        counts[:shared] = self.slots[:shared]
        return float(load[counts].max(initial=0.0))

    def paid_floor_kw(self, base_load_kw: Sequence[float] | np.ndarray) -> float:
        """The peak this charge pays for whatever charging does: the month's so far, or the base load's own
        peak in the charge's slots when that is higher (charging cannot lower it)."""
        return max(self.month_peak_kw, self.peak_kw(base_load_kw))

    def line(self, peak_kw: float) -> DemandChargeLine:
        """What this charge costs when the load peaks at ``peak_kw`` in its slots."""
        return DemandChargeLine(self.name, self.mxn_per_kw, self.month_peak_kw, peak_kw, self.periods)


@dataclass(frozen=True)
class DemandChargeLine:
    """One demand charge on one load: the line of a bill, as the plan page and the reports show it."""

    name: str
    mxn_per_kw: float
    peak_before_kw: float  # the month's peak before this load (already paid)
    peak_kw: float  # this load's peak in the charge's slots
    periods: tuple[str, ...] = ()

    @property
    def peak_after_kw(self) -> float:
        """The month's peak once this load has run: what later nights count as paid."""
        return max(self.peak_before_kw, self.peak_kw)

    @property
    def added_kw(self) -> float:
        return max(self.peak_kw - self.peak_before_kw, 0.0)

    @property
    def cost_mxn(self) -> float:
        return self.mxn_per_kw * self.added_kw


class DemandCharges(tuple[DemandCharge, ...]):
    """The demand charges of one run of slots, in order; the first is the *main* one, whose peak is a plan's
    ``peak_kw`` and which an instance holds in its top-level fields. A tuple, so it compares, unpacks and
    indexes like one."""

    @classmethod
    def of(cls, charges: Iterable[DemandCharge]) -> DemandCharges:
        """The charges in the order they are planned: those restricted to some slots first (stable, so by the
        caller's order within each kind). The main charge is then the one on the tariff's dearest hours
        (GDMTH's capacity on punta) rather than the one on every hour."""
        return cls(sorted(charges, key=lambda c: c.slots is None))

    @property
    def main(self) -> DemandCharge | None:
        return self[0] if self else None

    def priced(self) -> DemandCharges:
        """Only the charges with a price: a free charge costs nothing and is not planned."""
        return DemandCharges(c for c in self if c.mxn_per_kw > 0)

    def names(self) -> list[str]:
        return [c.name for c in self]

    def peaks_kw(self, load_kw: Sequence[float] | np.ndarray) -> list[float]:
        """Per charge, the highest of ``load_kw`` in its slots."""
        return [c.peak_kw(load_kw) for c in self]

    def bill(self, load_kw: Sequence[float] | np.ndarray) -> list[DemandChargeLine]:
        """Per charge, what ``load_kw`` (site demand per slot, base load included, from slot 0) costs."""
        return [c.line(c.peak_kw(load_kw)) for c in self]

    def cost_mxn(self, load_kw: Sequence[float] | np.ndarray) -> float:
        return float(sum(line.cost_mxn for line in self.bill(load_kw)))

    def month_peaks_after(self, peaks_kw: Sequence[float]) -> dict[str, float]:
        """Per charge (by name), the month's peak once a load peaking at ``peaks_kw`` (one per charge, in
        order) has run, to the watt: what ``ChargingPlan.month_peaks_kw`` stores."""
        return {c.name: round(c.line(p).peak_after_kw, 3) for c, p in zip(self, peaks_kw, strict=True)}

    def with_month_peaks(self, peaks_kw: Mapping[str, float]) -> DemandCharges:
        """Each charge with its month peak raised to ``peaks_kw[name]`` when that is higher."""
        return DemandCharges(replace(c, month_peak_kw=max(c.month_peak_kw, peaks_kw.get(c.name, 0.0))) for c in self)

    def named(self, names: Iterable[str]) -> DemandCharges:
        """The main charge renamed after the one of ``names`` (every charge's name, e.g. a stored plan's
        ``month_peaks_kw`` keys) no other charge has: instances stored before ``demand_charge_name`` existed
        call their top-level charge "demand"."""
        if not self or self[0].name != PRIMARY_DEMAND_CHARGE_NAME:
            return self
        others = {c.name for c in self[1:]}
        left = [name for name in names if name not in others]
        if len(left) != 1:
            return self
        return DemandCharges((replace(self[0], name=left[0]), *self[1:]))

    def instance_fields(self) -> dict[str, Any]:
        """``Instance``'s keyword arguments holding these charges: the main one in the top-level fields, the
        others in ``additional_demand_charges``. Give priced charges (``priced()``): ``Instance.demand_charges()``
        leaves out a top-level charge without a price. None at all: the top-level charge has no price."""
        main = self.main or DemandCharge(PRIMARY_DEMAND_CHARGE_NAME, 0.0)
        return {
            "demand_charge_name": main.name,
            "demand_charge_mxn_per_kw": main.mxn_per_kw,
            "demand_slots": main.slots,
            "month_peak_kw": main.month_peak_kw,
            "demand_periods": main.periods,
            "additional_demand_charges": tuple(self[1:]),
        }

    @classmethod
    def from_instance_fields(
        cls,
        *,
        demand_charge_name: str,
        demand_charge_mxn_per_kw: float,
        demand_slots: tuple[bool, ...] | None,
        month_peak_kw: float,
        demand_periods: tuple[str, ...],
        additional_demand_charges: tuple[DemandCharge, ...],
    ) -> DemandCharges:
        """The inverse of ``instance_fields``: the top-level charge (when it has a price), then the others."""
        main = DemandCharge(demand_charge_name, demand_charge_mxn_per_kw, demand_slots, month_peak_kw, demand_periods)
        return cls(((main,) if main.mxn_per_kw > 0 else ()) + tuple(additional_demand_charges))

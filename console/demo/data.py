"""What the demo deployment is: the fleet, depots, tariff and people of Transporte Urbano de Sonora.

Plain declarations; ``console.demo.plan`` draws the random parts from them and ``console.demo.build`` writes them.
Figures are assumed or illustrative (DOMAIN.md), not vendor specifications.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from charging.models import Charger
from fleet.models import DepotMembership, VehicleModel

SEED = 20260601
ZONE_NAME = "America/Hermosillo"
ZONE = zoneinfo.ZoneInfo(ZONE_NAME)
ORGANIZATION = {"name": "Transporte Urbano de Sonora", "slug": "transporte-urbano-sonora"}
SERVICE_DAYS = 7
T = dt.time
# The fleet's history (commissioning, swaps, capacity tests) ends on a fixed date and the timetable starts on
# it, so re-running the demo on any later day finds the same rows instead of a history shifted by a day.
HISTORY_UNTIL = dt.date(2026, 10, 1)


# --- Catalogue ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Archetype:
    """A vehicle model and the pack it ships with (LFP cells at 3.2 V nominal)."""

    key: str
    manufacturer: str
    name: str
    kind: str
    nominal_pack_kwh: float
    consumption_kwh_per_km: float
    max_ac_kw: float
    max_dc_kw: float
    charging_taper: list
    usable_soc_min_pct: float
    usable_soc_max_pct: float
    vin_prefix: str  # WMI (3 = Mexico) + 5 descriptor characters
    pack_serial_prefix: str
    cells_in_series: int
    cells_in_parallel: int
    warranty_km: int

    @property
    def nominal_ah(self) -> float:
        return round(self.nominal_pack_kwh * 1000 / (3.2 * self.cells_in_series), 1)


BUS = Archetype(
    "bus", "Taruk", "MODEL T 12m", VehicleModel.Kind.BUS, 350.0, 1.2, 0, 150.0,
    [[80, 150.0], [95, 60.0], [100, 20.0]], 10, 95, "3TKB12LF", "CATL-LFP350", 192, 3, 600_000,
)  # fmt: skip
SHUTTLE = Archetype(
    "shuttle", "Generic", "Port shuttle 8m", VehicleModel.Kind.BUS, 210.0, 0.85, 0, 100.0,
    [[80, 100.0], [95, 45.0], [100, 15.0]], 10, 95, "3GNS08LF", "CATL-LFP210", 192, 2, 400_000,
)  # fmt: skip
VAN = Archetype(
    "van", "Generic", "e-Van 3.5t", VehicleModel.Kind.VAN, 81.0, 0.28, 11.0, 60.0,
    [[80, 60.0], [95, 25.0], [100, 8.0]], 5, 98, "3GNV35LF", "BYD-LFP81", 96, 2, 250_000,
)  # fmt: skip
MINI = Archetype(
    "mini", "Olinia", "Mini EV", VehicleModel.Kind.CAR, 13.0, 0.10, 6.6, 0,
    [[90, 6.6], [100, 1.5]], 5, 100, "3LNM13LF", "OLN-LFP13", 24, 1, 100_000,
)  # fmt: skip
ARCHETYPES = (BUS, SHUTTLE, VAN, MINI)

WARRANTY_YEARS = 8
WARRANTY_MIN_SOH_PCT = 70.0


# --- Depots ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargerGroup:
    """``count`` identical chargers; ``connectors`` lists (standard, kW) per charger, sharing ``max_kw``."""

    label: str
    kind: str
    count: int
    max_kw: float
    connectors: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class DutyPattern:
    """How many duties a vehicle group runs on some weekdays: single blocks and split (two-block) days."""

    tag: str  # LV = lunes-viernes, SAB, DOM
    weekdays: tuple[int, ...]
    singles: int
    pairs: int = 0


@dataclass(frozen=True)
class FleetGroup:
    """Vehicles of one archetype at one depot (``depot`` None: no home depot) and the blocks they run."""

    archetype: Archetype
    fleet_prefix: str
    count: int
    in_maintenance: tuple[int, ...] = ()  # 1-based positions
    patterns: tuple[DutyPattern, ...] = ()
    distance_km: tuple[int, int] = (150, 250)  # a single block; with 1.2 kWh/km, 250 km is most of a new pack
    split_distance_km: tuple[int, int] = (85, 110)  # each half of a split shift
    departs_between: tuple[dt.time, dt.time] = (T(5, 0), T(7, 0))
    returns_between: tuple[dt.time, dt.time] = (T(13, 0), T(22, 0))
    speed_kmh: tuple[float, float] = (17.0, 21.0)  # average, layovers included
    age_years: tuple[float, float] = (0.2, 6.0)


@dataclass(frozen=True)
class DepotSpec:
    code: str
    name: str
    latitude: float
    longitude: float
    grid_limit_kw: float
    base_load_kw: tuple[float, ...]  # 24 hourly values, local time
    monthly_mean_temperature_c: tuple[float, ...]  # January first
    chargers: tuple[ChargerGroup, ...]
    fleets: tuple[FleetGroup, ...]


WEEKDAYS, SATURDAY, SUNDAY = (0, 1, 2, 3, 4), (5,), (6,)
DC2 = (("ccs2", 150.0), ("ccs2", 150.0))  # dual-outlet depot charger: two buses share one 150 kW cabinet

DEPOTS = (
    DepotSpec(
        "hmo", "Hermosillo", 29.0729, -110.9559, 1600.0,
        (90, 85, 85, 85, 90, 120, 170, 200, 220, 230, 240, 250,
         260, 270, 280, 280, 270, 250, 220, 190, 160, 130, 110, 100),
        (17, 19, 21, 24, 28, 32, 32, 32, 31, 26, 21, 17),
        (ChargerGroup("DC", Charger.Kind.DC, 20, 150.0, DC2),),
        (
            FleetGroup(
                BUS, "HMO", 40, in_maintenance=(13, 27),
                patterns=(
                    DutyPattern("LV", WEEKDAYS, 28, 6), DutyPattern("SAB", SATURDAY, 22),
                    DutyPattern("DOM", SUNDAY, 14),
                ),
            ),
        ),
    ),
    DepotSpec(
        "nog", "Nogales", 31.3086, -110.9422, 600.0,
        (40, 38, 38, 38, 40, 55, 75, 90, 95, 100, 100, 105, 110, 110, 110, 105, 100, 95, 85, 70, 60, 50, 45, 42),
        (9, 11, 13, 17, 21, 25, 26, 25, 23, 18, 12, 9),
        (ChargerGroup("DC", Charger.Kind.DC, 6, 150.0, DC2),),
        (
            FleetGroup(
                BUS, "NOG", 12, in_maintenance=(7,),
                patterns=(
                    DutyPattern("LV", WEEKDAYS, 8, 2), DutyPattern("SAB", SATURDAY, 7), DutyPattern("DOM", SUNDAY, 5),
                ),
                distance_km=(150, 230), speed_kmh=(16.0, 19.0),
            ),
        ),
    ),
    DepotSpec(
        "slrc", "San Luis Río Colorado", 32.4561, -114.7719, 380.0,
        (30, 28, 28, 28, 30, 40, 55, 70, 80, 85, 90, 95, 100, 100, 100, 95, 90, 85, 75, 60, 50, 40, 35, 32),
        (13, 15, 18, 21, 25, 30, 33, 33, 30, 24, 17, 13),
        (
            ChargerGroup("DC", Charger.Kind.DC, 3, 150.0, DC2),
            ChargerGroup("Wallbox 7", Charger.Kind.AC, 2, 7.2, (("j1772", 7.2),)),
            ChargerGroup("Wallbox 3", Charger.Kind.AC, 2, 3.3, (("j1772", 3.3),)),
            ChargerGroup("Outlet", Charger.Kind.AC, 2, 1.9, (("outlet", 1.9),)),  # 127 V, 15 A
        ),
        (
            FleetGroup(
                BUS, "SLR", 6,
                patterns=(
                    DutyPattern("LV", WEEKDAYS, 4, 1), DutyPattern("SAB", SATURDAY, 4), DutyPattern("DOM", SUNDAY, 3),
                ),
                distance_km=(150, 240),
            ),
            FleetGroup(
                MINI, "MUN", 6,
                patterns=(DutyPattern("MUN-LV", WEEKDAYS, 5), DutyPattern("MUN-SAB", SATURDAY, 2)),
                distance_km=(40, 75), departs_between=(T(7, 30), T(8, 30)), returns_between=(T(14, 0), T(16, 0)),
                speed_kmh=(8.0, 11.0), age_years=(0.1, 1.0),
            ),
        ),
    ),
    DepotSpec(
        "gym", "Guaymas (puerto)", 27.9179, -110.8975, 300.0,
        (70, 70, 70, 70, 70, 65, 55, 60, 80, 90, 95, 100, 105, 105, 100, 95, 90, 85, 80, 75, 75, 70, 70, 70),
        (18, 19, 20, 22, 25, 29, 31, 31, 30, 27, 23, 19),
        (
            ChargerGroup("DC", Charger.Kind.DC, 3, 100.0, (("ccs2", 100.0),)),
            ChargerGroup("AC", Charger.Kind.AC, 4, 11.0, (("j1772", 11.0),)),
        ),
        (
            FleetGroup(
                SHUTTLE, "GYM-S", 4,
                patterns=(
                    DutyPattern("SH-LV", WEEKDAYS, 2, 1), DutyPattern("SH-SAB", SATURDAY, 2),
                    DutyPattern("SH-DOM", SUNDAY, 1),
                ),
                distance_km=(110, 160), split_distance_km=(60, 80), departs_between=(T(6, 0), T(6, 30)),
                speed_kmh=(15.0, 18.0), age_years=(0.5, 4.0),
            ),
            FleetGroup(
                VAN, "GYM-V", 4,
                patterns=(DutyPattern("VAN-LV", WEEKDAYS, 4), DutyPattern("VAN-SAB", SATURDAY, 2)),
                distance_km=(80, 130), departs_between=(T(6, 30), T(7, 0)), returns_between=(T(13, 0), T(17, 0)),
                speed_kmh=(12.0, 15.0), age_years=(0.5, 3.0),
            ),
        ),
    ),
)  # fmt: skip
# Municipal mini EVs with no home depot: they charge on outlets at the offices and at the drivers' homes.
UNHOMED = FleetGroup(MINI, "MUN", 10, age_years=(0.1, 1.0))
UNHOMED_FIRST_NUMBER = 101

# Battery health: field fleets lose about 1.8-2.3 % SoH a year (DOMAIN.md); a few packs fade much faster.
NORMAL_FADE_PCT_PER_YEAR = (1.8, 2.3)
FAST_FADE_PCT_PER_YEAR = (4.5, 5.5)
TESTED_EVERY_NTH_BUS = 4
FAST_FADING_BUSES = ("HMO-006", "NOG-003")  # still in service: the forecast should flag them
SWAPPED_BUSES = ("HMO-002", "HMO-009", "HMO-021")  # first pack faded fast and was replaced
SWAP_AFTER_YEARS = 2.5
STORY_MIN_AGE_YEARS = 4.0


# --- Tariff: GDMTH-like, Noroeste-style hours; prices are illustrative MXN -------------------------------

SUMMER_PRICES = {"base": Decimal("1.0120"), "intermedia": Decimal("1.8240"), "punta": Decimal("2.3460")}
WINTER_PRICES = {"base": Decimal("0.9870"), "intermedia": Decimal("1.7520"), "punta": Decimal("2.2410")}
TARIFF_SEASONS = (
    (
        "summer", (4, 1), (10, 31), SUMMER_PRICES,
        {
            "weekday": "base 0-8, intermedia 8-18, punta 18-22, intermedia 22-24",
            "saturday": "base 0-8, intermedia 8-24",
            "sunday_holiday": "base 0-19, intermedia 19-24",
        },
    ),
    (
        "winter", (11, 1), (3, 31), WINTER_PRICES,
        {
            "weekday": "base 0-6, intermedia 6-18, punta 18-21, intermedia 21-24",
            "saturday": "base 0-8, intermedia 8-19, punta 19-21, intermedia 21-24",
            "sunday_holiday": "base 0-19, intermedia 19-24",
        },
    ),
)  # fmt: skip


def period_hours(text: str) -> list[tuple[str, dt.time, dt.time]]:
    """ "base 0-8, punta 18-24" -> [("base", 00:00, 08:00), ("punta", 18:00, 00:00)]: 24 h is midnight."""
    rows = []
    for item in text.split(","):
        period, span = item.split()
        start, end = (int(hour) for hour in span.split("-"))
        rows.append((period, T(start), T(end % 24)))
    return rows


DEMAND_CHARGES: tuple[tuple[str, Decimal, list[str]], ...] = (
    ("capacity (punta demand)", Decimal("395.50"), ["punta"]),
    ("distribution (monthly maximum demand)", Decimal("112.30"), []),
)
TARIFF_NAME = "GDMTH Noroeste (demo)"


# --- People ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    first_name: str
    last_name: str
    role: str | None  # membership role in ``depots``; None for the superuser
    depots: tuple[str, ...]
    is_staff: bool
    is_superuser: bool = False
    description: str = ""


ALL_DEPOTS = tuple(spec.code for spec in DEPOTS)
USERS = (
    DemoUser("admin", "evfleet-admin", "Demo", "Administrator", None, (), True, True, "superuser: everything"),
    DemoUser(
        "manager", "evfleet-manager", "Mariana", "López", DepotMembership.Role.MANAGER, ALL_DEPOTS, True,
        description="fleet manager of every depot (admin + API)",
    ),
    DemoUser(
        "hmo.staff", "evfleet-staff", "Jesús", "Valenzuela", DepotMembership.Role.STAFF, ("hmo",), True,
        description="depot staff, Hermosillo only (API)",
    ),
    DemoUser(
        "viewer", "evfleet-viewer", "Ana", "Ruiz", DepotMembership.Role.VIEWER, ALL_DEPOTS, False,
        description="read-only, every depot (API)",
    ),
)  # fmt: skip

"""Simulated chargers: the ``ocpp`` package's charge point side over real websockets.

A ``SimulatedCharger`` boots, reports its connectors, starts and stops transactions for id tags, follows the
charging profiles it receives (the power it reports is the limit in force now, capped at the connector's
maximum) and reports meter values (energy register, power, SoC). It imports no Django: the
``simulate_chargers`` command, the tests and the benchmark drive it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import websockets
from ocpp import messages as ocpp_messages
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from csms import validation

AC_W_PER_A = 230.0 * 3  # charging/ocpp.py: A per phase at 230 V, 3 phases


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def limit_w(profile: dict | None, now: dt.datetime) -> float | None:
    """The limit (W) a received profile sets at ``now``; None outside its schedule or without a profile."""
    if profile is None:
        return None
    schedule = profile["chargingSchedule"]
    if isinstance(schedule, list):  # 2.0.1: a list of schedules; we send one
        schedule = schedule[0]
    start = _parse(str(schedule.get("startSchedule") or profile.get("validFrom")))
    elapsed = (now - start).total_seconds()
    if elapsed < 0 or ("duration" in schedule and elapsed >= schedule["duration"]):
        return None
    limit = None
    for period in schedule["chargingSchedulePeriod"]:
        if period["startPeriod"] <= elapsed:
            limit = float(period["limit"])
    if limit is None:
        return None
    return limit * AC_W_PER_A if schedule["chargingRateUnit"] == "A" else limit


@dataclass(frozen=True)
class PluggedVehicle:
    """A vehicle that plugs into a connector once the connector has a profile (the plan assigns it there): it
    presents ``token``, charges from ``soc_pct`` and unplugs at ``target_soc_pct`` or at ``departs_at``."""

    token: str
    soc_pct: float
    battery_wh: float
    target_soc_pct: float
    departs_at: dt.datetime


@dataclass
class ConnectorState:
    number: int
    max_w: float
    energy_wh: float = 0.0
    soc_pct: float | None = None
    battery_wh: float = 300_000.0
    transaction_id: str | None = None
    seq_no: int = 0
    profile: dict | None = None
    vehicles: list[PluggedVehicle] = field(default_factory=list)  # to plug in, in turn
    vehicle: PluggedVehicle | None = None  # plugged in now


@dataclass
class SimulatedCharger:
    url: str  # ws://host:port/ocpp
    identity: str
    password: str
    version: str  # "1.6" or "2.0.1"
    connectors: dict[int, ConnectorState]
    response_timeout: float = 30.0
    # Simulated time runs ``speed`` times faster than the wall clock (from the moment the object is made): the
    # profile in force and the energy charged follow it, the timestamps sent stay real. 1: real time.
    speed: float = 1.0
    started_monotonic: float = field(default_factory=time.monotonic)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    received: list[dict] = field(default_factory=list)  # every SetChargingProfile payload, as sent
    meter_latencies_s: list[float] = field(default_factory=list)
    boot_status: str | None = None
    link: Any = None
    _websocket: Any = None
    _reader: asyncio.Task | None = None
    profile_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def make(
        cls, url: str, identity: str, password: str, version: str, connectors_max_w: dict[int, float], **kw: Any
    ) -> SimulatedCharger:
        states = {n: ConnectorState(n, w) for n, w in connectors_max_w.items()}
        return cls(url=url, identity=identity, password=password, version=version, connectors=states, **kw)

    # --- Link ---------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        ocpp_messages.ASYNC_VALIDATION = False  # see csms/server.py: in the loop, not behind other work
        validation.install()  # as the central system: the benchmark's clients share its two cores
        token = base64.b64encode(f"{self.identity}:{self.password}".encode()).decode()
        subprotocol = "ocpp1.6" if self.version == "1.6" else "ocpp2.0.1"
        self._websocket = await websockets.connect(
            f"{self.url.rstrip('/')}/{self.identity}",
            subprotocols=[subprotocol],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
            open_timeout=30,
            compression=None,
        )
        link_class = _Client16 if self.version == "1.6" else _Client201
        self.link = link_class(self.identity, self._websocket, response_timeout=self.response_timeout)
        self.link.sim = self
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.link.start()

    async def close(self) -> None:
        if self._websocket is not None:
            await self._websocket.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    @property
    def closed(self) -> bool:
        return self._reader is None or self._reader.done()

    # --- What a charger says ------------------------------------------------------------------------------

    async def boot(self) -> str:
        if self.version == "1.6":
            answer = await self.link.call(
                call16.BootNotification(charge_point_vendor="evfleet", charge_point_model="simulator 1.6")
            )
        else:
            answer = await self.link.call(
                call201.BootNotification(
                    charging_station={"vendor_name": "evfleet", "model": "simulator 2.0.1"}, reason="PowerUp"
                )
            )
        self.boot_status = answer.status
        return answer.status

    async def heartbeat(self) -> Any:
        request = call16.Heartbeat() if self.version == "1.6" else call201.Heartbeat()
        return await self.link.call(request)

    async def status(self, number: int, status: str, error_code: str = "NoError") -> None:
        now = iso(dt.datetime.now(dt.UTC))
        if self.version == "1.6":
            await self.link.call(
                call16.StatusNotification(connector_id=number, error_code=error_code, status=status, timestamp=now)
            )
        else:
            status_201 = {"Charging": "Occupied", "Preparing": "Occupied"}.get(status, status)
            await self.link.call(
                call201.StatusNotification(timestamp=now, connector_status=status_201, evse_id=number, connector_id=1)
            )

    async def authorize(self, token: str) -> str:
        if self.version == "1.6":
            answer = await self.link.call(call16.Authorize(id_tag=token))
            return answer.id_tag_info["status"]
        answer = await self.link.call(call201.Authorize(id_token={"id_token": token, "type": "ISO14443"}))
        return answer.id_token_info["status"]

    def _sampled(self, state: ConnectorState, power_w: float) -> list[dict]:
        values: list[dict[str, Any]]
        if self.version == "1.6":
            values = [
                {"value": f"{state.energy_wh:.1f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": f"{power_w:.1f}", "measurand": "Power.Active.Import", "unit": "W"},
            ]
            if state.soc_pct is not None:
                values.append({"value": f"{state.soc_pct:.1f}", "measurand": "SoC", "unit": "Percent"})
        else:
            values = [
                {
                    "value": round(state.energy_wh, 1),
                    "measurand": "Energy.Active.Import.Register",
                    "unit_of_measure": {"unit": "Wh"},
                },
                {"value": round(power_w, 1), "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "W"}},
            ]
            if state.soc_pct is not None:
                values.append(
                    {"value": round(state.soc_pct, 1), "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}}
                )
        return values

    async def start_transaction(self, number: int, token: str, soc_pct: float | None = None) -> str:
        state = self.connectors[number]
        state.soc_pct = soc_pct
        now = dt.datetime.now(dt.UTC)
        if self.version == "1.6":
            answer = await self.link.call(
                call16.StartTransaction(
                    connector_id=number, id_tag=token, meter_start=int(state.energy_wh), timestamp=iso(now)
                )
            )
            state.transaction_id = str(answer.transaction_id)
            if soc_pct is not None:
                await self.meter_values(number, power_w=0.0)
            return answer.id_tag_info["status"]
        state.transaction_id = uuid.uuid4().hex
        state.seq_no = 0
        answer = await self.link.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp=iso(now),
                trigger_reason="Authorized",
                seq_no=state.seq_no,
                transaction_info={"transaction_id": state.transaction_id},
                id_token={"id_token": token, "type": "ISO14443"},
                evse={"id": number, "connector_id": 1},
                meter_value=[{"timestamp": iso(now), "sampled_value": self._sampled(state, 0.0)}],
            )
        )
        return (answer.id_token_info or {}).get("status", "")

    def clock(self) -> dt.datetime:
        """Simulated now (the wall clock when ``speed`` is 1)."""
        if self.speed == 1.0:
            return dt.datetime.now(dt.UTC)
        elapsed = (time.monotonic() - self.started_monotonic) * self.speed
        return self.started_at + dt.timedelta(seconds=elapsed)

    def power_now_w(self, number: int, now: dt.datetime | None = None) -> float:
        """What the connector draws: the profile's limit now (0 outside it), at most the connector's maximum, and
        nothing once a plugged-in vehicle is full."""
        state = self.connectors[number]
        limit = limit_w(state.profile, now or self.clock())
        if state.soc_pct is not None and state.soc_pct >= 100.0:
            return 0.0
        return min(limit or 0.0, state.max_w)

    async def meter_values(self, number: int, *, power_w: float | None = None, interval_s: float = 0.0) -> float:
        """Advance the connector by ``interval_s`` at the power in force and report it. Returns the round trip (s)."""
        state = self.connectors[number]
        now = dt.datetime.now(dt.UTC)
        power = self.power_now_w(number) if power_w is None else power_w
        if state.transaction_id is not None:
            charged_wh = power * interval_s * self.speed / 3600.0
            state.energy_wh += charged_wh
            if state.soc_pct is not None:
                state.soc_pct = min(100.0, state.soc_pct + 100.0 * charged_wh / state.battery_wh)
        sampled = self._sampled(state, power)
        started = time.perf_counter()
        if self.version == "1.6":
            request = call16.MeterValues(
                connector_id=number,
                transaction_id=int(state.transaction_id) if state.transaction_id else None,
                meter_value=[{"timestamp": iso(now), "sampled_value": sampled}],
            )
        elif state.transaction_id is not None:
            state.seq_no += 1
            request = call201.TransactionEvent(
                event_type="Updated",
                timestamp=iso(now),
                trigger_reason="MeterValuePeriodic",
                seq_no=state.seq_no,
                transaction_info={"transaction_id": state.transaction_id},
                evse={"id": number, "connector_id": 1},
                meter_value=[{"timestamp": iso(now), "sampled_value": sampled}],
            )
        else:
            request = call201.MeterValues(
                evse_id=number, meter_value=[{"timestamp": iso(now), "sampled_value": sampled}]
            )
        await self.link.call(request)
        elapsed = time.perf_counter() - started
        self.meter_latencies_s.append(elapsed)
        return elapsed

    async def stop_transaction(self, number: int) -> None:
        state = self.connectors[number]
        if state.transaction_id is None:
            return
        now = dt.datetime.now(dt.UTC)
        if self.version == "1.6":
            await self.link.call(
                call16.StopTransaction(
                    meter_stop=int(round(state.energy_wh)),
                    timestamp=iso(now),
                    transaction_id=int(state.transaction_id),
                    reason="EVDisconnected",
                )
            )
        else:
            state.seq_no += 1
            await self.link.call(
                call201.TransactionEvent(
                    event_type="Ended",
                    timestamp=iso(now),
                    trigger_reason="EVCommunicationLost",
                    seq_no=state.seq_no,
                    transaction_info={"transaction_id": state.transaction_id, "stopped_reason": "EVDisconnected"},
                    evse={"id": number, "connector_id": 1},
                    meter_value=[{"timestamp": iso(now), "sampled_value": self._sampled(state, 0.0)}],
                )
            )
        state.transaction_id = None

    # --- What the central system says ---------------------------------------------------------------------

    def _profile(self, number: int, payload: dict, profile: dict) -> str:
        self.received.append(payload)
        if number in self.connectors:
            self.connectors[number].profile = profile
        self.profile_arrived.set()
        return "Accepted" if number in self.connectors or number == 0 else "Rejected"

    async def plug_in(self, number: int) -> bool:
        """The connector's next vehicle plugs in: Authorize, then a transaction at its SoC. Whether it started."""
        state = self.connectors[number]
        vehicle = state.vehicles.pop(0)
        if await self.authorize(vehicle.token) != "Accepted":
            return False
        state.battery_wh = vehicle.battery_wh
        await self.status(number, "Charging")
        if await self.start_transaction(number, vehicle.token, soc_pct=vehicle.soc_pct) != "Accepted":
            await self.stop_transaction(number)
            return False
        state.vehicle = vehicle
        return True

    async def unplug(self, number: int) -> None:
        state = self.connectors[number]
        await self.stop_transaction(number)
        state.vehicle, state.soc_pct = None, None
        await self.status(number, "Available")

    def vehicle_done(self, number: int) -> bool:
        """The plugged-in vehicle reached its target SoC, or its departure came."""
        state = self.connectors[number]
        if state.vehicle is None:
            return False
        full = state.soc_pct is not None and state.soc_pct >= state.vehicle.target_soc_pct
        return full or self.clock() >= state.vehicle.departs_at

    async def run(self, *, stop: asyncio.Event, interval_s: float, tokens: dict[int, str] | None = None) -> None:
        """Boot, report Available, start a transaction per given token, report meter values until ``stop``.

        A connector with vehicles to plug in (``ConnectorState.vehicles``) starts the first one's transaction once
        the connector has a profile, reports meter values following the profile, stops it at the vehicle's target
        SoC or departure, then the next vehicle plugs in."""
        await self.connect()
        try:
            await self.boot()
            for number in self.connectors:
                await self.status(number, "Available")
            for number, token in (tokens or {}).items():
                await self.start_transaction(number, token, soc_pct=30.0)
            while not stop.is_set():
                for number, state in self.connectors.items():
                    if state.transaction_id is None and state.vehicles and state.profile is not None:
                        await self.plug_in(number)
                    await self.meter_values(number, interval_s=interval_s)
                    if self.vehicle_done(number):
                        await self.unplug(number)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
            for number in self.connectors:
                await self.stop_transaction(number)
        finally:
            await self.close()


class _Client16(ChargePoint16):
    sim: SimulatedCharger

    @on("SetChargingProfile")
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict) -> Any:
        payload = {"connectorId": connector_id, "csChargingProfiles": _camel(cs_charging_profiles)}
        status = self.sim._profile(connector_id, payload, payload["csChargingProfiles"])
        return result16.SetChargingProfile(status=status)


class _Client201(ChargePoint201):
    sim: SimulatedCharger

    @on("SetChargingProfile")
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict) -> Any:
        payload = {"evseId": evse_id, "chargingProfile": _camel(charging_profile)}
        status = self.sim._profile(evse_id, payload, payload["chargingProfile"])
        return result201.SetChargingProfile(status=status)


def _camel(data: Any) -> Any:
    """Back to the wire's camelCase (the ocpp package hands handlers snake_case)."""
    if isinstance(data, dict):
        return {_camel_key(k): _camel(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_camel(v) for v in data]
    return data


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)

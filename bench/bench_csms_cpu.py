"""The central system's CPU per meter value, alone: one OCPP 1.6 and one 2.0.1 charger in a transaction send meter
values one after another (no batching helps: the worst case per message), and the CPU time (user + system) of the
``run_csms`` process is read from /proc. Unlike round trips, this figure hardly depends on the machine's load.

    .venv/bin/python bench/bench_csms_cpu.py [--messages 300]

Database: as bench_csms.py (``DATABASE_URL`` or its own ``evfleet_bench_csms``). Prints; writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_csms  # noqa: E402
from machine_info import load_average  # noqa: E402


async def _send(url: str, chargers: list[dict], messages: int, server_pid: int) -> None:
    from csms.simulator import SimulatedCharger

    sims = [
        SimulatedCharger.make(url, c["identity"], c["password"], c["version"], {1: 150e3, 2: 150e3}) for c in chargers
    ]
    for sim, charger in zip(sims, chargers, strict=True):
        await sim.connect()
        await sim.boot()
        await sim.start_transaction(1, charger["token"], soc_pct=30.0)
        for _ in range(20):  # warm: caches, prepared statements
            await sim.meter_values(1, interval_s=10)
    for sim in sims:
        started = bench_csms.cpu_seconds(server_pid)
        sim.meter_latencies_s.clear()
        for _ in range(messages):
            await sim.meter_values(1, interval_s=10)
        cpu_ms = 1000 * (bench_csms.cpu_seconds(server_pid) - started) / messages
        median_ms = 1000 * sorted(sim.meter_latencies_s)[messages // 2]
        print(
            f"OCPP {sim.version}: central system CPU {cpu_ms:.2f} ms per meter value, "
            f"round trip median {median_ms:.1f} ms"
        )
        await sim.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    bench_csms.prepare_database()
    chargers = bench_csms.make_depots(2, 1)
    port = bench_csms.free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="bench-csms-cpu-", suffix=".log", delete=False)  # noqa: SIM115
    env = {**os.environ, "DEBUG": "false", "LOG_LEVEL": "WARNING", "EVFLEET_CSMS_MESSAGES_PER_MINUTE": "100000",
           "SECRET_KEY": "bench-only-not-a-secret-0123456789abcdef", "ALLOWED_HOSTS": "127.0.0.1"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "manage.py", "run_csms", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        while "listening" not in Path(log.name).read_text():
            if server.poll() is not None:
                raise SystemExit(Path(log.name).read_text())
            time.sleep(0.1)
        print(f"load average {load_average()}")
        asyncio.run(_send(f"ws://127.0.0.1:{port}/ocpp", chargers, args.messages, server.pid))
        print(f"load average {load_average()}")
    finally:
        server.terminate()
        server.wait(20)


if __name__ == "__main__":
    main()

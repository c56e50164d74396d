"""Run every benchmark in turn (``make bench``); each writes its own results under bench/results/.

    .venv/bin/python bench/run_all.py            # full runs (about 45 minutes on 2 cores)
    .venv/bin/python bench/run_all.py --quick    # the quick variants, where a benchmark has one

The telemetry benchmarks need PostgreSQL (DATABASE_URL, or a local server they create a database on).
Run on a quiet machine: every script records the load average next to its figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# (script, arguments for a quick run): None = the script has no quick mode and always runs in full.
BENCHMARKS = [
    ("bench_telemetry_ingest.py", None),
    ("bench_telemetry_http.py", None),
    ("bench_mqtt.py", ["--batches", "40"]),
    ("bench_export.py", ["--readings", "200000"]),
    ("bench_optimizer.py", ["--quick"]),
    ("bench_optimizer_scarce.py", ["--exact-limit", "10"]),
    ("bench_forecast.py", ["--quick"]),
    ("bench_forecast_nightly.py", ["--packs", "200"]),
    ("bench_csms.py", ["--chargers", "100", "--meter-seconds", "20"]),
    ("bench_timetable.py", ["--trips", "300", "--buses", "100", "--blocks", "90"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="quick variants where available")
    parser.add_argument("--only", help="comma-separated script names (e.g. bench_optimizer.py)")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    failed = []
    for script, quick_args in BENCHMARKS:
        if wanted and script not in wanted:
            continue
        command = [sys.executable, str(BENCH_DIR / script), *((quick_args or []) if args.quick else [])]
        print(f"\n=== {script} {' '.join(command[2:])}", flush=True)
        started = time.perf_counter()
        if subprocess.call(command) != 0:
            failed.append(script)
        print(f"=== {script}: {time.perf_counter() - started:.0f} s", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("\nresults: bench/results/ (commit them with the machine they ran on)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

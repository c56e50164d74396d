"""Self-limiting loss of active material (``presets.LAM_SELF_LIMITED``, an option, default off): its shape.

    .venv/bin/python bench/forecast_lam_shape.py shape --tag session8-loaded   # 6 issue duties, off vs on
    cd bench && ../.venv/bin/python forecast_lam_shape.py compare <files> --physics other diffusion --tag T [--bend 4]
    cd bench && ../.venv/bin/python forecast_lam_shape.py simulate --physics same --duties "LFP bus, 25 C" --out F

``shape``: the prior forecast (3 members) of the six duties of ``forecast_reference.py`` to 3 years with the
linear LAM law (today's) and with the self-limiting one: SoH lost at 6 months / 1 / 3 years, the shape ratio
(loss at 3 years over loss at 6 months) and the time per forecast. ``compare``: ``forecast_reference.py
compare`` with the option on (arguments passed through; the references are not re-simulated); ``simulate``:
``forecast_reference.py simulate`` with the option on (the same physics then has it too; give a new ``--out``).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forecast_reference as fr  # noqa: E402
from machine_info import load_average, machine_info  # noqa: E402
from results_io import load_footer, write_results  # noqa: E402

from batteries.forecast import forecast_pack, presets, simulate  # noqa: E402

ISSUE_DUTIES = [
    "LFP bus, Hermosillo",
    "LFP bus, Nogales",
    "LFP bus, 25 C",
    "LFP bus, 95 % DoD",
    "LFP bus, 2 EFC/day, top-ups",
    "NMC car, charged to 100 %",
]
_DEFAULTS = dict(presets.PRESETS)


def use_self_limiting_lam(on: bool, bend: float = presets.LAM_SELF_LIMIT_BEND) -> None:
    """Switch the option for this process (every chemistry); the built day models are dropped."""
    for chemistry, preset in _DEFAULTS.items():
        presets.PRESETS[chemistry] = presets.lam_self_limited(preset, bend) if on else preset
    simulate.day_model.cache_clear()


def shape_row(name: str) -> dict:
    t, cpu = time.perf_counter(), time.process_time()
    result = forecast_pack(fr.job_for(name, 3.0))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    soh = {p.date: p.soh_pct for p in result.points}
    lost = {m: 100.0 - soh[dt.date(fr.START.year + m // 12, fr.START.month + m % 12, 1)] for m in (6, 12, 36)}
    return {
        "duty": name,
        "lost_6m_pp": round(lost[6], 3),
        "lost_1y_pp": round(lost[12], 3),
        "lost_3y_pp": round(lost[36], 3),
        "ratio_3y_6m": round(lost[36] / lost[6], 2),
        "forecast_s": round(wall, 2),
        "forecast_cpu_s": round(cpu, 2),
    }


def cmd_shape(tag: str, bend: float) -> None:
    started = load_average()
    rows = []
    for on in (False, True):
        use_self_limiting_lam(on, bend)
        forecast_pack(fr.job_for(ISSUE_DUTIES[0], 1.0))  # build and compile outside the timings
        for name in ISSUE_DUTIES:
            row = {"self_limiting_lam": on, **shape_row(name)}
            rows.append(row)
            print(row, flush=True)
    stem = f"forecast-lam-shape-{dt.date.today().isoformat()}" + (f"-{tag}" if tag else "")
    out = {
        "machine": machine_info("pybamm", load_average=load_average()),
        "load_average_at_start": started,
        "lam_self_limit_bend": bend,
        "lam_first_year_loss": presets.LAM_FIRST_YEAR_LOSS,
        "rows": rows,
    }
    lines = [
        "# Prior forecast's shape, linear vs self-limiting LAM (bench/forecast_lam_shape.py shape)",
        "",
        "SoH lost (pp) by the prior forecast's median, from new; ratio = loss at 3 years / loss at 6 months "
        f"(linear in time: 6). Option: bend {bend} (L0 = first-year loss / bend, rate scale 1 + bend / 2), "
        f"first-year loss of active material {presets.LAM_FIRST_YEAR_LOSS}.",
        "",
        "| LAM law | duty | 6 months | 1 year | 3 years | ratio 3 y / 6 mo | forecast s (CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        law = "self-limiting" if r["self_limiting_lam"] else "linear"
        lines.append(
            f"| {law} | {r['duty']} | {r['lost_6m_pp']} | {r['lost_1y_pp']} | {r['lost_3y_pp']} | "
            f"{r['ratio_3y_6m']} | {r['forecast_s']} ({r['forecast_cpu_s']}) |"
        )
    write_results(stem, out, lines + load_footer(started, out["machine"]))


def main() -> None:
    bend = presets.LAM_SELF_LIMIT_BEND
    if "--bend" in sys.argv:  # the option's bend (default the preset module's); removed before compare's parser
        at = sys.argv.index("--bend")
        bend = float(sys.argv[at + 1])
        del sys.argv[at : at + 2]
    if len(sys.argv) > 1 and sys.argv[1] == "shape":
        tag = sys.argv[sys.argv.index("--tag") + 1] if "--tag" in sys.argv else ""
        cmd_shape(tag, bend)
    elif len(sys.argv) > 1 and sys.argv[1] in ("compare", "simulate"):
        print(f"self-limiting LAM on, bend {bend}", flush=True)
        use_self_limiting_lam(True, bend)
        fr.main()
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()

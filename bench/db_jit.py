"""PostgreSQL's JIT on the web's queries: every SELECT the city's pages ask, run with ``jit = on`` and ``jit = off``.

    .venv/bin/python bench/city_scale.py --generate-only          # the city (or any city_scale run before)
    .venv/bin/python bench/db_jit.py [--label LABEL]

Opens every admin changelist (as the superuser and as an organisation's manager) and every API list of
bench/city_scale.py once, records their SELECTs, then runs each distinct one under ``EXPLAIN (ANALYZE, FORMAT
JSON)`` with ``SET jit = on`` and ``SET jit = off`` (best of 3 each, alternating), and reports which queries JIT
compiles and what it costs (PostgreSQL's own "JIT" timing) against what it saves. Also the pack scoping rule as it
was before bf1ea5c (a correlated EXISTS under an OR), the query of docs/operations.md's "247 ms, of which 154 ms
JIT", for a manager on this city: what ``jit = off`` does to such a query when one slips in again.

Uses ``DATABASE_URL`` (the city's database; default as city_scale.py) and var/city-scale-world.json. Writes
bench/results/db-jit-<date>[-<label>].json and .md. Context: docs/operations.md, "City scale" (EVFLEET_DB_JIT).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

REPEAT = 3


def explain(cursor, sql: str, jit: str) -> dict:
    cursor.execute(f"SET jit = {jit}")
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
    [[document]] = cursor.fetchall()
    document = json.loads(document) if isinstance(document, str) else document
    plan = document[0]
    return {
        "execution_ms": plan["Execution Time"],
        "planning_ms": plan["Planning Time"],
        "jit_ms": plan.get("JIT", {}).get("Timing", {}).get("Total", 0.0),
        "jit_functions": plan.get("JIT", {}).get("Functions", 0),
        "cost": plan["Plan"]["Total Cost"],
    }


def compare(cursor, sql: str) -> dict:
    """Best of ``REPEAT`` (execution + planning) with jit on and off, alternating so that both see warm caches."""
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    for _ in range(REPEAT):
        for jit in ("on", "off"):
            runs[jit].append(explain(cursor, sql, jit))
    best = {jit: min(rows, key=lambda r: r["execution_ms"] + r["planning_ms"]) for jit, rows in runs.items()}
    return {
        "on": best["on"],
        "off": best["off"],
        "on_ms": round(best["on"]["execution_ms"] + best["on"]["planning_ms"], 2),
        "off_ms": round(best["off"]["execution_ms"] + best["off"]["planning_ms"], 2),
    }


def page_selects(world: dict) -> list[tuple[str, str]]:
    """(page, SQL) of every SELECT the pages ask, in the order asked, each SQL once."""
    from city_scale import admin_changelist_urls, api_list_urls, list_parameters
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    User = get_user_model()
    pages: list[tuple[str, Client, str]] = []
    for who, user_id in (("superuser", world["superuser"]), ("manager", world["manager"])):
        client = Client()
        client.force_login(User.objects.get(pk=user_id))
        pages += [(f"{who} (admin)", client, url) for url in admin_changelist_urls()]
    token, _ = Token.objects.get_or_create(user=User.objects.get(pk=world["superuser"]))
    api_client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    pages += [("superuser (API)", api_client, url) for url in api_list_urls(api_client)]
    seen: dict[str, str] = {}
    for who, client, url in pages:
        for attempt in [url, *(f"{url}?{p}" for p in list_parameters(world))]:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(attempt)
            if response.status_code != 400:
                break
        for query in queries.captured_queries:
            sql = query["sql"]
            if sql.lstrip().upper().startswith(("SELECT", "WITH")) and sql not in seen:
                seen[sql] = f"{who} {attempt}"
    return [(page, sql) for sql, page in seen.items()]


def old_pack_rule_count_sql(manager_id: int) -> str:
    """A manager's pack count with the rule before bf1ea5c: ``Exists`` of the current installation, under an OR."""
    from django.contrib.auth import get_user_model
    from django.db.models import Exists, OuterRef, Q

    from batteries.models import BatteryPack, PackInstallation
    from fleet.scoping import Action, depot_ids_for, organization_ids_for

    user = get_user_model().objects.get(pk=manager_id)
    depot_ids = depot_ids_for(user, Action.VIEW)
    managed = organization_ids_for(user, Action.MANAGE)
    current = PackInstallation.objects.filter(pack=OuterRef("pk"), removed_at__isnull=True)
    installed_here = Exists(current.filter(vehicle__home_depot__in=depot_ids))
    in_a_depot = Exists(current.filter(vehicle__home_depot__isnull=False))
    rule = Q(installed_here) | (Q(organization__in=managed) & ~Q(in_a_depot))
    return _count_sql(BatteryPack.objects.filter(rule))


def new_pack_rule_count_sql(manager_id: int) -> str:
    from django.contrib.auth import get_user_model

    from batteries.models import BatteryPack
    from fleet.scoping import restrict

    return _count_sql(restrict(BatteryPack.objects.all(), get_user_model().objects.get(pk=manager_id)))


def _count_sql(queryset) -> str:
    from django.db import connection

    sql, params = queryset.values("pk").query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        inner = cursor.mogrify(sql, params)
    inner = inner.decode() if isinstance(inner, bytes) else inner
    return f"SELECT COUNT(*) FROM ({inner}) AS packs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    from bench import common

    common.prepare_database("postgres://postgres@127.0.0.1:5432/evfleet_bench_city")
    from django.conf import settings
    from django.db import connection
    from machine_info import load_average, machine_info

    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    world = json.loads((ROOT / "var" / "city-scale-world.json").read_text())
    load_before = load_average()
    started = time.perf_counter()
    selects = page_selects(world)
    rows = []
    with connection.cursor() as cursor:
        for page, sql in selects:
            rows.append({"page": page, "sql": sql, **compare(cursor, sql)})
        old_rule = compare(cursor, old_pack_rule_count_sql(world["manager"]))
        new_rule = compare(cursor, new_pack_rule_count_sql(world["manager"]))
        cursor.execute("RESET jit")
        cursor.execute("SHOW jit_above_cost")
        jit_above_cost = cursor.fetchone()[0]
    compiled = [r for r in rows if r["on"]["jit_functions"]]
    report = {
        "date": dt.date.today().isoformat(),
        "counts": world["counts"],
        "jit_above_cost": jit_above_cost,
        "machine": machine_info("django", load_before=load_before, load_after=load_average()),
        "seconds": round(time.perf_counter() - started, 1),
        "queries": len(rows),
        "compiled_with_jit_on": len(compiled),
        "sum_on_ms": round(sum(r["on_ms"] for r in rows), 1),
        "sum_off_ms": round(sum(r["off_ms"] for r in rows), 1),
        "old_pack_rule": old_rule,
        "current_pack_rule": new_rule,
        "rows": rows,
    }
    label = f"-{args.label}" if args.label else ""
    stem = ROOT / "bench" / "results" / f"db-jit-{report['date']}{label}"
    for suffix in (".json", ".md"):
        if stem.with_name(stem.name + suffix).exists():
            raise SystemExit(f"{stem.name}{suffix} exists: give another --label (results are never overwritten)")
    stem.with_name(stem.name + ".json").write_text(json.dumps(report, indent=2) + "\n")

    def rule_line(name: str, r: dict) -> str:
        return (
            f"| {name} | {r['on_ms']} | {r['on']['jit_ms']:.1f} ({r['on']['jit_functions']} functions) | "
            f"{r['off_ms']} | {r['on']['cost']:.0f} |"
        )

    lines = [
        f"# PostgreSQL JIT on the web's queries, {report['date']}{label}",
        "",
        f"City: {world['counts']}. `jit_above_cost` {jit_above_cost}. Load average before / after: {load_before} / "
        f"{report['machine']['load_after']} (shared machine: times are 'loaded'). Each query: best of {REPEAT} "
        "EXPLAIN ANALYZE (execution + planning), jit on and off alternating.",
        "",
        f"Pages' distinct SELECTs: {len(rows)}; JIT-compiled with jit on: {len(compiled)}. Sum of the best times: "
        f"jit on {report['sum_on_ms']} ms, jit off {report['sum_off_ms']} ms.",
        "",
        "| a manager's pack count | jit on ms | of which JIT ms | jit off ms | plan cost |",
        "|---|---|---|---|---|",
        rule_line("rule before bf1ea5c (correlated EXISTS under an OR)", old_rule),
        rule_line("current rule (uncorrelated IN)", new_rule),
        "",
        "Queries JIT compiles (jit on), slowest first:",
        "",
        "| page | plan cost | jit on ms | of which JIT ms | jit off ms | SQL (start) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['page']} | {r['on']['cost']:.0f} | {r['on_ms']} | {r['on']['jit_ms']:.1f} | {r['off_ms']} | "
            f"`{r['sql'][:90].replace('|', '/')}` |"
            for r in sorted(compiled, key=lambda r: -r["on_ms"])
        ),
        *([] if compiled else ["| (none) | | | | | |"]),
    ]
    stem.with_name(stem.name + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

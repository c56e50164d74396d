"""The whole API fuzzed from its own OpenAPI schema, in-process, on a seeded world.

Schemathesis generates requests for every operation of ``/api/schema/``: valid ones (positive mode) and
ones the schema forbids (negative mode). Each answer must be no 5xx, a status code the schema documents,
and, for forbidden data, a rejection (4xx). Path parameters are pinned to real objects of depot A, so the
generated bodies and queries reach the code behind the 404. Every example runs in a savepoint that is
rolled back: a generated DELETE cannot starve the operations fuzzed after it.

Bounded for CI: ``MAX_EXAMPLES`` per operation and mode, a fixed seed (derandomize), no shrinking.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

from tests.hardening.conftest import token_headers

MAX_EXAMPLES = 8
VEHICLE_KEY_EXAMPLES_ELSEWHERE = 2
# A batch is validated reading by reading: forbidden readings are answered 200 with status "rejected" and
# their reasons, while the valid ones are stored. For these, a 200 to forbidden data must reject something.
PER_ITEM_VALIDATION = {"POST /api/v1/telemetry/batch/"}
PUBLIC_OPERATIONS = {"POST /api/v1/auth/token/"}  # answers a vehicle key like anyone else: 400 bad credentials
STAFF_CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.negative_data_rejection,
]
# Detail routes whose parameter is not the id of a row of their own list route.
PATH_PARAMETER_SOURCES = {
    "/api/v1/battery-health/{id}/": ("/api/v1/battery-packs/", "id"),
    "/api/v1/telemetry/live/{vehicle}/": ("/api/v1/vehicles/", "id"),
    "/api/v1/vehicle-plans/{id}/": ("/api/v1/vehicles/", "id"),
    "/api/v1/timetable/depots/{id}/assign/": ("/api/v1/depots/", "id"),
}

# Slow (about a minute each on a quiet 2-core machine): part of `make test` and CI, left out of `make test-fast`.
pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@contextlib.contextmanager
def in_the_test_transaction():
    """Keep Django's WSGI handler from closing the test's connection (and so its transaction) at a request.

    Django's own test client does the same around each of its requests (and connects the receiver again
    afterwards, so this wraps each call rather than the whole test).
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db):
    load_all_checks()
    with in_the_test_transaction():
        return schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


def _list_path(path: str) -> str:
    return path[: path.index("{")]


def path_parameters(client, world, path: str) -> dict:
    """Real ids of depot A's objects for the parameters of ``path``."""
    if "{" not in path:
        return {}
    name = path[path.index("{") + 1 : path.index("}")]
    list_path, field = PATH_PARAMETER_SOURCES.get(path, (_list_path(path), "id"))
    response = client.get(list_path, **token_headers(world["manager_token"]))
    assert response.status_code == 200, (list_path, response.content[:300])
    rows = response.json()["results"]
    # A route the world has no row for is still fuzzed, behind its 404 (tests/hardening/conftest.py seeds it).
    return {name: rows[0][field] if rows else 999_999}


def fuzz(operation, *, mode, headers, checks, pinned, stats, max_examples=MAX_EXAMPLES, expect_status=None) -> None:
    if mode == GenerationMode.NEGATIVE and operation.label in PER_ITEM_VALIDATION:
        checks = [check for check in checks if check is not openapi_checks.negative_data_rejection]

    @settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=pinned))
    def run(case):
        with transaction.atomic(), in_the_test_transaction():
            response = case.call(headers=headers)
            stats["cases"] += 1
            stats[f"{mode.value} {response.status_code}"] += 1
            case.validate_response(response, checks=checks, headers=headers)
            per_item = mode == GenerationMode.NEGATIVE and operation.label in PER_ITEM_VALIDATION
            if per_item and response.status_code == 200:
                assert response.json()["counts"]["rejected"] >= 1, (case.as_curl_command(), response.text[:300])
            if expect_status is not None:
                assert response.status_code == expect_status, (case.as_curl_command(), response.text[:300])
            transaction.set_rollback(True)

    run()


def fuzz_all(operations, *, modes, stats, **kwargs) -> list[str]:
    """Fuzz each operation in each mode; the failures of all of them (one run shows every broken operation)."""
    failures: list[str] = []
    for operation, pinned, extra in operations:
        for mode in modes:
            try:
                fuzz(operation, mode=mode, pinned=pinned, stats=stats, **{**kwargs, **extra})
            except Unsatisfiable:
                stats["nothing to negate"] += 1  # only pinned path parameters: no forbidden value to send
            except (Exception, BaseExceptionGroup) as exc:  # FailureGroup is a BaseExceptionGroup
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


def report(name: str, operations, stats: Counter) -> None:
    """One line per run, for docs/security.md (visible with ``pytest -s``)."""
    print(json.dumps({"run": name, "operations": len(operations), **dict(sorted(stats.items()))}))


def uses_vehicle_keys(operation) -> bool:
    return any("vehicleKey" in requirement for requirement in operation.definition.raw.get("security", []))


def test_every_operation_survives_fuzzing_with_a_managers_token(api_schema, world, client):
    """Depot A's manager may do the most: every operation, valid and forbidden data, answers as documented."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    pinned = [(op, path_parameters(client, world, op.path), {}) for op in operations]
    stats: Counter = Counter()

    failures = fuzz_all(
        pinned,
        modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
        stats=stats,
        headers={"Authorization": f"Token {world['manager_token']}"},
        checks=STAFF_CHECKS,
    )

    report("manager token", operations, stats)
    assert not failures, "\n\n".join(failures)
    assert len(operations) >= 80  # the whole API, not a schema that failed to load half of it
    assert stats["positive 200"] + stats["positive 201"] > 0  # some generated requests got through


def test_a_vehicle_key_opens_the_telemetry_upload_and_nothing_else(api_schema, world, client):
    """With a vehicle key every operation is fuzzed too: the telemetry upload answers as documented, every
    other operation answers 401 whatever is sent (the key is not a user, and no view but the upload knows it)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    upload = [op for op in operations if uses_vehicle_keys(op)]
    assert [op.label for op in upload] == ["POST /api/v1/telemetry/batch/"]
    others = [
        (op, path_parameters(client, world, op.path), {} if op.label in PUBLIC_OPERATIONS else {"expect_status": 401})
        for op in operations
    ]
    stats: Counter = Counter()
    headers = {"Authorization": f"Bearer {world['vehicle_key']}"}

    failures = fuzz_all(
        [(op, {}, {}) for op in upload],
        modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
        stats=stats,
        headers=headers,
        checks=STAFF_CHECKS,
    )
    failures += fuzz_all(
        [entry for entry in others if entry[0] not in upload],
        modes=(GenerationMode.POSITIVE,),
        stats=stats,
        headers=headers,
        checks=[not_a_server_error],
        max_examples=VEHICLE_KEY_EXAMPLES_ELSEWHERE,
    )

    report("vehicle key", operations, stats)
    assert not failures, "\n\n".join(failures)
    assert stats["positive 200"] > 0  # some generated batches were stored or answered per reading

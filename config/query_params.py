"""Query strings checked against the API's own schema: what an operation does not document is refused.

django-filter and the views that read ``request.query_params`` by hand let through what they do not
recognise: a misspelt filter (``?stauts=active``), a boolean that is neither (``?below_warranty=maybe``), an
empty value (``?service_night=``) - and answer a full, unfiltered page as if the filter had been applied. The
OpenAPI schema (drf-spectacular, the same one clients and the fuzzer read) lists every query parameter each
operation takes, with its type; so, for every operation that takes query parameters:

- a parameter it does not take is a 400 naming it (``format`` - DRF's format override - is always allowed);
- an empty value is a 400 ("give a value or leave the parameter out");
- a boolean must be true or false (``true``/``false``/``True``/``False``/``1``/``0``), an integer an integer
  within 64 bits, a date an ISO date (``YYYY-MM-DD``).

Operations that take no query parameter ignore the query string, as before. The check runs where DRF runs its
throttles (``DEFAULT_THROTTLE_CLASSES``): after authentication and permissions, so a request without valid
credentials is still a 401 and one the role may not make a 403, whatever its query string; and before the view.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass

from rest_framework import serializers
from rest_framework.settings import api_settings

BOOLEAN_VALUES = frozenset({"true", "false", "True", "False", "1", "0"})
BIGINT_MAX = 2**63 - 1
INTEGER = re.compile(r"-?\d{1,19}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Operation:
    path: re.Pattern[str]
    placeholders: int
    method: str
    parameters: dict[str, dict]  # query parameter name -> its JSON schema


_operations: list[Operation] | None = None
_lock = threading.Lock()


def operations() -> list[Operation]:
    """Every API operation of the schema with its query parameters (built once per process, on first use)."""
    global _operations
    if _operations is None:
        with _lock:
            if _operations is None:
                _operations = _build()
    return _operations


def _build() -> list[Operation]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, methods in schema["paths"].items():
        pattern = re.compile("".join(r"[^/]+" if part.startswith("{") else re.escape(part) for part in _split(path)))
        for method, operation in methods.items():
            parameters = {
                parameter["name"]: parameter.get("schema", {})
                for parameter in operation.get("parameters", [])
                if parameter.get("in") == "query"
            }
            found.append(Operation(pattern, path.count("{"), method.upper(), parameters))
    # A literal segment wins over a placeholder: /charging-plans/current/ is not /charging-plans/{id}/.
    return sorted(found, key=lambda operation: operation.placeholders)


def _split(path: str) -> list[str]:
    return re.split(r"(\{[^}]+\})", path)


def operation_for(path: str, method: str) -> Operation | None:
    for operation in operations():
        if operation.method == method and operation.path.fullmatch(path):
            return operation
    return None


def query_errors(operation: Operation, query_params) -> dict[str, list[str]]:
    """Why each offending query parameter is refused (empty: none is)."""
    if not operation.parameters:
        return {}
    errors: dict[str, list[str]] = {}
    for name in query_params:
        schema = operation.parameters.get(name)
        if schema is None:
            if name != api_settings.URL_FORMAT_OVERRIDE:
                errors[name] = ["Unknown query parameter: see this operation's parameters in the API docs."]
            continue
        for value in query_params.getlist(name):
            problem = _value_error(schema, value)
            if problem:
                errors[name] = [problem]
                break
    return errors


def _value_error(schema: dict, value: str) -> str | None:
    if value == "":
        return "Give a value or leave the parameter out."
    kind = schema.get("type")
    if kind == "array":
        return None  # each item is checked by its filter
    if kind == "boolean" and value not in BOOLEAN_VALUES:
        return "Give true or false."
    if kind == "integer" and not (INTEGER.fullmatch(value) and abs(int(value)) <= BIGINT_MAX):
        return "Give an integer."
    if kind == "string" and schema.get("format") == "date":
        try:
            if not DATE.fullmatch(value):
                raise ValueError(value)
            dt.date.fromisoformat(value)
        except ValueError:
            return "Give a date as YYYY-MM-DD."
    return None


class QueryParameterCheck:
    """In ``DEFAULT_THROTTLE_CLASSES`` for where it runs (see the module's docstring); it never throttles."""

    def allow_request(self, request, view) -> bool:
        if not request.query_params:
            return True  # nothing to check (and no schema to build: a telemetry upload never waits for it)
        operation = operation_for(request.path_info, request.method)
        if operation is not None:
            errors = query_errors(operation, request.query_params)
            if errors:
                raise serializers.ValidationError(errors)
        return True

    def wait(self) -> None:
        return None

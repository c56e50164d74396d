"""Faster OCPP schema validation for the central system and the simulator (no Django here).

The ``ocpp`` package checks every message against the official JSON schemas with ``jsonschema``: 4 ms of CPU for
a 2.0.1 TransactionEvent on the benchmark machine, 0.8 ms for a 1.6 MeterValues - the largest cost per message of
the central system. ``jsonschema-rs`` checks the same Draft 4 schemas in microseconds. Only a payload it finds
invalid (or cannot read, e.g. the Decimal values of 1.6 schedules) goes to the package's own validator, which
decides and raises the error the package turns into the OCPP CallError, so answers to bad input do not change.
Both read the same schemas; where they could differ (``multipleOf`` on floats, which ``jsonschema`` gets wrong for
some valid values, as the ocpp package notes for 1.6 schedules) jsonschema-rs is the exact one.

``install()`` wraps ``ocpp.messages.get_validator`` (the package looks it up on every message); it is idempotent.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from ocpp import messages


class FastThenExactValidator:
    """``validate(payload)``: jsonschema-rs says valid -> done; otherwise the package's validator decides."""

    def __init__(self, exact: Any) -> None:
        self.exact = exact
        self.schema = exact.schema
        try:
            self.fast: Any = jsonschema_rs.Draft4Validator(exact.schema, validate_formats=False)
        except (TypeError, ValueError):  # a schema read with Decimal numbers: the exact validator alone
            self.fast = None

    def validate(self, payload: Any) -> None:
        if self.fast is not None:
            try:
                if self.fast.is_valid(payload):
                    return
            except (TypeError, ValueError):  # e.g. Decimal values
                pass
        self.exact.validate(payload)


_package_get_validator = messages.get_validator
_wrapped: dict[int, FastThenExactValidator] = {}


def _get_validator(*args: Any, **kwargs: Any) -> FastThenExactValidator:
    exact = _package_get_validator(*args, **kwargs)
    wrapped = _wrapped.get(id(exact))
    if wrapped is None or wrapped.exact is not exact:
        wrapped = _wrapped[id(exact)] = FastThenExactValidator(exact)
    return wrapped


def install() -> None:
    """Make the ocpp package validate through ``FastThenExactValidator`` (in this process)."""
    messages.get_validator = _get_validator

"""The audit trail: who changed a depot's grid limit, a tariff, a block, a charger or a plan, and when.

django-simple-history (``history = HistoricalRecords()`` on the audited models) stores a copy of the row at
every save, with the user of the request that made it: ``HistoryRequestMiddleware`` keeps the request, and
DRF writes the token's user back onto it when it authenticates, so API, admin and service writes made in a
request all carry their author. Writes outside a request (overnight jobs) carry none. Queryset ``update()``
calls are not recorded, so the services that change audited rows (a connector's fault or restore from a depot
event, a plan superseded by a re-plan) save row by row, with a change reason.

``AuditedAdmin`` adds the History page to an admin. Mix it in *before* ``DepotScopedAdmin`` so that page asks
the depot-scoped permissions: another depot's object's history is a 403, like its change page.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Model
from simple_history.admin import SimpleHistoryAdmin

CHANGE_REASON_MAX = 100  # the history tables' history_change_reason column


def audit_attribution(instance: Model, *, reason: str, user: Any = None) -> None:
    """Say why (and, outside a request, by whom) the next save of ``instance`` is made: the history record it
    writes carries it. django-simple-history reads these two attributes at save time (its documented way)."""
    setattr(instance, "_change_reason", reason[:CHANGE_REASON_MAX])  # noqa: B010  (not a declared attribute)
    if user is not None:
        setattr(instance, "_history_user", user)  # noqa: B010


class AuditedAdmin(SimpleHistoryAdmin):
    """The admin's History page lists each saved version: when, who, and the fields that changed."""

    history_list_display = ["changed_fields"]

    def changed_fields(self, record) -> str:
        previous = record.prev_record
        if previous is None:
            return "created"
        return ", ".join(change.field for change in record.diff_against(previous).changes) or "-"

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # Viewing an old version is fine; saving it ("revert") would skip the services' checks and needs only
        # the view permission in django-simple-history. Changes go through the change page.
        if request.method != "GET":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

"""Admin of charging sessions: read-only (they come from depots, gateways and telemetry), with a CSV export.

Imported at the end of charging/admin.py.
"""

from __future__ import annotations

import csv
from typing import cast

from django.contrib import admin
from django.db.models import Field
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _

from charging.models import ChargingSession
from charging.sessions import sessions_visible_to
from fleet.admin_paging import DepotListFilter, GrowingTableAdmin
from fleet.admin_scoping import DepotScopedAdmin
from fleet.scoping import Action

CSV_COLUMNS = (
    "id",
    "depot",
    "vehicle",
    "connector",
    "source",
    "external_id",
    "started_at",
    "ended_at",
    "energy_kwh",
    "start_soc_pct",
    "end_soc_pct",
    "max_kw",
    "cost",
    "currency",
    "cost_note",
    "plan",
)


class AwayListFilter(admin.SimpleListFilter):
    title = _("where")
    parameter_name = "where"

    def lookups(self, request, model_admin):
        return [("depot", _("At a depot")), ("away", _("Away from any depot"))]

    def queryset(self, request, queryset):
        if self.value() == "depot":
            return queryset.filter(depot__isnull=False)
        if self.value() == "away":
            return queryset.filter(depot__isnull=True)
        return queryset


@admin.register(ChargingSession)
class ChargingSessionAdmin(GrowingTableAdmin, DepotScopedAdmin):
    change_action = add_action = delete_action = None  # a record of what happened: never edited by hand
    actions = ["export_csv"]
    list_display = [
        "started_at",
        "depot",
        "vehicle",
        "source",
        "duration_minutes",
        "energy_kwh",
        "start_soc_pct",
        "end_soc_pct",
        "cost",
        "currency",
    ]
    list_select_related = ["depot", "vehicle"]
    list_filter = [("depot", DepotListFilter), AwayListFilter, "source", "started_at"]
    search_fields = ["vehicle__fleet_number", "external_id"]
    # No date_hierarchy: it reads every session for its dates on each page; "started" filters by date instead.
    ordering = ["-started_at", "-id"]  # the session_newest index
    readonly_fields = [f.name for f in ChargingSession._meta.fields]

    def scope_queryset(self, queryset, user, action):
        # Reading follows the API's rule (charging/sessions.py): a vehicle's home depot also sees,
        # read-only, its sessions at the organisation's other depots.
        if action == Action.VIEW:
            return sessions_visible_to(user, queryset)
        return super().scope_queryset(queryset, user, action)

    @admin.display(description=_("minutes"))
    def duration_minutes(self, session: ChargingSession) -> int:
        return round(session.duration_hours * 60)

    @admin.action(description=_("Export the selected sessions (CSV)"))
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="charging-sessions.csv"'
        writer = csv.writer(response)
        writer.writerow([*CSV_COLUMNS, "fleet_number", "depot_code"])
        rows = queryset.select_related("depot", "vehicle").order_by("started_at", "pk")
        for session in rows:
            writer.writerow(
                [
                    *(_value(session, name) for name in CSV_COLUMNS),
                    session.vehicle.fleet_number,
                    session.depot.code if session.depot else "",
                ]
            )
        return response


def _value(session: ChargingSession, name: str):
    # Related rows as their ids: the export is for spreadsheets, not for reading names twice.
    field = cast(Field, ChargingSession._meta.get_field(name))  # CSV_COLUMNS name concrete fields only
    value = getattr(session, field.attname)
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else value

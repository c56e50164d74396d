"""The chargers' link in the admin: a board per depot (connected or offline, last heartbeat, status per connector,
faulted on top, the current plan's profiles delivered or not), the charge points with a "new password" action,
id tokens, transactions and the delivery of each plan."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from csms.models import ChargePoint, IdToken, ProfileDelivery, Transaction
from csms.selectors import depot_board
from csms.services import charger_password_issue
from fleet.admin_scoping import DepotScopedAdmin
from fleet.models import Depot
from fleet.scoping import Action, restrict

CHARGE_POINT_FIELDS = [
    "charger", "ocpp_version", "connected", "connected_at", "disconnected_at", "last_seen_at",
    "last_heartbeat_at", "booted_at", "vendor", "model", "firmware_version", "serial_number",
    "connector_states", "password_set_at",
]  # fmt: skip


@admin.register(ChargePoint)
class ChargePointAdmin(DepotScopedAdmin):
    change_action = Action.MANAGE
    add_action = Action.MANAGE
    list_display = ["charger", "depot", "connected", "ocpp_version", "last_heartbeat_at", "statuses", "vendor"]
    list_select_related = ["charger__depot"]
    list_filter = ["connected", "ocpp_version", ("charger__depot", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["charger__ocpp_charge_point_id", "charger__name"]
    autocomplete_fields = ["charger"]
    fields = list(CHARGE_POINT_FIELDS)  # a copy: the base types fields as (nested) fieldset entries
    readonly_fields = [name for name in CHARGE_POINT_FIELDS if name != "charger"]
    actions = ["issue_password"]
    change_list_template = "admin/csms/chargepoint_change_list.html"

    @admin.display(description=_("depot"), ordering="charger__depot__name")
    def depot(self, obj: ChargePoint) -> Depot:
        return obj.charger.depot

    @admin.display(description=_("connector statuses"))
    def statuses(self, obj: ChargePoint) -> str:
        return ", ".join(f"#{n}: {s.get('status')}" for n, s in sorted(obj.connector_states.items())) or "—"

    @admin.action(description=_("Issue a new password (shown once)"))
    def issue_password(self, request: HttpRequest, queryset: QuerySet[ChargePoint]) -> None:
        for charge_point in restrict(queryset, request.user, Action.MANAGE).select_related("charger"):
            _cp, password = charger_password_issue(charger=charge_point.charger)
            messages.warning(
                request,
                _("New password for %(id)s (shown once; only its hash is kept): %(password)s")
                % {"id": charge_point.charger.ocpp_charge_point_id, "password": password},
            )

    def get_urls(self):
        board = self.admin_site.admin_view(self.board_view)
        return [path("board/", board, name="csms_chargepoint_board"), *super().get_urls()]

    def board_view(self, request: HttpRequest) -> TemplateResponse:
        depots = restrict(Depot.objects.order_by("name"), request.user, Action.VIEW)
        chosen = (
            depots.filter(pk=request.GET.get("depot") or 0).first() if request.GET.get("depot", "").isdigit() else None
        )
        chosen = chosen or depots.first()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Charger board"),
            "depots": depots,
            "depot": chosen,
            "rows": depot_board(chosen) if chosen else [],
        }
        return TemplateResponse(request, "admin/csms/board.html", context)


@admin.register(IdToken)
class IdTokenAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = Action.MANAGE
    list_display = ["token", "kind", "vehicle", "active"]
    list_select_related = ["vehicle"]
    list_filter = ["kind", "active"]
    search_fields = ["token", "vehicle__fleet_number"]
    autocomplete_fields = ["vehicle"]


@admin.register(Transaction)
class TransactionAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = None
    list_display = ["transaction_id", "charge_point", "connector_number", "vehicle", "started_at", "ended_at",
                    "energy", "session", "note"]  # fmt: skip
    list_select_related = ["charge_point__charger", "vehicle", "session"]
    list_filter = [("charge_point__charger__depot", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["transaction_id", "id_tag", "charge_point__charger__ocpp_charge_point_id"]

    @admin.display(description=_("energy (kWh)"))
    def energy(self, obj: Transaction) -> str:
        return f"{obj.energy_kwh:.3f}" if obj.energy_kwh is not None else "—"


@admin.register(ProfileDelivery)
class ProfileDeliveryAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = None
    list_display = ["plan", "charge_point", "status", "attempts", "last_attempt_at", "answered_at", "answers"]
    list_select_related = ["plan__depot", "charge_point__charger"]
    list_filter = ["status", ("charge_point__charger__depot", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["charge_point__charger__ocpp_charge_point_id"]

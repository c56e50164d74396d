"""The registry's admin pages with what other apps know about their rows: a depot's chargers and installed
power, a vehicle's battery packs. Fleet's own admins (fleet/admin.py) show fleet's data only; the console,
which sits above every app, composes the pages people use by extending them.

The other apps' data comes through their selectors (annotations) and admin modules (inlines); fleet's model
classes are imported only to register the composed admins in place of fleet's (docs/architecture.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from batteries.admin import VehiclePackHistoryInline
from batteries.selectors import active_pack_serial
from charging.selectors import depot_charger_totals
from fleet.admin import DepotAdmin, VehicleAdmin
from fleet.models import Depot, Vehicle  # to register the composed admins, not to query

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _DepotChargers(TypedDict):
    charger_count: int
    installed_charger_kw: float


class _VehiclePack(TypedDict):
    active_pack_serial: str | None


class DepotWithChargersAdmin(DepotAdmin):
    list_display = [*DepotAdmin.list_display, "charger_count", "installed_vs_grid_limit"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(**depot_charger_totals())

    @admin.display(description=_("chargers"), ordering="charger_count")
    def charger_count(self, obj: WithAnnotations[Depot, _DepotChargers]) -> int:
        return obj.charger_count

    @admin.display(description=_("installed charger kW / grid limit"), ordering="installed_charger_kw")
    def installed_vs_grid_limit(self, obj: WithAnnotations[Depot, _DepotChargers]) -> str:
        # Installed power normally exceeds the grid limit: the ratio tells how much the scheduler must share.
        ratio_pct = 100 * obj.installed_charger_kw / obj.grid_limit_kw
        return f"{obj.installed_charger_kw:,.0f} / {obj.grid_limit_kw:,.0f} kW ({ratio_pct:.0f} %)"


class VehicleWithPacksAdmin(VehicleAdmin):
    list_display = [*VehicleAdmin.list_display[:5], "active_pack", *VehicleAdmin.list_display[5:]]
    inlines = [*VehicleAdmin.inlines, VehiclePackHistoryInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(active_pack_serial=active_pack_serial())

    @admin.display(description=_("active pack"), ordering="active_pack_serial", empty_value="-")
    def active_pack(self, obj: WithAnnotations[Vehicle, _VehiclePack]) -> str | None:
        return obj.active_pack_serial


for model, model_admin in ((Depot, DepotWithChargersAdmin), (Vehicle, VehicleWithPacksAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)

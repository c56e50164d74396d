"""The registry's admin pages with what other apps know about their rows: a depot's chargers and installed
power, a vehicle's battery packs. Fleet's own admins (fleet/admin.py) show fleet's data only; the console,
which sits above every app, composes the pages people use by extending them."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin
from django.db.models import Count, FloatField, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from batteries.models import PackInstallation
from charging.models import Charger
from fleet.admin import DepotAdmin, VehicleAdmin
from fleet.admin_scoping import DepotScopedInline
from fleet.models import Depot, Vehicle

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
        chargers = Charger.objects.filter(depot=OuterRef("pk")).order_by().values("depot")
        return (
            super()
            .get_queryset(request)
            .annotate(
                charger_count=Coalesce(
                    Subquery(chargers.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), Value(0)
                ),
                installed_charger_kw=Coalesce(
                    Subquery(chargers.annotate(kw=Sum("max_kw")).values("kw"), output_field=FloatField()), Value(0.0)
                ),
            )
        )

    @admin.display(description=_("chargers"), ordering="charger_count")
    def charger_count(self, obj: WithAnnotations[Depot, _DepotChargers]) -> int:
        return obj.charger_count

    @admin.display(description=_("installed charger kW / grid limit"), ordering="installed_charger_kw")
    def installed_vs_grid_limit(self, obj: WithAnnotations[Depot, _DepotChargers]) -> str:
        # Installed power normally exceeds the grid limit: the ratio tells how much the scheduler must share.
        ratio_pct = 100 * obj.installed_charger_kw / obj.grid_limit_kw
        return f"{obj.installed_charger_kw:,.0f} / {obj.grid_limit_kw:,.0f} kW ({ratio_pct:.0f} %)"


class PackInstallationHistoryInline(DepotScopedInline, admin.TabularInline):
    """Which packs the vehicle has carried; installs and swaps go through the pack installation admin."""

    model = PackInstallation
    fields = readonly_fields = ("pack", "installed_at", "removed_at")
    extra = 0
    can_delete = False
    change_action = add_action = delete_action = None
    verbose_name_plural = _("battery pack history")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("pack")


class VehicleWithPacksAdmin(VehicleAdmin):
    list_display = [*VehicleAdmin.list_display[:5], "active_pack", *VehicleAdmin.list_display[5:]]
    inlines = [*VehicleAdmin.inlines, PackInstallationHistoryInline]

    def get_queryset(self, request):
        active_pack = PackInstallation.objects.filter(vehicle=OuterRef("pk"), removed_at__isnull=True)
        return (
            super().get_queryset(request).annotate(active_pack_serial=Subquery(active_pack.values("pack__serial")[:1]))
        )

    @admin.display(description=_("active pack"), ordering="active_pack_serial", empty_value="-")
    def active_pack(self, obj: WithAnnotations[Vehicle, _VehiclePack]) -> str | None:
        return obj.active_pack_serial


for model, model_admin in ((Depot, DepotWithChargersAdmin), (Vehicle, VehicleWithPacksAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)

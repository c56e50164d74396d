"""Admin of the battery registry: packs, where they are, how healthy they are.

A pack's depot is that of the vehicle it is in *now*; scoping follows ``BatteryPack.scope_q``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from batteries import admin_views, services
from batteries.models import BatteryPack, ForecastRun, HealthObservation, PackInstallation, SoHForecast
from batteries.selectors import remaining_life_label
from fleet.admin_paging import GrowingTableAdmin
from fleet.admin_scoping import DepotScopedAdmin, DepotScopedInline, ServiceModelForm, adopt_saved, changed_values
from fleet.models import Depot
from fleet.scoping import Action, restrict

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class CurrentDepotFilter(admin.SimpleListFilter):
    """Packs by the depot of the vehicle carrying them now; lists only the user's depots."""

    title = _("depot (now)")
    parameter_name = "depot"

    def lookups(self, request, model_admin):
        return [(depot.pk, depot.name) for depot in restrict(Depot.objects.all(), request.user, Action.VIEW)]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(installations__removed_at__isnull=True, installations__vehicle__home_depot=self.value())


class InstallationHistoryInline(DepotScopedInline, admin.TabularInline):
    model = PackInstallation
    fields = readonly_fields = ("vehicle", "installed_at", "removed_at")
    extra = 0
    can_delete = False
    change_action = add_action = delete_action = None
    verbose_name_plural = _("installation history")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("vehicle")


class VehiclePackHistoryInline(DepotScopedInline, admin.TabularInline):
    """On a vehicle's page (composed by ``console.admin.registry``): which packs the vehicle has carried; installs
    and swaps go through the pack installation admin."""

    model = PackInstallation
    fields = readonly_fields = ("pack", "installed_at", "removed_at")
    extra = 0
    can_delete = False
    change_action = add_action = delete_action = None
    verbose_name_plural = _("battery pack history")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("pack")


class BatteryPackForm(forms.ModelForm):
    class Meta:
        model = BatteryPack
        fields = ["organization", *services.PACK_UPDATABLE_FIELDS]


class _PackNow(TypedDict):
    vehicle_now_fleet_number: str | None
    latest_soh_pct: float | None


@admin.register(BatteryPack)
class BatteryPackAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = Action.MANAGE
    form = BatteryPackForm
    readonly_on_change = ("organization",)
    list_display = ["serial", "chemistry", "nominal_kwh", "vehicle_now", "latest_soh", "warranty", "health_link"]
    list_filter = [CurrentDepotFilter, "chemistry"]
    search_fields = ["serial"]
    inlines = [InstallationHistoryInline]
    actions = ["forecast_now", "export_health_csv"]
    change_form_template = "admin/batteries/batterypack/change_form.html"
    change_list_template = "admin/batteries/batterypack/change_list.html"

    def get_queryset(self, request):
        active = PackInstallation.objects.filter(pack=OuterRef("pk"), removed_at__isnull=True)
        latest = HealthObservation.objects.filter(pack=OuterRef("pk")).order_by("-observed_at")
        return (
            super()
            .get_queryset(request)
            .annotate(
                vehicle_now_fleet_number=Subquery(active.values("vehicle__fleet_number")[:1]),
                latest_soh_pct=Subquery(latest.values("soh_pct")[:1]),
            )
        )

    @admin.display(description=_("vehicle now"), ordering="vehicle_now_fleet_number", empty_value="-")
    def vehicle_now(self, obj: WithAnnotations[BatteryPack, _PackNow]) -> str | None:
        return obj.vehicle_now_fleet_number

    @admin.display(description=_("latest SoH"), ordering="latest_soh_pct", empty_value="-")
    def latest_soh(self, obj: WithAnnotations[BatteryPack, _PackNow]) -> str | None:
        return None if obj.latest_soh_pct is None else f"{obj.latest_soh_pct:.1f} %"

    @admin.display(description=_("warranty"), ordering="warranty_years", empty_value="-")
    def warranty(self, obj: BatteryPack) -> str | None:
        terms = []
        if obj.warranty_years is not None:
            terms.append(f"{obj.warranty_years} y")
        if obj.warranty_km is not None:
            terms.append(f"{obj.warranty_km:,} km")
        if obj.warranty_min_soh_pct is not None:
            terms.append(f"≥ {obj.warranty_min_soh_pct:.0f} % SoH")
        return " / ".join(terms) or None

    @admin.display(description=_("health"))
    def health_link(self, obj: BatteryPack) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:batteries_batterypack_health", args=[obj.pk]), _("Chart")
        )

    # --- battery health pages (batteries/admin_views.py) -----------------------------------------------------

    def get_urls(self):
        def view(route, function, name):
            return path(route, self.admin_site.admin_view(function), name=f"batteries_batterypack_{name}")

        return [
            view("health/", self.fleet_health_view, "fleet_health"),
            view("<int:pack_id>/health/", self.health_view, "health"),
            view("<int:pack_id>/forecast/", require_POST(self.forecast_view), "forecast"),
            *super().get_urls(),
        ]

    def _admin_context(self, request) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.model._meta}

    def health_view(self, request, pack_id: int):
        # The admin's own queryset: another depot's pack is a 404.
        pack = get_object_or_404(self.get_queryset(request), pk=pack_id)
        return admin_views.pack_health(
            request,
            pack,
            admin_context=self._admin_context(request),
            may_forecast=self.may(request, Action.MANAGE, pack),
        )

    def forecast_view(self, request, pack_id: int):
        pack = get_object_or_404(self.get_queryset(request), pk=pack_id)
        if not self.may(request, Action.MANAGE, pack):
            raise PermissionDenied
        admin_views.forecast_now(request, [pack])
        return redirect(reverse("admin:batteries_batterypack_health", args=[pack.pk]))

    def fleet_health_view(self, request):
        packs = self.get_queryset(request)
        depots = list(restrict(Depot.objects.order_by("name"), request.user, Action.VIEW))
        depot = request.GET.get("depot")
        if depot and depot.isdigit():
            packs = CurrentDepotFilter(request, {"depot": [depot]}, BatteryPack, self).queryset(request, packs)
        return admin_views.fleet_health(request, packs, admin_context=self._admin_context(request), depots=depots)

    def has_manage_permission(self, request) -> bool:
        return self.may(request, Action.MANAGE)

    @admin.action(description=_("Forecast the selected packs now"), permissions=["manage"])
    def forecast_now(self, request, queryset):
        allowed = list(self.scope_queryset(queryset, request.user, Action.MANAGE))
        admin_views.forecast_now(request, allowed)

    @admin.action(description=_("Export the selected packs' health (CSV)"))
    def export_health_csv(self, request, queryset):
        return admin_views.health_csv(queryset)

    def save_model(self, request, obj, form, change):
        if change:
            pack = BatteryPack.objects.get(pk=obj.pk)
            services.pack_update(pack=pack, data=changed_values(obj, form, services.PACK_UPDATABLE_FIELDS))
        else:
            fields = {name: getattr(obj, name) for name in ("organization", *services.PACK_UPDATABLE_FIELDS)}
            adopt_saved(obj, services.pack_create(**fields))


class PackInstallForm(ServiceModelForm):
    class Meta:
        model = PackInstallation
        fields = ["pack", "vehicle", "installed_at"]

    def check_with_service(self) -> None:
        # pack_install closes the vehicle's current pack and the pack's current vehicle (a swap).
        services.pack_install(
            pack=self.instance.pack, vehicle=self.instance.vehicle, installed_at=self.instance.installed_at
        )


@admin.register(PackInstallation)
class PackInstallationAdmin(DepotScopedAdmin):
    """Installing is a swap done by ``pack_install``; existing rows are history and stay as they are."""

    change_action = delete_action = None
    add_action = Action.MANAGE
    form = PackInstallForm
    list_display = ["pack", "vehicle", "depot", "installed_at", "removed_at"]
    list_select_related = ["pack", "vehicle__home_depot"]
    list_filter = [
        ("vehicle__home_depot", admin.RelatedOnlyFieldListFilter),
        ("removed_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["pack__serial", "vehicle__fleet_number"]
    autocomplete_fields = ["pack", "vehicle"]
    date_hierarchy = "installed_at"
    actions = ["remove_packs_now"]

    def get_changeform_initial_data(self, request):
        return {"installed_at": timezone.now(), **super().get_changeform_initial_data(request)}

    @admin.display(description=_("depot"), ordering="vehicle__home_depot__name", empty_value="-")
    def depot(self, obj: PackInstallation) -> Depot | None:
        return obj.vehicle.home_depot

    def save_model(self, request, obj, form, change):
        adopt_saved(obj, services.pack_install(pack=obj.pack, vehicle=obj.vehicle, installed_at=obj.installed_at))

    def has_manage_permission(self, request) -> bool:
        return self.may(request, Action.MANAGE)

    @admin.action(description=_("Remove the selected packs from their vehicles now"), permissions=["manage"])
    def remove_packs_now(self, request, queryset):
        removable = [
            installation
            for installation in queryset.filter(removed_at__isnull=True).select_related("pack")
            if self.may(request, Action.MANAGE, installation)
        ]
        for installation in removable:
            services.pack_remove(pack=installation.pack)
        self.message_user(
            request,
            ngettext("%(n)d pack removed.", "%(n)d packs removed.", len(removable)) % {"n": len(removable)},
            messages.SUCCESS,
        )


@admin.register(HealthObservation)
class HealthObservationAdmin(GrowingTableAdmin, DepotScopedAdmin):
    change_action = add_action = delete_action = Action.MANAGE
    list_display = ["pack", "observed_at", "source", "soh_pct", "capacity_kwh", "uncertainty_pct"]
    list_select_related = ["pack"]
    # No date_hierarchy: it reads every observation for its dates on each page; a date filter instead.
    list_filter = ["source", "pack__chemistry", "observed_at"]
    search_fields = ["pack__serial"]
    autocomplete_fields = ["pack"]


@admin.register(SoHForecast)
class SoHForecastAdmin(GrowingTableAdmin, DepotScopedAdmin):
    """Forecasts are the nightly job's output: read here, never edited."""

    change_action = add_action = delete_action = None
    list_display = [
        "pack",
        "as_of",
        "soh_now_pct",
        "fade_pct_per_year",
        "eol_80_on",
        "warranty_floor_on",
        "remaining_life",
        "calibration_source",
        "flag_list",
    ]
    list_select_related = ["pack"]
    list_filter = ["calibration_source", "as_of"]
    search_fields = ["pack__serial"]
    exclude = ["points", "inputs"]
    readonly_fields = [f.name for f in SoHForecast._meta.fields if f.name not in ("points", "inputs")]

    def get_queryset(self, request):
        # The monthly curve and the inputs (a kilobyte or more a row, growing with the horizon) are shown on no
        # page of this admin: not read for a list of fifty.
        return super().get_queryset(request).defer("points", "inputs")

    @admin.display(description=_("remaining life"), ordering="rul_days")
    def remaining_life(self, forecast: SoHForecast) -> str:
        return remaining_life_label(forecast)  # "> 10 years" when capped at the horizon

    @admin.display(description=_("flags"))
    def flag_list(self, forecast: SoHForecast) -> str:
        return ", ".join(forecast.flags) or "-"


@admin.register(ForecastRun)
class ForecastRunAdmin(admin.ModelAdmin):
    """Runs span every organisation's packs: operators (superusers) only."""

    list_display = ["started_at", "status", "trigger", "packs_total", "packs_done", "packs_failed", "duration_s"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ForecastRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

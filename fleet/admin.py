"""Admin of the fleet registry: what fleet managers use every day. What a page shows of other apps (a depot's
chargers, a vehicle's packs) is added on top by the console app (console/admin/registry.py).

Scoping and permissions come from ``DepotScopedAdmin`` (fleet/admin_scoping.py); writes go through
``fleet.services`` so the admin enforces what the API enforces.
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, TypedDict

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from config.audit import AuditedAdmin
from fleet import services
from fleet.admin_paging import DepotListFilter, GrowingTableAdmin
from fleet.admin_scoping import (
    DepotScopedAdmin,
    ServiceModelForm,
    adopt_saved,
    changed_values,
)
from fleet.models import (
    Block,
    BlockAssignment,
    DailyDutyCycle,
    Depot,
    DepotMembership,
    Organization,
    Vehicle,
    VehicleModel,
)
from fleet.models.telemetry import VehicleApiKey
from fleet.scoping import Action
from fleet.series import base_load_field, monthly_temperature_field
from fleet.telemetry.admin import VehicleApiKeyAdmin, issue_vehicle_api_key, rotate_vehicle_api_keys
from fleet.telemetry.pages import vehicle_page_context
from fleet.telemetry.selectors import live_state_summary

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


def _count_of(model, fk: str) -> Coalesce:
    """A per-row count of ``model`` rows pointing here through ``fk``, as a subquery (no join fan-out)."""
    rows = model.objects.filter(**{fk: OuterRef("pk")}).order_by().values(fk).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


class _OrganizationCounts(TypedDict):
    depot_count: int
    vehicle_count: int


class _DepotCounts(TypedDict):
    vehicle_count: int


class _BlockCounts(TypedDict):
    assignment_count: int


@admin.register(Organization)
class OrganizationAdmin(DepotScopedAdmin):
    # Organisations are created and renamed by the operators of the installation, not by fleet managers.
    change_action = add_action = delete_action = None
    list_display = ["name", "slug", "depot_count", "vehicle_count"]
    search_fields = ["name", "slug"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(depot_count=_count_of(Depot, "organization"), vehicle_count=_count_of(Vehicle, "organization"))
        )

    @admin.display(description=_("depots"), ordering="depot_count")
    def depot_count(self, obj: WithAnnotations[Organization, _OrganizationCounts]) -> int:
        return obj.depot_count

    @admin.display(description=_("vehicles"), ordering="vehicle_count")
    def vehicle_count(self, obj: WithAnnotations[Organization, _OrganizationCounts]) -> int:
        return obj.vehicle_count


@admin.register(Depot)
class DepotAdmin(AuditedAdmin, DepotScopedAdmin):
    # Managers change their depot's settings; opening or closing a depot is the operators' job (a new depot
    # would have no members, so nobody but a superuser could see it anyway).
    change_action = Action.MANAGE
    add_action = delete_action = None
    readonly_on_change = ("organization",)
    list_display = [
        "name",
        "code",
        "organization",
        "time_zone",
        "grid_limit_kw",
        "vehicle_count",
    ]
    list_select_related = ["organization"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "code"]
    autocomplete_fields = ["tariff"]
    series_fields = {"base_load_kw": base_load_field, "monthly_mean_temperature_c": monthly_temperature_field}
    fieldsets = [
        (None, {"fields": ["organization", "name", "code", "time_zone", "latitude", "longitude", "geofence_radius_m"]}),
        (_("Grid and tariff"), {"fields": ["grid_limit_kw", "base_load_kw", "tariff", "planning_time"]}),
        (_("Climate"), {"fields": ["monthly_mean_temperature_c"]}),
    ]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        # The hourly and monthly series as one labelled number input per value (fleet/series.py).
        if db_field.name in self.series_fields:
            return self.series_fields[db_field.name](
                label=capfirst(db_field.verbose_name), help_text=db_field.help_text
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(vehicle_count=_count_of(Vehicle, "home_depot"))

    @admin.display(description=_("vehicles"), ordering="vehicle_count")
    def vehicle_count(self, obj: WithAnnotations[Depot, _DepotCounts]) -> int:
        return obj.vehicle_count

    def save_model(self, request, obj, form, change):
        if change:
            depot = Depot.objects.get(pk=obj.pk)
            services.depot_update(depot=depot, data=changed_values(obj, form, services.DEPOT_UPDATABLE_FIELDS))
        else:
            fields = {name: getattr(obj, name) for name in services.DEPOT_UPDATABLE_FIELDS}
            adopt_saved(obj, services.depot_create(organization=obj.organization, **fields))


class MembershipForm(forms.ModelForm):
    class Meta:
        model = DepotMembership
        fields = ["user", "depot", "role"]


@admin.register(DepotMembership)
class DepotMembershipAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = Action.MANAGE
    form = MembershipForm
    readonly_on_change = ("user", "depot")
    list_display = ["user", "depot", "role"]
    list_select_related = ["user", "depot"]
    list_filter = [("depot", admin.RelatedOnlyFieldListFilter), "role"]
    search_fields = ["user__username", "user__email", "depot__name"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            # A manager gives a role to a colleague by username: a list of every account of the installation
            # would show them people of other organisations.
            return forms.ModelChoiceField(
                queryset=get_user_model().objects.filter(is_active=True),
                to_field_name=get_user_model().USERNAME_FIELD,
                widget=forms.TextInput,
                label=_("Username"),
                error_messages={"invalid_choice": _("No active user has this username.")},
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        adopt_saved(obj, services.membership_set(user=obj.user, depot=obj.depot, role=obj.role))


@admin.register(VehicleModel)
class VehicleModelAdmin(DepotScopedAdmin):
    # The catalogue is shared by every organisation: any member reads it and a manager may add a model when
    # buying a new one, but changing or deleting an entry would change other organisations' vehicles.
    change_action = delete_action = None
    add_action = Action.MANAGE
    list_display = [
        "__str__",
        "kind",
        "chemistry",
        "nominal_pack_kwh",
        "consumption_kwh_per_km",
        "max_ac_kw",
        "max_dc_kw",
        "connector_standards",
    ]
    list_filter = ["kind", "chemistry"]
    search_fields = ["manufacturer", "name"]

    def scope_queryset(self, queryset, user, action):
        return queryset


class VehicleForm(forms.ModelForm):
    class Meta:
        model = Vehicle
        fields = ["organization", "fleet_number", "vin", "plate", "model", "home_depot", "status"]


@admin.register(Vehicle)
class VehicleAdmin(DepotScopedAdmin):
    change_action = Action.OPERATE
    add_action = delete_action = Action.MANAGE
    form = VehicleForm
    readonly_on_change = ("organization",)
    list_display = [
        "fleet_number",
        "model",
        "home_depot",
        "status",
        "live_state",
        "vin",
        "telemetry_link",
    ]
    list_select_related = ["model", "home_depot", "live_state"]
    list_filter = [
        ("home_depot", admin.RelatedOnlyFieldListFilter),
        "status",
        ("model", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["fleet_number", "vin", "plate"]
    autocomplete_fields = ["model", "home_depot"]
    actions = ["export_duty_cycles_csv", issue_vehicle_api_key, rotate_vehicle_api_keys]
    change_form_template = "admin/fleet/vehicle/change_form.html"

    @admin.display(description=_("last seen"))
    def live_state(self, obj: Vehicle) -> str:
        return live_state_summary(obj)

    @admin.display(description=_("telemetry"))
    def telemetry_link(self, obj: Vehicle) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:fleet_vehicle_telemetry", args=[obj.pk]), _("Charts"))

    def get_urls(self):
        telemetry = self.admin_site.admin_view(self.telemetry_view)
        return [path("<int:vehicle_id>/telemetry/", telemetry, name="fleet_vehicle_telemetry"), *super().get_urls()]

    def telemetry_view(self, request, vehicle_id: int):
        # Through the admin's queryset: another depot's vehicle is a 404.
        vehicle = get_object_or_404(self.get_queryset(request).select_related("home_depot", "model"), pk=vehicle_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            **vehicle_page_context(vehicle),
        }
        return TemplateResponse(request, "admin/fleet/vehicle/telemetry.html", context)

    @admin.action(description=_("Export the selected vehicles' daily duty cycles (CSV)"))
    def export_duty_cycles_csv(self, request, queryset):
        # ``queryset`` comes from this admin's get_queryset: only the user's depots' vehicles.
        cycles = (
            DailyDutyCycle.objects.filter(vehicle__in=queryset.values("pk"))
            .select_related("vehicle")
            .order_by("vehicle__fleet_number", "date")
        )
        columns = [
            "date",
            "reading_count",
            "distance_km",
            "energy_used_kwh",
            "energy_charged_kwh",
            "kwh_per_km",
            "equivalent_full_cycles",
            "soc_min_pct",
            "soc_max_pct",
            "soc_mean_pct",
            "minutes_above_90_soc",
            "pack_temp_mean_c",
            "pack_temp_max_c",
            "max_charge_c_rate",
            "max_discharge_c_rate",
        ]
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="daily-duty-cycles.csv"'
        writer = csv.writer(response)
        writer.writerow(["fleet_number", *columns])
        for cycle in cycles.iterator(chunk_size=2000):
            writer.writerow([cycle.vehicle.fleet_number, *(getattr(cycle, name) for name in columns)])
        return response

    def save_model(self, request, obj, form, change):
        if change:
            vehicle = Vehicle.objects.get(pk=obj.pk)
            services.vehicle_update(vehicle=vehicle, data=changed_values(obj, form, services.VEHICLE_UPDATABLE_FIELDS))
        else:
            fields = {name: getattr(obj, name) for name in services.VEHICLE_UPDATABLE_FIELDS}
            adopt_saved(obj, services.vehicle_create(organization=obj.organization, **fields))


class BlockForm(ServiceModelForm):
    class Meta:
        model = Block
        fields = [
            "depot",
            "code",
            "service_date",
            "weekdays",
            "valid_from",
            "valid_until",
            "departs_at",
            "returns_at",
            "distance_km",
            "planned_energy_kwh",
        ]

    def check_with_service(self) -> None:
        # New times move the block's assignments, which must still not overlap the vehicles' other blocks.
        if self.instance.pk:
            services.block_update(
                block=Block.objects.get(pk=self.instance.pk),
                data=changed_values(self.instance, self, services.BLOCK_UPDATABLE_FIELDS),
            )


@admin.register(Block)
class BlockAdmin(AuditedAdmin, DepotScopedAdmin):
    # Depot staff change blocks day to day.
    change_action = add_action = delete_action = Action.OPERATE
    form = BlockForm
    readonly_on_change = ("depot",)
    list_display = ["code", "depot", "runs", "departs_at", "returns_at", "distance_km", "assignment_count"]
    list_select_related = ["depot"]
    list_filter = [("depot", admin.RelatedOnlyFieldListFilter), "service_date"]
    search_fields = ["code"]
    autocomplete_fields = ["depot"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(assignment_count=_count_of(BlockAssignment, "block"))

    @admin.display(description=_("runs"), ordering="service_date")
    def runs(self, obj: Block) -> str:
        if obj.service_date:
            return obj.service_date.isoformat()
        days = ", ".join(_WEEKDAY_ABBREVIATIONS[d] for d in sorted(obj.weekdays))
        since = obj.valid_from.isoformat() if obj.valid_from else "…"  # set whenever service_date is not
        until = obj.valid_until.isoformat() if obj.valid_until else "…"
        return f"{days} ({since} – {until})"

    @admin.display(description=_("assignments"), ordering="assignment_count")
    def assignment_count(self, obj: WithAnnotations[Block, _BlockCounts]) -> int:
        return obj.assignment_count

    def save_model(self, request, obj, form, change):
        if change:
            block = Block.objects.get(pk=obj.pk)
            services.block_update(block=block, data=changed_values(obj, form, services.BLOCK_UPDATABLE_FIELDS))
        else:
            fields = {name: getattr(obj, name) for name in services.BLOCK_UPDATABLE_FIELDS}
            adopt_saved(obj, services.block_create(depot=obj.depot, **fields))


_WEEKDAY_ABBREVIATIONS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class BlockAssignmentForm(ServiceModelForm):
    class Meta:
        model = BlockAssignment
        fields = ["block", "vehicle", "service_date"]

    def check_with_service(self) -> None:
        # block_assign computes the UTC window and rejects a vehicle that would be in two places at once.
        services.block_assign(
            block=self.instance.block, vehicle=self.instance.vehicle, service_date=self.instance.service_date
        )


@admin.register(BlockAssignment)
class BlockAssignmentAdmin(GrowingTableAdmin, DepotScopedAdmin):
    change_action = add_action = delete_action = Action.OPERATE
    form = BlockAssignmentForm
    # Another block or day is another assignment: on an existing one only the vehicle changes.
    readonly_on_change = ("block", "service_date")
    list_display = ["block", "depot", "service_date", "vehicle", "local_start", "local_end"]
    list_select_related = ["block__depot", "vehicle"]
    # No date_hierarchy: it reads every assignment for its dates on each page; the service date filter instead.
    list_filter = [("block__depot", DepotListFilter), "service_date"]
    search_fields = ["block__code", "vehicle__fleet_number"]
    autocomplete_fields = ["block", "vehicle"]

    @admin.display(description=_("depot"), ordering="block__depot__name")
    def depot(self, obj: BlockAssignment) -> Depot:
        return obj.block.depot

    @admin.display(description=_("departs (depot time)"), ordering="starts_at")
    def local_start(self, obj: BlockAssignment) -> str:
        return obj.starts_at.astimezone(obj.block.depot.zone).strftime("%Y-%m-%d %H:%M")

    @admin.display(description=_("returns (depot time)"), ordering="ends_at")
    def local_end(self, obj: BlockAssignment) -> str:
        return obj.ends_at.astimezone(obj.block.depot.zone).strftime("%Y-%m-%d %H:%M")

    def save_model(self, request, obj, form, change):
        adopt_saved(obj, services.block_assign(block=obj.block, vehicle=obj.vehicle, service_date=obj.service_date))

    def delete_model(self, request, obj):
        services.block_unassign(assignment=obj)

    def delete_queryset(self, request, queryset):
        for assignment in queryset:
            services.block_unassign(assignment=assignment)


admin.site.register(VehicleApiKey, VehicleApiKeyAdmin)

"""Admin of tariffs and chargers.

Tariffs belong to an organisation: any member reads them, its managers change them. Seasons, periods and
demand charges are parts of a tariff and follow its permissions. Depot staff change a charger's status
(a fault, maintenance), managers everything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from charging import admin_views, services
from charging.models import (
    Alert,
    Charger,
    ChargingPlan,
    Connector,
    DemandCharge,
    DepotEvent,
    PlannedCharge,
    Tariff,
    TariffPeriod,
    TariffSeason,
)
from charging.plan_delivery import plan_delivery
from charging.selectors import OUT_OF_ORDER, NightCost, charger_status_shown, night_costs
from charging.services import alerts_acknowledge, alerts_resolve
from config.audit import AuditedAdmin
from fleet.admin_paging import DepotListFilter, GrowingTableAdmin
from fleet.admin_scoping import (
    DepotScopedAdmin,
    DepotScopedInline,
    ScopedThroughParentAdmin,
    ServiceModelForm,
    adopt_saved,
    changed_values,
)
from fleet.local_time import local_datetime_label
from fleet.scoping import Action

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise, WithAnnotations


class TariffSeasonInline(DepotScopedInline, admin.TabularInline):
    model = TariffSeason
    fields = ["name", "starts_month", "starts_day", "ends_month", "ends_day"]
    extra = 0
    show_change_link = True  # the season's page holds its periods


class DemandChargeInline(DepotScopedInline, admin.TabularInline):
    model = DemandCharge
    fields = ["name", "price_per_kw_month", "applies_in_periods"]
    extra = 0


class _TariffCounts(TypedDict):
    season_count: int
    depot_count: int


class _SeasonCounts(TypedDict):
    period_count: int


class _ChargerCounts(TypedDict):
    connector_count: int


@admin.register(Tariff)
class TariffAdmin(AuditedAdmin, DepotScopedAdmin):
    change_action = add_action = delete_action = Action.MANAGE
    readonly_on_change = ("organization",)
    list_display = ["name", "organization", "currency", "season_count", "depot_count"]
    list_select_related = ["organization"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter), "currency"]
    search_fields = ["name"]
    inlines = [TariffSeasonInline, DemandChargeInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(season_count=Count("seasons", distinct=True), depot_count=Count("depots", distinct=True))
        )

    @admin.display(description=_("seasons"), ordering="season_count")
    def season_count(self, obj: WithAnnotations[Tariff, _TariffCounts]) -> int:
        return obj.season_count

    @admin.display(description=_("depots using it"), ordering="depot_count")
    def depot_count(self, obj: WithAnnotations[Tariff, _TariffCounts]) -> int:
        return obj.depot_count


class TariffPeriodInline(DepotScopedInline, admin.TabularInline):
    model = TariffPeriod
    fields = ["day_type", "period", "starts_at", "ends_at", "energy_price_per_kwh"]
    extra = 0


@admin.register(TariffSeason)
class TariffSeasonAdmin(AuditedAdmin, ScopedThroughParentAdmin):
    parent_path = "tariff"
    change_action = add_action = delete_action = Action.MANAGE
    list_display = ["name", "tariff", "starts", "ends", "period_count"]
    list_select_related = ["tariff"]
    list_filter = [("tariff", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "tariff__name"]
    autocomplete_fields = ["tariff"]
    inlines = [TariffPeriodInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(period_count=Count("periods"))

    @admin.display(description=_("from"), ordering="starts_month")
    def starts(self, obj: TariffSeason) -> str:
        return f"{obj.starts_day:02d}/{obj.starts_month:02d}"

    @admin.display(description=_("to"), ordering="ends_month")
    def ends(self, obj: TariffSeason) -> str:
        return f"{obj.ends_day:02d}/{obj.ends_month:02d}"

    @admin.display(description=_("periods"), ordering="period_count")
    def period_count(self, obj: WithAnnotations[TariffSeason, _SeasonCounts]) -> int:
        return obj.period_count


class ConnectorInline(DepotScopedInline, admin.TabularInline):
    model = Connector
    fields = ["connector_id", "standard", "max_kw", "status"]
    extra = 0
    change_action = Action.OPERATE
    operate_fields = ("status",)


class ChargerStatusFilter(admin.SimpleListFilter):
    """By status, counting a charger whose charger-level status is fine but a connector is not (one faulted
    connector of two: the charger shows under "Faulted" as well as under its own status)."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Charger.Status.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value in OUT_OF_ORDER:
            return queryset.filter(
                Q(status=value) | Q(pk__in=Connector.objects.filter(status=value).values("charger_id"))
            )
        return queryset.filter(status=value)


class ChargerForm(ServiceModelForm):
    class Meta:
        model = Charger
        fields = ["depot", "ocpp_charge_point_id", "name", "kind", "max_kw", "status"]

    def check_with_service(self) -> None:
        # charger_update refuses a power below one of the charger's connectors.
        if self.instance.pk:
            services.charger_update(
                charger=Charger.objects.get(pk=self.instance.pk),
                data=changed_values(self.instance, self, services.CHARGER_UPDATABLE_FIELDS),
            )


@admin.register(Charger)
class ChargerAdmin(AuditedAdmin, DepotScopedAdmin):
    form = ChargerForm
    change_action = Action.OPERATE
    add_action = delete_action = Action.MANAGE
    operate_fields = ("status",)
    list_display = ["name", "depot", "kind", "max_kw", "status_shown", "connector_count", "ocpp_charge_point_id"]
    list_select_related = ["depot"]
    list_filter = [("depot", admin.RelatedOnlyFieldListFilter), "kind", ChargerStatusFilter]
    search_fields = ["name", "ocpp_charge_point_id"]
    autocomplete_fields = ["depot"]
    inlines = [ConnectorInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(connector_count=Count("connectors"))
            .prefetch_related(Prefetch("connectors", queryset=Connector.objects.order_by("connector_id")))
        )

    @admin.display(description=_("status"), ordering="status")
    def status_shown(self, obj: Charger) -> StrOrPromise:
        return charger_status_shown(obj, list(obj.connectors.all()))

    @admin.display(description=_("connectors"), ordering="connector_count")
    def connector_count(self, obj: WithAnnotations[Charger, _ChargerCounts]) -> int:
        return obj.connector_count

    def save_model(self, request, obj, form, change):
        if change:
            charger = Charger.objects.get(pk=obj.pk)
            services.charger_update(charger=charger, data=changed_values(obj, form, services.CHARGER_UPDATABLE_FIELDS))
        else:
            fields = {name: getattr(obj, name) for name in services.CHARGER_UPDATABLE_FIELDS}
            adopt_saved(obj, services.charger_create(**fields))

    def delete_model(self, request, obj):
        services.charger_delete(charger=obj)

    def delete_queryset(self, request, queryset):
        for charger in queryset:
            services.charger_delete(charger=charger)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Connector:
            return super().save_formset(request, form, formset, change)
        # The formset validated every row (Connector.clean against the charger's power); the services save.
        charger = form.instance
        # What formset.save() would record: the admin's change message reads these.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for row in formset.deleted_forms:
            if row.instance.pk:
                services.connector_delete(connector=row.instance)
                formset.deleted_objects.append(row.instance)
        for row in formset.forms:
            if row in formset.deleted_forms or not row.has_changed():
                continue
            if row.instance.pk:
                connector = Connector.objects.get(pk=row.instance.pk)
                services.connector_update(
                    connector=connector, data=changed_values(row.instance, row, services.CONNECTOR_UPDATABLE_FIELDS)
                )
                formset.changed_objects.append((row.instance, row.changed_data))
            else:
                fields = {name: getattr(row.instance, name) for name in services.CONNECTOR_UPDATABLE_FIELDS}
                adopt_saved(row.instance, services.connector_create(charger=charger, **fields))
                formset.new_objects.append(row.instance)


# --- Plans, alerts and events: made by the planner and the depots, read (and acted on) here ----------------


class PlannedChargeInline(DepotScopedInline, admin.TabularInline):
    model = PlannedCharge
    fields = readonly_fields = (
        "vehicle",
        "connector",
        "arrival_at",
        "plug_in_at",
        "plug_out_at",
        "departure_at",
        "arrival_soc_pct",
        "required_soc_pct",
        "departure_soc_pct",
        "energy_kwh",
        "shortfall_kwh",
        "shortfall_reason",
    )
    extra = 0
    can_delete = False
    change_action = None  # plans are the optimizer's output: never edited by hand

    def get_queryset(self, request):
        # Each row shows its own name ("B-07 in <plan>"), which reads the plan and its depot: joined, not a
        # query per row.
        return super().get_queryset(request).select_related("vehicle", "connector__charger", "plan__depot")


@admin.register(ChargingPlan)
class ChargingPlanAdmin(GrowingTableAdmin, AuditedAdmin, DepotScopedAdmin):
    change_action = add_action = delete_action = None
    change_form_template = "admin/charging/chargingplan/change_form.html"
    actions = ["export_csv"]
    list_display = [
        "overview_link",
        "depot",
        "service_night",
        "version",
        "status",
        "trigger",
        "energy_kwh_rounded",
        "total_cost",
        "peak_kw_rounded",
        "site_limit_kw",
        "vehicles_short",
        "solver_status",
        "optimal",
    ]
    list_select_related = ["depot"]
    list_filter = [("depot", DepotListFilter), "status", "trigger", "service_night"]
    ordering = ["-service_night", "-id"]  # the plan_night_newest index; the model's (by depot name) sorts every plan
    exclude = ["instance"]
    readonly_fields = [f.name for f in ChargingPlan._meta.fields if f.name != "instance"]
    inlines = [PlannedChargeInline]

    # A re-plan's own figures are only what remains of the night: the energy and cost columns show the night's
    # total and, after a re-plan, the remaining part, labelled (``night_costs`` for the page's rows at once).
    @admin.display(description=_("night's energy (kWh)"))
    def energy_kwh_rounded(self, plan: ChargingPlan) -> str:
        cost = self._night_cost(plan)
        return _night_and_remaining(f"{cost.night_kwh:,.0f}", f"{cost.remaining_kwh:,.0f}", cost.replanned)

    @admin.display(description=_("peak (kW)"), ordering="peak_kw")
    def peak_kw_rounded(self, plan: ChargingPlan) -> str:
        return f"{plan.peak_kw:,.0f}"

    @admin.display(description=_("night's cost"))
    def total_cost(self, plan: ChargingPlan) -> str:
        cost = self._night_cost(plan)
        return _night_and_remaining(f"{cost.night:,.2f}", f"{cost.remaining:,.2f}", cost.replanned)

    @staticmethod
    def _night_cost(plan: ChargingPlan) -> NightCost:
        # Set on the page's rows by get_changelist_instance; a plan shown elsewhere is costed on its own.
        found = getattr(plan, "night_cost", None)
        return found if found is not None else night_costs([plan])[plan.pk]

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        costs = night_costs(rows)  # one read for the page, not one per row
        for plan in rows:
            plan.night_cost = costs[plan.pk]
        changelist.result_list = rows
        return changelist

    def get_queryset(self, request):
        # The optimizer input is large (every slot of every vehicle): lists and exports never need it.
        return super().get_queryset(request).defer("instance")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Whether each charger got this plan's profiles (the central system's answer; None without one).
        context["plan_delivery"] = plan_delivery(obj) if obj is not None else None
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    @admin.display(description=_("plan"))
    def overview_link(self, plan: ChargingPlan) -> str:
        url = reverse("admin:charging_chargingplan_overview", args=[plan.pk])
        return format_html('<a href="{}">{}</a>', url, _("Chart"))

    # --- the plan page and its downloads (charging/admin_views.py) -------------------------------------------

    def get_urls(self):
        def view(function, name):
            return path(
                f"<int:plan_id>/{name}/", self.admin_site.admin_view(function), name=f"charging_chargingplan_{name}"
            )

        return [
            view(self.overview_view, "overview"),
            view(require_POST(self.replan_view), "replan"),
            view(self.csv_view, "csv"),
            view(self.profiles_view, "profiles"),
            *super().get_urls(),
        ]

    def _plan(self, request, plan_id: int) -> ChargingPlan:
        # The admin's own queryset: another depot's plan is a 404, as on the change page.
        return get_object_or_404(
            ChargingPlanAdmin.get_queryset(self, request).select_related("depot__tariff").defer(None), pk=plan_id
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        plan = self.get_object(request, unquote(object_id))
        if plan is not None:  # else Django's own answer (404 or a redirect) follows
            extra_context = {
                **(extra_context or {}),
                "plan": plan,
                "night_cost": night_costs([plan])[plan.pk],
                "currency": plan.depot.tariff.currency if plan.depot.tariff is not None else "MXN",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def overview_view(self, request, plan_id: int):
        plan = self._plan(request, plan_id)
        return admin_views.overview(
            request,
            plan,
            admin_context={**self.admin_site.each_context(request), "opts": self.model._meta},
            may_replan=self.may(request, Action.OPERATE, plan),
        )

    def replan_view(self, request, plan_id: int):
        plan = self._plan(request, plan_id)
        if not self.may(request, Action.OPERATE, plan):
            raise PermissionDenied
        return admin_views.replan(request, plan)

    def csv_view(self, request, plan_id: int):
        return admin_views.plan_csv(self._plan(request, plan_id))

    def profiles_view(self, request, plan_id: int):
        return admin_views.plan_profiles(self._plan(request, plan_id), request.GET.get("ocpp", "1.6"))

    @admin.action(description=_("Export the selected plans (CSV)"))
    def export_csv(self, request, queryset):
        return admin_views.plans_csv(queryset)


def _night_and_remaining(night: str, remaining: str, replanned: bool) -> str:
    if not replanned:
        return night
    return format_html(
        '{}<br><span class="evf-night-cost-split">{}</span>',
        night,
        _("%(remaining)s remaining") % {"remaining": remaining},
    )


STORED_WORDING = ("message", "message_code", "message_params")


@admin.register(Alert)
class AlertAdmin(GrowingTableAdmin, DepotScopedAdmin):
    change_action = Action.OPERATE
    add_action = delete_action = None
    operate_fields = ()
    list_display = ["text", "depot", "kind", "severity", "status", "raised"]
    list_select_related = ["depot"]
    list_filter = [("depot", DepotListFilter), "status", "severity", "kind"]
    # The words are chosen when shown (charging.alert_messages): search what the row stores about the subject.
    search_fields = ["message", "key", "vehicle__fleet_number", "pack__serial"]
    # What it says, worded in the reader's language, instead of the stored code, parameters and old text.
    readonly_fields = ["text", *(f.name for f in Alert._meta.fields if f.name not in STORED_WORDING)]
    exclude = STORED_WORDING
    actions = ["acknowledge", "resolve"]

    @admin.display(description=_("message"))
    def text(self, obj: Alert) -> str:
        return obj.text

    @admin.display(description=_("raised"), ordering="created_at")
    def raised(self, obj: Alert) -> str:
        return local_datetime_label(obj.created_at, obj.depot)  # in the alert's depot zone, labelled

    def has_change_permission(self, request, obj=None) -> bool:
        # Alerts are acknowledged and resolved through the actions; the page itself is read-only.
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(description=_("Acknowledge selected alerts"))
    def acknowledge(self, request, queryset):
        allowed = self.scope_queryset(queryset, request.user, Action.OPERATE)
        count = alerts_acknowledge(alerts=allowed)
        self.message_user(request, _("%(n)d alert(s) acknowledged.") % {"n": count})

    @admin.action(description=_("Resolve selected alerts"))
    def resolve(self, request, queryset):
        allowed = self.scope_queryset(queryset, request.user, Action.OPERATE)
        count = alerts_resolve(alerts=allowed)
        self.message_user(request, _("%(n)d alert(s) resolved.") % {"n": count})


@admin.register(DepotEvent)
class DepotEventAdmin(GrowingTableAdmin, DepotScopedAdmin):
    change_action = add_action = delete_action = None
    list_display = ["occurred_at", "depot", "kind", "vehicle", "connector", "soc_pct", "reported_by"]
    list_select_related = ["depot", "vehicle", "connector__charger", "reported_by"]
    list_filter = [("depot", DepotListFilter), "kind", "service_night"]
    readonly_fields = [f.name for f in DepotEvent._meta.fields]


# Charging sessions (read-only, with a CSV export) live in their own module.
import charging.sessions_admin  # noqa: E402,F401

"""Admin of the timetable app: feed imports (with a preview), feed blocks (assign buses by energy), pins."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from fleet.admin_scoping import DepotScopedAdmin, has_role_for
from fleet.models import Depot, VehicleModel
from fleet.scoping import Action, restrict
from timetable import services
from timetable.gtfs import FeedError
from timetable.models import FeedImport, PinnedAssignment, TimetableBlock


class FeedUploadForm(forms.Form):
    depot = forms.ModelChoiceField(label=_("Depot"), queryset=Depot.objects.none())
    feed = forms.FileField(label=_("Feed"), help_text=_("A GTFS .zip"))
    date_from = forms.DateField(
        label=_("Date from"), required=False, help_text=_("First service date (default: today)")
    )
    date_to = forms.DateField(label=_("Date to"), required=False, help_text=_("Last service date (default: a week)"))
    vehicle_model = forms.ModelChoiceField(
        label=_("Vehicle model"), queryset=VehicleModel.objects.all(), required=False
    )
    confirm = forms.BooleanField(
        label=_("Confirm"), required=False, help_text=_("Unticked: only preview what would change.")
    )


@admin.register(FeedImport)
class FeedImportAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = None
    list_display = [
        "file_name",
        "depot",
        "service_from",
        "service_to",
        "blocks_created",
        "blocks_updated",
        "blocks_unchanged",
        "blocks_withdrawn",
        "imported_at",
    ]
    list_select_related = ["depot"]
    readonly_fields = [f.name for f in FeedImport._meta.fields]
    change_list_template = "admin/timetable/feedimport/change_list.html"

    def get_urls(self):
        return [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="timetable_feedimport_upload"),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a feed: first a preview of what would change (a dry run), then the import once confirmed."""
        depots = restrict(Depot.objects.all(), request.user, Action.OPERATE)
        if not depots.exists():
            raise PermissionDenied
        form = FeedUploadForm(request.POST or None, request.FILES or None)
        form.fields["depot"].queryset = depots  # type: ignore[attr-defined]  # a ModelChoiceField
        report = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            with tempfile.TemporaryDirectory() as tmp:
                feed_path = Path(tmp) / "feed.zip"
                with feed_path.open("wb") as out:
                    for chunk in data["feed"].chunks():
                        out.write(chunk)
                try:
                    report = services.gtfs_import(
                        depot=data["depot"],
                        path=feed_path,
                        date_from=data["date_from"],
                        date_to=data["date_to"],
                        vehicle_model=data["vehicle_model"],
                        user=request.user,
                        dry_run=not data["confirm"],
                    )
                except FeedError as exc:
                    form.add_error("feed", "; ".join(exc.problems))
                except ValidationError as exc:
                    form.add_error(None, "; ".join(exc.messages))
            if report is not None and not report.dry_run:
                self.message_user(
                    request,
                    _("Imported: %(c)d blocks created, %(u)d updated, %(w)d withdrawn.")
                    % {"c": len(report.created), "u": len(report.updated), "w": len(report.withdrawn)},
                    messages.SUCCESS,
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "report": report,
            "title": _("Import a GTFS feed"),
        }
        return TemplateResponse(request, "admin/timetable/feedimport/upload.html", context)


@admin.register(TimetableBlock)
class TimetableBlockAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = None
    list_display = ["block", "service_date", "gtfs_block_id", "service_km", "deadhead_km", "energy_kwh", "current"]
    list_select_related = ["block__depot"]
    list_filter = ["current", "block__service_date"]
    readonly_fields = [f.name for f in TimetableBlock._meta.fields]
    actions = ["assign_buses", "assign_buses_with_plan"]

    @admin.display(description=_("service date"), ordering="block__service_date")
    def service_date(self, link: TimetableBlock) -> dt.date | None:
        return link.block.service_date

    def has_assign_buses_permission(self, request: HttpRequest) -> bool:
        return has_role_for(request, Action.OPERATE)

    @admin.action(
        description=_("Assign buses by energy for the selected blocks' depots and days"), permissions=["assign_buses"]
    )
    def assign_buses(self, request: HttpRequest, queryset) -> None:
        self._assign(request, queryset, with_plan=False)

    @admin.action(
        description=_("Assign buses and plan the night before, until the assignment and the plan agree"),
        permissions=["assign_buses"],
    )
    def assign_buses_with_plan(self, request: HttpRequest, queryset) -> None:
        self._assign(request, queryset, with_plan=True)

    def _assign(self, request: HttpRequest, queryset, *, with_plan: bool) -> None:
        runs = sorted({(link.block.depot_id, link.block.service_date) for link in queryset.select_related("block")})
        depots = {d.pk: d for d in restrict(Depot.objects.all(), request.user, Action.OPERATE)}
        for depot_id, day in runs:
            if depot_id not in depots or day is None:
                continue
            try:
                if with_plan:
                    result = services.vehicles_assign_with_plan(depot=depots[depot_id], service_date=day)
                else:
                    result = services.vehicles_assign(depot=depots[depot_id], service_date=day)
            except ValidationError as exc:
                self.message_user(request, f"{depots[depot_id].code} {day}: {'; '.join(exc.messages)}", messages.ERROR)
                continue
            level = messages.SUCCESS if not result["uncovered"] else messages.WARNING
            self.message_user(
                request,
                f"{result['depot']} {day}: {len(result['assigned'])} blocks assigned, {len(result['uncovered'])} "
                f"uncovered ({result['status']}); the first-free-bus rule would leave "
                f"{len(result['naive_buses_below_reserve'])} buses below reserve",
                level,
            )
            if with_plan:
                plans = len(result["plan_rounds"]) - 1
                self.message_user(
                    request,
                    _("%(plans)d charging plans; assignment and plan agree: %(agreed)s")
                    % {"plans": plans, "agreed": _("yes") if result["plan_agreed"] else _("no")},
                    messages.SUCCESS if result["plan_agreed"] else messages.WARNING,
                )
            for item in result["uncovered"][:10]:
                self.message_user(request, f"  {item['block']}: {item['reason']}", messages.WARNING)


@admin.register(PinnedAssignment)
class PinnedAssignmentAdmin(DepotScopedAdmin):
    change_action = Action.OPERATE
    add_action = Action.OPERATE
    delete_action = Action.OPERATE
    list_display = ["block", "service_date", "vehicle", "pinned_by", "pinned_at"]
    list_select_related = ["block__depot", "vehicle", "pinned_by"]
    readonly_fields = ["pinned_by", "pinned_at"]

    def save_model(self, request, obj: PinnedAssignment, form, change) -> None:
        pin = services.assignment_pin(
            block=obj.block, vehicle=obj.vehicle, service_date=obj.service_date, user=request.user
        )
        obj.pk = pin.pk

"""Admin of the job records (``JobRun``): what ran, when, where, how long, with what result; "run now".

Registered on import; console/admin/__init__.py imports this module. Rows are read-only (workers write them). Depot
members see their depots' runs; fleet-wide runs (no depot) are for superusers. "Run now" needs a depot
manager (``Action.MANAGE``): it queues the same task with the same arguments as a new attempt, which runs
even if the job succeeded before (to redo a night after fixing data).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from fleet.admin_paging import DepotListFilter, GrowingTableAdmin
from fleet.admin_scoping import DepotScopedAdmin, has_role_for
from fleet.local_time import local_datetime_label
from fleet.scoping import Action, restrict
from jobs import runs as jobs
from jobs.models import JobRun
from jobs.selectors import job_names


class JobNameFilter(admin.SimpleListFilter):
    """By job name; the names come from an index skip-scan (``job_names``), not from ``DISTINCT`` over every run."""

    title = _("job")
    parameter_name = "job"

    def lookups(self, request, model_admin):
        return [(name, name) for name in job_names()]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(job=self.value())


@admin.register(JobRun)
class JobRunAdmin(GrowingTableAdmin, DepotScopedAdmin):
    change_action = add_action = None  # written by the workers only
    delete_action = None  # history: superusers may prune it
    list_display = [
        "job",
        "depot",
        "night",
        "status",
        "attempt",
        "started",
        "duration",
        "summary_short",
        "worker",
    ]
    list_select_related = ["depot"]
    list_filter = ["status", JobNameFilter, ("depot", DepotListFilter), "night"]
    search_fields = ["key", "summary", "error", "worker"]
    # No date_hierarchy: it reads every run for its dates on each page; the night filter narrows by date.
    ordering = ["-created_at", "-id"]  # served by the job_run_newest index
    readonly_fields = [field.name for field in JobRun._meta.fields]
    actions = ["run_now"]

    @admin.display(description=_("started"), ordering="started_at")
    def started(self, obj: JobRun) -> str:
        # In the run's depot zone (fleet-wide runs: the default depot zone), labelled.
        return local_datetime_label(obj.started_at, obj.depot) or "—"

    @admin.display(description=_("duration"), ordering="duration_seconds")
    def duration(self, obj: JobRun) -> str:
        return "" if obj.duration_seconds is None else f"{obj.duration_seconds:.1f} s"

    @admin.display(description=_("summary"))
    def summary_short(self, obj: JobRun) -> str:
        text = obj.summary or (obj.error.strip().splitlines() or [""])[-1]
        return text if len(text) <= 100 else text[:99] + "…"

    def has_run_permission(self, request: HttpRequest) -> bool:
        return has_role_for(request, Action.MANAGE)

    @admin.action(description=_("Run now (again) on a worker"), permissions=["run"])
    def run_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        allowed = restrict(queryset, request.user, Action.MANAGE)
        refused = queryset.count() - allowed.count()
        queued, skipped = [], []
        # One per key: selecting three attempts of one job runs it once.
        latest: dict[str, JobRun] = {}
        for run in allowed.order_by("key", "-attempt"):
            latest.setdefault(run.key, run)
        for run in latest.values():
            try:
                queued.append(jobs.job_rerun(run=run))
            except (ValueError, KeyError) as exc:
                skipped.append(f"{run.key}: {exc}")
        if queued:
            self.message_user(
                request,
                ngettext("%(n)d job queued to run again.", "%(n)d jobs queued to run again.", len(queued))
                % {"n": len(queued)},
                messages.SUCCESS,
            )
        for reason in skipped:
            self.message_user(request, _("Not queued: %(reason)s") % {"reason": reason}, messages.WARNING)
        if refused:
            self.message_user(
                request,
                _("%(n)d run(s) skipped: running a job again needs the depot's manager.") % {"n": refused},
                messages.WARNING,
            )

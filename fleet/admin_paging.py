"""Admin changelists over tables that grow every night (events, alerts, plans, job runs, forecasts, observations).

What costs a changelist its time when such a table holds hundreds of thousands of rows (measured at city scale,
bench/city_scale.py) is not the page of rows but what the admin asks about the whole table:

- the paginator's ``COUNT(*)``, and a second one for "N results (M total)";
- ``date_hierarchy``, which reads the whole (filtered) table for its first and last date and its distinct
  months or days on every page: these admins use a date ``list_filter`` instead (fixed choices, no query);
- ``RelatedOnlyFieldListFilter`` on the depot, which reads every row for the depots that occur in it: these
  admins offer the depots the user may see (``DepotListFilter``), one small query;
- an ordering no index serves (the admins order by an indexed column, newest first).

``GrowingTableAdmin`` sets the counting; each admin picks its filters, ordering and index.
"""

from __future__ import annotations

from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q

from fleet.admin_scoping import ROWS_PER_PAGE
from fleet.scoping import Action, restrict

# Above this many rows (the planner's estimate) an unfiltered list shows the estimate, not an exact count.
ESTIMATE_COUNT_ABOVE = 20_000


def estimated_rows(model) -> int | None:
    """The planner's estimate of ``model``'s rows (``pg_class.reltuples``, kept by autovacuum/ANALYZE), or None
    where there is none (not PostgreSQL, or a table never analysed)."""
    connection = connections[model._default_manager.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


class EstimatedCountPaginator(Paginator):
    """Counts exactly, except an unfiltered list of a large table, whose count is the planner's estimate: an
    exact ``COUNT(*)`` reads the whole table on every page. Filtered lists (a manager's depots, a filter, a
    search) are counted exactly. With an estimate, the last page may come out a little short or empty."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is not None and not query.where and not query.distinct and not query.combinator:
            estimate = estimated_rows(query.model)
            if estimate is not None and estimate > ESTIMATE_COUNT_ABOVE:
                return estimate
        return super().count


class GrowingTableAdmin(admin.ModelAdmin):
    """Mix in (before the admin's base) for a changelist over a table that grows with the fleet and the nights."""

    paginator = EstimatedCountPaginator
    # Rendering a row costs the admin 1-3 ms (its cells, links, the action checkbox): 50 rows a page, not 100.
    list_per_page = ROWS_PER_PAGE
    # "N results (M total)" costs a second count of the whole table; the admin then links "Show all" instead.
    show_full_result_count = False


class DepotListFilter(admin.RelatedFieldListFilter):
    """A list filter on a foreign key to ``Depot`` (or a path ending in one) offering the depots the user may see,
    without reading the listed table (``RelatedOnlyFieldListFilter`` reads every row for the depots in it)."""

    def field_choices(self, field, request, model_admin):
        from fleet.models import Depot

        visible = restrict(Depot.objects.all(), request.user, Action.VIEW).values("pk")
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(include_blank=False, limit_choices_to=Q(pk__in=visible), ordering=ordering)

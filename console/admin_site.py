"""Hooks into the default admin site (the project keeps ``django.contrib.admin``'s own site object).

The admin's front page is the fleet manager's dashboard: ``templates/admin/index.html`` draws it from the
context that ``add_index_context`` adds to the index view. Wrapping the bound view keeps ``admin.site`` (and
every ``admin.register`` in the apps) as it is, instead of swapping the whole site class in INSTALLED_APPS.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from functools import wraps
from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.template.response import SimpleTemplateResponse, TemplateResponse
from django.utils import timezone

ContextProvider = Callable[[HttpRequest], dict]

# The providers of each site whose index view is wrapped.
_providers_by_site: dict[AdminSite, list[ContextProvider]] = {}


def add_index_context(site: AdminSite, provider: ContextProvider) -> None:
    """Make ``site``'s index view also render ``provider(request)``. Must run before the URLconf loads
    (the apps' ``admin.py``, imported by the admin's autodiscovery, are early enough)."""
    providers = _providers_by_site.get(site)
    if providers is None:
        original = site.index
        providers = _providers_by_site[site] = []

        def index(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
            context: dict = {}
            for each in _providers_by_site[site]:
                context.update(each(request))
            return original(request, extra_context={**context, **(extra_context or {})})

        site.index = index  # type: ignore[method-assign]  # wrapping the bound view is the point (see above)
    if provider not in providers:
        providers.append(provider)


ZoneProvider = Callable[[], tzinfo]


def show_times_in_zone(site: AdminSite, zone: ZoneProvider) -> None:
    """Render every view of ``site`` with ``zone()`` as the current time zone (the server's stays UTC), so the
    admin's lists and forms show and read times in the default depot zone instead of UTC. Pages about one
    depot still label their times with that depot's zone (``fleet.local_time``). Template responses are
    rendered inside the zone: rendered later, they would fall back to UTC."""
    original = site.admin_view
    if getattr(original, "_evfleet_zone", None) is not None:
        return

    def admin_view(view: Callable, cacheable: bool = False) -> Callable:
        checked = original(view, cacheable)

        @wraps(checked)
        def in_zone(request: HttpRequest, *args, **kwargs):
            with timezone.override(zone()):
                response = checked(request, *args, **kwargs)
                if isinstance(response, SimpleTemplateResponse):
                    response.render()
            return response

        return in_zone

    admin_view._evfleet_zone = zone  # type: ignore[attr-defined]  # marks the site as wrapped
    site.admin_view = admin_view  # type: ignore[assignment]  # wrapping every view is the point

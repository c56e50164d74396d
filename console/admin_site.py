"""Hooks into the default admin site (the project keeps ``django.contrib.admin``'s own site object).

The admin's front page is the fleet manager's dashboard: ``templates/admin/index.html`` draws it from the
context that ``add_index_context`` adds to the index view. Wrapping the bound view keeps ``admin.site`` (and
every ``admin.register`` in the apps) as it is, instead of swapping the whole site class in INSTALLED_APPS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.template.response import TemplateResponse

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

"""Hooks into the default admin site (the project keeps ``django.contrib.admin``'s own site object).

The admin's front page is the fleet manager's dashboard: ``templates/admin/index.html`` draws it from the
context that ``add_index_context`` adds to the index view. Wrapping the bound view keeps ``admin.site`` (and
every ``admin.register`` in the apps) as it is, instead of swapping the whole site class in INSTALLED_APPS.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.admin import AdminSite
from django.http import HttpRequest

ContextProvider = Callable[[HttpRequest], dict]


def add_index_context(site: AdminSite, provider: ContextProvider) -> None:
    """Make ``site``'s index view also render ``provider(request)``. Must run before the URLconf loads
    (the apps' ``admin.py``, imported by the admin's autodiscovery, are early enough)."""
    if getattr(site.index, "_evfleet_providers", None) is None:
        original = site.index
        providers: list[ContextProvider] = []

        def index(request: HttpRequest, extra_context: dict | None = None):
            context: dict = {}
            for each in providers:
                context.update(each(request))
            return original(request, extra_context={**context, **(extra_context or {})})

        index._evfleet_providers = providers
        site.index = index
    if provider not in site.index._evfleet_providers:
        site.index._evfleet_providers.append(provider)

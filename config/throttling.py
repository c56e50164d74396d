"""Login throttling: the API token view and the admin login share one per-address budget.

The count lives in Django's default cache (Redis when ``REDIS_URL`` is set), so every worker process sees the
same number; the rate is ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"]`` (``EVFLEET_LOGIN_RATE``).
The API's requests per user and per vehicle are counted by ``config.rate_limits.ApiRateThrottle``.
"""

from __future__ import annotations

import math

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import SimpleRateThrottle


class LoginRateThrottle(SimpleRateThrottle):
    """Attempts per client address, whether the credentials were right or not (a guesser learns nothing)."""

    scope = "login"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


@extend_schema(summary="Exchange a username and password for an API token (throttled per address)")
class ThrottledObtainAuthToken(ObtainAuthToken):
    throttle_classes = [LoginRateThrottle]


obtain_auth_token = ThrottledObtainAuthToken.as_view()


def admin_login(request: HttpRequest, extra_context=None) -> HttpResponse:
    """``admin.site.login``, refusing sign-in attempts (POSTs) over the login rate with 429."""
    if request.method == "POST":
        throttle = LoginRateThrottle()
        # DRF's throttle reads only the address and the user off the request: Django's request carries both.
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]
            wait_s = throttle.wait() or 60
            return HttpResponse(
                "Too many sign-in attempts from this address. Try again later.",
                status=429,
                content_type="text/plain; charset=utf-8",
                headers={"Retry-After": str(math.ceil(wait_s))},
            )
    return admin.site.login(request, extra_context)

"""The city feeds' rate limit: requests per token (user) or, for a public feed, per client address."""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle


class CityFeedThrottle(SimpleRateThrottle):
    """``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["city_feed"]`` (``EVFLEET_CITY_FEED_RATE``), read per request."""

    scope = "city_feed"

    def __init__(self):
        pass  # the rate is read in allow_request, so that a changed setting takes effect

    def allow_request(self, request, view) -> bool:
        from rest_framework.settings import api_settings

        # The stubs type the rates as numbers; DRF's are strings such as "60/min".
        self.rate = api_settings.DEFAULT_THROTTLE_RATES[self.scope]  # type: ignore[assignment]
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        user = request.user
        ident = f"user-{user.pk}" if user and user.is_authenticated else f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

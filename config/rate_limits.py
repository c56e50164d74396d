"""The API's default throttle: requests per user and per vehicle (``REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]``).

Apart from config/throttling.py (the login throttle and the views it guards) on purpose: DRF imports its default
throttle classes while it defines ``APIView``, so this module must import no view, directly or not.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class ApiRateThrottle(SimpleRateThrottle):
    """Requests per user or per vehicle, in the scope of the endpoint (``DEFAULT_THROTTLE_CLASSES``).

    Scopes: ``user`` and ``vehicle`` for every endpoint but the telemetry batch upload, which counts in
    ``telemetry_batch`` (per vehicle for a vehicle key, per user for depot staff). A vehicle is counted by its id,
    not its key: during a key rotation both keys share the vehicle's budget. Anonymous requests are not counted:
    they are refused (401) before throttling, and the token view has the login throttle instead.
    """

    BATCH_UPLOAD_ROUTE = "v1:telemetry-batch"  # config/urls.py's namespace, fleet/telemetry/urls.py's name

    def __init__(self):
        # The scope depends on who asks and where: chosen per request in allow_request (as DRF's
        # ScopedRateThrottle does), not at construction.
        pass

    def allow_request(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return True
        # A vehicle key's principal (fleet.telemetry.keys.VehiclePrincipal) says so: config imports no app.
        if getattr(user, "is_vehicle", False):
            principal, self.ident = "vehicle", f"vehicle-{user.vehicle.pk}"
        else:
            principal, self.ident = "user", f"user-{user.pk}"
        match = getattr(request, "resolver_match", None)
        self.scope = "telemetry_batch" if match and match.view_name == self.BATCH_UPLOAD_ROUTE else principal
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self) -> str:
        # DRF's SimpleRateThrottle reads the rates once, at import; read them per request so that a changed
        # setting (tests, override_settings) takes effect.
        try:
            rate: str = api_settings.DEFAULT_THROTTLE_RATES[self.scope]  # type: ignore[index, assignment]  # scope set above; rates are str, not the stubs' numbers
            return rate
        except KeyError as exc:
            raise ImproperlyConfigured(f"No throttle rate for the scope {self.scope!r}") from exc

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.ident}

    def wait(self) -> float:
        # Until enough of the window's requests expire to admit one more. (DRF's answer is None, and so no
        # Retry-After, when the history is longer than a rate lowered since.)
        assert self.num_requests is not None and self.duration is not None  # parsed in allow_request
        if self.num_requests < 1:
            return float(self.duration)
        oldest_to_expire = self.history[min(self.num_requests, len(self.history)) - 1]
        return max(oldest_to_expire + self.duration - self.now, 1.0)

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FleetConfig(AppConfig):
    name = "fleet"
    verbose_name = _("Fleet")

    def ready(self):
        # Fleet's nightly job lives in a sub-package, which the registry's discovery of ``<app>.nightly``
        # modules does not look into: it registers here, at start-up (it is light: no numerical stack).
        import fleet.telemetry.nightly  # noqa: F401

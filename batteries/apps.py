from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatteriesConfig(AppConfig):
    name = "batteries"
    verbose_name = _("Batteries")

    def ready(self) -> None:
        # Fleet's duty cycles count equivalent full cycles against the installed pack's capacity, which only
        # this app knows: hand fleet the reader (fleet sits below batteries and never imports it).
        from batteries.selectors import installed_pack_nominal_capacity
        from fleet.telemetry.duty import installed_pack_capacity_source

        installed_pack_capacity_source(installed_pack_nominal_capacity)

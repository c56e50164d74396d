from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from config.i18n import translate_derived_names


class ConsoleConfig(AppConfig):
    """The top floor: what reads across apps for people - the admin's front page and site, the job records'
    admin, the demo (``load_demo``), ``run_night``, ``seed_schedules`` and ``healthcheck``. Nothing imports it."""

    name = "console"
    verbose_name = _("Console")

    def ready(self) -> None:
        # Here, on the top floor, once every project app's models are loaded (config/i18n.py says why).
        translate_derived_names()

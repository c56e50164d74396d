from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    """The overnight job machinery: job records, the stage registry, the runner, schedules, fan-out.

    Below the domain apps: they register their stages and jobs with it and run their work through it; it
    imports none of them (it knows a depot only as the model label ``fleet.Depot``).
    """

    name = "jobs"
    verbose_name = _("Jobs")

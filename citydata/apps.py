from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CitydataConfig(AppConfig):
    name = "citydata"
    verbose_name = _("City data feeds")

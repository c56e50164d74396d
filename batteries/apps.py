from django.apps import AppConfig


class BatteriesConfig(AppConfig):
    name = "batteries"
    verbose_name = "Batteries"

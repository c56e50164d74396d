from django.core.management.base import BaseCommand

from config.i18n import write_derived_msgids


class Command(BaseCommand):
    help = "Write the derived model and field names as gettext calls for makemessages (config/derived_names.py)."

    def handle(self, *args, **options):
        path = write_derived_msgids()
        self.stdout.write(f"wrote {path}")

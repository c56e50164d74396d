"""The console's admin: the front page (the fleet manager's dashboard), the job records, and the registry's
pages composed with what the other apps know (console/admin/registry.py). Imported by the admin's
autodiscovery after every other app's admin (console is last in INSTALLED_APPS)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from console.admin import jobs, registry  # noqa: F401  (register themselves)
from console.admin_site import add_index_context, show_times_in_zone
from console.dashboard import dashboard_context
from fleet.local_time import default_zone

admin.site.site_header = "evfleet"
admin.site.site_title = "evfleet"
admin.site.index_title = _("Fleet administration")
admin.site.site_url = None  # there is no public site: no "View site" link
# The front page is the fleet manager's dashboard (templates/admin/index.html).
add_index_context(admin.site, dashboard_context)
# Cross-depot pages (lists, forms) show times in the default depot zone, not UTC.
show_times_in_zone(admin.site, default_zone)

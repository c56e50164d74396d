"""Admin pieces for vehicle API keys, self-contained; fleet/admin.py registers them:

    from fleet.telemetry.admin import VehicleApiKeyAdmin, issue_vehicle_api_key, rotate_vehicle_api_keys
    admin.site.register(VehicleApiKey, VehicleApiKeyAdmin)
    class VehicleAdmin(...):
        actions = [issue_vehicle_api_key, rotate_vehicle_api_keys]
        list_select_related = [..., "live_state"]          # for the live-state column, see
        # fleet.telemetry.selectors.live_state_summary(vehicle)

A new key is shown once, on the page the action returns (never in a message: messages may travel in a
cookie). Keys are managed by depot managers (``Action.MANAGE``) and superusers.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin, messages
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from fleet.admin_scoping import has_role_for
from fleet.models import VehicleApiKey
from fleet.scoping import Action, restrict
from fleet.telemetry.keys import vehicle_key_issue, vehicle_key_revoke, vehicle_key_rotate

ROTATION_GRACE = dt.timedelta(hours=1)


def _keys_page(request, *, title: str, keys: list, rotated: bool = False, retire_at=None):
    context = {
        **admin.site.each_context(request),
        "title": title,
        "keys": keys,
        "rotated": rotated,
        "retire_at": retire_at,
        "back": request.get_full_path(),
    }
    response = HttpResponse(render_to_string("admin/fleet/vehicle/api_keys.html", context, request=request))
    response["Cache-Control"] = "no-store"  # the page holds secrets
    return response


def _manageable(request, queryset):
    allowed = restrict(queryset, request.user, Action.MANAGE)
    if allowed.count() < queryset.count():
        messages.warning(request, gettext("Keys were issued only for the vehicles of depots you manage."))
    return allowed


@admin.action(description=_("Issue an API key (existing keys keep working)"))
def issue_vehicle_api_key(modeladmin, request, queryset):
    keys = [
        (vehicle, vehicle_key_issue(vehicle=vehicle, created_by=request.user, label="admin")[1])
        for vehicle in _manageable(request, queryset)
    ]
    return _keys_page(request, title=gettext("New vehicle API keys"), keys=keys)


@admin.action(description=_("Rotate API keys (old keys stop in 1 hour)"))
def rotate_vehicle_api_keys(modeladmin, request, queryset):
    keys = [
        (vehicle, vehicle_key_rotate(vehicle=vehicle, created_by=request.user, grace=ROTATION_GRACE)[1])
        for vehicle in _manageable(request, queryset)
    ]
    return _keys_page(
        request,
        title=gettext("Rotated vehicle API keys"),
        keys=keys,
        rotated=True,
        retire_at=timezone.now() + ROTATION_GRACE,
    )


@admin.action(description=_("Revoke the selected keys now"))
def revoke_vehicle_api_keys(modeladmin, request, queryset):
    revoked = 0
    for key in restrict(queryset, request.user, Action.MANAGE):
        vehicle_key_revoke(key=key)
        revoked += 1
    messages.success(request, gettext("%(n)d key(s) revoked.") % {"n": revoked})


class VehicleApiKeyAdmin(admin.ModelAdmin):
    """Keys are issued from the vehicle list (the only time the secret exists); here they are listed and revoked."""

    list_display = ["vehicle", "prefix", "label", "created_at", "created_by", "last_used_at", "revoked_at", "active"]
    list_filter = ["revoked_at"]
    list_select_related = ["vehicle", "created_by"]
    search_fields = ["vehicle__fleet_number", "prefix", "label"]
    readonly_fields = ["vehicle", "prefix", "created_at", "created_by", "last_used_at"]
    fields = ["vehicle", "prefix", "label", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = [revoke_vehicle_api_keys]

    @admin.display(boolean=True, description=_("active"))
    def active(self, obj: VehicleApiKey) -> bool:
        return obj.is_active_at(timezone.now())

    def get_queryset(self, request):
        return restrict(super().get_queryset(request), request.user, Action.MANAGE)

    def has_add_permission(self, request) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        # Keys are a manager's business: only users who manage some depot see the page at all (the roles are
        # read once per request by the admin's scoping helper).
        return has_role_for(request, Action.MANAGE)

    def has_module_permission(self, request) -> bool:
        # Depot roles, not Django's permission table, open the admin (see fleet.admin_scoping).
        return self.has_view_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the row is the audit trail

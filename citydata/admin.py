"""Admin of the city feeds: feed settings, NGSI-LD subscriptions with their deliveries, and the live fleet map."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin
from django.db import models
from django.db.models import OuterRef, Subquery
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from citydata import admin_views
from citydata.models import FeedSettings, NgsiNotification, NgsiSubscription
from fleet.admin_scoping import DepotScopedAdmin
from fleet.scoping import Action

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class LatestDelivery(TypedDict):
    """What ``NgsiSubscriptionAdmin.get_queryset`` adds to each subscription: its latest notification's."""

    latest_status: str | None
    latest_attempts: int | None


@admin.register(FeedSettings)
class FeedSettingsAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = Action.MANAGE
    readonly_on_change = ("organization",)
    list_display = ["organization", "gtfs_rt_public", "position_delay_seconds"]
    list_select_related = ["organization"]

    def get_urls(self):
        return [
            path(
                "fleet-map/",
                self.admin_site.admin_view(self.fleet_map_view),
                name="citydata_fleet_map",
            ),
            *super().get_urls(),
        ]

    def fleet_map_view(self, request):
        context = {**self.admin_site.each_context(request), "opts": self.model._meta}
        return admin_views.fleet_map(request, admin_context=context)

    def changelist_view(self, request, extra_context=None):
        extra = {"fleet_map_url": reverse("admin:citydata_fleet_map"), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)


NOTIFICATION_INLINE_FIELDS = [
    "created_at", "status", "entity_count", "attempts", "last_http_status", "last_error", "delivered_at"
]  # fmt: skip


class NgsiNotificationInline(admin.TabularInline):
    model = NgsiNotification
    fields = list(NOTIFICATION_INLINE_FIELDS)  # a copy: the base types fields as (nested) fieldset entries
    readonly_fields = NOTIFICATION_INLINE_FIELDS
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at"]


@admin.register(NgsiSubscription)
class NgsiSubscriptionAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = Action.MANAGE
    readonly_on_change = ("organization",)
    list_display = ["__str__", "entity_type", "active", "last_notified_at", "delivery_status"]
    list_select_related = ["organization"]
    list_filter = ["entity_type", "active"]
    readonly_fields = ["created_at", "last_notified_at"]
    inlines = [NgsiNotificationInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        latest = NgsiNotification.objects.filter(subscription=OuterRef("pk")).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .annotate(
                latest_status=Subquery(latest.values("status")[:1]),
                latest_attempts=Subquery(latest.values("attempts")[:1]),
            )
        )

    @admin.display(description=_("latest delivery"))
    def delivery_status(self, obj: WithAnnotations[NgsiSubscription, LatestDelivery]) -> str:
        if obj.latest_status is None:
            return "—"
        label = NgsiNotification.Status(obj.latest_status).label
        return format_html("{} ({} attempts)", label, obj.latest_attempts)


@admin.register(NgsiNotification)
class NgsiNotificationAdmin(DepotScopedAdmin):
    change_action = add_action = None
    delete_action = Action.MANAGE
    list_display = ["subscription", "created_at", "status", "entity_count", "attempts", "last_http_status"]
    list_select_related = ["subscription__organization"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in NgsiNotification._meta.fields]

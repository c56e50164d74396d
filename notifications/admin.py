"""Admin of notification rules (each user their own), webhook endpoints (managers) and deliveries (read-only:
what was sent to whom, with its attempts and the alerts it carried)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from fleet.admin_scoping import DepotScopedAdmin
from fleet.scoping import Action, organization_ids_for, restrict
from notifications.models import Delivery, Notification, NotificationRule, WebhookEndpoint

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


@admin.register(NotificationRule)
class NotificationRuleAdmin(DepotScopedAdmin):
    # Anyone with a depot role keeps their own rules; superusers keep everyone's.
    change_action = add_action = delete_action = Action.VIEW
    list_display = ["user", "depot", "min_severity", "kinds_shown", "by_email", "webhook", "mode", "is_active"]
    list_select_related = ["user", "depot", "webhook"]
    list_filter = ["mode", "min_severity", "by_email", "is_active"]

    def scope_queryset(self, queryset: QuerySet, user, action: Action) -> QuerySet:
        return queryset if user.is_superuser else queryset.filter(user=user)

    def get_exclude(self, request, obj=None):
        return () if request.user.is_superuser else ("user",)

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            obj.user = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("kinds"))
    def kinds_shown(self, obj: NotificationRule) -> str:
        return ", ".join(obj.kinds) if obj.kinds else str(_("all"))


class _EndpointCounts(TypedDict):
    delivery_count: int


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = Action.MANAGE
    list_display = ["name", "organization", "url", "is_active", "delivery_count"]
    list_select_related = ["organization"]

    def scope_queryset(self, queryset: QuerySet, user, action: Action) -> QuerySet:
        # The secret is on the page: managers only, even to look.
        return restrict(queryset, user, Action.MANAGE)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(delivery_count=Count("deliveries"))

    @admin.display(description=_("messages sent"), ordering="delivery_count")
    def delivery_count(self, obj: WithAnnotations[WebhookEndpoint, _EndpointCounts]) -> int:
        return obj.delivery_count


class NotificationInline(admin.TabularInline):
    model = Notification
    fields = readonly_fields = ("alert", "status", "created_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(DepotScopedAdmin):
    change_action = add_action = delete_action = None
    list_display = ["created_at", "channel", "to", "subject", "is_digest", "status", "attempts", "sent_at"]
    list_select_related = ["user", "endpoint"]
    list_filter = ["channel", "status", "is_digest"]
    search_fields = ["to", "subject"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [NotificationInline]

    def scope_queryset(self, queryset: QuerySet, user, action: Action) -> QuerySet:
        if user.is_superuser:
            return queryset
        return queryset.filter(Q(user=user) | Q(endpoint__organization__in=organization_ids_for(user, Action.MANAGE)))

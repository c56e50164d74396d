"""API-wide plumbing: the exception handler that keeps every error a JSON 4xx."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    # Services raise Django's ValidationError (the same one the admin shows as form errors);
    # the API answers it as DRF would answer a serializer error: 400 with field-level JSON.
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = serializers.ValidationError(detail=detail)
    return drf_exception_handler(exc, context)


# --- Depot scoping for DRF -------------------------------------------------------------------------------
# Viewsets and relation fields narrow every queryset with fleet.scoping.restrict, so another depot's
# object is a 404 when addressed by URL and a 400 "does not exist" when referenced in a body.

from rest_framework import permissions  # noqa: E402

from fleet.scoping import Action, restrict  # noqa: E402

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def request_action(request, write_action: Action = Action.OPERATE) -> Action:
    return write_action if request.method in WRITE_METHODS else Action.VIEW


class DepotScopedViewSetMixin:
    """``get_queryset`` restricted to the user's depots. Reads need any role, writes ``write_action``.

    A row the user may see but not change answers 403 on writes (via ``ScopedWritePermission``); a row the
    user may not see answers 404.
    """

    write_action: Action = Action.OPERATE

    def get_queryset(self):
        return restrict(super().get_queryset(), self.request.user, Action.VIEW)

    def get_write_queryset(self):
        return restrict(super().get_queryset(), self.request.user, self.write_action)


class ScopedWritePermission(permissions.BasePermission):
    message = "Your role in this depot does not allow changes."

    def has_object_permission(self, request, view, obj):
        if request.method not in WRITE_METHODS:
            return True
        return view.get_write_queryset().filter(pk=obj.pk).exists()


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference to another object, accepted only if the requesting user may ``action`` it."""

    def __init__(self, *, action: Action = Action.OPERATE, **kwargs):
        self.scope_action = action
        super().__init__(**kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        if request is None:  # schema generation
            return queryset
        return restrict(queryset, request.user, self.scope_action)

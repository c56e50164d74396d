"""Depot scoping for the Django admin: what a fleet manager sees, may change and may pick in a form.

Every admin of the project mixes in ``DepotScopedAdmin``. Permissions come from depot memberships (through
``fleet.scoping``), not from Django's per-model permission table: a manager with ``is_staff=True`` and no
Django permission uses the admin for their depots; superusers see and change everything.

- ``get_queryset`` is narrowed with ``restrict(.., Action.VIEW)``: another depot's object is not found (the
  admin redirects to its index with "doesn't exist"), and autocomplete, list filters and the delete
  confirmation, which all read through ``get_queryset``, inherit the narrowing.
- Each admin says which action a change, an addition and a deletion need (``None``: superusers only).
- Every foreign-key choice is narrowed to what the user may act on, so depot B cannot even be picked.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from fleet.scoping import ROLES_ALLOWED, Action, DepotScoped, OrganizationScoped, restrict

ROWS_PER_PAGE = 50  # every changelist's page (``GrowingTableAdmin``'s too)
_ROLES_CACHE = "_evfleet_admin_roles"
_OBJECT_CACHE = "_evfleet_admin_object_permissions"


def _is_admin_user(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def _roles(request: HttpRequest) -> frozenset[str]:
    """The user's roles over all their depots; one query per request (the admin asks many times)."""
    user = request.user
    if not user.is_authenticated:
        return frozenset()  # anonymous users hold no membership
    roles = getattr(request, _ROLES_CACHE, None)
    if roles is None:
        from fleet.models import DepotMembership

        roles = frozenset(
            DepotMembership.objects.filter(user=user).order_by().values_list("role", flat=True).distinct()
        )
        setattr(request, _ROLES_CACHE, roles)
    return roles


def has_role_for(request: HttpRequest, action: Action | None) -> bool:
    """Whether the user may ``action`` *something* somewhere (no object in view: lists, add buttons)."""
    user = request.user
    if not _is_admin_user(user):
        return False
    if user.is_superuser:
        return True
    if action is None:
        return False
    return any(role in ROLES_ALLOWED[action] for role in _roles(request))


class DepotScopedAdmin(admin.ModelAdmin):
    """ModelAdmin whose rows, permissions and form choices follow the user's depot memberships.

    ``change_action`` is needed to change a row, ``add_action`` to add one, ``delete_action`` to delete one;
    ``None`` leaves the operation to superusers. ``operate_fields``, when set, are the only fields a user
    who may operate but not manage the row can change (staff set a charger's status, not its power).
    ``readonly_on_change`` are fields fixed once the row exists (the organisation a vehicle belongs to).
    """

    change_action: Action | None = Action.OPERATE
    add_action: Action | None = Action.MANAGE
    delete_action: Action | None = Action.MANAGE
    operate_fields: tuple[str, ...] | None = None
    readonly_on_change: tuple[str, ...] = ()
    # Rendering a row costs the admin 1-3 ms (its cells, links, the action checkbox's widget): Django's 100 rows
    # made the city's vehicle, charger and pack lists 80-90 KiB and render-bound (bench/city_scale.py).
    list_per_page = ROWS_PER_PAGE

    # --- which rows -------------------------------------------------------------------------------------

    def scope_queryset(self, queryset: QuerySet, user, action: Action) -> QuerySet:
        """``queryset`` narrowed to what ``user`` may ``action``. Models without a depot scope override this."""
        return restrict(queryset, user, action)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope_queryset(super().get_queryset(request), request.user, Action.VIEW)

    # --- what the user may do -----------------------------------------------------------------------------

    def may(self, request: HttpRequest, action: Action | None, obj: models.Model | None = None) -> bool:
        if not has_role_for(request, action):
            return False
        if obj is None or obj.pk is None or request.user.is_superuser:
            return True
        if action is None:
            return False  # has_role_for let only superusers through, and they returned above
        cache = getattr(request, _OBJECT_CACHE, None)
        if cache is None:
            cache = {}
            setattr(request, _OBJECT_CACHE, cache)
        key = (obj._meta.label, obj.pk, action)
        if key not in cache:
            rows = type(obj)._default_manager.filter(pk=obj.pk)
            cache[key] = self.scope_queryset(rows, request.user, action).exists()
        return cache[key]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role_for(request, Action.VIEW)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.may(request, Action.VIEW, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.may(request, self.change_action, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.may(request, self.add_action)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.may(request, self.delete_action, obj)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly += [name for name in self.readonly_on_change if name not in readonly]
            if self.operate_fields is not None and not self.may(request, Action.MANAGE, obj):
                readonly += [
                    field.name
                    for field in self.model._meta.fields
                    if field.editable
                    and not field.primary_key
                    and field.name not in self.operate_fields
                    and field.name not in readonly
                ]
        return readonly

    # --- what the user may pick -----------------------------------------------------------------------------

    def reference_action(self, *, adding: bool = False) -> Action:
        """The action a user needs on an object to reference it from this admin's forms.

        Adding needs what ``add_action`` needs (a manager of A who is staff at C adds vehicles to A only).
        Where only managers edit more than ``operate_fields``, the references are a manager's business too.
        """
        if adding and self.add_action is not None:
            return self.add_action
        if self.operate_fields is not None:
            return Action.MANAGE
        return self.change_action or Action.MANAGE

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if "queryset" not in kwargs:
            match = getattr(request, "resolver_match", None)
            adding = bool(match and match.url_name and match.url_name.endswith("_add"))
            queryset = scoped_choices(self.admin_site, db_field, request, self.reference_action(adding=adding))
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        # Autocomplete reads this admin's get_queryset (VIEW); the form that asks may accept less (a staff
        # member who only views depot C must not be offered C's vehicles for an assignment). Offer what
        # the asking form will accept.
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "autocomplete":
            source_admin = _autocomplete_source_admin(self.admin_site, request)
            if source_admin is not None:
                queryset = self.scope_queryset(queryset, request.user, source_admin.reference_action())
        return super().get_search_results(request, queryset, search_term)


def _autocomplete_source_admin(site: admin.AdminSite, request: HttpRequest) -> DepotScopedAdmin | None:
    from django.apps import apps

    try:
        source_model = apps.get_model(request.GET["app_label"], request.GET["model_name"])
    except (KeyError, LookupError):
        return None  # the autocomplete view itself answers a malformed request
    source_admin = site._registry.get(source_model)
    return source_admin if isinstance(source_admin, DepotScopedAdmin) else None


def scoped_choices(site: admin.AdminSite, db_field, request: HttpRequest, action: Action) -> QuerySet | None:
    """The rows a foreign key may point at for this user, or ``None`` if the target has no depot scope.

    The target's own admin decides (its ``scope_queryset``), so a model scoped through a parent (a tariff
    season through its tariff) is narrowed the same way in its list and in other admins' forms.
    """
    target = db_field.remote_field.model
    queryset = target._default_manager.all()
    target_admin = site._registry.get(target)
    if isinstance(target_admin, DepotScopedAdmin):
        ordering = target_admin.get_ordering(request)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return target_admin.scope_queryset(queryset, request.user, action)
    if issubclass(target, DepotScoped | OrganizationScoped):
        return restrict(queryset, request.user, action)
    return None


class ScopedThroughParentAdmin(DepotScopedAdmin):
    """For a model without its own scope that belongs to a scoped parent (``parent_path``: ORM path to it)."""

    parent_path: str = ""

    def scope_queryset(self, queryset: QuerySet, user, action: Action) -> QuerySet:
        parent = self.model._meta.get_field(self.parent_path.split("__")[0]).related_model
        for step in self.parent_path.split("__")[1:]:
            parent = parent._meta.get_field(step).related_model
        allowed = restrict(parent._default_manager.all(), user, action)
        return queryset.filter(**{f"{self.parent_path}__in": allowed.values("pk")})


class DepotScopedInline(InlineModelAdmin):
    """Inline rows follow the permissions the parent's admin gives on the parent object.

    Mix in before ``admin.TabularInline``/``StackedInline``. Inline rows are the parent's details, so their
    change, add and delete need ``change_action``/``add_action``/``delete_action`` on the *parent*.
    """

    change_action: Action | None = Action.MANAGE
    add_action: Action | None = Action.MANAGE
    delete_action: Action | None = Action.MANAGE
    operate_fields: tuple[str, ...] | None = None

    def _parent_admin(self) -> DepotScopedAdmin:
        # Every admin of the project mixes in DepotScopedAdmin, the parents of scoped inlines included.
        return cast(DepotScopedAdmin, self.admin_site._registry[self.parent_model])

    def has_view_permission(self, request, obj=None) -> bool:
        return self._parent_admin().may(request, Action.VIEW, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._parent_admin().may(request, self.change_action, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._parent_admin().may(request, self.add_action, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._parent_admin().may(request, self.delete_action, obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if (
            self.operate_fields is not None
            and obj is not None
            and not self._parent_admin().may(request, Action.MANAGE, obj)
        ):
            readonly += [
                field.name
                for field in self.model._meta.fields
                if field.editable
                and not field.primary_key
                and field.name not in self.operate_fields
                and field.name not in readonly
                and not (field.remote_field and field.remote_field.model is self.parent_model)
            ]
        return readonly

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and db_field.remote_field.model is not self.parent_model:
            queryset = scoped_choices(self.admin_site, db_field, request, self.change_action or Action.MANAGE)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# --- forms whose writes go through a service ------------------------------------------------------------


class _RollBack(Exception):
    """Raised inside a savepoint to undo a service's dry run."""


class ServiceModelForm(forms.ModelForm):
    """A ModelForm whose object is saved by a service (``fleet.services``, ``batteries.services``).

    Services check more than the model's ``clean()`` (a vehicle in two blocks at once, a swap before the
    current installation began). ``check_with_service`` runs the service in a savepoint that is always
    rolled back, after the model's own validation passed, so its ``ValidationError`` becomes a form error
    instead of a 500 at save time. The admin then calls the service for real in ``save_model``.
    """

    def check_with_service(self) -> None:
        """Call the service with the cleaned values (``self.instance`` already holds them)."""

    # Django's own UserCreationForm extends _post_clean the same way: it runs after instance.full_clean().
    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # django-stubs leave out the private BaseModelForm._post_clean
        if self.errors:
            return  # the model's own messages are clearer; do not stack the service's on top
        try:
            with transaction.atomic():
                self.check_with_service()
                raise _RollBack
        except _RollBack:
            pass
        except ValidationError as exc:
            self.add_service_error(exc)

    def add_service_error(self, exc: ValidationError) -> None:
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for field, errors in exc.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)


def adopt_saved(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's unsaved ``obj`` the row a service created (the admin logs and redirects with it)."""
    for field in obj._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


def changed_values(obj: models.Model, form: forms.ModelForm, fields: tuple[str, ...]) -> dict[str, Any]:
    """The values of ``fields`` the form changed, read from ``obj`` (the form already copied them there)."""
    return {name: getattr(obj, name) for name in form.changed_data if name in fields}

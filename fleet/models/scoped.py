"""The depot-scope mixins, declared in ``config.scopes`` (below every app, so that the job records of the
``jobs`` app can declare their depot scope too) and re-exported here for fleet's models and older migrations."""

from config.scopes import DepotScoped, OrganizationScoped, Role

__all__ = ["DepotScoped", "OrganizationScoped", "Role"]

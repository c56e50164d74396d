"""Where blocks came from (GTFS feed imports) and which assignments staff pinned by hand."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from fleet.models.scoped import DepotScoped


class FeedImport(DepotScoped, models.Model):
    """One import of a GTFS feed into a depot's blocks, with its report."""

    depot = models.ForeignKey("fleet.Depot", on_delete=models.PROTECT, related_name="feed_imports")
    file_name = models.CharField(max_length=200)
    feed_sha256 = models.CharField(max_length=64)
    feed_version = models.CharField(max_length=100, blank=True)
    service_from = models.DateField()
    service_to = models.DateField()
    imported_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    blocks_created = models.PositiveIntegerField(default=0)
    blocks_updated = models.PositiveIntegerField(default=0)
    blocks_unchanged = models.PositiveIntegerField(default=0)
    blocks_withdrawn = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.file_name} -> {self.depot} ({self.service_from}..{self.service_to})"


class TimetableBlock(DepotScoped, models.Model):
    """A fleet Block made from a GTFS feed: its trips, distances and energy, and whether the latest import of
    its dates still has it (``current``; a withdrawn block keeps its row and assignments for the record)."""

    depot_path = "block__depot"

    block = models.OneToOneField("fleet.Block", on_delete=models.CASCADE, related_name="timetable")
    feed_import = models.ForeignKey(FeedImport, on_delete=models.PROTECT, related_name="blocks")
    gtfs_block_id = models.CharField(max_length=100, blank=True, help_text=_("Empty: chained by evfleet."))
    trip_ids = models.JSONField(default=list)
    service_km = models.FloatField()
    deadhead_km = models.FloatField()
    season_factor = models.FloatField()
    energy_kwh = models.FloatField()
    current = models.BooleanField(default=True)

    class Meta:
        ordering = ["block__service_date", "block__departs_at"]

    def __str__(self) -> str:
        return str(self.block)


class PinnedAssignment(DepotScoped, models.Model):
    """Staff's own choice of bus for a block on a date; the optimiser keeps it."""

    depot_path = "block__depot"

    block = models.ForeignKey("fleet.Block", on_delete=models.CASCADE, related_name="pins")
    vehicle = models.ForeignKey("fleet.Vehicle", on_delete=models.CASCADE, related_name="pins")
    service_date = models.DateField()
    pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    pinned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service_date", "block"]
        constraints = [models.UniqueConstraint(fields=["block", "service_date"], name="one_pin_per_block_and_day")]

    def __str__(self) -> str:
        return _("%(block)s on %(date)s: %(vehicle)s (pinned)") % {
            "block": self.block,
            "date": self.service_date,
            "vehicle": self.vehicle,
        }

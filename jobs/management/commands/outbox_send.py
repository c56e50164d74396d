"""``manage.py outbox_send``: send the task outbox's pending rows now (what Redis refused while it was away)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jobs.outbox import outbox_dispatch, outbox_status


class Command(BaseCommand):
    help = "Send the tasks recorded in the outbox while the task queue (Redis) was unavailable."

    def handle(self, *args, **options):
        done = outbox_dispatch()
        status = outbox_status()
        self.stdout.write(f"outbox: {done.sent} sent, {status['pending']} pending")
        if done.broker_down:
            raise CommandError("The task queue is still unavailable; the pending tasks stay in the outbox.")

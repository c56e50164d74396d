"""What the batteries app tells the apps above it, without importing them.

``pack_ageing_checked``: sent after every abnormal-ageing check of a pack, with ``pack``, ``vehicle``,
``depot`` and ``reasons`` (a list of ``{"code", "params"}``, codes of the alert message catalogue
``charging.alert_messages``: ``ageing_below_forecast``, ``ageing_faster_than_peers``; empty when the pack ages
normally). Alerts belong to the
charging app, above batteries: it raises or resolves the pack's ageing alert when it hears this
(``charging.alerts.pack_ageing_alert``) and returns the alert, which the sender hands back to its caller.
"""

from django.dispatch import Signal

pack_ageing_checked = Signal()

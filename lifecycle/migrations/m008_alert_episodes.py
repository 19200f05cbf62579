"""Alerts: current and worst severity of an episode.

`severity` is now the severity of the alert's latest failing window (the one its summary
describes) and `worst_severity` the worst of its episode; before, `severity` kept the worst
while the summary moved on, so the two disagreed. Existing alerts start with both equal.
"""

NAME = "alerts: worst severity beside the current one"

STATEMENTS = [
    "ALTER TABLE alerts ADD COLUMN worst_severity VARCHAR",
    "UPDATE alerts SET worst_severity = severity",
]

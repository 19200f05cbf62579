"""Registry: review rounds, so approvals count only towards the current request.

A version that was rejected (or rolled back) and is sent for review again starts a new round;
approvals of earlier rounds stay on record but no longer count towards the quorum.
"""

NAME = "registry: review rounds"

STATEMENTS = [
    "ALTER TABLE model_versions ADD COLUMN review_round INTEGER DEFAULT 0",
    "ALTER TABLE approvals ADD COLUMN review_round INTEGER DEFAULT 1",
]

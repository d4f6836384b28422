"""`manage.py faults [--only NAME…] [--json]`: the fault suite (simulator/faults.py), one row per fault.

Needs Postgres, a local Redis it may restart, and an active NLU model; `make faults` prepares a
database of its own and runs this.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from simulator.faults import SCENARIOS, redis_is_local

COLUMNS = (
    "fault", "sent", "acknowledged", "stored_once", "stored_more_than_once", "stored_unacknowledged", "errors",
    "sockets_closed", "sockets_reopened", "jobs_finished", "jobs_failed", "stuck",
)  # fmt: skip


class Command(BaseCommand):
    help = "Kill workers and web processes, restart Redis, terminate Postgres connections under load; a table."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="Run only these (repeatable).")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        names = options["only"] or list(SCENARIOS)
        if "redis_restart" in names and not redis_is_local():
            raise CommandError("redis_restart restarts the local Redis; REDIS_URL names another one")
        rows = []
        for name in names:
            self.stderr.write(f"fault: {name} …")
            rows.append(SCENARIOS[name]())
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        self.stdout.write(" | ".join(COLUMNS))
        for row in rows:
            self.stdout.write(" | ".join(str(row.get(c, "")) for c in COLUMNS))

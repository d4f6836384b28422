"""`manage.py learn [--sync]`: run one learning cycle and print what each step did."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run one learning cycle (learning/cycle.py): every learning step in order, each as its Celery task."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--sync", action="store_true", help="Run the tasks in this process instead of queueing them to a worker."
        )
        parser.add_argument("--timeout", type=float, default=3600.0, help="Seconds to wait for each queued step.")
        parser.add_argument("--json", action="store_true", help="Print the cycle's report as one JSON object.")

    def handle(self, *args, **options) -> None:
        from learning.cycle import LearningTimeout, run_learning_cycle

        def on_step(name: str, step: dict) -> None:
            if not options["json"]:
                style = self.style.SUCCESS if step["status"] == "done" else self.style.ERROR
                self.stdout.write(style(f"{name:12s} {step['status']:7s} job {step['job']}: {step['message']}"))

        try:
            report = run_learning_cycle(sync=options["sync"], timeout=options["timeout"], on_step=on_step)
        except LearningTimeout as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report, default=str))

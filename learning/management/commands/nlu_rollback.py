"""Roll the NLU back to the version promoted before the active one."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Re-activate the previously promoted NLU version; the current one is marked rejected."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--note", default="", help="Why (stored on the rejected version).")

    def handle(self, *args, **options) -> None:
        # Registry only: no torch here. Running processes swap on their next turn.
        from assistant.nlu import NLU_MODELS
        from assistant.registry import RegistryError

        before = NLU_MODELS.active_version()
        try:
            now = NLU_MODELS.rollback(note=options["note"] or "rolled back with manage.py nlu_rollback")
        except RegistryError as exc:
            raise CommandError(f"Nothing rolled back: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Rolled back from {before.version if before else '?'} (now rejected) to {now.version}: "
                f"NLU {now.version} is active ({now.path})."
            )
        )

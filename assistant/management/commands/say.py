"""`manage.py say --user NAME [--device ROOM_OR_NAME] [--json] "utterance"`: one turn from the command line.

Turns said within SESSION_RESUME_MINUTES of each other, to the same device, are one session."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assistant.pipeline.turn import TurnInputError, handle_turn
from assistant.text import TextError, check_utterance
from assistant.world import ensure_home
from assistant.world.home import get_or_create_user
from assistant.world.speakers import find_speaker, speaker_names
from feedback.models import Session


class Command(BaseCommand):
    help = "Run one utterance through the assistant and print the reply (or the whole turn with --json)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("utterance", help="What the user says, in quotes.")
        parser.add_argument("--user", required=True, help="User name; created with a demo home if missing.")
        parser.add_argument("--device", help="The speaker spoken to: its name or its room (e.g. kitchen).")
        parser.add_argument("--json", action="store_true", help="Print the turn as one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        text: str = options["utterance"]
        try:
            # A control character or an undecodable byte from the shell cannot be stored; say why.
            check_utterance(text)
        except TextError as exc:
            raise CommandError(str(exc)) from None
        try:
            user = get_or_create_user(options["user"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        ensure_home(user)

        device = None
        if options["device"] is not None:
            device = find_speaker(user, options["device"])
            if device is None:
                known = ", ".join(speaker_names(user)) or "none"
                raise CommandError(f"No speaker named or in {options['device']!r}. Your speakers: {known}.")

        try:
            # Consecutive `say` commands are one conversation (SESSION_RESUME_MINUTES), so the answer to
            # a question the assistant just asked ("Which room?") is read as that answer.
            session = Session.resumable(user, device, Session.Channel.CLI)
            turn = handle_turn(user, text=text, device=device, session=session, channel=Session.Channel.CLI)
        except TurnInputError as exc:
            raise CommandError(str(exc)) from None

        if options["json"]:
            self.stdout.write(json.dumps(turn.as_dict(), ensure_ascii=False))
        else:
            self.stdout.write(turn.response)

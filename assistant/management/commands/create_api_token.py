"""`manage.py create_api_token NAME`: print a new API key for NAME (created if missing).

Only the key is printed, so that `TOKEN=$(python manage.py create_api_token alice)` works.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assistant.models import ApiToken
from assistant.world import ensure_home
from assistant.world.home import get_or_create_user


class Command(BaseCommand):
    help = "Create an API token for a user (creating the user with a demo home if missing) and print its key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="User name.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = get_or_create_user(options["name"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        ensure_home(user)
        token = ApiToken.objects.create(user=user)
        self.stdout.write(token.key)

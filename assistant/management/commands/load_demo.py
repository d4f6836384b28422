"""`manage.py load_demo [--reset]`: the demo user and its home. Idempotent and fast to re-run."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from assistant.world.home import ensure_home, reset_home

DEMO_USERNAME = "demo"
DEFAULT_PASSWORD = "demo-password"


class Command(BaseCommand):
    help = "Create the demo user (password from DEMO_PASSWORD) with its demo home; safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset", action="store_true", help="Also put the demo home's devices and player back to their start."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        env_password = os.environ.get("DEMO_PASSWORD") or None
        password = env_password or DEFAULT_PASSWORD
        user_model = get_user_model()
        with transaction.atomic():
            user, created = user_model._default_manager.get_or_create(**{user_model.USERNAME_FIELD: DEMO_USERNAME})
            # A new user gets the password; an existing one keeps its own unless
            # DEMO_PASSWORD says otherwise (re-running must not undo a changed password).
            if created or (env_password and not user.check_password(env_password)):
                user.set_password(password)
                user.save(update_fields=["password"])
                password_note = password
            elif user.check_password(DEFAULT_PASSWORD):
                password_note = DEFAULT_PASSWORD
            else:
                password_note = None
        home = ensure_home(user)
        if options["reset"]:
            changed = reset_home(home)
            self.stdout.write(f"Reset the demo home ({len(changed)} device(s) changed).")

        verb = "Created" if created else "Found"
        self.stdout.write(f"{verb} the demo user with a home of {home.devices.count()} devices.")
        if password_note is None:
            self.stdout.write(self.style.SUCCESS(f"Log in as: {DEMO_USERNAME}  (password unchanged)"))
        else:
            self.stdout.write(self.style.SUCCESS(f"Log in as: {DEMO_USERNAME}  password: {password_note}"))

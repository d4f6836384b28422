"""Simulate users talking to the assistant for some days; report defect rates per arm.

    python manage.py simulate --goals ../shared/data/slurp/paraphrase_groups.jsonl \
        --asr-pairs ../shared/data/slurp/asr_pairs.jsonl --users 20 --days 3 --sync \
        --json var/sim.json --plot var/sim.png

See simulator/ and the README section "Simulator".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from learning.cycle import LEARNERS

DEFAULT_DATA = Path(settings.BASE_DIR).parent / "shared" / "data" / "slurp"


class Command(BaseCommand):
    help = "Run the user simulator and self-learning benchmark; write a JSON report (and a plot)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--goals", type=Path, default=DEFAULT_DATA / "paraphrase_groups.jsonl")
        parser.add_argument("--asr-pairs", type=Path, default=DEFAULT_DATA / "asr_pairs.jsonl")
        parser.add_argument("--tier", default="goal_precise_heuristic", help="Goal tier to use ('all' for every tier).")
        parser.add_argument("--users", type=int, default=200)
        parser.add_argument("--days", type=int, default=7)
        parser.add_argument("--turns-per-user-day", type=int, default=10)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--arms", default="control,global,global+personal")
        parser.add_argument("--sync", action="store_true", help="Run the learning tasks eagerly in this process.")
        parser.add_argument(
            "--via",
            nargs="+",
            default=["inprocess"],
            metavar=("DRIVER", "URL"),
            help="inprocess (default), `api URL` (a running server) or `ws URL` (its chat WebSocket).",
        )
        parser.add_argument(
            "--unsupported",
            choices=["exclude", "include"],
            default="exclude",
            help="Goals whose intent the assistant has no skill for: leave out (default) or bring them too.",
        )
        parser.add_argument("--behaviour", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--tag", default=None, help="Simulated usernames are sim-<tag>-uNNNN (default s<seed>).")
        parser.add_argument(
            "--learning",
            choices=list(LEARNERS),
            default="all",
            help="Which learners run between days (learning/cycle.py): all (default), none, rewrites, nlu or preferences.",
        )
        parser.add_argument("--no-learning", action="store_true", help="The same as --learning none.")
        parser.add_argument(
            "--processes",
            type=int,
            default=os.cpu_count() or 1,
            help="In-process driver: split the users across this many processes (default: one per core).",
        )
        parser.add_argument("--learning-timeout", type=float, default=3600.0)
        parser.add_argument(
            "--reviewer-labels",
            type=int,
            default=0,
            help="A simulated staff reviewer labels where this many of the likeliest failures failed before each "
            "learning cycle, as a person hearing the recording would (default 0: nobody reviews).",
        )
        parser.add_argument("--truth", type=Path, default=None, help="Also write every turn's ground truth (JSONL).")
        parser.add_argument("--json", type=Path, required=True, dest="json_out")
        parser.add_argument("--plot", type=Path, default=None)

    def handle(self, *args, **options) -> None:
        from simulator.data import DataError
        from simulator.drivers import DriverError
        from simulator.run import SimConfig, run_simulation
        from simulator.users import Behaviour

        via = options["via"]
        if via[0] not in ("inprocess", "api", "ws") or len(via) > 2:
            raise CommandError("--via takes `inprocess`, `api URL` or `ws URL`.")
        if via[0] != "inprocess" and len(via) != 2:
            raise CommandError(f"--via {via[0]} needs the server's URL.")
        overrides = {}
        for item in options["behaviour"]:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--behaviour takes KEY=VALUE, not {item!r}.")
            overrides[key.strip()] = value.strip()
        for out in (options["json_out"], options["plot"], options["truth"]):
            if out is not None and not out.parent.exists():
                raise CommandError(f"The folder of {out} does not exist.")
        try:
            config = SimConfig(
                goals=options["goals"],
                asr_pairs=options["asr_pairs"],
                users=options["users"],
                days=options["days"],
                turns_per_user_day=options["turns_per_user_day"],
                seed=options["seed"],
                arms=[a.strip() for a in options["arms"].split(",") if a.strip()],
                sync=options["sync"],
                via=via[0],
                url=via[1] if len(via) == 2 else None,
                tier=None if options["tier"] == "all" else options["tier"],
                unsupported=options["unsupported"],
                behaviour=Behaviour.with_overrides(overrides),
                tag=options["tag"],
                learning="none" if options["no_learning"] else options["learning"],
                processes=options["processes"] if via[0] == "inprocess" else 1,
                learning_timeout=options["learning_timeout"],
                truth_path=options["truth"],
                reviewer_labels=options["reviewer_labels"],
            )
            report = run_simulation(config, progress=lambda m: self.stdout.write(m))
        except (DataError, DriverError, ValueError) as exc:
            raise CommandError(str(exc)) from exc

        options["json_out"].write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        if options["plot"] is not None:
            from simulator.plot import plot_report

            plot_report(report, options["plot"])
        summary = report["summary"]
        self.stdout.write(
            f"{summary['turns']} turns, defect rate {summary['defect_rate']}; "
            f"day 1: " + ", ".join(f"{a}={s['defect_rate']}" for a, s in report["days"][0]["arms"].items())
        )
        self.stdout.write(self.style.SUCCESS(f"report written to {options['json_out']}"))

"""`manage.py bench_load`: open-loop load over real chat sockets and the JSON API; prints JSON.

    python manage.py bench_load --workers 1 --sockets 500 --rate 50 --duration 60 --json
    python manage.py bench_load --workers 2 --knee 10,20,30,40,60,80 --step-seconds 20 --json
    python manage.py bench_load --url http://127.0.0.1:8000 ...      (a server already running)

One user per socket (500 sockets: 500 people online), each sending at --rate turns a second
in all, open loop (simulator/load.py says what is measured). Without --url a server is
started for the run: `manage.py serve --workers N` on this database (Postgres and Redis, as
in production). The load users and their turns are deleted afterwards unless --keep.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from simulator.load import LoadClient, delete_users, make_users, start_server, stop_server, stored_once


class Command(BaseCommand):
    help = "Open-loop load over chat sockets and the API; first-reply-word latency, errors, stored-once check."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", help="A running server (default: start `manage.py serve` for the run).")
        parser.add_argument("--workers", type=int, default=1, help="Web processes of the server started here.")
        parser.add_argument("--sockets", type=int, default=500)
        parser.add_argument("--rate", type=float, default=50.0, help="Turns per second.")
        parser.add_argument("--duration", type=float, default=60.0, help="Seconds of load.")
        parser.add_argument("--api-share", type=float, default=0.1, help="Share of turns sent through the API.")
        parser.add_argument("--knee", help="Comma-separated rates, each run for --step-seconds, until p95 > 1 s.")
        parser.add_argument("--step-seconds", type=float, default=20.0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--keep", action="store_true", help="Keep the load users and their turns.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["sockets"] < 1 or options["rate"] <= 0 or options["duration"] <= 0:
            raise CommandError("--sockets, --rate and --duration must be positive")
        rates = [float(r) for r in options["knee"].split(",")] if options["knee"] else None
        users = make_users(options["sockets"])
        server, url = None, options["url"]
        try:
            if url is None:
                try:
                    server, url = start_server(options["workers"])
                except RuntimeError as exc:
                    raise CommandError(str(exc)) from None
            report = asyncio.run(self._run(url, users, options, rates))
        finally:
            if server is not None:
                stop_server(server)
            if not options["keep"]:
                delete_users()
        keys = {k: options[k] for k in ("sockets", "rate", "duration", "api_share", "workers", "knee", "step_seconds")}
        report["config"] = {**keys, "speaking_rate_wps": settings.SPEAKING_RATE_WPS}
        self.stdout.write(json.dumps(report if options["json"] else report.get("summary") or report["knee"], indent=2))

    async def _run(self, url: str, users: list[dict], options: dict, rates: list[float] | None) -> dict:
        client = LoadClient(url, users, api_share=options["api_share"], seed=options["seed"])
        await client.open(options["sockets"])
        report: dict[str, Any] = {}
        try:
            if rates:
                steps = []
                for rate in rates:
                    stats, seconds = await client.load(rate, options["step_seconds"])
                    steps.append({"rate": rate, **stats.summary(seconds)})
                    if (steps[-1]["p95_ms"] or 0) > 1000 or steps[-1]["errors"]:
                        break
                knee = next((s["rate"] for s in steps if (s["p95_ms"] or 0) > 1000), None)
                report["knee"] = {"rate_where_p95_passes_1s": knee, "steps": steps}
            else:
                stats, seconds = await client.load(options["rate"], options["duration"])
                report["summary"] = stats.summary(seconds)
        finally:
            await client.close()
        report["stored"] = await asyncio.to_thread(stored_once, client.stats.sent)
        return report

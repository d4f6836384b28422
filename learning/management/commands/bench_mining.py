"""`manage.py bench_mining --turns 1000000 --json`: store that many turns shaped like real use,
then time rewrite mining on them (learning/mining.py) and report its peak memory. Prints JSON.

The generated traffic: many users (about 25 turns each) bring requests drawn from a Zipf
distribution over a few thousand "requests", each with several phrasings of which some
fail (the NLU reads them as another intent) and the others work; a user who fails
rephrases a few seconds later (stored as a Rephrase, as the detector would), and
some users have a misheard variant of their own. Turns carry a defect probability as the
defect model would store it. Rows are written with COPY (Postgres only) under users named
`bench-mining-*`, which are deleted afterwards unless --keep.

--shards K mines as the learning step does past MINE_ROWS_PER_SHARD: the graph's components in up
to K shards, each a "mine_shard" job that any running learning worker may take (this process
takes the rest); start workers first to measure them sharing it.
"""

from __future__ import annotations

import io
import json
import random
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

PREFIX = "bench-mining-"


class Command(BaseCommand):
    help = "Generate stored turns shaped like real use and time rewrite mining on them; prints JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--turns", type=int, default=100_000)
        parser.add_argument("--turns-per-user", type=int, default=25)
        parser.add_argument("--requests", type=int, default=3000, help="Distinct requests people make.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--keep", action="store_true", help="Keep the generated users and turns.")
        parser.add_argument("--store", action="store_true", help="Also reconcile the mined rules with the store.")
        parser.add_argument(
            "--shards", type=int, default=1, help="Most shards to mine in (1: in this process, as before)."
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("bench_mining writes with COPY: it needs DATABASE_URL on Postgres")
        if options["turns"] < 10:
            raise CommandError("--turns must be at least 10")
        from feedback.models import RewriteRule
        from learning.mining import chain_ends, collect, mine, mine_in_shards, plan_shards, store
        from learning.models import Job

        self._delete()
        rules_before = RewriteRule.objects.order_by("-id").values_list("id", flat=True).first() or 0
        jobs_before = Job.objects.order_by("-id").values_list("id", flat=True).first() or 0
        started = time.monotonic()
        generated = self._generate(options)
        generate_s = time.monotonic() - started
        try:
            t0 = time.monotonic()
            occ = collect()
            t1 = time.monotonic()
            shards = plan_shards(occ, options["shards"]) if options["shards"] > 1 else []
            shard_workers: list[str] = []
            if len(shards) > 1:
                candidates = mine_in_shards(occ, shards, lambda fraction, message: None)
                parts = Job.objects.filter(id__gt=jobs_before, kind="mine_shard").values_list("result", flat=True)
                shard_workers = sorted({part.get("worker", "") for part in parts})
            else:
                occ.ends = chain_ends(occ)
                candidates = mine(occ)
            t2 = time.monotonic()
            changes = store(candidates, occ) if options["store"] else None
            t3 = time.monotonic()
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        finally:
            if not options["keep"]:
                self._delete()
                # The global rules --store made name no user: they are the ones created since the start.
                RewriteRule.objects.filter(id__gt=rules_before).delete()
                Job.objects.filter(id__gt=jobs_before, kind="mine_shard").delete()
        report = {
            "turns": generated["turns"],
            "users": generated["users"],
            "rephrases": generated["rephrases"],
            "generate_s": round(generate_s, 1),
            "mining": {
                "read_s": round(t1 - t0, 1),
                "mine_s": round(t2 - t1, 1),
                "store_s": round(t3 - t2, 1) if changes is not None else None,
                "total_s": round(t3 - t0, 1),
                "peak_rss_mb": round(peak_mb),
                "occurrences": len(occ.node),
                "utterances": occ.nodes,
                "shards": [len(rows) for rows in shards] if len(shards) > 1 else None,
                "shard_workers": shard_workers or None,
                "rules": {
                    "global": sum(1 for c in candidates if c.user_id is None),
                    "personal": sum(1 for c in candidates if c.user_id is not None),
                },
                "changes": changes,
            },
        }
        self.stdout.write(json.dumps(report, indent=None if options["json"] else 2))

    # -- generating ------------------------------------------------------------------------
    def _generate(self, options: dict) -> dict[str, int]:
        rng = random.Random(options["seed"])
        n_turns = options["turns"]
        n_users = max(1, n_turns // options["turns_per_user"])
        requests = []
        for r in range(options["requests"]):
            phrasings = [f"request {r} phrasing {p}" for p in range(rng.randint(2, 5))]
            failing = set(rng.sample(range(len(phrasings)), k=rng.randint(0, len(phrasings) - 1)))
            requests.append((phrasings, failing))
        zipf = [1.0 / (k + 1) for k in range(len(requests))]
        start = datetime(2026, 1, 5, tzinfo=UTC)
        with connection.cursor() as cursor:
            users = io.StringIO()
            for u in range(n_users):
                users.write(f"{PREFIX}{u:07d}\t!\tf\tf\tt\t{start.isoformat()}\t\t\t\n")
            users.seek(0)
            with cursor.copy(
                "COPY auth_user (username, password, is_superuser, is_staff, is_active, date_joined, "
                "first_name, last_name, email) FROM STDIN"
            ) as copy:
                copy.write(users.read())
            cursor.execute("SELECT min(id) FROM auth_user WHERE username LIKE %s", [PREFIX + "%"])
            first_user = cursor.fetchone()[0]
            cursor.execute("SELECT COALESCE(max(id), 0) FROM feedback_session")
            next_session = cursor.fetchone()[0] + 1
            cursor.execute("SELECT COALESCE(max(id), 0) FROM feedback_turn")
            next_turn = cursor.fetchone()[0] + 1
            sessions, turns, links = io.StringIO(), io.StringIO(), io.StringIO()
            made = rephrased = 0
            for u in range(n_users):
                user_id = first_user + u
                session_id = next_session + u
                sessions.write(f"{session_id}\t{user_id}\tsim\t{start.isoformat()}\n")
                misheard = rng.random() < 0.3  # this user's voice garbles one of their requests
                at = start + timedelta(seconds=rng.uniform(0, 3600))
                quota = options["turns_per_user"]
                while quota > 0 and made < n_turns:
                    phrasings, failing = requests[rng.choices(range(len(requests)), weights=zipf)[0]]
                    tried = rng.randrange(len(phrasings))
                    previous = None
                    for _attempt in range(3):
                        text = phrasings[tried]
                        if misheard and rng.random() < 0.2:
                            text = text.replace("phrasing", "frazing")
                        fails = tried in failing or "frazing" in text
                        defect = rng.uniform(0.7, 0.98) if fails else rng.uniform(0.01, 0.2)
                        intent = "out_of_scope" if fails else f"intent_{phrasings[0].split()[1]}"
                        status = "oos" if fails else "ok"
                        turns.write(
                            f"{next_turn}\t{session_id}\t{user_id}\t{at.isoformat()}\t{text}\t{text}\t{intent}\t{{}}\t"
                            f"ok\t{status}\t{{}}\t[]\t0\t\tf\t{defect:.4f}\tbench\t\t\t\t\t\n"
                        )
                        if previous is not None:
                            links.write(f"{previous}\t{next_turn}\t0.9\t5000\tbench\t{at.isoformat()}\n")
                            rephrased += 1
                        previous = next_turn
                        next_turn += 1
                        made += 1
                        quota -= 1
                        at += timedelta(seconds=rng.uniform(3, 12))
                        if not fails or quota <= 0 or made >= n_turns or rng.random() < 0.25:
                            break
                        tried = rng.randrange(len(phrasings))
                    at += timedelta(minutes=rng.uniform(10, 600))
                if made >= n_turns:
                    n_users = u + 1
                    break
            for buffer, sql in (
                (sessions, "COPY feedback_session (id, user_id, channel, started_at) FROM STDIN"),
                (
                    turns,
                    "COPY feedback_turn (id, session_id, user_id, created_at, raw_text, asr_text, intent, slots, "
                    "response, status, context, trace, total_ms, idempotency_key, survey_asked, defect_probability, "
                    "defect_model_version, prompt_reason, failure_point, failure_point_model_version, "
                    "nlu_model_version, skill) FROM STDIN",
                ),
                (
                    links,
                    "COPY feedback_rephrase (first_id, second_id, score, gap_ms, detector_version, created_at) FROM STDIN",
                ),
            ):
                buffer.seek(0)
                with cursor.copy(sql) as copy:
                    while chunk := buffer.read(1 << 20):
                        copy.write(chunk)
            for table in ("feedback_session", "feedback_turn", "feedback_rephrase", "auth_user"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        return {"turns": made, "users": n_users, "rephrases": rephrased}

    def _delete(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM auth_user WHERE username LIKE %s", [PREFIX + "%"])
            if not cursor.fetchone():
                return
            users = f"(SELECT id FROM auth_user WHERE username LIKE '{PREFIX}%%')"
            cursor.execute(
                f"DELETE FROM feedback_rephrase WHERE first_id IN (SELECT id FROM feedback_turn WHERE user_id IN {users})"
            )
            cursor.execute(f"DELETE FROM feedback_rewriterule WHERE user_id IN {users}")
            cursor.execute(f"DELETE FROM feedback_turn WHERE user_id IN {users}")
            cursor.execute(f"DELETE FROM feedback_session WHERE user_id IN {users}")
            cursor.execute(f"DELETE FROM auth_user WHERE username LIKE '{PREFIX}%%'")

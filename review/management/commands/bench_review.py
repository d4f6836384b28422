"""`manage.py bench_review [--turns N] [--requests R] [--keep]`: how fast the review pages answer
with N stored turns (the issue's figure: p95 <= 150 ms at 1 M turns).

Generates N turns for a thousand bench users (about a third scored as likely defects, over SLURP's
train sentences, see _wordings), groups them as a learning cycle would (learning/clusters.py), then times R
requests of each page as a staff member through Django's test client, and prints p50/p95/max per page
as JSON. The bench users and everything of theirs are deleted afterwards unless --keep.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.test import Client
from django.utils import timezone

from feedback.models import DefectCluster, Session, Turn
from learning.clusters import build_clusters

PREFIX = "bench-review-"
USERS = 1000
VERBS = ("turn on", "turn off", "dim", "brighten", "switch off", "put on", "play", "stop", "set", "cancel")
THINGS = ("the kitchen lights", "the bedroom lamp", "my alarm", "some jazz", "the heating", "the tv", "a timer",
          "the garage door", "the oven", "the living room lights", "my playlist", "the fan")  # fmt: skip
TAILS = ("", " please", " now", " for me", " in ten minutes")
BATCH = 20_000
ABSENT = "xylophonist"  # a word no request uses
POINTS = ("asr", "nlu", "resolve", "execute")
SKILLS = ("smart_home", "smart_home", "smart_home", "music", "timers", "out_of_scope")  # a common and rare ones
NLU_VERSIONS = ("nlu-bench-old", "nlu-bench-new")


def _wordings() -> tuple[list[str], str, str]:
    """What the bench users say: real requests (SLURP's train sentences, thousands of words as stored turns
    have, which the planner's word statistics depend on) when the shared data is there, else made-up ones;
    with a common word and a rare one (in two sentences) to search for."""
    path = settings.SHARED_DATA_DIR / "slurp" / "train_labeled.jsonl"
    if not path.exists():
        return [f"{v} {t}{tail}" for v in VERBS for t in THINGS for tail in TAILS], "kitchen", "garage door now"
    with path.open(encoding="utf-8") as lines:
        sentences = sorted({json.loads(line)["sentence"] for line in lines if line.strip()})
    used = Counter(word for sentence in sentences for word in set(sentence.split()))
    common = max((w for w in used if len(w) >= 5), key=lambda w: (used[w], w))
    rare = min(w for w in used if used[w] == 2 and len(w) >= 6 and w.isalpha())
    return sentences, common, rare


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


class Command(BaseCommand):
    help = "Time the review pages with N stored turns (prints JSON)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--turns", type=int, default=1_000_000)
        parser.add_argument("--requests", type=int, default=50)
        parser.add_argument("--keep", action="store_true", help="Keep the generated users and turns.")

    def handle(self, *args, **options) -> None:
        rng = random.Random(7)
        User = get_user_model()
        self._clean()
        staff = User.objects.create_user(f"{PREFIX}staff", is_staff=True)
        users = User.objects.bulk_create([User(username=f"{PREFIX}u{i:04d}") for i in range(USERS)])
        now = timezone.now()
        sessions = Session.objects.bulk_create(
            [Session(user=u, channel=Session.Channel.SIMULATOR, started_at=now) for u in users]
        )
        wordings, common, rare = _wordings()
        started = time.monotonic()
        made = 0
        while made < options["turns"]:
            rows = []
            for _ in range(min(BATCH, options["turns"] - made)):
                k = rng.randrange(USERS)
                text = rng.choice(wordings)
                defect = round(rng.random(), 3) if rng.random() < 0.6 else None
                likely = defect is not None and defect >= 0.5
                rows.append(
                    Turn(
                        session=sessions[k],
                        user=users[k],
                        created_at=now - timedelta(minutes=rng.randrange(60 * 24 * 20)),
                        raw_text=text,
                        asr_text=text,
                        intent="out_of_scope",
                        skill=rng.choice(SKILLS),
                        nlu_model_version=rng.choice(NLU_VERSIONS),
                        response="Sorry, I can't help with that yet.",
                        defect_probability=defect,
                        failure_point=rng.choice(POINTS) if likely else "",
                        failure_point_confidence=round(rng.uniform(0.3, 1.0), 3) if likely else None,
                        trace=[{"stage": "nlu", "input": text, "output": {"intent": "out_of_scope"}, "ms": 9.0}],
                    )
                )
            Turn.objects.bulk_create(rows, batch_size=5000)
            made += len(rows)
        generated_s = time.monotonic() - started
        if connection.vendor == "postgresql":
            # What autovacuum does within a minute of a bulk load: the planner's statistics of the new rows.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE feedback_turn")
        started = time.monotonic()
        clusters = build_clusters(now=now)
        cluster_s = time.monotonic() - started

        client = Client()
        client.force_login(staff)
        turn_ids = list(Turn.objects.filter(user__username__startswith=PREFIX).values_list("id", flat=True)[:5000])
        cluster_ids = list(DefectCluster.objects.values_list("id", flat=True)[:100])
        pages = {
            "inbox_clusters": lambda: "/review/",
            "inbox_turns": lambda: "/review/?view=turns",
            "inbox_turns_page_50": lambda: "/review/?view=turns&page=50",
            "inbox_search": lambda: f"/review/?q={common}",
            "inbox_turns_search": lambda: f"/review/?view=turns&q={common}",
            "inbox_turns_search_rare": lambda: f"/review/?view=turns&q={rare}",
            "inbox_turns_search_absent": lambda: f"/review/?view=turns&q={ABSENT}",
            "inbox_turns_unsure": lambda: "/review/?view=turns&order=unsure",
            "inbox_failed_at": lambda: "/review/?view=turns&failed_at=asr",
            "inbox_turns_skill_rare": lambda: "/review/?view=turns&skill=timers",
            "inbox_turns_nlu_version": lambda: f"/review/?view=turns&nlu_version={NLU_VERSIONS[0]}",
            "inbox_clusters_skill": lambda: "/review/?skill=music",
            "cluster": lambda: f"/review/clusters/{rng.choice(cluster_ids)}/" if cluster_ids else "/review/",
            "turn": lambda: f"/review/turns/{rng.choice(turn_ids)}/",
        }
        timings = {}
        for name, url in pages.items():
            client.get(url())  # warm up
            ms = []
            for _ in range(options["requests"]):
                t0 = time.perf_counter()
                response = client.get(url())
                ms.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (name, response.status_code)
            timings[name] = {
                "p50_ms": _percentile(ms, 0.5),
                "p95_ms": _percentile(ms, 0.95),
                "max_ms": round(max(ms), 1),
            }
        report = {
            "turns_stored": Turn.objects.count(),
            "bench_turns": made,
            "generate_s": round(generated_s, 1),
            "cluster_step": {**clusters, "seconds": round(cluster_s, 1)},
            "requests_per_page": options["requests"],
            "searched": {"common": common, "rare": rare, "absent": ABSENT},
            "pages": timings,
        }
        if not options["keep"]:
            self._clean()
        self.stdout.write(json.dumps(report, indent=1))

    def _clean(self) -> None:
        bench = get_user_model().objects.filter(username__startswith=PREFIX)
        Turn.objects.filter(user__in=bench).delete()
        DefectCluster.objects.filter(members__isnull=True).delete()
        bench.delete()

"""`manage.py bench_pipeline --n N [--warmup W] [--json]`: latency of handle_turn, per stage and in total.

Runs N utterances covering every skill through the real pipeline (real NLU model,
real database) as a dedicated bench user, and prints p50/p95/p99 per stage (from
each Turn's trace) and of the wall-clock time of handle_turn() including storing
the turn. Reply streaming is not part of handle_turn, so it is not measured.

The bench user's home is reset first so that runs are comparable, and the
bench's turns are deleted afterwards (unless --keep-turns) so that they do not
feed the learning jobs.
"""

from __future__ import annotations

import gc
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assistant.models import Device, ListItem, Timer
from assistant.pipeline.turn import handle_turn
from assistant.world import ensure_home
from assistant.world.home import get_or_create_user, reset_home
from feedback.models import Session

STAGES = ("asr", "nlu", "rewrite", "resolve", "execute", "respond")
TARGETS_MS = {"p50": 25.0, "p95": 60.0}  # for `total`, on the 2-core reference machine

# Fillers for the templates below. Each template is filled from the lists it names,
# rotating through them with the run index, so N turns are varied but repeatable.
FILLERS: dict[str, tuple[str, ...]] = {
    "room": ("kitchen", "bedroom", "living room", "office", "bathroom", "hallway", "kids room", "garage"),
    "level": ("20", "40", "60", "75", "30"),
    "colour": ("blue", "warm white", "red", "green", "purple"),
    "temp": ("19", "21", "22", "18", "20"),
    "oven": ("180", "200", "220", "160"),
    "plug": ("fan", "coffee machine", "lamp", "heater"),
    "artist": ("adele", "the beatles", "queen", "miles davis", "taylor swift"),
    "genre": ("jazz", "rock", "classical", "pop", "hip hop"),
    "playlist": ("morning coffee", "workout", "dinner party"),
    "title": ("the hobbit", "the hunger games"),
    "volume": ("3", "5", "7", "2"),
    "minutes": ("5", "10", "15", "20", "45"),
    "hour": ("6", "7", "8", "9"),
    "item": ("milk", "eggs", "bread", "coffee beans", "apples", "washing up liquid"),
    "task": ("call the plumber", "pay the rent", "water the plants"),
    "city": ("paris", "tokyo", "new york", "berlin", "sydney"),
    "day": ("tomorrow", "this weekend", "on friday", "today"),
    "team": ("warriors", "arsenal", "yankees", "lakers"),
    "cuisine": ("italian", "thai", "indian", "japanese"),
    "routine": ("study", "movie", "party"),
}

# Written for this benchmark: everyday requests for each skill (and a few it cannot do).
TEMPLATES: tuple[str, ...] = (
    # smart home
    "turn on the lights in the {room}",
    "switch off the {room} light",
    "dim the {room} lights to {level} percent",
    "make the {room} lights brighter",
    "change the {room} light to {colour}",
    "set the heating to {temp} degrees",
    "how warm is it in here",
    "preheat the oven to {oven} degrees",
    "turn the oven off",
    "open the garage door",
    "close the garage please",
    "turn on the tv",
    "switch the television off",
    "switch on the {plug}",
    "turn off the {plug}",
    "start vacuuming the {room}",
    "is the {plug} on",
    # music and media
    "play some {artist}",
    "put on {genre} music",
    "play my {playlist} playlist",
    "play {title}",
    "pause the music",
    "carry on playing",
    "skip to the next song",
    "what song is this",
    "turn it up",
    "a bit quieter please",
    "set the volume to {volume}",
    "mute the speaker",
    "unmute",
    # timers and alarms
    "set a timer for {minutes} minutes",
    "how much time is left on my timer",
    "cancel the {minutes} minute timer",
    "wake me up at {hour} am tomorrow",
    "which alarms have i set",
    "delete my {hour} am alarm",
    # lists
    "add {item} to my shopping list",
    "what is on the shopping list",
    "take {item} off my shopping list",
    "put {task} on my to do list",
    # weather and time
    "what's the weather like in {city}",
    "will it rain {day}",
    "what time is it",
    "what's the date today",
    "what time is it in {city}",
    # chit-chat
    "hello there",
    "tell me a joke",
    "how are you doing today",
    # sports, restaurants, what it knows about you, taught routines
    "how did the {team} do",
    "find me a {cuisine} restaurant",
    "what do you know about me",
    "turn on {routine} mode",
    # answers (to a question the assistant asked; here with none pending)
    "the {room}",
    "yes please",
    # out of scope
    "book me a flight to {city}",
    "what is my bank balance",
    "order a large pizza",
)


def utterances(n: int, start: int = 0) -> Iterator[str]:
    """The i-th utterances for i in [start, start+n): template i mod T, fillers rotating with the lap i // T."""
    for i in range(start, start + n):
        lap, index = divmod(i, len(TEMPLATES))
        # Each lap moves every filler one step on, so a template is heard with new values each lap.
        values = {name: options[(lap + index) % len(options)] for name, options in FILLERS.items()}
        template = TEMPLATES[index]
        yield template.format(**values)


def with_typo(text: str, i: int) -> str:
    """`text` with one letter of one of its longer words dropped, as a hurried typist does."""
    rng = random.Random(f"typo-pos:{i}")
    words = text.split()
    long_words = [k for k, w in enumerate(words) if len(w) > 3]
    if not long_words:
        return text
    k = rng.choice(long_words)
    cut = rng.randrange(1, len(words[k]))
    words[k] = words[k][:cut] + words[k][cut + 1 :]
    return " ".join(words)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an ascending list."""
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def summarise(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p95": round(percentile(ordered, 95), 3),
        "p99": round(percentile(ordered, 99), 3),
        "mean": round(sum(ordered) / len(ordered), 3) if ordered else 0.0,
        "max": round(ordered[-1], 3) if ordered else 0.0,
    }


def _row(name: str, s: dict[str, float]) -> str:
    """One line of the table: a stage's percentiles, mean and max."""
    return f"{name:<10}{s['p50']:>10.2f}{s['p95']:>10.2f}{s['p99']:>10.2f}{s['mean']:>10.2f}{s['max']:>10.2f}"


class Command(BaseCommand):
    help = "Benchmark the turn pipeline: per-stage and total latency percentiles, and turns per second."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--n", type=int, default=200, help="Measured turns (default 200).")
        parser.add_argument("--warmup", type=int, default=10, help="Unmeasured turns first (default 10).")
        parser.add_argument("--user", default="bench", help="Bench user (its home is reset; default 'bench').")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--keep-turns", action="store_true", help="Keep the bench's turns in the store.")
        parser.add_argument(
            "--typos",
            type=float,
            default=0.0,
            help="Share of utterances with a letter dropped (risky turns: they exercise online rewriting).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        n, warmup = options["n"], options["warmup"]
        if not 1 <= n <= 100_000:
            raise CommandError("--n must be between 1 and 100000.")
        if not 0 <= warmup <= 10_000:
            raise CommandError("--warmup must be between 0 and 10000.")
        try:
            user = get_or_create_user(options["user"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if user.has_usable_password() or user.is_staff:
            raise CommandError(f"{user} is a real account; the bench resets its home. Choose another --user.")

        home = ensure_home(user)
        reset_home(home)
        Timer.objects.filter(home=home).delete()
        ListItem.objects.filter(home=home).delete()
        # Speak to the screen speaker so that films and room-less requests resolve as in the web chat.
        speaker = Device.objects.filter(home=home, kind=Device.Kind.SPEAKER).order_by("-has_screen", "name").first()
        first_session = Session.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

        try:
            # Warm-up: loads the NLU model, fills caches and opens the database connection.
            heard: set[str] = set()
            for text in utterances(warmup, start=n):
                handle_turn(user, text=text, device=speaker, channel=Session.Channel.CLI)
                heard.add(text)

            gc.collect()
            totals: list[float] = []
            # Wall time not inside any stage: context, session and turn storage, commit.
            outside: list[float] = []
            per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
            # The same stages on the turns whose words this run had not said yet: the joint NLU keeps its recent
            # predictions, so a repeated sentence costs it next to nothing, and a template without fillers
            # comes back every lap.
            first_heard: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
            statuses: Counter[str] = Counter()
            model_versions: Counter[str] = Counter()
            started = time.perf_counter()
            online: list[float] = []
            for i, text in enumerate(utterances(n)):
                text = with_typo(text, i) if random.Random(f"typo:{i}").random() < options["typos"] else text
                t0 = time.perf_counter()
                turn = handle_turn(user, text=text, device=speaker, channel=Session.Channel.CLI)
                totals.append((time.perf_counter() - t0) * 1000.0)
                outside.append(totals[-1] - sum(float(r.get("ms", 0.0)) for r in turn.trace))
                statuses[str(turn.status)] += 1
                new_words = text not in heard
                heard.add(text)
                if new_words:
                    first_heard["total"].append(totals[-1])
                for record in turn.trace:
                    if record.get("stage") in per_stage:
                        per_stage[record["stage"]].append(float(record.get("ms", 0.0)))
                        if new_words:
                            first_heard[record["stage"]].append(float(record.get("ms", 0.0)))
                    if record.get("stage") == "rewrite" and (record.get("output") or {}).get("layer", "").startswith(
                        "online-"
                    ):
                        online.append(float(record.get("ms", 0.0)))
                    if record.get("stage") == "nlu" and record.get("model_version"):
                        model_versions[record["model_version"]] += 1
            elapsed = time.perf_counter() - started
        finally:
            if not options["keep_turns"]:
                Session.objects.filter(user=user, pk__gt=first_session).delete()

        total = summarise(totals)
        report = {
            "n": n,
            "warmup": warmup,
            "user": user.get_username(),
            "stages": {stage: summarise(values) for stage, values in per_stage.items()},
            "total": total,
            "outside_stages": summarise(outside),
            "first_heard": {
                "turns": len(first_heard["total"]),
                "stages": {stage: summarise(values) for stage, values in first_heard.items() if values},
            },
            "turns_per_second": round(n / elapsed, 2) if elapsed > 0 else 0.0,
            "statuses": dict(statuses),
            # The rewrite stage is all that rewriting adds to a turn; these are the turns where an
            # online candidate was found and tried (the ranker and a second NLU pass ran).
            "online_rewrites_tried": len(online),
            "rewrite_ms_when_online_tried": summarise(online) if online else None,
            "nlu_model_versions": dict(model_versions),
            "targets": {
                "total_p50_ms": TARGETS_MS["p50"],
                "total_p95_ms": TARGETS_MS["p95"],
                "met": total["p50"] <= TARGETS_MS["p50"] and total["p95"] <= TARGETS_MS["p95"],
            },
        }
        if options["json"]:
            self.stdout.write(json.dumps(report))
        else:
            self._print_table(report)

    def _print_table(self, report: dict[str, Any]) -> None:
        self.stdout.write(f"{report['n']} turns after {report['warmup']} warm-up turns (ms)")
        self.stdout.write(f"{'stage':<10}{'p50':>10}{'p95':>10}{'p99':>10}{'mean':>10}{'max':>10}")
        rows = [*report["stages"].items(), ("other", report["outside_stages"]), ("total", report["total"])]
        for name, s in rows:
            self.stdout.write(_row(name, s))
        self.stdout.write("(other: time in handle_turn outside the stages, e.g. storing the turn)")
        first = report["first_heard"]
        if first["turns"]:
            self.stdout.write(f"the {first['turns']} turns whose words were new to this run:")
            for name, s in first["stages"].items():
                self.stdout.write(_row(name, s))
        self.stdout.write(f"turns/second: {report['turns_per_second']}")
        self.stdout.write(f"statuses: {report['statuses']}")
        targets = report["targets"]
        verdict = "met" if targets["met"] else "NOT met"
        self.stdout.write(
            f"target total p50 <= {targets['total_p50_ms']} ms, p95 <= {targets['total_p95_ms']} ms: {verdict}"
        )

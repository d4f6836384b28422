"""Simulated users teach the assistant: preferences, and a routine of their own.

Each day, before their goals, every user says one underspecified request ("how did my team do?",
"play some music", "find a restaurant", "what's the temperature outside") whose right answer
depends on their own preferences (SimUser.preferences). Some users (Behaviour.teach_preferences)
teach those preferences on day 1, between a first probe ("before") and a second ("after"); their
later probes are "after" too; the others' probes are "untaught". A probe that misses is followed
by what the user wanted, in so many words ("how did Leeds do?"; music they do not like is stopped
first): the behaviour the preference models learn from. At the end of the run the product is
asked what it knows about each user who never taught (its "What you've taught me" export): the
share of their four preferences it inferred right is summary.teaching.inferred_preference_accuracy.
Some users
(Behaviour.teach_concept) teach a routine on day 1 ("turn on <name> mode" -> what it means ->
"yes"), use it as taught on day 2, and in other words from day 3.

The judge reads the turn as any client would: the reply and the action the product reports.
Records carry "teaching": True; the report keeps them out of the goal statistics and sums them
up under summary.teaching.
"""

from __future__ import annotations

import random
import re
from datetime import timedelta
from typing import Any

from simulator.drivers import Driver

PROBES = ("sports", "music", "restaurant", "weather")
PROBE_TEXT = {
    "sports": "how did my team do",
    "music": "play some music",
    "restaurant": "find a restaurant",
    "weather": "what's the temperature outside",
}
UNITS_SAID = {"metric": "celsius", "imperial": "fahrenheit"}
CONCEPT_NAMES = ("reading", "quiet", "sunday", "homework", "cosy", "focus", "evening", "dinner")
CONCEPT_DEFINITION = "turn off all the lights and close the garage"
PARAPHRASES = ("{name} mode on", "start {name} mode", "activate {name} mode", "switch to {name} mode")
FOLLOW_UP = {
    "sports": "how did {team} do",
    "music": "play {music_genre}",
    "restaurant": "find {article} {cuisine} restaurant",
    "weather": "what's the temperature outside in {said_units}",
}
# The assistant asking for feedback ("Did I answer your question?", "Did you mean …?"): the one pattern the
# day's goals (simulator/day.py) and the teaching study both read.
SURVEY_QUESTION = re.compile(r"did (i|that) (answer|help)|did you mean", re.IGNORECASE)


def teaches(sim: Any, seed: int, behaviour: Any) -> tuple[bool, bool]:
    """(teaches preferences, teaches a routine): fixed per user for the run."""
    rng = random.Random(f"teacher:{seed}:{sim.index}")
    return rng.random() < behaviour.teach_preferences, rng.random() < behaviour.teach_concept


def _judge(kind: str, prefs: dict[str, str], turn: dict) -> bool:
    """Did the reply use the user's preference? (What they would hear, and what the product did.)"""
    action = turn.get("action") or {}
    params = action.get("params") or {}
    reply = (turn.get("response") or "").lower()
    if kind == "sports":
        return action.get("intent") == "sports_query" and prefs["team"] in reply
    if kind == "music":
        return action.get("intent") == "play_music" and prefs["music_genre"] in str(params.get("label", "")).lower()
    if kind == "restaurant":
        return action.get("intent") == "restaurant_query" and params.get("cuisine") == prefs["cuisine"]
    fahrenheit = "fahrenheit" in reply
    return action.get("intent") == "weather_query" and fahrenheit == (prefs["units"] == "imperial")


def teaching_day(part: Any, day: int, config: Any, driver: Driver, records: list[dict]) -> None:
    sim, prefs = part.sim, part.sim.preferences
    teach_prefs, teach_concept = teaches(sim, config.seed, config.behaviour)
    now = config.start + timedelta(days=day - 1, hours=config.behaviour.day_start_h) - timedelta(minutes=30)
    session: int | None = None
    said = 0  # turns since the last record (a routine's teaching takes up to three)

    def say(text: str) -> dict:
        nonlocal now, session, said
        turn = driver.turn(part.user, text, device_id=part.device_id, session_id=session, now=now)
        session = turn["session"]
        now += timedelta(seconds=20)
        said += 1
        return turn

    def record(kind: str, phase: str, turn: dict, ok: bool) -> None:
        nonlocal said
        turns, said = said, 0
        records.append(
            {
                "turns": turns,
                "teaching": True,
                "day": day,
                "arm": part.arm,
                "user": sim.index,
                "kind": kind,
                "phase": phase,
                "ok": ok,
                "turn_id": turn["turn_id"],
                "prompted": bool(SURVEY_QUESTION.search(turn.get("response") or "")),
            }
        )

    def follow_up(probe: str, phase: str, turn: dict) -> None:
        """The user asks again for what they wanted, having stopped music they did not like."""
        action = turn.get("action") or {}
        if probe == "music" and action.get("intent") == "play_music":
            driver.barge_in(part.user, turn["turn_id"], 3, 900, now)
        article = "an" if prefs["cuisine"][0] in "aeiou" else "a"
        text = FOLLOW_UP[probe].format(**prefs, article=article, said_units=UNITS_SAID[prefs["units"]])
        again = say(text)
        record("follow_up", phase, again, _judge(probe, prefs, again))

    probe = PROBES[(day - 1 + sim.index) % len(PROBES)]
    phase = "untaught" if not teach_prefs else ("before" if day == 1 else "after")
    turn = say(PROBE_TEXT[probe])
    ok = _judge(probe, prefs, turn)
    record(probe, phase, turn, ok)
    if not ok:
        follow_up(probe, phase, turn)
    if teach_prefs and day == 1:
        for text in (
            f"i'm a {prefs['team']} fan",
            f"my favourite music is {prefs['music_genre']}",
            f"i like {prefs['cuisine']} food",
            f"i prefer {UNITS_SAID[prefs['units']]}",
        ):
            turn = say(text)
            record("teach", "teach", turn, (turn.get("action") or {}).get("intent") == "preference_set")
        turn = say(PROBE_TEXT[probe])
        ok = _judge(probe, prefs, turn)
        record(probe, "after", turn, ok)
        if not ok:
            follow_up(probe, "after", turn)

    if not teach_concept:
        return
    name = CONCEPT_NAMES[sim.index % len(CONCEPT_NAMES)]
    if day == 1:
        now += timedelta(minutes=5)
        session = None
        asked = say(f"turn on {name} mode")
        if "what do you mean" in (asked.get("response") or "").lower():
            proposed = say(CONCEPT_DEFINITION)
            if "shall i remember" in (proposed.get("response") or "").lower():
                done = say("yes")
                record("concept_teach", "teach", done, "remember" in (done.get("response") or "").lower())
                return
        record("concept_teach", "teach", asked, False)
        return
    session = None
    text = f"turn on {name} mode" if day == 2 else PARAPHRASES[(day - 3) % len(PARAPHRASES)].format(name=name)
    turn = say(text)
    action = turn.get("action") or {}
    ok = action.get("intent") == "concept_run" and (action.get("params") or {}).get("concept") == f"{name} mode"
    record("concept", "first_reuse" if day == 2 else "paraphrased_reuse", turn, ok)


INFERRED_KINDS = {"team": "team", "music_genre": "genre", "cuisine": "cuisine", "units": "units"}


def inferred_records(participants: list[Any], config: Any, driver: Driver) -> list[dict]:
    """For each user who never taught: is each of their preferences what the product says it inferred?"""
    records = []
    for part in participants:
        if teaches(part.sim, config.seed, config.behaviour)[0]:
            continue
        known = driver.known(part.user)
        inferred = {row["kind"]: str(row["value"]).lower() for row in known.get("inferred_preferences") or []}
        for hidden, kind in INFERRED_KINDS.items():
            want = UNITS_SAID[part.sim.preferences[hidden]] if hidden == "units" else part.sim.preferences[hidden]
            got = inferred.get(kind)
            records.append(
                {
                    "turns": 0,
                    "teaching": True,
                    "day": config.days,
                    "arm": part.arm,
                    "user": part.sim.index,
                    "kind": "inferred",
                    "phase": kind,
                    "ok": got is not None and (got == want or want in got),  # "leeds" in "leeds united"
                    "inferred": got is not None,
                }
            )
    return records


def summarise(teaching: list[dict], goal_records: list[dict]) -> dict[str, Any]:
    """summary.teaching of the report."""

    def rate(rows: list[dict]) -> float | None:
        return round(sum(r["ok"] for r in rows) / len(rows), 4) if rows else None

    probes = [r for r in teaching if r["kind"] in PROBES]
    taught_concepts = [r for r in teaching if r["kind"] == "concept_teach"]
    reuse = [r for r in teaching if r["kind"] == "concept"]
    # Every goal turn and every teaching turn (a routine's teaching is up to three turns, its record the last).
    turns = len(goal_records) + sum(r["turns"] for r in teaching)
    prompted = sum(1 for r in [*goal_records, *teaching] if r.get("prompted"))
    return {
        "underspecified_success_before": rate([r for r in probes if r["phase"] == "before"]),
        "underspecified_success_after": rate([r for r in probes if r["phase"] == "after"]),
        "underspecified_success_untaught": rate([r for r in probes if r["phase"] == "untaught"]),
        "probes": {phase: sum(1 for r in probes if r["phase"] == phase) for phase in ("before", "after", "untaught")},
        "preferences_taught": rate([r for r in teaching if r["kind"] == "teach"]),
        "concepts_taught": rate(taught_concepts),
        "concept_first_reuse": rate([r for r in reuse if r["phase"] == "first_reuse"]),
        "concept_paraphrased_reuse": rate([r for r in reuse if r["phase"] == "paraphrased_reuse"]),
        "follow_ups_understood": rate([r for r in teaching if r["kind"] == "follow_up"]),
        # Users who never taught: each of their four preferences counts, wrong when nothing was inferred.
        "inferred_preference_accuracy": rate(inferred := [r for r in teaching if r["kind"] == "inferred"]),
        "inferred_preference_coverage": rate([{"ok": r["inferred"]} for r in inferred]),
        "inferred_preference_precision": rate([r for r in inferred if r["inferred"]]),  # right when inferred
        "inferred_preference_accuracy_by_kind": {
            kind: rate([r for r in inferred if r["phase"] == kind]) for kind in INFERRED_KINDS.values()
        },
        "inferred_users": len({r["user"] for r in inferred}),
        "prompts_per_100_turns": round(100 * prompted / turns, 2) if turns else None,
        "turns": sum(r["turns"] for r in teaching),
    }

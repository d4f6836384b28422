"""What people did about the assistant's replies, read for many turns at once: barge-ins and thumbs.

Every learner that weighs a turn by how its reply was received (the defect model, the rephrase detector,
the failure-point model, the preference model) reads it here, in chunks of ids: a learning step reads
up to 100,000 turns, more than one IN list should hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from feedback.models import BargeIn, Feedback

CHUNK = 5000  # ids per query


def _chunks(turn_ids: Iterable[int]) -> Iterable[list[int]]:
    ids = list(dict.fromkeys(turn_ids))
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


@dataclass
class Reactions:
    barge: dict[int, tuple[int, int]]  # turn -> (offset_words, offset_ms) of its earliest barge-in
    latest: dict[int, str]  # turn -> the kind of its latest thumbs: a later opinion replaces an earlier one
    down: set[int]  # turns ever given a thumbs down

    @classmethod
    def of(cls, turn_ids: Iterable[int]) -> Reactions:
        barge: dict[int, tuple[int, int]] = {}
        latest: dict[int, str] = {}
        down: set[int] = set()
        for chunk in _chunks(turn_ids):
            for turn_id, words, ms in BargeIn.objects.filter(turn_id__in=chunk).values_list(
                "turn_id", "offset_words", "offset_ms"
            ):
                if turn_id not in barge or words < barge[turn_id][0]:
                    barge[turn_id] = (words, ms)
            thumbs = Feedback.objects.filter(turn_id__in=chunk).order_by("created_at", "id")
            for turn_id, kind in thumbs.values_list("turn_id", "kind"):
                latest[turn_id] = kind
                if kind == Feedback.Kind.THUMBS_DOWN:
                    down.add(turn_id)
        return cls(barge=barge, latest=latest, down=down)

    @property
    def barged(self) -> set[int]:
        """Turns whose reply was cut short."""
        return set(self.barge)

    @property
    def up(self) -> set[int]:
        """Turns whose latest thumbs is up: the person said it went well."""
        return {turn for turn, kind in self.latest.items() if kind == Feedback.Kind.THUMBS_UP}

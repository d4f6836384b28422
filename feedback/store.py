"""Writing people's reactions to turns into the feedback store.

Every entry point (chat socket, JSON API) records barge-ins and explicit
feedback through these functions, so the checks live in one place: a user
touches only their own turns, offsets must fit the reply, kinds must be known.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction

from feedback.models import BargeIn, Feedback, Turn


def _check_owner(turn: Turn, user: AbstractBaseUser | None) -> None:
    if user is not None and turn.user_id != user.pk:
        raise PermissionDenied("That turn belongs to someone else.")


def record_barge_in(
    turn: Turn,
    offset_words: int,
    offset_ms: int,
    source: str,
    *,
    user: AbstractBaseUser | None = None,
) -> BargeIn:
    """Store that the reply of `turn` was interrupted after `offset_words` words.

    `user`, when given, must own the turn (the chat socket and the API pass the
    requesting user; internal callers that already own the turn may omit it).
    Raises ValueError for an unknown source or offsets that do not fit the reply. An identical
    report is stored once: the second returns the first row.
    """
    _check_owner(turn, user)
    if source not in BargeIn.Source.values:
        raise ValueError(f"Unknown barge-in source {source!r}.")
    for name, value in (("offset_words", offset_words), ("offset_ms", offset_ms)):
        # bool is an int subclass; True words is a bug in the caller, not an offset.
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer.")
    if offset_words > len(turn.response_words):
        raise ValueError("`offset_words` is past the end of the reply.")
    # A repeated identical report (a client retrying after a lost answer) is the same barge-in.
    barge_in, _ = BargeIn.objects.get_or_create(
        turn=turn, offset_words=offset_words, offset_ms=offset_ms, source=source
    )
    return barge_in


def record_feedback(turn: Turn, user: AbstractBaseUser, kind: str) -> Feedback:
    """Store a thumbs up/down from `user` on their own `turn`.

    Changing one's mind adds a row (the latest row is the current opinion, the
    earlier ones stay as evidence); pressing the same button twice does not.
    """
    if user is None:
        raise PermissionDenied("Feedback needs a user.")
    _check_owner(turn, user)
    if kind not in Feedback.Kind.values:
        raise ValueError(f"Unknown feedback kind {kind!r}.")
    with transaction.atomic():
        # Lock the turn so two quick clicks cannot both see "no feedback yet".
        Turn.objects.select_for_update().filter(pk=turn.pk).first()
        latest = turn.feedback.order_by("-created_at", "-id").first()
        if latest is not None and latest.kind == kind:
            return latest
        return Feedback.objects.create(turn=turn, kind=kind)


def current_feedback(turn: Turn) -> str | None:
    """The latest feedback kind on a turn, or None."""
    latest = turn.feedback.order_by("-created_at", "-id").first()
    return latest.kind if latest else None

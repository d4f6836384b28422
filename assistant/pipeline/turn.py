"""One turn, start to finish. Every entry point (chat socket, JSON API, `say`,
simulator) calls handle_turn(); none holds logic of its own.

    1 asr      choose a hypothesis from the n-best list, normalise it
    2 nlu      intent + slots + confidence (assistant/nlu)
    3 rewrite  active precomputed rewrite rules (assistant/rewrite/)
    4 resolve  slots + context -> an Action (assistant/skills)
    5 execute  the skill acts on the simulated world -> a SkillResult
    6 respond  the words to say

A failing stage ends the turn with an apology; the turn is stored either way,
with the error in its trace.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from assistant import nlu, skills
from assistant.intents import NOT_SURVEYED, OUT_OF_SCOPE
from assistant.models import Device, Home
from assistant.pipeline.asr import recognise
from assistant.pipeline.trace import StageFailed, Trace
from assistant.rewrite.rules import apply_rewrite
from assistant.text import TextError, check_utterance
from assistant.turns import Action, Hypothesis, NluResult, SkillResult, TurnContext
from assistant.world import broadcast_device_changes, ensure_home
from feedback.experiments import RewriteLayers, rewrite_layers_for
from feedback.models import Session, Turn

log = logging.getLogger(__name__)

SORRY = "Sorry, I couldn't do that."
SURVEY_QUESTION = "Did I answer your question?"
ASR_VERSION = "normalise-1"
SKILLS_VERSION = "skills-1"


class TurnInputError(ValueError):
    """The request cannot become a turn (empty, too long, wrong device…): a 4xx, not a 500."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TurnRequest:
    """A validated request for a turn."""

    nbest: tuple[Hypothesis, ...]
    raw_text: str
    is_nbest: bool


def clean_request(text: str | None = None, nbest: list[dict] | None = None) -> TurnRequest:
    """Validate what an entry point received; raise TurnInputError with a clear message."""
    if (text is None) == (nbest is None):
        raise TurnInputError("Send either `text` or `nbest`.", "text_or_nbest")
    if text is not None:
        hyps = [Hypothesis(text=text, confidence=None)]
    else:
        if not isinstance(nbest, list) or not nbest:
            raise TurnInputError("`nbest` must be a non-empty list of {text, confidence}.", "wrong_type")
        if len(nbest) > 20:
            raise TurnInputError("`nbest` holds at most 20 hypotheses.", "too_many")
        hyps = []
        for item in nbest:
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise TurnInputError("Each n-best entry needs a `text` string.", "wrong_type")
            conf = item.get("confidence")
            if conf is not None and (isinstance(conf, bool) or not isinstance(conf, int | float) or not 0 <= conf <= 1):
                raise TurnInputError("`confidence` must be a number between 0 and 1.", "wrong_type")
            hyps.append(Hypothesis(text=item["text"], confidence=None if conf is None else float(conf)))
    for hyp in hyps:
        try:
            check_utterance(hyp.text)
        except TextError as exc:
            raise TurnInputError(str(exc), exc.code) from None
    return TurnRequest(
        nbest=tuple(hyps),
        raw_text=hyps[0].text if text is not None else max(hyps, key=lambda h: h.confidence or -1).text,
        is_nbest=nbest is not None,
    )


_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")  # printable ASCII, no spaces: what clients put in a header


def clean_idempotency_key(key: object) -> str:
    """A client's idempotency key (1-100 printable ASCII characters), or TurnInputError."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise TurnInputError(
            "An idempotency key is 1 to 100 printable ASCII characters without spaces.", "bad_idempotency_key"
        )
    return key


def _replayed(user: AbstractBaseUser, key: str, request: TurnRequest) -> Turn | None:
    """The turn stored for `key`, if any: a retry of that request gets it back unchanged."""
    turn = Turn.objects.filter(user=user, idempotency_key=key).select_related("session__device").first()
    if turn is None:
        return None
    nbest = [{"text": h.text, "confidence": h.confidence} for h in request.nbest] if request.is_nbest else None
    if turn.raw_text != request.raw_text or turn.nbest != nbest:
        raise TurnInputError("That idempotency key was already used for another request.", "idempotency_key_reused")
    turn.replayed = True
    return turn


def build_context(user: AbstractBaseUser, device: Device | None, now: datetime) -> TurnContext:
    # One cheap query on the hot path; ensure_home() only for a user without a home yet.
    home_id = Home.objects.filter(owner=user).values_list("pk", flat=True).first() or ensure_home(user).pk
    if device is not None and device.home_id != home_id:
        raise TurnInputError("That device is not in your home.", "wrong_device")
    return TurnContext(
        user_id=user.pk,
        home_id=home_id,
        device_id=device.pk if device else None,
        room=device.room if device else None,
        has_screen=bool(device and device.has_screen),
        now=now,
    )


def asks_survey(ctx: TurnContext, text: str) -> bool:
    """Whether this turn's reply asks "Did I answer your question?": a SURVEY_RATE share of turns,
    drawn by a hash of who asked what when (a rerun of the same turns asks the same ones), so the
    answers are an unbiased sample of how turns go."""
    rate = settings.SURVEY_RATE
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{ctx.user_id}|{ctx.now.isoformat()}|{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _run_stages(request: TurnRequest, ctx: TurnContext, trace: Trace, layers: RewriteLayers | None = None) -> dict:
    """Run stages 1-6; return the fields of the Turn they decided."""
    fields: dict = {"status": Turn.Status.OK}

    with trace.stage("asr", input=[h.text for h in request.nbest], model_version=ASR_VERSION) as st:
        asr = recognise(list(request.nbest))
        if not asr.text:
            raise ValueError("nothing left after normalisation")
        st.output, st.confidence = asr.text, asr.confidence
    fields.update(asr_text=asr.text, asr_confidence=asr.confidence)

    def understand(text: str) -> NluResult:
        return nlu.understand(text, ctx)

    with trace.stage("nlu", input=asr.text) as st:
        understood = understand(asr.text)
        st.output, st.confidence, st.model_version = (
            understood.as_dict(),
            understood.confidence,
            understood.model_version,
        )

    with trace.stage("rewrite", input=asr.text, model_version="rules") as st:
        layers = layers or RewriteLayers()
        outcome, understood = apply_rewrite(
            asr.text,
            understood,
            ctx.user_id,
            understand,
            embed=nlu.sentence_vector,
            allow_global=layers.global_rewrites,
            allow_personal=layers.personal_rewrites,
        )
        st.output = outcome.as_dict() if outcome else None
        st.confidence = understood.confidence if outcome else None
    fields.update(
        intent=understood.intent,
        slots=understood.slots,
        nlu_confidence=understood.confidence,
        rewrite=outcome.as_dict() if outcome else None,
    )

    home = skills.find_home(ctx)
    with trace.stage("resolve", input=understood.as_dict(), model_version=SKILLS_VERSION) as st:
        action: Action = skills.resolve(understood, ctx, home)
        st.output = action.as_dict()
    fields["action"] = action.as_dict()

    with trace.stage("execute", input=action.as_dict(), model_version=SKILLS_VERSION) as st:
        result: SkillResult = skills.execute(action, ctx, home)
        st.output = {"ok": result.ok, "text": result.text, "data": result.data}
    fields["changed_device_ids"] = result.changed_device_ids

    with trace.stage("respond", input=result.text, model_version=SKILLS_VERSION) as st:
        fields["response"] = " ".join(result.text.split()) or SORRY
        if NOT_SURVEYED.isdisjoint({understood.intent, action.intent}) and asks_survey(ctx, request.raw_text):
            fields["response"] += " " + SURVEY_QUESTION
            fields["survey_asked"] = True
        st.output = fields["response"]
    if understood.intent == OUT_OF_SCOPE or action.intent == OUT_OF_SCOPE:  # incl. intents no skill handles
        fields["status"] = Turn.Status.OUT_OF_SCOPE
    return fields


def handle_turn(
    user: AbstractBaseUser,
    *,
    text: str | None = None,
    nbest: list[dict] | None = None,
    device: Device | None = None,
    session: Session | None = None,
    channel: str = Session.Channel.CLI,
    now: datetime | None = None,
    idempotency_key: str | None = None,
) -> Turn:
    """Run one utterance through the whole pipeline and store it as a Turn.

    With `idempotency_key`, a request already stored under that key (for this user) is not run
    again: its turn comes back with `replayed` set, and nothing in the home changes twice.
    """
    request = clean_request(text, nbest)
    key = clean_idempotency_key(idempotency_key) if idempotency_key is not None else ""
    if key and (earlier := _replayed(user, key, request)) is not None:
        return earlier
    now = now or timezone.now()
    if session is not None and session.user_id != user.pk:
        raise TurnInputError("That session belongs to someone else.", "wrong_session")
    if device is None and session is not None:
        device = session.device
    ctx = build_context(user, device, now)

    trace = Trace()
    try:
        turn = _run_and_store(user, request, ctx, trace, device, session, channel, now, key)
    except IntegrityError:
        # A twin request with the same key committed first: this one was rolled back whole
        # (the home's changes included), and the twin's turn is the answer.
        if not key or (twin := _replayed(user, key, request)) is None:
            raise
        return twin
    return turn


def _run_and_store(
    user: AbstractBaseUser,
    request: TurnRequest,
    ctx: TurnContext,
    trace: Trace,
    device: Device | None,
    session: Session | None,
    channel: str,
    now: datetime,
    key: str,
) -> Turn:
    # One transaction per turn (one commit); the stages run in a savepoint so a
    # failing stage undoes whatever the turn had changed, and the turn is still stored.
    with transaction.atomic():
        try:
            with transaction.atomic():
                # The user's experiment arm decides which rewrite layers may fire.
                fields = _run_stages(request, ctx, trace, rewrite_layers_for(user))
        except StageFailed as failed:
            log.warning("turn failed at %s: %s", failed.stage, failed.error)
            fields = {"status": Turn.Status.ERROR, "response": SORRY}
            for record in trace.records:
                if record.stage == "asr" and isinstance(record.output, str):
                    fields["asr_text"], fields["asr_confidence"] = record.output, record.confidence
        changed = fields.pop("changed_device_ids", ())

        if session is None:
            session = Session.objects.create(user=user, device=device, channel=channel, started_at=now)
        turn = Turn.objects.create(
            session=session,
            user=user,
            created_at=now,
            raw_text=request.raw_text,
            nbest=[{"text": h.text, "confidence": h.confidence} for h in request.nbest] if request.is_nbest else None,
            context=ctx.as_dict(),
            trace=trace.as_list(),
            total_ms=round(trace.total_ms, 3),
            idempotency_key=key,
            **fields,
        )
        if changed:
            transaction.on_commit(lambda: broadcast_device_changes(ctx.home_id, changed))
    return turn

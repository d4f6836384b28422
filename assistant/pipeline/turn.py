"""One turn, start to finish. Every entry point (chat socket, JSON API, `say`,
simulator) calls handle_turn(); none holds logic of its own.

    1 asr      normalise the hypotheses of the n-best list (assistant/pipeline/asr.py)
    2 nlu      intent + slots + confidence (assistant/nlu); with several hypotheses, the reading is
               chosen over hypotheses and intents together (asr.choose_reading)
      dialogue with a question pending in the session, the utterance is read as its answer
               first (teaching/dialogue.py): it fills the missing value, says yes or no,
               cancels, or is a new request
    3 rewrite  active precomputed rewrite rules (assistant/rewrite/); not for an answer
    4 resolve  slots + context -> an Action (assistant/skills); an action that opens something
               and was not asked for in so many words waits for a yes (CONFIRMED_INTENTS)
    5 execute  the skill acts on the simulated world -> a SkillResult
    6 respond  the words to say; a question it ends with becomes the session's pending one

A failing stage ends the turn with an apology; the turn is stored either way,
with the error in its trace.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from assistant import nlu, skills
from assistant.intents import CONFIRMED_INTENTS, NOT_SURVEYED, OUT_OF_SCOPE
from assistant.models import Device, Home
from assistant.pipeline import prompts
from assistant.pipeline.asr import choose_reading, recognise
from assistant.pipeline.trace import StageFailed, Trace
from assistant.rewrite.rules import apply_rewrite, early_embedding
from assistant.skills import dialogue as dialogue_skill
from assistant.text import TextError, check_utterance, normalise
from assistant.turns import Action, Hypothesis, NluResult, SkillResult, TurnContext
from assistant.world import broadcast_device_changes, ensure_home
from assistant.world.situation import home_situation
from feedback.experiments import RewriteLayers, rewrite_layers_for
from feedback.models import Feedback, Session, Turn
from teaching import concepts, dialogue, preferences
from teaching.models import PendingQuestion

log = logging.getLogger(__name__)

SORRY = "Sorry, I couldn't do that."
SURVEY_QUESTION = "Did I answer your question?"
ASR_VERSION = "normalise-1"
SKILLS_VERSION = "skills-1"
REPEAT_WINDOW_S = 90  # the same words again within this: the user is repeating themselves
RECENT_WINDOW_S = 300  # turns this recent are what "it" and "that" may refer to
RECENT_TURNS = 2


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


def _recent_intents(session: Session | None, now: datetime) -> tuple[str, ...]:
    """The intents of the session's last turns within RECENT_WINDOW_S, newest first: what "it" may be."""
    if session is None or session.pk is None:
        return ()
    since = now - timedelta(seconds=RECENT_WINDOW_S)
    intents = (
        Turn.objects.filter(session=session, created_at__gte=since, created_at__lte=now)
        .exclude(intent="")
        .order_by("-created_at", "-id")
        .values_list("intent", flat=True)[:RECENT_TURNS]
    )
    return tuple(intents)


def build_context(
    user: AbstractBaseUser, device: Device | None, now: datetime, session: Session | None = None
) -> TurnContext:
    """Who asks, on which device, and what is going on in the home and the conversation."""
    # ensure_home() only for a user without a home yet.
    home_id = Home.objects.filter(owner=user).values_list("pk", flat=True).first() or ensure_home(user).pk
    if device is not None and device.home_id != home_id:
        raise TurnInputError("That device is not in your home.", "wrong_device")
    room = device.room if device else None
    return TurnContext(
        user_id=user.pk,
        home_id=home_id,
        device_id=device.pk if device else None,
        room=room,
        has_screen=bool(device and device.has_screen),
        now=now,
        recent_intents=_recent_intents(session, now),
        **home_situation(home_id, room, now),
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


KEEP_QUESTION = "keep"  # the pending question stays (asked again after an answer it could not use)


def _answer_action(pending: PendingQuestion, reading: dialogue.Reading) -> tuple[Action, object, str | None]:
    """What to do with an answer that is not a new request nor a value: (the action, the next
    question, the survey answer to store)."""
    Kind = PendingQuestion.Kind
    if pending.kind == Kind.SURVEY:
        if reading.kind == "yes":
            return dialogue_skill.answered("Good, thanks for telling me."), None, Feedback.Kind.THUMBS_UP
        return (
            dialogue_skill.answered("Sorry about that. Try asking another way, and I'll learn from it."),
            None,
            Feedback.Kind.THUMBS_DOWN,
        )
    if reading.kind == "skip":
        return dialogue_skill.answered("OK, skipping that."), None, None
    if pending.kind == Kind.GUIDED and reading.kind == "cancel":
        return dialogue_skill.answered('OK. Say "learn my preferences" to carry on another time.'), None, None
    if pending.kind == Kind.CONFIRM and reading.kind == "yes" and pending.action:
        action = pending.action
        return Action(skill=action["skill"], intent=action["intent"], params=dict(action["params"])), None, None
    if reading.kind in ("no", "cancel"):
        reply = "OK, I'll leave it." if pending.kind == Kind.CONFIRM else "OK, never mind."
        return dialogue_skill.answered(reply, cancelled=pending.prompt), None, None
    # An answer the question cannot use: ask once more, then let it go.
    if pending.reasks >= settings.DIALOGUE_MAX_REASKS:
        return dialogue_skill.answered("Let's leave that for now. What can I do for you?", unanswered=True), None, None
    return dialogue_skill.answered(f"Sorry, I didn't get that. {pending.prompt}", unanswered=True), KEEP_QUESTION, None


def _concept_proposal(
    name: str, definition_text: str, understand, run_now: bool
) -> tuple[Action, dialogue.Question | None, str]:
    """Read what a taught name means; (the reply asking to confirm it, its question, the problem)."""
    definition = concepts.read_definition(definition_text, understand)
    if not definition.steps:
        return dialogue_skill.answered(definition.problem, unanswered=True), None, definition.problem
    prompt = f"So {name} means: {concepts.describe_steps(definition.steps)}. Shall I remember that?"
    teach = Action(
        skill="concepts",
        intent="concept_teach",
        params={"concept": name, "steps": definition.steps, "definition": definition_text, "run_now": run_now},
    )
    question = dialogue.Question(
        kind=PendingQuestion.Kind.CONFIRM, prompt=prompt, intent="concept_teach", action=teach.as_dict()
    )
    return dialogue_skill.answered(prompt, confirming=teach.as_dict()), question, ""


def _teaching(understood: NluResult, understand) -> tuple[Action, dialogue.Question | None]:
    """ "When I say goodnight, turn off all the lights": the name, and what it should mean."""
    split = concepts.split_teaching(understood)
    if split is None or not split[0]:
        return dialogue_skill.answered(
            'Tell me like this: "when I say goodnight, turn off all the lights".', unanswered=True
        ), None
    name, rest = split
    if not rest:
        # "turn on karaoke mode" read as teaching with nothing after the name: ask what it means.
        prompt = f"What do you mean by {name}?"
        question = dialogue.Question(
            kind=PendingQuestion.Kind.DEFINE, prompt=prompt, intent="concept_run", slots={"concept": name}
        )
        return dialogue_skill.answered(prompt, unanswered=True), question
    if len(name) > concepts.MAX_NAME_CHARS:
        return dialogue_skill.answered("That name is too long for me to remember.", unanswered=True), None
    if concepts.shadows_builtin(name, understand):
        return dialogue_skill.answered(
            f'"{name}" already means something to me, so I can\'t make it mean something else.', unanswered=True
        ), None
    action, question, _ = _concept_proposal(name, rest, understand, run_now=False)
    return action, question


def _guided_question(user_id: int, asked: list[str]) -> dialogue.Question | None:
    """The next question of "learn my preferences", or None when everything has been asked or is known."""
    following = preferences.next_guided(user_id, asked)
    if following is None:
        return None
    slot, prompt = following
    return dialogue.Question(
        kind=PendingQuestion.Kind.GUIDED,
        prompt=prompt,
        intent="preference_set",
        needs=slot,
        slots={"asked": [*asked, slot]},
    )


def _asked_in_so_many_words(understood: NluResult, asr_confidence: float | None, reworded: bool) -> bool:
    """The user's own words, read confidently, asked for this: no rewrite, no filled-in answer."""
    threshold = settings.CONFIRM_BELOW_CONFIDENCE
    return (
        not reworded and understood.confidence >= threshold and (asr_confidence is None or asr_confidence >= threshold)
    )


def _run_stages(
    request: TurnRequest,
    ctx: TurnContext,
    trace: Trace,
    layers: RewriteLayers | None = None,
    pending: PendingQuestion | None = None,
    previous_said: Callable[[], str | None] = lambda: None,
) -> dict:
    """Run stages 1-6; return the fields of the Turn they decided, and (`next_question`, popped by
    the caller) the question the turn leaves pending."""
    fields: dict = {"status": Turn.Status.OK}

    def understand(text: str) -> NluResult:
        return nlu.understand(text, ctx)

    with trace.stage("asr", input=[h.text for h in request.nbest], model_version=ASR_VERSION) as st:
        asr = recognise(list(request.nbest))
        if not asr.text and (len(request.nbest) == 1 or not any(normalise(h.text) for h in request.nbest)):
            raise ValueError("nothing left after normalisation")
        st.output, st.confidence = asr.text, asr.confidence

    layers = layers or RewriteLayers()
    # The sentence embedding online rewriting may need starts now, beside the NLU, where the fire model will judge.
    embed = early_embedding(
        asr.text,
        ctx.user_id,
        nlu.sentence_vector,
        allow_global=layers.global_rewrites,
        allow_personal=layers.personal_rewrites,
    )
    with trace.stage("nlu", input=asr.text) as st:
        if len(request.nbest) > 1:
            # Several hypotheses: the reading is chosen over hypotheses and intents together.
            asr, understood, readings = choose_reading(list(request.nbest), understand)
            st.input = {"hypotheses": readings, "chosen": asr.chosen}
        else:
            understood = understand(asr.text)
        st.output, st.confidence, st.model_version = (
            understood.as_dict(),
            understood.confidence,
            understood.model_version,
        )
    fields.update(asr_text=asr.text, asr_confidence=asr.confidence)

    answer: Action | None = None  # the action an answer to the pending question decided
    next_question: object = None
    filled = False
    if pending is not None:
        with trace.stage("dialogue", input=pending.as_dict(), model_version=dialogue.DIALOGUE_VERSION) as st:
            reading = dialogue.read_answer(pending, understood)
            st.output = reading.as_dict()
        if reading.kind == "fill" and reading.understood is not None:
            understood, filled = reading.understood, True
        elif reading.kind == "define":
            # "What do you mean by study mode?" -> "turn off the lights and …": confirm, then learn it.
            name = str(pending.slots.get("concept") or "that")
            answer, next_question, problem = _concept_proposal(name, reading.value or "", understand, run_now=True)
            if problem:
                if pending.reasks >= settings.DIALOGUE_MAX_REASKS:
                    answer = dialogue_skill.answered(f"{problem} Let's leave {name} for now.", unanswered=True)
                else:
                    answer = dialogue_skill.answered(f"{problem} {pending.prompt}", unanswered=True)
                    next_question = KEEP_QUESTION
        elif reading.kind != "new_request":
            answer, next_question, survey_answer = _answer_action(pending, reading)
            if survey_answer:
                fields["survey_answer"] = survey_answer

    outcome = None
    if answer is None and not filled:
        with trace.stage("rewrite", input=asr.text, model_version="rules") as st:
            if (concept := concepts.invoked(ctx.user_id, understood)) is not None:
                # A taught rule of the user's own: their name for a routine ("goodnight", "study mode on")
                # means what they taught, whatever else the words could mean.
                understood = NluResult(
                    text=understood.text,
                    intent="concept_run",
                    confidence=understood.confidence,
                    slots={"concept": concept.name},
                    model_version=understood.model_version,
                    alternatives=understood.alternatives,
                )
                st.output = {"taught_concept": concept.name}
            elif understood.intent != "concept_teach":
                outcome, understood = apply_rewrite(
                    asr.text,
                    understood,
                    ctx.user_id,
                    understand,
                    embed=embed,
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

    rewrote = outcome is not None and outcome.kept  # acting on other words than the user's
    home = skills.find_home(ctx)
    with trace.stage("resolve", input=understood.as_dict(), model_version=SKILLS_VERSION) as st:
        if answer is None and not filled and understood.intent == "concept_teach":
            # "When I say goodnight, turn off all the lights": read the definition, then ask to confirm.
            answer, next_question = _teaching(understood, understand)
        action: Action = answer or skills.resolve(understood, ctx, home)
        if (
            answer is None
            and action.intent in CONFIRMED_INTENTS
            and not action.params.get("error")
            and not _asked_in_so_many_words(understood, asr.confidence, filled or rewrote)
        ):
            # Opening something nobody clearly asked to open: ask first, act on "yes".
            prompt = dialogue_skill.confirm_question(action)
            next_question = dialogue.Question(
                kind=PendingQuestion.Kind.CONFIRM, prompt=prompt, intent=action.intent, action=action.as_dict()
            )
            action = dialogue_skill.answered(prompt, confirming=action.as_dict())
        st.output = action.as_dict()
    fields["action"] = action.as_dict()

    with trace.stage("execute", input=action.as_dict(), model_version=SKILLS_VERSION) as st:
        result: SkillResult = skills.execute(action, ctx, home)
        st.output = {"ok": result.ok, "text": result.text, "data": result.data}
    fields["changed_device_ids"] = result.changed_device_ids
    if next_question is None and not result.ok and result.data.get("needs") == "definition":
        # "What do you mean by study mode?": the answer is what it means.
        next_question = dialogue.Question(
            kind=PendingQuestion.Kind.DEFINE,
            prompt=result.text,
            intent=action.intent,
            slots={"concept": str(result.data.get("concept") or "")},
        )
    elif next_question is None and not result.ok and result.data.get("needs") and action.skill != dialogue_skill.SKILL:
        # "Which device do you want to know about?": the answer comes next, and completes this request.
        next_question = dialogue.Question(
            kind=PendingQuestion.Kind.SLOT,
            prompt=result.text,
            intent=action.intent,
            slots=understood.slots,
            needs=str(result.data["needs"]),
        )

    guided_text = ""
    if next_question is None and result.data.get("guided"):
        # "Learn my preferences": the first question.
        next_question = _guided_question(ctx.user_id, [])
    elif (
        pending is not None
        and pending.kind == PendingQuestion.Kind.GUIDED
        and next_question is None
        and reading.kind in ("fill", "skip")
    ):
        # An answer (or a skip) in "learn my preferences": on to the next question, if any.
        next_question = _guided_question(ctx.user_id, list(pending.slots.get("asked") or []))
        guided_text = next_question.prompt if next_question else "That's all my questions for now."

    with trace.stage("respond", input=result.text, model_version=SKILLS_VERSION) as st:
        fields["response"] = " ".join(f"{result.text} {guided_text}".split()) or SORRY
        reason = None
        if (
            next_question is None
            and NOT_SURVEYED.isdisjoint({understood.intent, action.intent})
            and action.skill != dialogue_skill.SKILL
        ):
            if asks_survey(ctx, request.raw_text) and prompts.within_budget(ctx.user_id, ctx.now, prompts.SURVEY):
                reason = prompts.SURVEY
            else:
                reason = prompts.moment(understood, rewrote, result, asr.text, previous_said)
                if reason and not prompts.within_budget(ctx.user_id, ctx.now):
                    reason = None
        if reason:
            # After a rewrite the question names what was understood: "Did you mean "turn off the kitchen lights"?"
            asked = (
                prompts.did_you_mean(outcome.target_text) if reason == prompts.REWRITE and outcome else SURVEY_QUESTION
            )
            fields["response"] += " " + asked
            fields["survey_asked"] = reason == prompts.SURVEY  # only the random ones calibrate the defect model
            fields["prompt_reason"] = reason
            next_question = dialogue.Question(kind=PendingQuestion.Kind.SURVEY, prompt=asked)
        st.output = fields["response"]
    if understood.intent == OUT_OF_SCOPE or action.intent == OUT_OF_SCOPE:  # incl. intents no skill handles
        fields["status"] = Turn.Status.OUT_OF_SCOPE
    fields["next_question"] = next_question
    return fields


def _said_just_before(session: Session | None, now: datetime) -> str | None:
    """What the user said last in this session, if within REPEAT_WINDOW_S (asked only at a moment)."""
    if session is None or session.pk is None:
        return None
    since = now - timedelta(seconds=REPEAT_WINDOW_S)
    return (
        Turn.objects.filter(session=session, created_at__gte=since, created_at__lte=now)
        .order_by("-created_at", "-id")
        .values_list("asr_text", flat=True)
        .first()
    )


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
    ctx = build_context(user, device, now, session)

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
        # The question this session waits for an answer to, locked: a twin turn waits its turn.
        pending = dialogue.pending_question(session, now)
        try:
            with transaction.atomic():
                # The user's experiment arm decides which rewrite layers may fire.
                fields = _run_stages(
                    request, ctx, trace, rewrite_layers_for(user), pending, lambda: _said_just_before(session, now)
                )
        except StageFailed as failed:
            log.warning("turn failed at %s: %s", failed.stage, failed.error)
            fields = {"status": Turn.Status.ERROR, "response": SORRY}
            for record in trace.records:
                if record.stage == "asr" and isinstance(record.output, str):
                    fields["asr_text"], fields["asr_confidence"] = record.output, record.confidence
        changed = fields.pop("changed_device_ids", ())
        next_question = fields.pop("next_question", KEEP_QUESTION)  # a failed stage leaves the question be
        survey_answer = fields.pop("survey_answer", None)

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
            skill=str((fields.get("action") or {}).get("skill") or ""),
            nlu_model_version=next((r.model_version for r in trace.records if r.stage == "nlu"), ""),
            idempotency_key=key,
            **fields,
        )
        if survey_answer and pending is not None:
            Feedback.objects.create(turn_id=pending.asked_in_id, kind=survey_answer)
        if isinstance(next_question, dialogue.Question):
            dialogue.ask(session, turn, next_question)
        elif next_question == KEEP_QUESTION and pending is not None and fields.get("status") != Turn.Status.ERROR:
            pending.reasks += 1
            pending.save(update_fields=["reasks"])
        elif next_question is None and pending is not None:
            pending.delete()
        if changed:
            transaction.on_commit(lambda: broadcast_device_changes(ctx.home_id, changed))
    return turn

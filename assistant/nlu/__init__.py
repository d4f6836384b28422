"""Natural language understanding: intent, slots, calibrated confidence, out of scope.

    understand(text, ctx) -> NluResult   (the pipeline's stage 2)

The model is the active version of NLU_MODELS in the model registry
(assistant/registry.py). Serving code only, by concern:

    encoder.py    the MiniLM encoder (sentence and word-piece states)
    formats.py    the artifact formats and what a loaded model answers
    heads.py      the heads model: frozen encoder + intent head + BIO slot head
    joint.py      the joint model: fine-tuned encoder, heads after every layer, early exit
    context.py    the context re-ranker over the model's best readings (CONTEXT_MODELS)
    loading.py    an artifact of either format -> a model
    tagging.py    words, word pieces, BIO labels and spans
    metrics.py    intent/slot/out-of-scope metrics and calibration error
    evaluate.py   a model scored on public data or ASR hypotheses
    seed.py, datasets.py, labels.py   training data: seed templates, importers, label tables

The trainers are in learning/nlu/. Importing this package does not import torch;
the first understand() call does.
"""

from __future__ import annotations

from django.conf import settings

from assistant.intents import INTENTS, OUT_OF_SCOPE
from assistant.nlu.context import serving_ranker, situation_of
from assistant.nlu.loading import load_model
from assistant.nlu.tagging import join_spans
from assistant.registry import ModelKind
from assistant.turns import NluResult, SlotSpan, TurnContext

__all__ = ["NLU_MODELS", "sentence_vector", "serving", "understand"]

NLU_MODELS = ModelKind("nlu", load_model, label="NLU", hint="run `python manage.py train_nlu`")


# The training recipes (learning/nlu/service.py trains them), worse first, and what each taught the model
# in the chat's words. Here, not beside the trainers, so that `train_nlu --if-missing` reads them without torch.
FIRST, BEST = "first", "best"
RECIPES = (FIRST, BEST)
RECIPE_DESCRIPTIONS = {
    FIRST: "first model: the seed utterances; a better one is trained in the background",
    BEST: "the seed utterances and public data",
}


def recipe_of(manifest: dict) -> str:
    """The recipe a version was trained with; a version from before recipes were recorded is a first one."""
    recipe = manifest.get("recipe")
    return recipe if recipe in RECIPES else FIRST


def serving() -> dict[str, str] | None:
    """The NLU version serving now and what it was trained on (the chat's device panel shows it)."""
    row = NLU_MODELS.active_version()
    if row is None:
        return None
    recipe = recipe_of(row.manifest)
    return {"version": row.version, "recipe": recipe, "about": RECIPE_DESCRIPTIONS[recipe]}


def sentence_vector(text: str):
    """The MiniLM sentence embedding of a text (L2-normalised), as the learners store them.
    The heads model has just encoded a turn's text: the encoder's cache answers."""
    from assistant.nlu.encoder import shared_encoder

    return shared_encoder().encode(text).sentence


def understand(text: str, ctx: TurnContext | None = None) -> NluResult:
    """Intent + slots for one normalised utterance, with the active model.

    Span offsets index `text` as given. With the turn's context `ctx` and a context re-ranker
    serving for this model (context.py), the situation chooses among the model's best readings
    and the confidence is the re-ranker's. The result is out of scope when the reading is that
    class or its confidence is below NLU_OOS_THRESHOLD; slots are kept only if the chosen intent
    takes them.
    """
    if not isinstance(text, str):
        raise TypeError("text must be a string")
    model = NLU_MODELS.model()
    if not text.strip():
        return NluResult(
            text=text, intent=OUT_OF_SCOPE, confidence=0.0, slots={}, out_of_scope=True, model_version=model.version
        )
    prediction = model.predict(text)
    order = prediction.probs.argsort()[::-1]
    readings = [(model.intents[int(i)], float(prediction.probs[int(i)])) for i in order[:3]]
    before_context: tuple[tuple[str, float], ...] = ()
    ranker = serving_ranker(model.version) if ctx is not None else None
    if ranker is not None:
        # The situation chooses among the NLU's best readings; the trace keeps their order before.
        situation = situation_of(ctx)
        before_context = tuple(readings)
        readings = ranker.rank(text, prediction.probs, model.intents, situation)
    alternatives = tuple(readings[:3])
    intent, confidence = alternatives[0]
    out_of_scope = intent == OUT_OF_SCOPE or confidence < settings.NLU_OOS_THRESHOLD
    if out_of_scope:
        intent = OUT_OF_SCOPE
    allowed = set(INTENTS[intent].slots) if intent in INTENTS else set()
    spans = tuple(
        SlotSpan(type=kind, value=text[start:end], start=start, end=end)
        for kind, start, end in join_spans(text, [(k, a, b) for k, a, b in prediction.spans if k in allowed])
    )
    slots: dict[str, str] = {}
    for span in spans:
        slots.setdefault(span.type, span.value)
    return NluResult(
        text=text,
        intent=intent,
        confidence=min(1.0, max(0.0, confidence)),
        slots=slots,
        spans=spans,
        out_of_scope=out_of_scope,
        model_version=model.version,
        alternatives=alternatives,
        before_context=before_context,
        context_version=ranker.version if ranker is not None else "",
    )

"""What the NLU trains on: the first recipe (the seed, served within a minute of `make run`), the best one
(the seed and public data, with keyboard-noise copies), `train_nlu --recipe best --background`, and the
label rules that make a public example ours."""

from __future__ import annotations

import json
import random
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from assistant.nlu.labels import trained_intent
from assistant.nlu.seed import Example, seed_examples
from assistant.nlu.typos import NEIGHBOURS, mistype, noisy_example, noisy_text
from assistant.text import normalise
from assistant.turns import SlotSpan
from learning.models import Job
from learning.nlu.service import active_recipe, recipe_examples, with_typos


def _slurp_test_sentences() -> set[str]:
    path = django_settings.SHARED_DATA_DIR / "slurp" / "annotated_devel_test.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {normalise(r["sentence"]) for r in rows if r["split"] == "test"}


@pytest.mark.django_db
def test_the_best_recipe_knows_our_intents_and_the_public_ones_but_never_slurp_test(settings):
    settings.NLU_TYPO_FRACTION = 0.0
    examples, architecture = recipe_examples("best")
    assert architecture == settings.NLU_BEST_ARCHITECTURE
    intents = {e.intent for e in examples}
    assert {"timer_set", "play_media", "iot_thermostat_set", "concept_teach"} <= intents  # ours only
    assert {"play_podcasts", "email_query", "transport_taxi", "iot_coffee"} <= intents  # the public data's
    assert "play_audiobook" not in intents  # trained as ours: play_media plays the audiobook
    texts = {e.text for e in examples}
    assert len(texts) == len(examples)
    # Only the seed's own sentences may coincide with a test sentence ("do i have new emails"): no row
    # of SLURP's test split is read.
    assert not (texts - {e.text for e in seed_examples()}) & _slurp_test_sentences()
    first, first_architecture = recipe_examples("first")
    assert first_architecture == "heads"
    assert {e.intent for e in first} < intents


@pytest.mark.django_db
def test_a_missing_public_file_leaves_the_seed(settings, tmp_path, caplog):
    settings.NLU_PUBLIC_DATA = [tmp_path / "gone.jsonl"]
    settings.NLU_TYPO_FRACTION = 0.0
    examples, _ = recipe_examples("best")
    assert len(examples) == len(seed_examples())
    assert "gone.jsonl is missing" in caplog.text


def test_an_unknown_recipe_is_refused():
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_examples("<script>")


def test_mistyped_copies_keep_their_labels_on_their_words_and_their_group():
    seed = seed_examples()
    copies = with_typos(seed, 0.2)[len(seed) :]
    assert 0.15 * len(seed) < len(copies) <= 0.2 * len(seed)
    originals = {e.group or e.text for e in seed}
    texts = {e.text for e in seed}
    for copy in copies:
        assert copy.text not in texts
        assert copy.group in originals  # held out with its original, or trained with it
        for span in copy.spans:
            assert copy.text[span.start : span.end] == span.value
            assert (span.start == 0 or copy.text[span.start - 1] == " ") and (
                span.end == len(copy.text) or copy.text[span.end] == " "
            )
    assert with_typos(seed, 0.2) == with_typos(seed, 0.2)  # the same copies every run: a stable data hash
    assert with_typos(seed, 0.0) is seed


def test_one_keyboard_error_per_word_and_only_in_words_of_letters():
    rng = random.Random(3)
    for word in ("kitchen", "lights", "temperature", "off"):
        for _ in range(50):
            typed = mistype(word, rng)
            assert typed != word or word == "off"
            assert abs(len(typed) - len(word)) <= 1
    assert mistype("20", rng) == "20" and mistype("on", rng) == "on"
    assert set(NEIGHBOURS["k"]) >= {"j", "l", "i", "o", "m"}
    example = Example("set the oven to 200 degrees", "iot_oven_set", (SlotSpan("temperature", "200 degrees", 16, 27),))
    noisy = noisy_example(example, random.Random(1), typos=2)
    assert noisy.text.count(" ") == example.text.count(" ") and "200" in noisy.text
    assert noisy_text("what is the weather in paris", 5) == noisy_text("what is the weather in paris", 5)


def test_public_examples_become_ours_where_a_skill_of_ours_fulfils_them():
    assert trained_intent("play_audiobook", set()) == "play_media"
    assert trained_intent("music_likeness", {"genre"}) == "preference_set"
    assert trained_intent("music_likeness", set()) == "music_likeness"  # "save this song": not a preference
    assert trained_intent("qa_factoid", set()) == "qa_factoid"


def test_the_seed_names_the_public_intents_it_cannot_do():
    intents = {e.intent for e in seed_examples()}
    assert {"takeaway_order", "qa_factoid", "email_query", "out_of_scope"} <= intents


@pytest.mark.django_db
def test_the_active_versions_recipe_is_what_a_retrain_repeats(nlu_model):
    assert active_recipe() == "first"  # recorded before recipes, or the seed's
    nlu_model.manifest = {**nlu_model.manifest, "recipe": "best"}
    nlu_model.save(update_fields=["manifest"])
    assert active_recipe() == "best"


@pytest.mark.django_db
def test_make_run_queues_the_best_model_once(nlu_model, django_capture_on_commit_callbacks):
    out = StringIO()
    with django_capture_on_commit_callbacks() as sent:
        call_command("train_nlu", "--recipe", "best", "--background", "--if-missing", stdout=out)
    job = Job.objects.get(kind="train_nlu")
    assert job.status == Job.Status.QUEUED and job.params["recipe"] == "best"
    assert len(sent) == 1 and "Queued learning job" in out.getvalue()
    again = StringIO()
    call_command("train_nlu", "--recipe", "best", "--background", "--if-missing", stdout=again)
    assert "already queued" in again.getvalue()
    assert Job.objects.filter(kind="train_nlu").count() == 1
    # Once the best one serves, neither recipe trains again on `make run`.
    nlu_model.manifest = {**nlu_model.manifest, "recipe": "best"}
    nlu_model.save(update_fields=["manifest"])
    for recipe in ("first", "best"):
        done = StringIO()
        call_command("train_nlu", "--recipe", recipe, "--background", "--if-missing", stdout=done)
        assert "nothing to do" in done.getvalue()


@pytest.mark.django_db
def test_a_recipe_does_not_combine_with_data_files(tmp_path):
    with pytest.raises(CommandError, match="no --recipe"):
        call_command("train_nlu", "--recipe", "best", "--data", str(tmp_path / "x.jsonl"), stdout=StringIO())
    with pytest.raises(CommandError, match="no --recipe"):
        call_command("train_nlu", "--background", "--no-seed", stdout=StringIO())


@pytest.mark.django_db
def test_an_unreadable_public_file_is_a_clear_error_not_a_traceback(settings, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"\x00\xff not json {")
    settings.NLU_PUBLIC_DATA = [broken]
    with pytest.raises(CommandError, match=r"broken\.jsonl"):
        call_command("train_nlu", "--recipe", "best", stdout=StringIO())

from __future__ import annotations

import pytest

from assistant.rewrite.rules import apply_rewrite, find_rule
from assistant.turns import NluResult
from feedback.models import RewriteRule


def _nlu(text: str, intent: str, confidence: float, oos: bool = False) -> NluResult:
    return NluResult(text=text, intent=intent, confidence=confidence, slots={}, out_of_scope=oos)


@pytest.fixture
def understand():
    table = {
        "play the wheels": _nlu("play the wheels", "play_music", 0.9),
        "play nothing": _nlu("play nothing", "out_of_scope", 0.3, oos=True),
    }
    return lambda text: table[text]


def test_only_active_rules_fire(alice):
    RewriteRule.objects.create(source_text="play the weeds", target_text="play the wheels", status="proposed")
    assert find_rule("play the weeds", alice.pk) is None


def test_a_personal_rule_beats_a_global_one(alice):
    RewriteRule.objects.create(source_text="play mine", target_text="play the wheels", status="active")
    personal = RewriteRule.objects.create(
        source_text="play mine", target_text="play nothing", status="active", scope="personal", user=alice
    )
    assert find_rule("play mine", alice.pk) == personal


def test_another_users_personal_rule_does_not_fire(alice, bob):
    RewriteRule.objects.create(
        source_text="play mine", target_text="play the wheels", status="active", scope="personal", user=bob
    )
    assert find_rule("play mine", alice.pk) is None


def test_a_rewrite_that_wins_is_kept(alice, understand):
    RewriteRule.objects.create(source_text="play the weeds", target_text="play the wheels", status="active")
    original = _nlu("play the weeds", "out_of_scope", 0.2, oos=True)
    outcome, chosen = apply_rewrite("play the weeds", original, alice.pk, understand)
    assert outcome.kept
    assert chosen.intent == "play_music"
    assert outcome.as_dict()["to"] == "play the wheels"


def test_a_rewrite_that_loses_is_recorded_but_not_used(alice, understand):
    RewriteRule.objects.create(source_text="play jazz", target_text="play nothing", status="active")
    original = _nlu("play jazz", "play_music", 0.8)
    outcome, chosen = apply_rewrite("play jazz", original, alice.pk, understand)
    assert outcome is not None
    assert not outcome.kept
    assert chosen is original


def test_no_rule_means_no_rewrite(alice, understand):
    original = _nlu("play jazz", "play_music", 0.8)
    assert apply_rewrite("play jazz", original, alice.pk, understand) == (None, original)


def test_a_rule_is_kept_over_a_confident_reading_of_the_words_it_was_mined_for(alice):
    # The NLU is confidently wrong on "play the weeds" (that is why people rephrased it); the rule's
    # target reads less confidently, and is still what is acted on.
    RewriteRule.objects.create(source_text="play the weeds", target_text="play the wheels", status="active")
    table = {"play the wheels": _nlu("play the wheels", "play_music", 0.7)}
    original = _nlu("play the weeds", "weather_query", 0.95)
    outcome, chosen = apply_rewrite("play the weeds", original, alice.pk, table.__getitem__)
    assert outcome.kept and chosen.intent == "play_music"


def test_an_online_rewrite_of_a_confident_reading_needs_words_known_to_fail(alice, monkeypatch):
    import numpy as np

    from assistant.rewrite import rules
    from assistant.rewrite.online import Entry, Pick

    class Index:
        version, known_bad, known_good = "test", {"play the weeds"}, set()

        def judges(self, user_id, *, use_personal):  # no fire model: only risky turns are tried
            return False

        def known_to_fail(self, text, user_id, *, use_personal):
            return text in self.known_bad

        def holds(self, user_id):
            return False

        def best(self, query, user_id, *, use_global, use_personal, risky):
            return Pick(Entry("play the wheels", "play_music", {}, 9, 4, 0.9, 0.0), False, 2.0)

    index = Index()
    monkeypatch.setattr(rules.REWRITE_INDEXES, "model", lambda: index)
    understand = {"play the wheels": _nlu("play the wheels", "play_music", 0.7)}.__getitem__
    original = _nlu("play the weeds", "weather_query", 0.95)
    outcome, chosen = apply_rewrite("play the weeds", original, alice.pk, understand, embed=lambda t: np.zeros(3))
    assert outcome.kept and outcome.layer == "online-global" and chosen.intent == "play_music"
    # Words not known to fail, read confidently, are not even tried.
    index.known_bad = set()
    assert apply_rewrite("play the weeds", original, alice.pk, understand, embed=lambda t: np.zeros(3)) == (
        None,
        original,
    )

    # Words known to work as they are, even read unsurely, are not even embedded.
    def no_embedding(text):
        raise AssertionError("embedded words known to work")

    index.known_good = {"play the weeds"}
    unsure = _nlu("play the weeds", "weather_query", 0.2)
    assert apply_rewrite("play the weeds", unsure, alice.pk, understand, embed=no_embedding) == (None, unsure)


def test_after_forgetting_nothing_the_index_learned_from_the_person_is_used(alice, monkeypatch):
    """An index built before alice had everything forgotten still holds her words that failed for her; they
    no longer make her turn risky, and her personal layer is not searched."""
    from datetime import timedelta

    import numpy as np
    from django.utils import timezone

    from assistant.rewrite import rules
    from assistant.rewrite.online import RewriteIndex
    from teaching.privacy import forget_taught

    built = timezone.now() - timedelta(hours=1)
    empty = np.zeros((0, 3), np.float32)
    meta = {"global": [], "personal": [], "personal_rows": {}, "personal_bad": {str(alice.pk): ["play the weeds"]}}
    index = RewriteIndex("test", {"built_at": built.isoformat()}, {"global_vectors": empty, "personal_vectors": empty},
                         meta, ranker=None)  # fmt: skip
    asked = []
    index.best = lambda query, user_id, **how: asked.append(how)  # no candidate: only what was asked matters
    monkeypatch.setattr(rules.REWRITE_INDEXES, "model", lambda: index)
    original = _nlu("play the weeds", "weather_query", 0.95)

    def rewrite():
        return apply_rewrite("play the weeds", original, alice.pk, lambda t: original, embed=lambda t: np.zeros(3))

    assert index.holds(alice.pk) and rewrite() == (None, original)
    assert asked[-1] == {"use_global": True, "use_personal": True, "risky": True}  # known to fail, for her
    forget_taught(alice.pk, timezone.now())
    assert rewrite() == (None, original) and len(asked) == 1  # confident, not risky any more: not even looked up

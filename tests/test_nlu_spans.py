from __future__ import annotations

from assistant.nlu import join_spans


def test_a_value_split_by_the_tagger_is_joined():
    text = "weather in paris on friday"
    assert join_spans(text, [("place", 11, 16), ("date", 17, 19), ("date", 20, 26)]) == [
        ("place", 11, 16),
        ("date", 17, 26),
    ]


def test_a_list_of_values_becomes_one_value():
    text = "add eggs, milk and bread to the list"
    spans = [("list_item", 4, 8), ("list_item", 10, 14), ("list_item", 19, 24)]
    assert join_spans(text, spans) == [("list_item", 4, 24)]


def test_values_of_different_types_or_far_apart_stay_apart():
    text = "play adele in the kitchen then adele"
    spans = [("artist", 5, 10), ("room", 18, 25), ("artist", 31, 36)]
    assert join_spans(text, spans) == spans
    assert join_spans("play hello by adele", [("song", 5, 10), ("song", 14, 19)]) == [("song", 5, 10), ("song", 14, 19)]

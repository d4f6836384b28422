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


def test_bio_decoding_continues_a_value_the_tagger_restarted():
    from assistant.nlu.tagging import decode_bio

    text = "bake 12 oatmeal cookies in london england"
    tags = ["O", "O", "B-food_type", "B-food_type", "O", "B-place", "I-place"]
    assert decode_bio(text, tags) == [("food_type", 8, 23), ("place", 27, 41)]
    # A stray I- opens a span; different types side by side stay apart; O ends a span.
    assert decode_bio("play jazz now", ["I-genre", "B-genre", "O"]) == [("genre", 0, 9)]
    assert decode_bio("tuesday 5 pm", ["B-date", "B-time", "I-time"]) == [("date", 0, 7), ("time", 8, 12)]
    assert decode_bio("paris or rome", ["B-place", "O", "B-place"]) == [("place", 0, 5), ("place", 9, 13)]

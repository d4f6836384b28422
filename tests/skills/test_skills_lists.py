"""Shopping and to-do lists: add, read, remove, without the NLU."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction

from assistant import skills
from assistant.models import ListItem
from assistant.turns import NluResult, TurnContext

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def say(user, intent: str, text: str = "", **slots: str):
    home = user.home
    ctx = TurnContext(user_id=user.pk, home_id=home.pk, device_id=None, room=None, has_screen=False, now=NOW)
    action = skills.resolve(NluResult(text=text, intent=intent, confidence=0.99, slots=slots), ctx)
    with transaction.atomic():
        return skills.execute(action, ctx)


def items(user, name: str) -> list[str]:
    return [i.text for i in ListItem.objects.filter(home=user.home, list_name=name)]


def test_items_go_to_the_shopping_list_by_default_and_grocery_is_the_same_list(alice):
    result = say(alice, "lists_createoradd", list_item="milk")
    assert result.ok and result.text == "Added milk to your shopping list."
    say(alice, "lists_createoradd", list_item="eggs and bread", list_name="grocery list")
    assert items(alice, "shopping") == ["milk", "eggs", "bread"]


def test_an_item_already_on_the_list_is_not_added_twice(alice):
    say(alice, "lists_createoradd", list_item="milk")
    result = say(alice, "lists_createoradd", list_item="milk", list_name="shopping")
    assert result.text == "Milk is already on it."
    assert items(alice, "shopping") == ["milk"]


def test_to_do_lists_have_their_own_items(alice):
    say(alice, "lists_createoradd", list_item="call the plumber", list_name="to do")
    say(alice, "lists_createoradd", list_item="milk")
    result = say(alice, "lists_query", list_name="todo")
    assert result.text == "Your to-do list has 1 item: call the plumber."
    result = say(alice, "lists_query")
    assert result.text == "Your shopping list has milk. Your to-do list has call the plumber."


def test_reading_an_empty_list_says_so(alice):
    assert say(alice, "lists_query", list_name="shopping").text == "Your shopping list is empty."
    assert say(alice, "lists_query").text == "Your lists are empty."


def test_removing_an_item_finds_it_despite_small_differences(alice):
    say(alice, "lists_createoradd", list_item="tomatoes, milk")
    result = say(alice, "lists_remove", list_item="tomato", list_name="shopping list")
    assert result.ok and result.text == "Removed tomatoes from your shopping list."
    assert items(alice, "shopping") == ["milk"]


def test_removing_an_item_that_is_not_there_is_a_helpful_failure(alice):
    say(alice, "lists_createoradd", list_item="milk")
    result = say(alice, "lists_remove", list_item="caviar", list_name="shopping")
    assert not result.ok and result.text == "Caviar isn't on your shopping list."
    assert items(alice, "shopping") == ["milk"]


def test_a_list_can_be_cleared_and_adding_nothing_asks_what(alice):
    say(alice, "lists_createoradd", list_item="milk and eggs")
    result = say(alice, "lists_remove", text="clear my shopping list", list_name="shopping")
    assert result.ok and items(alice, "shopping") == []
    result = say(alice, "lists_createoradd", list_name="shopping")
    assert not result.ok and result.text == "What should I add to your shopping list?"


def test_another_users_lists_are_separate(alice, bob):
    say(alice, "lists_createoradd", list_item="milk")
    assert say(bob, "lists_query", list_name="shopping").text == "Your shopping list is empty."
    assert not say(bob, "lists_remove", list_item="milk").ok
    assert items(alice, "shopping") == ["milk"]

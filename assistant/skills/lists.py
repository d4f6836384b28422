"""Shopping and to-do lists (ListItem rows per home).

List names are canonicalised ("grocery", "groceries", "shopping list" ->
"shopping"; "to do", "todo", "things to do" -> "to-do"); other names make their
own list. Adding without a list name goes to the shopping list; reading without
one reads every list. "eggs and bread" adds two items.
"""

from __future__ import annotations

import re

from assistant.models import Home, ListItem
from assistant.skills.base import Request, failed, join
from assistant.turns import Action, SkillResult, TurnContext
from assistant.world.catalogue import score

SHOPPING, TODO = "shopping", "to-do"
_ALIASES = {
    "shopping": SHOPPING, "grocery": SHOPPING, "groceries": SHOPPING, "shop": SHOPPING, "food": SHOPPING,
    "things to buy": SHOPPING, "buy": SHOPPING, "supermarket": SHOPPING,
    "to do": TODO, "todo": TODO, "to-do": TODO, "things to do": TODO, "tasks": TODO, "task": TODO,
    "chores": TODO, "errands": TODO, "reminders": TODO,
}  # fmt: skip
MAX_ITEMS_PER_LIST = 200
_CLEAR = re.compile(r"\b(clear|empty|everything|all items|delete the list|wipe)\b")


def list_name(text: str | None) -> str | None:
    if not text:
        return None
    t = re.sub(r"[^\w\s'-]", " ", text.lower())
    t = re.sub(r"\b(my|the|our|a|an|list|lists)\b", " ", t)
    t = " ".join(t.split())
    if not t:
        return None
    return _ALIASES.get(t, t[:50])


def _items(text: str) -> list[str]:
    parts = re.split(r",|\band\b|\bplus\b|&", text.lower())
    items = []
    for part in parts:
        item = " ".join(re.sub(r"^(some|a|an|the|more)\s+", "", part.strip()).split())
        if item and item not in items:
            items.append(item[:200])
    return items


def resolve(req: Request) -> Action:
    name = list_name(req.slot("list_name"))
    item_text = req.slot("list_item")
    if req.intent == "lists_createoradd":
        if not item_text:
            return req.fail(f"What should I add to your {name or SHOPPING} list?", needs="list_item")
        return req.action(list_name=name or SHOPPING, items=_items(item_text))
    if req.intent == "lists_remove":
        if not item_text:
            if _CLEAR.search(req.text) and name:
                return req.action(list_name=name, clear=True)
            return req.fail(f"What should I remove from your {name or SHOPPING} list?", needs="list_item")
        return req.action(list_name=name, items=_items(item_text))
    return req.action(list_name=name)


def _open(home: Home, name: str | None):
    items = ListItem.objects.filter(home=home, done=False)
    return items.filter(list_name=name) if name else items


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    params = action.params
    name = params.get("list_name")
    if action.intent == "lists_createoradd":
        name = name or SHOPPING
        existing = {i.text.lower() for i in _open(home, name)}
        added, already = [], []
        for item in params.get("items") or []:
            item = str(item)[:200]
            if item.lower() in existing:
                already.append(item)
            elif len(existing) >= MAX_ITEMS_PER_LIST:
                return failed(f"Your {name} list is full ({MAX_ITEMS_PER_LIST} items).")
            else:
                ListItem.objects.create(home=home, list_name=name, text=item)
                existing.add(item.lower())
                added.append(item)
        if not added and not already:
            return failed(f"What should I add to your {name} list?")
        parts = []
        if added:
            parts.append(f"Added {join(added)} to your {name} list.")
        if already:
            verb = "is" if len(already) == 1 else "are"
            parts.append(f"{join(already).capitalize()} {verb} already on it.")
        return SkillResult(text=" ".join(parts), data={"list": name, "added": added, "already": already})

    if action.intent == "lists_query":
        items = list(_open(home, name))
        if name:
            texts = [i.text for i in items]
            if not texts:
                return SkillResult(text=f"Your {name} list is empty.", data={"list": name, "items": []})
            return SkillResult(
                text=f"Your {name} list has {len(texts)} item{'s' if len(texts) != 1 else ''}: {join(texts)}.",
                data={"list": name, "items": texts},
            )
        if not items:
            return SkillResult(text="Your lists are empty.", data={"lists": {}})
        by_list: dict[str, list[str]] = {}
        for item in items:
            by_list.setdefault(item.list_name, []).append(item.text)
        text = " ".join(f"Your {n} list has {join(t)}." for n, t in by_list.items())
        return SkillResult(text=text, data={"lists": by_list})

    if action.intent == "lists_remove":
        if params.get("clear"):
            count = _open(home, name).delete()[0]
            return SkillResult(text=f"Cleared your {name} list.", data={"list": name, "removed": count})
        removed, missing = [], []
        for wanted in params.get("items") or []:
            candidates = list(_open(home, name))
            best = max(((score(str(wanted), i.text), i) for i in candidates), default=(0, None), key=lambda s: s[0])
            if best[1] is not None and best[0] >= 80:
                removed.append(best[1].text)
                best[1].delete()
            else:
                missing.append(str(wanted))
        where = f"your {name} list" if name else "your lists"
        if not removed:
            return failed(f"{join(missing).capitalize()} isn't on {where}.", list=name, missing=missing)
        text = f"Removed {join(removed)} from {where}."
        if missing:
            text += f" {join(missing).capitalize()} wasn't on it."
        return SkillResult(text=text, data={"list": name, "removed": removed, "missing": missing})
    return failed("Sorry, I can't do that with lists.")

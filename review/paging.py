"""Pages of a list without counting it: a COUNT(*) over a million turns took longer than the page itself
(bench_review), so a page fetches one row more than it shows to know whether another follows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_PAGE = 10_000


@dataclass(frozen=True)
class Page:
    object_list: list[Any]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def page_of(rows, requested: str | None, size: int) -> Page:
    """Page `requested` (1 when missing or not a number) of the queryset `rows`."""
    try:
        number = min(max(1, int(requested or 1)), MAX_PAGE)
    except ValueError:
        number = 1
    start = (number - 1) * size
    items = list(rows[start : start + size + 1])
    return Page(items[:size], number, len(items) > size)

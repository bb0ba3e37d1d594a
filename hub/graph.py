"""Groups of ids joined by links (kept free of imports: the benchmarks' peer processes use it too)."""
from __future__ import annotations

from typing import Hashable, Iterable, Sequence, TypeVar

T = TypeVar("T", bound=Hashable)


def connected_groups(ids: Sequence[T], links: Iterable[tuple[T, T]]) -> list[list[T]]:
    """``ids`` grouped by the links between them (union-find), each group in the order of ``ids``:
    with sorted ids, a group's first member is its smallest."""
    parent = {x: x for x in ids}

    def find(x: T) -> T:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[T, list[T]] = {}
    for x in ids:
        groups.setdefault(find(x), []).append(x)
    return list(groups.values())

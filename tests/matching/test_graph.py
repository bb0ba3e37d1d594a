"""Grouping ids by links: the batch's in-batch groups, bridge merges and the benchmark's clusters rely on it."""
from hub.graph import connected_groups


def test_groups_follow_links_through_one_another_in_the_order_of_the_ids() -> None:
    groups = connected_groups([0, 1, 2, 3, 4, 5], [(4, 2), (2, 0), (5, 3)])
    assert groups == [[0, 2, 4], [1], [3, 5]]      # with sorted ids, each group starts with its smallest


def test_links_to_unknown_ids_are_an_error_not_a_silent_group() -> None:
    import pytest
    with pytest.raises(KeyError):
        connected_groups(["a", "b"], [("a", "z")])

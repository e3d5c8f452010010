from steward.data.config import DedupConfig
from steward.data.dedup import dedup_key, find_duplicates, leakage

BASE = "the courier left my new blender with a neighbour I have never met before today"


def test_exact_key_ignores_case_space_and_punctuation() -> None:
    assert dedup_key("Hello,  World!") == dedup_key("hello world")
    assert dedup_key("hello world") != dedup_key("hello there world")


def test_exact_and_near_duplicates_keep_the_first() -> None:
    texts = [BASE, BASE.upper() + "!!", BASE + " again", "a completely different message about refunds and money"]
    res = find_duplicates(texts, ["a"] * 4, [10, 11, 12, 13], DedupConfig())
    assert res.drop == {1: ("duplicate_exact", 10), 2: ("duplicate_near", 10)}
    assert res.exact_groups == 1 and res.near_pairs == 1


def test_threshold_is_respected() -> None:
    texts = [BASE, BASE + " again"]
    assert not find_duplicates(texts, ["a", "a"], [0, 1], DedupConfig(threshold=0.99)).drop
    assert not find_duplicates(texts, ["a", "a"], [0, 1], DedupConfig(near=False)).drop


def test_label_conflicts_are_their_own_finding() -> None:
    # exact: majority label wins
    res = find_duplicates([BASE, BASE, BASE], ["a", "a", "b"], [0, 1, 2], DedupConfig(near=False))
    assert res.drop == {1: ("duplicate_exact", 0), 2: ("duplicate_label_conflict", 0)}
    assert res.conflicts[0]["labels"] == {"a": 2, "b": 1}
    # exact: a tie drops every copy, since neither label can be trusted
    res = find_duplicates([BASE, BASE], ["a", "b"], [0, 1], DedupConfig(near=False))
    assert res.drop == {0: ("duplicate_label_conflict", -1), 1: ("duplicate_label_conflict", -1)}
    # near
    res = find_duplicates([BASE, BASE + " again"], ["a", "b"], [0, 1], DedupConfig())
    assert res.drop == {1: ("near_duplicate_label_conflict", 0)} and res.conflicts[0]["kind"] == "near"
    # NER rows skip the near-label check
    res = find_duplicates([BASE, BASE + " again"], ["a", "b"], [0, 1], DedupConfig(), near_labels=False)
    assert res.drop == {1: ("duplicate_near", 0)}


def test_leakage_mask() -> None:
    train = [BASE, "something else entirely about a printer that will not print"]
    held = [BASE.upper(), BASE + " again", "a message that appears nowhere in the training data at all"]
    assert leakage(train, held, DedupConfig()).tolist() == [True, True, False]

"""The follower side of a resent AppendEntries: entries already held are skipped, never truncated."""

from __future__ import annotations

from kvstore.raft import skip_present_entries


def make_log(terms: dict[int, int]):
    def term_at(idx: int) -> int | None:
        return terms.get(idx)
    return term_at


def ae(prev: tuple[int, int], entries: list[tuple[int, int]], *, term: int = 2, commit: int = 0) -> dict:
    return {"type": "append_entries", "term": term, "commit_index": commit, "prevLogIdx": prev[0],
            "prevLogTerm": prev[1], "entries": [(b"cmd%d" % i, i, t) for i, t in entries]}


def test_new_entries_pass_unchanged() -> None:
    log = make_log({1: 1, 2: 1, 3: 2})
    msg = ae((3, 2), [(4, 2), (5, 2)])
    decision = skip_present_entries(msg, term_at=log, first_idx=1, last_idx=3)
    assert decision.message is msg and decision.reply_next is None


def test_resent_entries_at_the_end_become_an_empty_append() -> None:
    # The follower has 1..5 and gets 4..5 again: nothing to truncate, nothing to add.
    log = make_log({1: 1, 2: 1, 3: 2, 4: 2, 5: 2})
    decision = skip_present_entries(ae((3, 2), [(4, 2), (5, 2)], commit=5), term_at=log, first_idx=1, last_idx=5)
    assert decision.reply_next is None
    assert decision.message["prevLogIdx"] == 5 and decision.message["prevLogTerm"] == 2
    assert decision.message["entries"] == [] and decision.message["commit_index"] == 5


def test_partly_resent_entries_send_only_the_new_ones() -> None:
    log = make_log({1: 1, 2: 2, 3: 2})
    decision = skip_present_entries(ae((1, 1), [(2, 2), (3, 2), (4, 2)]), term_at=log, first_idx=1, last_idx=3)
    assert decision.reply_next is None
    assert (decision.message["prevLogIdx"], decision.message["prevLogTerm"]) == (3, 2)
    assert [e[1] for e in decision.message["entries"]] == [4]


def test_a_conflict_is_still_truncated_from_the_first_differing_entry() -> None:
    # 2 matches; 3 was written in term 1 by an old leader and the new leader has term 2 there.
    log = make_log({1: 1, 2: 1, 3: 1, 4: 1})
    decision = skip_present_entries(ae((1, 1), [(2, 1), (3, 2), (4, 2)]), term_at=log, first_idx=1, last_idx=4)
    assert decision.reply_next is None
    assert (decision.message["prevLogIdx"], decision.message["prevLogTerm"]) == (2, 1)
    assert [(e[1], e[2]) for e in decision.message["entries"]] == [(3, 2), (4, 2)]


def test_resend_shorter_than_the_log_acknowledges_without_truncating() -> None:
    # The follower already has 1..8 (all in the leader's term 2) and gets 4..5 again: pysyncobj
    # would delete 6..8, which it has acknowledged. All of it is the leader's: acknowledge up to 8.
    log = make_log({i: 2 for i in range(1, 9)})
    decision = skip_present_entries(ae((3, 2), [(4, 2), (5, 2)], commit=7), term_at=log, first_idx=1, last_idx=8)
    assert decision.reply_next == 9
    assert "prevLogIdx" not in decision.message and "entries" not in decision.message
    assert decision.message["commit_index"] == 7 and decision.message["term"] == 2


def test_unverified_tail_is_kept_but_not_acknowledged_or_committed() -> None:
    # Entries 6..7 come from an older term: they may or may not be the leader's. Keep them (Raft
    # truncates only on a conflict) but vouch only for what was sent, and commit no further.
    log = make_log({1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1})
    decision = skip_present_entries(ae((3, 1), [(4, 1), (5, 1)], term=3, commit=7), term_at=log,
                                    first_idx=1, last_idx=7)
    assert decision.reply_next == 6
    assert decision.message["commit_index"] == 5


def test_entries_inside_the_snapshot_count_as_held() -> None:
    # The log starts at 10 (a snapshot holds 1..9); 8..11 resent while the log ends at 11.
    log = make_log({10: 2, 11: 2})
    decision = skip_present_entries(ae((7, 2), [(8, 2), (9, 2), (10, 2), (11, 2)]), term_at=log,
                                    first_idx=10, last_idx=11)
    assert decision.reply_next is None
    assert decision.message["prevLogIdx"] == 11 and decision.message["entries"] == []


def test_heartbeats_and_transmissions_are_left_alone() -> None:
    log = make_log({1: 1})
    heartbeat = ae((1, 1), [])
    assert skip_present_entries(heartbeat, term_at=log, first_idx=1, last_idx=1).message is heartbeat
    chunk = dict(ae((0, 0), [(1, 1)]), transmission="start")
    assert skip_present_entries(chunk, term_at=log, first_idx=1, last_idx=1).message is chunk

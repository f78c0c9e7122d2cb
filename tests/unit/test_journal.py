"""The durable journal: records survive reopening, torn tails are cut, term and vote persist."""

from __future__ import annotations

import os
from pathlib import Path

from kvstore.journal import DurableJournal


def test_records_survive_reopen_and_deletes_work(tmp_path: Path) -> None:
    path = str(tmp_path / "j")
    j = DurableJournal(path)
    for i in range(1, 11):
        j.add(b"\x00cmd%d" % i, i, 1)
    j.sync()
    j.deleteEntriesFrom(8)  # keeps entries 1..8
    j.deleteEntriesTo(3)  # drops the first three
    j.add(b"\x00tail", 9, 2)
    j._destroy()
    k = DurableJournal(path)
    assert [e[1] for e in k] == [4, 5, 6, 7, 8, 9]
    assert k[-1] == (b"\x00tail", 9, 2)
    k._destroy()


def test_torn_or_corrupt_tail_is_truncated(tmp_path: Path) -> None:
    path = str(tmp_path / "j")
    j = DurableJournal(path)
    for i in range(1, 6):
        j.add(b"entry-%d" % i, i, 1)
    j._destroy()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:  # a crash in the middle of the last record
        f.truncate(size - 3)
    k = DurableJournal(path)
    assert [e[1] for e in k] == [1, 2, 3, 4]
    k.add(b"again", 5, 2)
    k._destroy()
    with open(path, "r+b") as f:  # flip a byte inside record 2: everything from there is dropped
        data = bytearray(f.read())
        pos = data.find(b"entry-2")
        data[pos] ^= 0xFF
        f.seek(0)
        f.write(data)
    m = DurableJournal(path)
    assert [e[1] for e in m] == [1]
    m._destroy()


def test_term_vote_and_commit_index_persist(tmp_path: Path) -> None:
    path = str(tmp_path / "j")
    j = DurableJournal(path)
    j.setCurrentTerm(7, "127.0.0.1:9")
    j.setRaftCommitIndex(42)
    j.onOneSecondTimer()
    j._destroy()
    k = DurableJournal(path)
    assert (k.getCurrentTerm(), k.getVotedForNodeId(), k.getRaftCommitIndex()) == (7, "127.0.0.1:9", 42)
    k._destroy()


def test_sync_reports_fsync_latency_once_per_group(tmp_path: Path) -> None:
    seen: list[float] = []
    j = DurableJournal(str(tmp_path / "j"), on_fsync=seen.append)
    j.add(b"a", 1, 1)
    j.add(b"b", 2, 1)
    j.sync()
    j.sync()  # nothing new: no second fsync
    assert len(seen) == 1
    j._destroy()


def test_without_fsync_records_are_written_but_never_synced(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # --unsafe-no-fsync: for measuring what durability costs. The records still reach the file.
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd))
    path = str(tmp_path / "j")
    j = DurableJournal(path, on_fsync=lambda seconds: synced.append(-1), fsync=False)
    for i in range(1, 4):
        j.add(b"entry-%d" % i, i, 1)
        j.sync()
    assert synced == []
    j._destroy()
    k = DurableJournal(path)
    assert [e[1] for e in k] == [1, 2, 3]
    k.add(b"entry-4", 4, 1)
    k.sync()
    assert len(synced) == 1  # the default syncs again
    k._destroy()

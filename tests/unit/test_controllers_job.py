"""Pure helpers of the Job controller: completed-index sets, finished jobs, failed pods."""

from __future__ import annotations

from controllers import job as j


def test_index_sets_round_trip() -> None:
    assert j.format_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    assert j.format_indexes(set()) == ""
    assert j.parse_indexes("0-2,4,6-7") == {0, 1, 2, 4, 6, 7}
    assert j.parse_indexes("") == set() and j.parse_indexes("x,3") == {3}


def test_finished_and_failed() -> None:
    done = {"status": {"conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                      {"type": "Complete", "status": "True", "lastTransitionTime": "t"}]}}
    assert j.is_finished(done) == "Complete" and j.finish_time(done) == "t"
    assert j.is_finished({"status": {"conditions": [{"type": "Failed", "status": "False"}]}}) is None
    assert j.pod_failed({"metadata": {}, "status": {"phase": "Failed"}})
    assert j.pod_failed({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}})
    assert not j.pod_failed({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Succeeded"}})
    assert j.pod_index({"metadata": {"annotations": {j.INDEX_ANNOTATION: "3"}}}) == 3

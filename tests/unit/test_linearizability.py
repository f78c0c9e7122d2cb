"""Tests for the register linearizability checker in tests/linearizability.py.

The checker guards every chaos test, so both directions matter: it must accept every history a
correct store can produce (concurrency, timeouts that did or did not take effect, cas chains) and
reject the classic anomalies (stale reads, lost acknowledged writes, phantom values, double cas wins,
time travel between reads).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.linearizability import CheckResult, History, Op, check

# ---------------------------------------------------------------------------------------- builders


def w(key: str, value: Any, call: float, ret: float | None, *, client: int = 0, ok: bool = True) -> Op:
    return Op(client=client, kind="write", key=key, arg=value, result=None, call=call, ret=ret, ok=ok)


def r(key: str, value: Any, call: float, ret: float | None, *, client: int = 0) -> Op:
    return Op(client=client, kind="read", key=key, arg=None, result=value, call=call, ret=ret, ok=True)


def cas(
    key: str, expected: Any, new: Any, won: bool | None, call: float, ret: float | None, *, client: int = 0
) -> Op:
    return Op(client=client, kind="cas", key=key, arg=(expected, new), result=won, call=call, ret=ret, ok=True)


def unknown_w(key: str, value: Any, call: float, *, client: int = 0) -> Op:
    return Op(client=client, kind="write", key=key, arg=value, result=None, call=call, ret=None, ok=False)


def unknown_cas(key: str, expected: Any, new: Any, call: float, *, client: int = 0) -> Op:
    return Op(client=client, kind="cas", key=key, arg=(expected, new), result=None, call=call, ret=None, ok=False)


def accepted(history: list[Op]) -> CheckResult:
    result = check(history, timeout_s=10)
    assert result.ok is True, result.explanation
    assert not result.timed_out
    return result


def rejected(history: list[Op]) -> CheckResult:
    result = check(history, timeout_s=10)
    assert result.ok is False, "expected a non-linearizable verdict"
    assert not result.timed_out
    assert result.key is not None and result.key in result.explanation
    return result


# ---------------------------------------------------------------------------------------- accepted


def test_empty_history_is_linearizable() -> None:
    assert check([]).ok is True


def test_sequential_history() -> None:
    accepted([r("k", None, 0, 1), w("k", 1, 2, 3), r("k", 1, 4, 5), w("k", 2, 6, 7), r("k", 2, 8, 9)])


def test_reads_concurrent_with_a_write_may_see_old_or_new() -> None:
    accepted(
        [
            w("k", 1, 0, 1),
            w("k", 2, 2, 10, client=1),
            r("k", 1, 3, 4, client=2),
            r("k", 2, 5, 6, client=3),
            r("k", 2, 7, 8, client=2),
        ]
    )


def test_concurrent_reads_may_disagree_while_a_write_is_in_flight() -> None:
    # The two reads overlap each other and the write: old-then-new in either real-time order works.
    accepted([w("k", 1, 0, 10), r("k", 1, 1, 5, client=1), r("k", None, 2, 6, client=2)])


def test_concurrent_writes_order_is_chosen_by_later_reads() -> None:
    # w1 was called first, but a read after both returned sees 1: w2 must have gone first.
    accepted([w("k", 1, 0, 5, client=1), w("k", 2, 1, 4, client=2), r("k", 1, 6, 7)])
    accepted([w("k", 1, 0, 5, client=1), w("k", 2, 1, 4, client=2), r("k", 2, 6, 7)])


def test_touching_intervals_count_as_concurrent() -> None:
    accepted([w("k", 1, 0, 1), r("k", None, 1, 2, client=1)])


def test_unknown_write_that_took_effect_later() -> None:
    # The client gave up at once, the write landed much later.
    accepted([unknown_w("k", 5, 0), r("k", None, 1, 2, client=1), r("k", None, 3, 4), r("k", 5, 50, 51)])


def test_unknown_write_that_never_took_effect() -> None:
    accepted([w("k", 1, 0, 1), unknown_w("k", 5, 2), r("k", 1, 3, 4), r("k", 1, 100, 101)])


def test_unknown_write_that_took_effect_then_was_overwritten() -> None:
    accepted([unknown_w("k", 5, 0), r("k", 5, 1, 2), w("k", 6, 3, 4), r("k", 6, 5, 6)])


def test_many_unknown_writes_only_some_took_effect() -> None:
    history = [unknown_w("k", v, v, client=v) for v in range(20)]
    history += [r("k", 3, 30, 31), r("k", 17, 32, 33), r("k", 4, 34, 35)]
    accepted(history)


def test_unknown_reads_and_definite_failures_are_ignored() -> None:
    accepted(
        [
            w("k", 1, 0, 1),
            w("k", 9, 2, 3, ok=False),  # cleanly rejected, never applied
            Op(client=1, kind="read", key="k", arg=None, result="garbage", call=2, ret=None, ok=False),
            r("k", 1, 4, 5),
        ]
    )


def test_cas_chain() -> None:
    accepted(
        [
            w("k", 0, 0, 1),
            cas("k", 0, 1, True, 2, 3),
            cas("k", 0, 9, False, 4, 5),
            cas("k", 1, 2, True, 6, 7),
            r("k", 2, 8, 9),
            cas("k", None, 7, False, 10, 11),
        ]
    )


def test_concurrent_cas_chain_is_ordered_by_its_results() -> None:
    # All four overlap; only the order 0->1->2->3 explains three wins and one loss.
    accepted(
        [
            w("k", 0, 0, 1),
            cas("k", 2, 3, True, 2, 10, client=1),
            cas("k", 1, 2, True, 2, 10, client=2),
            cas("k", 0, 1, True, 2, 10, client=3),
            cas("k", 0, 5, False, 2, 10, client=4),
            r("k", 3, 11, 12),
        ]
    )


def test_cas_on_missing_key() -> None:
    accepted([cas("k", None, 1, True, 0, 1), cas("k", None, 2, False, 2, 3, client=1), r("k", 1, 4, 5)])


def test_unknown_cas_took_effect_or_not() -> None:
    took = [w("k", 0, 0, 1), unknown_cas("k", 0, 1, 2), r("k", 0, 3, 4), r("k", 1, 5, 6)]
    never = [w("k", 0, 0, 1), unknown_cas("k", 0, 1, 2), r("k", 0, 3, 4), r("k", 0, 5, 6)]
    accepted(took)
    accepted(never)


def test_unknown_write_explains_a_failed_cas() -> None:
    # Nothing definite changes the value away from 0, but the cas saw something else.
    accepted([w("k", 0, 0, 1), unknown_w("k", 8, 2), cas("k", 0, 1, False, 3, 4)])


def test_unhashable_values() -> None:
    accepted([w("k", {"a": [1]}, 0, 1), r("k", {"a": [1]}, 2, 3), cas("k", {"a": [1]}, [2], True, 4, 5), r("k", [2], 6, 7)])


def test_keys_are_independent() -> None:
    # Interleaved in time across keys; per key each history is sequentially fine.
    history = []
    for i in range(50):
        key = f"k{i % 5}"
        history += [w(key, i, 2 * i, 2 * i + 1), r(key, i, 2 * i + 0.5, 2 * i + 1.5, client=1)]
    accepted(history)


# ---------------------------------------------------------------------------------------- rejected


def test_stale_read_after_completed_write() -> None:
    rejected([w("k", 1, 0, 1), w("k", 2, 2, 3), r("k", 1, 4, 5)])


def test_lost_acknowledged_write() -> None:
    rejected([w("k", 1, 0, 1), r("k", 1, 2, 3), w("k", 2, 4, 5), r("k", 1, 6, 7), r("k", 1, 8, 9)])
    rejected([w("k", 1, 0, 1), r("k", None, 2, 3)])


def test_read_of_a_value_never_written() -> None:
    result = rejected([w("k", 1, 0, 1), r("k", 42, 2, 3)])
    assert "42" in result.explanation


def test_read_of_a_value_whose_write_definitely_failed() -> None:
    rejected([w("k", 1, 0, 1), w("k", 9, 2, 3, ok=False), r("k", 9, 4, 5)])


def test_two_successful_cas_from_the_same_expected_value() -> None:
    rejected([w("k", 0, 0, 1), cas("k", 0, 1, True, 2, 5, client=1), cas("k", 0, 2, True, 2, 5, client=2)])


def test_cas_failed_although_the_value_matched() -> None:
    rejected([w("k", 0, 0, 1), cas("k", 0, 1, False, 2, 3)])


def test_read_sees_new_value_then_older_one() -> None:
    rejected([w("k", 1, 0, 1), w("k", 2, 2, 10, client=1), r("k", 2, 3, 4, client=2), r("k", 1, 5, 6, client=3)])
    rejected([w("k", 1, 0, 10), r("k", 1, 1, 2, client=1), r("k", None, 3, 4, client=2)])


def test_unknown_write_cannot_take_effect_before_its_call() -> None:
    rejected([r("k", 5, 0, 1), unknown_w("k", 5, 2)])


def test_unknown_write_takes_effect_at_most_once() -> None:
    rejected([unknown_w("k", 5, 0), r("k", 5, 1, 2), r("k", None, 3, 4), r("k", 5, 5, 6)])
    rejected([w("k", 0, 0, 1), unknown_w("k", 5, 2), r("k", 5, 3, 4), w("k", 0, 5, 6), r("k", 5, 7, 8)])


def test_unknown_cas_only_succeeds_from_its_expected_value() -> None:
    rejected([w("k", 3, 0, 1), unknown_cas("k", 0, 1, 2), r("k", 1, 3, 4)])


def test_failing_key_is_reported_among_good_ones() -> None:
    history = [w(f"good{i}", i, 0, 1) for i in range(5)] + [r(f"good{i}", i, 2, 3) for i in range(5)]
    history += [w("bad", 1, 0, 1), w("bad", 2, 2, 3), r("bad", 1, 4, 5)]
    result = rejected(history)
    assert result.key == "bad"
    assert "bad" in result.explanation


# ---------------------------------------------------------------------------------------- limits


def test_search_over_budget_is_undecided() -> None:
    # 30 concurrent blind writes, then a read of the initial value: refuting it means trying every
    # subset of the writes, far beyond the budget.
    history = [w("k", v, 0, 100, client=v) for v in range(30)] + [r("k", None, 101, 102)]
    result = check(history, timeout_s=0.2)
    assert result.ok is None and result.timed_out
    assert result.key == "k"


def test_search_over_cache_budget_is_undecided() -> None:
    history = [w("k", v, 0, 100, client=v) for v in range(30)] + [r("k", None, 101, 102)]
    result = check(history, timeout_s=10, max_configs=10_000)
    assert result.ok is None and result.timed_out
    assert "cache budget" in result.explanation


def test_definite_failure_beats_undecided_key() -> None:
    history = [w("slow", v, 0, 100, client=v) for v in range(30)] + [r("slow", None, 101, 102)]
    history += [w("fast", 1, 0, 1), r("fast", 2, 2, 3), w("fast", 2, 4, 5)]
    result = check(history, timeout_s=0.2)
    assert result.ok is False and result.key == "fast"


@pytest.mark.parametrize(
    "op",
    [
        Op(client=0, kind="delete", key="k", arg=None, result=None, call=0, ret=1),
        Op(client=0, kind="cas", key="k", arg=1, result=True, call=0, ret=1),
        Op(client=0, kind="cas", key="k", arg=(1, 2), result={"succeeded": True}, call=0, ret=1),
        Op(client=0, kind="write", key="k", arg=1, result=None, call=2, ret=1),
    ],
)
def test_malformed_ops_are_refused(op: Op) -> None:
    with pytest.raises(ValueError):
        check([op])


# ---------------------------------------------------------------------------------------- recorder


def test_history_records_every_fate() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    h = History(clock=clock)
    a = h.invoke(1, "write", "k", 1)
    b = h.invoke(2, "read", "k")
    c = h.invoke(3, "write", "k", 2)
    d = h.invoke(4, "cas", "k", (1, 3))
    e = h.invoke(5, "write", "k", 9)
    h.complete(a, None)
    h.complete(b, 1)
    h.unknown(c)
    h.fail(d)
    # e is left open
    ops = h.ops()
    assert len(h) == 5
    assert [o.client for o in ops] == [1, 2, 3, 4, 5]
    assert ops[0] == Op(client=1, kind="write", key="k", arg=1, result=None, call=1.0, ret=6.0, ok=True)
    assert ops[1].result == 1 and ops[1].ret == 7.0 and ops[1].ok
    assert ops[2].ret is None and not ops[2].ok
    assert ops[3].ret == 9.0 and not ops[3].ok
    assert ops[4].ret is None
    assert check(ops).ok is True
    with pytest.raises(KeyError):
        h.complete(a, None)
    with pytest.raises(ValueError):
        h.invoke(1, "increment", "k", 1)


@dataclass
class _LockedRegisters:
    """A trivially linearizable store: every call runs under one lock."""

    data: dict[str, Any]
    lock: threading.Lock

    def apply(self, kind: str, key: str, arg: Any) -> Any:
        with self.lock:
            current = self.data.get(key)
            if kind == "read":
                return current
            if kind == "write":
                self.data[key] = arg
                return None
            if current == arg[0]:
                self.data[key] = arg[1]
                return True
            return False


def test_history_from_threads_is_linearizable() -> None:
    store = _LockedRegisters(data={}, lock=threading.Lock())
    h = History()

    def client(cid: int) -> None:
        rng = random.Random(cid)
        for i in range(100):
            key = f"k{rng.randrange(3)}"
            kind = rng.choice(["read", "write", "cas"])
            arg = None if kind == "read" else (cid * 1000 + i if kind == "write" else (rng.randrange(3), i))
            token = h.invoke(cid, kind, key, arg)
            result = store.apply(kind, key, arg)
            h.complete(token, result)

    threads = [threading.Thread(target=client, args=(cid,)) for cid in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(h.ops()) == 600
    accepted(h.ops())


async def test_history_from_asyncio_tasks_with_timeouts() -> None:
    data: dict[str, Any] = {}
    h = History()

    async def client(cid: int) -> None:
        rng = random.Random(cid)
        for i in range(40):
            key = f"k{rng.randrange(2)}"
            kind = rng.choice(["read", "write", "write"])
            value = cid * 1000 + i
            token = h.invoke(cid, kind, key, value if kind == "write" else None)
            await asyncio.sleep(0)
            if kind == "write" and rng.random() < 0.2:
                # The request "times out"; the write lands (or not) after the client gave up.
                h.unknown(token)
                if rng.random() < 0.5:
                    asyncio.get_running_loop().call_later(0.001, data.__setitem__, key, value)
                continue
            result = data.get(key) if kind == "read" else data.__setitem__(key, value)
            await asyncio.sleep(0)
            h.complete(token, result)

    await asyncio.gather(*(client(cid) for cid in range(8)))
    await asyncio.sleep(0.01)
    accepted(h.ops())


# ---------------------------------------------------------------------------------------- properties


@dataclass(frozen=True)
class _Spec:
    kind: str
    key: int
    value: int
    expected: int | None
    before: float
    after: float
    fate: str  # "ok", "applied" (unknown, took effect), "lost" (unknown, never took effect), "failed"


_specs = st.builds(
    _Spec,
    kind=st.sampled_from(["read", "read", "write", "cas"]),
    key=st.integers(0, 2),
    value=st.integers(0, 3),
    expected=st.one_of(st.none(), st.integers(0, 3)),
    before=st.floats(0, 4),
    after=st.floats(0, 4),
    fate=st.sampled_from(["ok", "ok", "ok", "ok", "applied", "lost", "failed"]),
)


def _execute(specs: list[_Spec]) -> list[Op]:
    """Run specs on a real register; op i takes effect at instant i, inside [call, ret]."""
    registers: dict[str, Any] = {}
    history = []
    for i, s in enumerate(specs):
        key = f"k{s.key}"
        current = registers.get(key)
        applies = s.fate in ("ok", "applied")
        call = i - s.before
        ret = None if s.fate in ("applied", "lost") else i + s.after
        ok = s.fate == "ok"
        if s.kind == "read":
            history.append(Op(client=i, kind="read", key=key, arg=None, result=current, call=call, ret=ret, ok=ok))
        elif s.kind == "write":
            if applies:
                registers[key] = s.value
            history.append(Op(client=i, kind="write", key=key, arg=s.value, result=None, call=call, ret=ret, ok=ok))
        else:
            won = current == s.expected
            if applies and won:
                registers[key] = s.value
            result = won if ok else None
            arg = (s.expected, s.value)
            history.append(Op(client=i, kind="cas", key=key, arg=arg, result=result, call=call, ret=ret, ok=ok))
    random.Random(len(specs)).shuffle(history)  # the checker must not rely on input order
    return history


_property = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_property
@given(st.lists(_specs, max_size=40))
def test_property_real_register_executions_are_accepted(specs: list[_Spec]) -> None:
    accepted(_execute(specs))


def _definite_reads(history: list[Op]) -> list[int]:
    return [i for i, o in enumerate(history) if o.kind == "read" and o.ok and o.ret is not None]


@_property
@given(st.lists(_specs, min_size=1, max_size=40), st.data())
def test_property_read_of_impossible_value_is_rejected(specs: list[_Spec], data: st.DataObject) -> None:
    history = _execute(specs + [_Spec("read", 0, 0, None, 0.5, 0.5, "ok")])
    victim = data.draw(st.sampled_from(_definite_reads(history)))
    history[victim] = replace(history[victim], result="impossible")
    assert rejected(history).key == history[victim].key


@_property
@given(st.lists(_specs, min_size=1, max_size=40), st.data())
def test_property_read_from_the_future_is_rejected(specs: list[_Spec], data: st.DataObject) -> None:
    # The value does exist in the history, but is only written by a call made after the read
    # returned; the cheap "never written" pre-check cannot see that, the search must.
    history = _execute(specs + [_Spec("read", 0, 0, None, 0.5, 0.5, "ok")])
    victim = data.draw(st.sampled_from(_definite_reads(history)))
    read = history[victim]
    assert read.ret is not None
    history[victim] = replace(read, result="future")
    later = read.ret + data.draw(st.floats(0.001, 10))
    definite = data.draw(st.booleans())
    history.append(
        Op(client=-1, kind="write", key=read.key, arg="future", result=None, call=later,
           ret=later + 1 if definite else None, ok=definite)
    )
    assert rejected(history).key == read.key


def _brute_force(history: list[Op]) -> bool:
    """Reference: try every real-time-respecting order of every subset of unknown ops, per key."""
    by_key: dict[str, list[Op]] = {}
    for op in history:
        if (op.ret is not None and not op.ok) or (op.ret is None and op.kind == "read"):
            continue
        by_key.setdefault(op.key, []).append(op)

    def search(left: tuple[Op, ...], state: Any) -> bool:
        if all(o.ret is None for o in left):
            return True
        for i, op in enumerate(left):
            rest = left[:i] + left[i + 1 :]
            if any(o.ret is not None and o.ret < op.call for o in rest):
                continue  # something still pending returned before this op was called
            if op.kind == "read":
                if op.result != state:
                    continue
                new = state
            elif op.kind == "write":
                new = op.arg
            elif op.ret is None:  # unknown cas: took effect (if it could) here; "never" is not placing it
                new = op.arg[1] if state == op.arg[0] else state
            else:
                if op.result != (state == op.arg[0]):
                    continue
                new = op.arg[1] if op.result else state
            if search(rest, new):
                return True
        return False

    return all(search(tuple(ops), None) for ops in by_key.values())


_random_ops = st.builds(
    lambda kind, key, value, expected, won, call, duration, fate: Op(
        client=0,
        kind=kind,
        key=key,
        arg=value if kind == "write" else ((expected, value) if kind == "cas" else None),
        result=(won if kind == "cas" else (value if kind == "read" else None)) if fate == "ok" else None,
        call=call,
        ret=None if fate == "unknown" else call + duration,
        ok=fate == "ok",
    ),
    kind=st.sampled_from(["read", "read", "write", "cas"]),
    key=st.sampled_from(["a", "a", "b"]),
    value=st.one_of(st.none(), st.integers(0, 2)),
    expected=st.one_of(st.none(), st.integers(0, 2)),
    won=st.booleans(),
    call=st.integers(0, 8).map(float),
    duration=st.integers(0, 4).map(float),
    fate=st.sampled_from(["ok", "ok", "ok", "unknown", "failed"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_random_ops, max_size=7))
def test_property_agrees_with_brute_force_on_random_histories(history: list[Op]) -> None:
    result = check(history, timeout_s=10)
    assert result.ok is _brute_force(history), result.explanation


@_property
@given(st.lists(_specs, max_size=8), st.data())
def test_property_agrees_with_brute_force_on_perturbed_executions(specs: list[_Spec], data: st.DataObject) -> None:
    # Real executions with one result changed to another plausible value: right at the boundary.
    history = _execute(specs)
    if history:
        i = data.draw(st.integers(0, len(history) - 1))
        op = history[i]
        if op.kind == "read":
            history[i] = replace(op, result=data.draw(st.one_of(st.none(), st.integers(0, 3))))
        elif op.kind == "cas" and op.ret is not None and op.ok:
            history[i] = replace(op, result=not op.result)
        else:
            history[i] = replace(op, call=op.call - data.draw(st.floats(0, 3)))
    result = check(history, timeout_s=10)
    assert result.ok is _brute_force(history), result.explanation


# ---------------------------------------------------------------------------------------- large histories (decided, not timed)


def _simulate(
    seed: int, *, clients: int, ops_per_client: int, keys: int, values: int, p_unknown: float
) -> list[Op]:
    """Closed-loop clients against a register store; each op takes effect somewhere in its interval
    (unknown-outcome writes maybe later, or never)."""
    rng = random.Random(seed)
    planned: list[tuple[float, int, str, str, Any, float, float | None, bool]] = []
    for client in range(clients):
        t = rng.random()
        for _ in range(ops_per_client):
            call = t + rng.expovariate(20.0)
            duration = rng.expovariate(1.0)
            kind = rng.choices(["read", "write", "cas"], weights=[5, 3, 2])[0]
            key = f"k{rng.randrange(keys)}"
            arg: Any = None
            if kind == "write":
                arg = rng.randrange(values)
            elif kind == "cas":
                expected = None if rng.random() < 1 / (values + 1) else rng.randrange(values)
                arg = (expected, rng.randrange(values))
            unknown = kind != "read" and rng.random() < p_unknown
            applies = not unknown or rng.random() < 0.5
            at = call + rng.random() * duration * (3 if unknown else 1)
            planned.append((at, client, kind, key, arg, call, None if unknown else call + duration, applies))
            t = call + duration
    planned.sort()
    registers: dict[str, Any] = {}
    history = []
    for _, client, kind, key, arg, call, ret, applies in planned:
        current = registers.get(key)
        result: Any = None
        if kind == "read":
            result = current
        elif kind == "write":
            if applies:
                registers[key] = arg
        else:
            result = current == arg[0]
            if result and applies:
                registers[key] = arg[1]
        if ret is None:
            result = None
        history.append(Op(client=client, kind=kind, key=key, arg=arg, result=result, call=call, ret=ret, ok=ret is not None))
    return history


def test_large_history_thousands_of_ops_across_keys() -> None:
    history = _simulate(1, clients=10, ops_per_client=400, keys=10, values=5, p_unknown=0.05)
    assert len(history) == 4000
    accepted(history)


@pytest.mark.parametrize("values", [3, 1000])
def test_large_history_single_hot_key(values: int) -> None:
    history = _simulate(2, clients=10, ops_per_client=150, keys=1, values=values, p_unknown=0.1)
    accepted(history)


def test_large_history_rejecting_a_stale_read() -> None:
    history = _simulate(3, clients=10, ops_per_client=300, keys=10, values=10**9, p_unknown=0.02)
    # The last completed read of k0 returns the value of the first completed write instead.
    writes = [o for o in history if o.key == "k0" and o.kind == "write" and o.ok]
    reads = [i for i, o in enumerate(history) if o.key == "k0" and o.kind == "read" and o.ok]
    last = reads[-1]
    stale = writes[0].arg
    assert history[last].call > writes[1].ret
    assert sum(1 for o in history if o.key == "k0" and stale in (o.arg, o.result)) == 1
    history[last] = replace(history[last], result=stale)
    result = check(history, timeout_s=10)
    assert result.ok is False and result.key == "k0"

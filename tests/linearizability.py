"""Linearizability checker for key-value register histories, used by the chaos tests.

A chaos test drives a store with concurrent clients, records every call with `History` and asks
`check` whether some total order of the operations explains every observed result while respecting
real time (an operation that returned before another was called must come first).

The search is Wing & Gong's, with the improvements of Lowe ("Testing for linearizability", 2017) and
Porcupine:

- P-compositionality: linearizability is local, so the history is split per key and every key is
  checked on its own, as one register.
- Call and return events of one key sit in a doubly linked list ordered by time. A depth-first search
  repeatedly places a *minimal* operation (called before the earliest pending return), applies it to
  the register model and unlinks its events; when no candidate works it undoes the last placement.
  Unlinking and relinking are O(1) ("dancing links").
- Every visited configuration (placed operations as an int bitmask, register value) is cached:
  reaching one again cannot succeed where it failed before.

On top of that, sound reductions keep it fast with many concurrent clients and timeouts:

- A candidate read (or failed cas) that is legal in the current state is placed without trying any
  alternative at that node: it changes nothing, every op that must precede it is already placed,
  so any linearization from here can be rearranged to start with it.
- Operations whose outcome is unknown (the call timed out or failed ambiguously, `ret is None`) may
  have taken effect at any instant after their call, or never. They get no return event, so they
  never force a backtrack, and the search succeeds once every *definite* operation is placed: an
  unknown op never placed is one that never happened.
- An unknown write or cas is only placed where it changes the register and the very next op needs
  it, i.e. would be illegal in the state before it. Any linearization can be brought to that form:
  an unknown op that changes nothing, or is followed by a write, can be dropped; one followed by an op
  that does not need it can swap places with that op (an unknown op has no return, so moving it later
  never breaks real-time order, and the register ends in the same state); repeating this ends, as
  unknown ops only move later or vanish. The cache key carries the state before the last unknown op,
  which this rule reads. Without it the search would wander through every subset of timed-out
  writes whenever it backtracks.
- Unknown ops with the same effect (say, three timed-out writes of the same value) are used in call
  order: wherever a later-called one could go, an earlier-called one can go too.

Values no read or cas ever compares with are all the same to the model, so they share one interned
id; that merges states the cache would otherwise keep apart.

Candidates are tried in call order, except that needed unknown ops go first. A linearizable history
is usually accepted on the first descent or close to it. Refuting a non-linearizable one may
need the whole (exponential) search; the time budget turns that into an "undecided" answer instead of
a hung test.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Operation codes inside a per-key problem. Codes >= _U_WRITE are unknown-outcome effects.
_READ = 0
_WRITE = 1
_CAS_OK = 2
_CAS_FAIL = 3
_U_WRITE = 4
_U_CAS = 5

_KINDS = ("read", "write", "cas")
# Values nobody observes collapse into this id (see module docstring).
_UNOBSERVED = 0
# How many search steps run between two looks at the clock.
_CLOCK_EVERY = 1024
_MAX_LISTED = 8


@dataclass(frozen=True, slots=True)
class Op:
    """One client call against one key.

    `arg` is the written value (write), an `(expected, new)` pair (cas) or None (read). `result` is
    the value read (read), whether the swap happened (cas) or None (write). `ret is None` means the
    outcome is unknown; `ok=False` with `ret` set means the call definitely did not take effect.
    """

    client: int
    kind: str
    key: str
    arg: Any
    result: Any
    call: float
    ret: float | None
    ok: bool = True


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Verdict of `check`: `ok` is True (linearizable), False (not) or None (undecided: timed out)."""

    ok: bool | None
    key: str | None = None
    explanation: str = ""
    timed_out: bool = False


@dataclass(slots=True)
class _Interner:
    """Maps register values to small ints; values need not be hashable (compared with ==)."""

    values: list[Any] = field(default_factory=list)
    _by_hash: dict[Any, int] = field(default_factory=dict)
    _unhashable: list[tuple[Any, int]] = field(default_factory=list)

    def lookup(self, value: Any) -> int | None:
        if isinstance(value, Hashable):
            try:
                return self._by_hash.get(value)
            except TypeError:  # e.g. a tuple holding a list
                pass
        for known, ident in self._unhashable:
            if known == value:
                return ident
        return None

    def intern(self, value: Any) -> int:
        found = self.lookup(value)
        if found is not None:
            return found
        ident = len(self.values) + 1  # 0 is _UNOBSERVED
        self.values.append(value)
        try:
            self._by_hash[value] = ident
        except TypeError:
            self._unhashable.append((value, ident))
        return ident

    def get(self, value: Any) -> int:
        found = self.lookup(value)
        return _UNOBSERVED if found is None else found

    def describe(self, ident: int) -> str:
        return "<a value no operation observes>" if ident == _UNOBSERVED else repr(self.values[ident - 1])


@dataclass(slots=True)
class _KeyProblem:
    """One key's history compiled into flat arrays for the search loop.

    Per op (index into `ops`): `kind`, `arg_a` (read result / written value / cas expected),
    `arg_b` (cas new value), `bit` (1 << index), `entry` (its call entry, -1 if unknown).
    Entries are the definite ops' call and return events, linked through `nxt`/`prv` in time order
    (calls first on ties, so touching intervals count as concurrent) between a head (entry 0) and a
    tail (entry 1, time +inf). Unknown ops have no entries; those with the same effect form a class
    (`classes`: members in call order, `cls`: op -> class), found through `classes_by_value` (value
    they would set -> classes) and `cas_classes`.
    """

    key: str
    ops: list[Op]
    values: _Interner
    initial: int
    kind: list[int]
    arg_a: list[int]
    arg_b: list[int]
    bit: list[int]
    call: list[float]
    entry: list[int]
    n_definite: int
    e_op: list[int]
    e_is_ret: list[bool]
    e_time: list[float]
    e_match: list[int]  # call entry -> its return entry
    nxt: list[int]
    prv: list[int]
    unknown: list[int]
    cls: list[int]
    classes: list[list[int]]
    classes_by_value: dict[int, list[int]]
    cas_classes: list[int]


@dataclass(frozen=True, slots=True)
class _Budget:
    deadline: float  # time.monotonic() value
    max_configs: int  # cached configurations per key


@dataclass(slots=True)
class _Outcome:
    ok: bool | None
    best_lin: int = 0  # definite ops placed by the deepest consistent prefix found
    best_state: int = 0  # and the register after it
    steps: int = 0
    exhausted: str = ""  # for ok=None: which budget ran out


def check(history: Sequence[Op], *, timeout_s: float = 30.0, max_configs: int = 2_000_000) -> CheckResult:
    """Decide whether `history` is linearizable with respect to a register per key.

    Keys are checked independently, smallest first, within one overall time budget. Any refuted key
    makes the answer False; otherwise a key whose search ran out of time, or cached more than
    `max_configs` configurations of one key (~150 bytes each), makes it None (`timed_out=True`).
    """
    budget = _Budget(deadline=time.monotonic() + timeout_s, max_configs=max_configs)
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        _validate(op)
        if op.ret is not None and not op.ok:
            continue  # definitely not applied: no effect, nothing observed
        if op.ret is None and op.kind == "read":
            continue  # an unknown read observed nothing
        by_key[op.key].append(op)

    undecided: CheckResult | None = None
    for key in sorted(by_key, key=lambda k: len(by_key[k])):
        ops = sorted(by_key[key], key=lambda o: o.call)
        verdict = _check_key(key, ops, budget)
        if verdict.ok is False:
            return verdict
        if verdict.ok is None and undecided is None:
            undecided = verdict
    if undecided is not None:
        return undecided
    return CheckResult(ok=True, explanation=f"linearizable ({len(by_key)} keys)")


def _validate(op: Op) -> None:
    if op.kind not in _KINDS:
        raise ValueError(f"unknown op kind {op.kind!r}; expected one of {_KINDS}")
    if op.ret is not None and op.ret < op.call:
        raise ValueError(f"op returns before it is called: {op}")
    if op.kind == "cas":
        if not (isinstance(op.arg, Sequence) and len(op.arg) == 2):
            raise ValueError(f"cas arg must be an (expected, new) pair: {op}")
        if op.ok and op.ret is not None and not isinstance(op.result, bool):
            raise ValueError(f"a completed cas must have a bool result: {op}")


def _check_key(key: str, ops: list[Op], budget: _Budget) -> CheckResult:
    problem = _compile(key, ops)
    impossible = _impossible_read(problem)
    if impossible is not None:
        return CheckResult(ok=False, key=key, explanation=impossible)
    outcome = _search(problem, budget)
    if outcome.ok is True:
        return CheckResult(ok=True, key=None, explanation="linearizable")
    if outcome.ok is None:
        unplaced = problem.n_definite - outcome.best_lin.bit_count()
        return CheckResult(
            ok=None,
            key=key,
            timed_out=True,
            explanation=(
                f"key {key!r}: undecided, the search ran out of {outcome.exhausted} after "
                f"{outcome.steps} steps ({len(ops)} ops; the deepest consistent prefix left "
                f"{unplaced} completed ops unplaced)"
            ),
        )
    return CheckResult(ok=False, key=key, explanation=_explain(problem, outcome))


def _compile(key: str, ops: list[Op]) -> _KeyProblem:
    """Build the per-key arrays; `ops` is sorted by call time and already filtered."""
    values = _Interner()
    # Pass 1: intern only what is observed (read results, cas expectations).
    for op in ops:
        if op.kind == "read":
            values.intern(op.result)
        elif op.kind == "cas":
            values.intern(op.arg[0])

    kind: list[int] = []
    arg_a: list[int] = []
    arg_b: list[int] = []
    for op in ops:
        unknown = op.ret is None
        if op.kind == "read":
            kind.append(_READ)
            arg_a.append(values.get(op.result))
            arg_b.append(_UNOBSERVED)
        elif op.kind == "write":
            kind.append(_U_WRITE if unknown else _WRITE)
            arg_a.append(values.get(op.arg))
            arg_b.append(_UNOBSERVED)
        else:
            expected, new = op.arg
            kind.append(_U_CAS if unknown else (_CAS_OK if op.result else _CAS_FAIL))
            arg_a.append(values.get(expected))
            arg_b.append(values.get(new))

    head, tail = 0, 1
    e_op = [-1, -1]
    e_is_ret = [False, True]
    e_time = [-math.inf, math.inf]
    e_match = [-1, -1]
    events: list[tuple[float, int, int]] = []  # (time, 0 call / 1 return, op)
    for i, op in enumerate(ops):
        if op.ret is not None:
            events.append((op.call, 0, i))
            events.append((op.ret, 1, i))
    events.sort()
    entry_of = [-1] * len(ops)
    for t, is_ret, i in events:
        entry = len(e_op)
        e_op.append(i)
        e_is_ret.append(bool(is_ret))
        e_time.append(t)
        e_match.append(-1)
        if is_ret:
            e_match[entry_of[i]] = entry
        else:
            entry_of[i] = entry
    chain = [head, *range(2, len(e_op)), tail]
    nxt = [-1] * len(e_op)
    prv = [-1] * len(e_op)
    for left, right in zip(chain, chain[1:]):
        nxt[left] = right
        prv[right] = left

    unknown = [i for i, op in enumerate(ops) if op.ret is None]  # ops are in call order
    class_of_effect: dict[tuple[int, int, int], int] = {}
    cls = [-1] * len(ops)
    classes: list[list[int]] = []
    classes_by_value: dict[int, list[int]] = defaultdict(list)
    for i in unknown:
        effect = (kind[i], arg_a[i], arg_b[i])
        c = class_of_effect.get(effect)
        if c is None:
            c = class_of_effect[effect] = len(classes)
            classes.append([])
            classes_by_value[arg_b[i] if kind[i] == _U_CAS else arg_a[i]].append(c)
        classes[c].append(i)
        cls[i] = c

    return _KeyProblem(
        key=key,
        ops=ops,
        values=values,
        initial=values.get(None),
        kind=kind,
        arg_a=arg_a,
        arg_b=arg_b,
        bit=[1 << i for i in range(len(ops))],
        call=[op.call for op in ops],
        entry=entry_of,
        n_definite=len(events) // 2,
        e_op=e_op,
        e_is_ret=e_is_ret,
        e_time=e_time,
        e_match=e_match,
        nxt=nxt,
        prv=prv,
        unknown=unknown,
        cls=cls,
        classes=classes,
        classes_by_value=dict(classes_by_value),
        cas_classes=[c for c, members in enumerate(classes) if kind[members[0]] == _U_CAS],
    )


def _impossible_read(p: _KeyProblem) -> str | None:
    """Fast refutation: a read (or successful cas) expecting a value no operation could have put there."""
    reachable = {p.initial}
    for i, k in enumerate(p.kind):
        if k in (_WRITE, _U_WRITE):
            reachable.add(p.arg_a[i])
        elif k in (_CAS_OK, _U_CAS):
            reachable.add(p.arg_b[i])
    for i, k in enumerate(p.kind):
        if k in (_READ, _CAS_OK) and p.arg_a[i] not in reachable:
            return (
                f"key {p.key!r}: not linearizable: {_describe(p.ops[i], p.ops[0].call)} observes "
                f"{p.values.describe(p.arg_a[i])}, which is neither the initial value (None) nor "
                f"written by any operation on this key"
            )
    return None


def _search(p: _KeyProblem, budget: _Budget) -> _Outcome:
    """Depth-first search over linearization points; see the module docstring."""
    remaining = p.n_definite
    if remaining == 0:
        return _Outcome(ok=True)
    # Locals: this loop is the whole cost of a check.
    nxt = list(p.nxt)
    prv = list(p.prv)
    kind, arg_a, arg_b, bit, entry_of, e_match = p.kind, p.arg_a, p.arg_b, p.bit, p.entry, p.e_match
    cls = p.cls
    used = [0] * len(p.classes)  # members of each unknown class placed so far (a prefix)
    monotonic = time.monotonic
    deadline, max_configs = budget.deadline, budget.max_configs

    state = p.initial
    # The state before the last placed op if that op was an unknown write/cas, else -1: the next op
    # must then be one that would be illegal in that earlier state.
    before = -1
    lin = 0  # placed definite ops
    unk = 0  # placed unknown ops
    seen: set[tuple[int, int, int, int]] = set()
    # One frame per placed op: the candidates of the node it was placed at, the index of the one
    # placed, and the register state and `before` at that node.
    stack: list[tuple[list[int], int, int, int]] = []
    best_remaining, best_lin, best_state = remaining, lin, state
    cands: list[int] | None = None
    idx = 0
    steps = 0
    while True:
        steps += 1
        if steps % _CLOCK_EVERY == 0 and (monotonic() > deadline or len(seen) > max_configs):
            if len(seen) > max_configs:
                exhausted = f"its cache budget ({max_configs} configurations)"
            else:
                exhausted = "its time budget"
            return _Outcome(
                ok=None, best_lin=best_lin, best_state=best_state, steps=steps, exhausted=exhausted
            )
        if cands is None:
            cands = _candidates(p, nxt, state=state, before=before, used=used)
            idx = 0
        if idx == len(cands):
            # Every candidate failed here: undo the last placement and try its next sibling.
            if not stack:
                return _Outcome(ok=False, best_lin=best_lin, best_state=best_state, steps=steps)
            cands, idx, state, before = stack.pop()
            op = cands[idx]
            entry = entry_of[op]
            if entry >= 0:
                lin ^= bit[op]
                remaining += 1
                match = e_match[entry]
                nxt[prv[match]] = match
                prv[nxt[match]] = match
                nxt[prv[entry]] = entry
                prv[nxt[entry]] = entry
            else:
                unk ^= bit[op]
                used[cls[op]] -= 1
            idx += 1
            continue

        op = cands[idx]
        k = kind[op]
        # Legal now, and (right after an unknown op) illegal in the state before that op?
        if k == _READ:
            a = arg_a[op]
            good = state == a and before != a
            new_state = state
        elif k == _WRITE:
            good = before < 0
            new_state = arg_a[op]
        elif k == _CAS_FAIL:
            a = arg_a[op]
            good = state != a and (before < 0 or before == a)
            new_state = state
        elif k == _CAS_OK:
            a = arg_a[op]
            good = state == a and before != a
            new_state = arg_b[op]
        elif k == _U_WRITE:
            good = before < 0
            new_state = arg_a[op]
        else:  # _U_CAS
            a = arg_a[op]
            good = state == a and before != a
            new_state = arg_b[op]
        if good:
            if k >= _U_WRITE:
                config = (lin, unk | bit[op], new_state, state)
            else:
                config = (lin | bit[op], unk, new_state, -1)
            if config not in seen:
                seen.add(config)
                stack.append((cands, idx, state, before))
                lin, unk, state, before = config
                entry = entry_of[op]
                if entry >= 0:
                    match = e_match[entry]
                    nxt[prv[entry]] = nxt[entry]
                    prv[nxt[entry]] = prv[entry]
                    nxt[prv[match]] = nxt[match]
                    prv[nxt[match]] = prv[match]
                    remaining -= 1
                    if remaining == 0:
                        return _Outcome(ok=True, steps=steps)
                    if remaining < best_remaining:
                        best_remaining, best_lin, best_state = remaining, lin, state
                else:
                    used[cls[op]] += 1
                cands = None
                continue
        idx += 1


def _candidates(p: _KeyProblem, nxt: list[int], *, state: int, before: int, used: list[int]) -> list[int]:
    """The ops that may be placed next at this node, in the order to try them.

    The candidates are the definite ops called before the earliest pending return and, per class of
    unknown ops, the next unused one if it was called by then and changes the register to a value
    some candidate needs. If one of the definite ops is a read or failed cas legal right now, it
    alone is returned (see module docstring). Otherwise the unknown ops go first: each is there
    because a candidate needs exactly its effect, while trying a definite write early tends to
    spend it where a later read needed it, which costs deep backtracking.
    """
    e_op, e_is_ret, kind, arg_a, arg_b = p.e_op, p.e_is_ret, p.kind, p.arg_a, p.arg_b
    out: list[int] = []
    wanted: set[int] = set()  # values some candidate needs the register to hold
    unsets = False  # some candidate (a failed cas) needs it to stop holding the current value
    e = nxt[0]
    while not e_is_ret[e]:
        op = e_op[e]
        k = kind[op]
        a = arg_a[op]
        if k == _READ:
            if state == a and before != a:
                return [op]
            wanted.add(a)
        elif k == _CAS_FAIL:
            if state != a and (before < 0 or before == a):
                return [op]
            unsets = unsets or a == state
        elif k == _CAS_OK:
            wanted.add(a)
        out.append(op)
        e = nxt[e]
    if not p.unknown:
        return out

    bound = p.e_time[e]  # unknown ops called after the earliest pending return cannot go next
    calls, classes = p.call, p.classes
    for c in p.cas_classes:
        members = classes[c]
        if used[c] < len(members) and calls[members[used[c]]] <= bound:
            wanted.add(arg_a[members[0]])
    if unsets:
        chosen: Iterable[int] = range(len(classes))
    else:
        by_value = p.classes_by_value
        chosen = [c for v in wanted if v != state and v in by_value for c in by_value[v]]
    first: list[int] = []
    for c in chosen:
        members = classes[c]
        if used[c] == len(members):
            continue
        op = members[used[c]]
        if calls[op] > bound:
            continue
        if kind[op] == _U_CAS:
            if arg_a[op] == state and arg_b[op] != state:
                first.append(op)
        elif arg_a[op] != state:
            first.append(op)
    return first + out


def _explain(p: _KeyProblem, outcome: _Outcome) -> str:
    """Describe where the deepest consistent prefix got stuck."""
    t0 = p.ops[0].call
    unplaced = [i for i, op in enumerate(p.ops) if op.ret is not None and not outcome.best_lin & p.bit[i]]
    blocker = min(unplaced, key=lambda i: p.e_time[p.e_match[p.entry[i]]])
    deadline = p.e_time[p.e_match[p.entry[blocker]]]
    candidates = [i for i in unplaced if p.call[i] <= deadline]
    candidates += [i for i in p.unknown if p.call[i] <= deadline]
    lines = [
        f"key {p.key!r}: not linearizable. The longest consistent prefix places "
        f"{p.n_definite - len(unplaced)} of {p.n_definite} completed ops and leaves the register at "
        f"{p.values.describe(outcome.best_state)}; then {_describe(p.ops[blocker], t0)} must take "
        f"effect before it returns, but none of these ops can come next:"
    ]
    lines += [f"  - {_describe(p.ops[i], t0)}" for i in candidates[:_MAX_LISTED]]
    if len(candidates) > _MAX_LISTED:
        lines.append(f"  - ... and {len(candidates) - _MAX_LISTED} more")
    lines.append(f"({outcome.steps} search steps)")
    return "\n".join(lines)


def _describe(op: Op, t0: float) -> str:
    if op.kind == "read":
        call = f"read({op.key!r}) -> {op.result!r}"
    elif op.kind == "write":
        call = f"write({op.key!r}, {op.arg!r})"
    else:
        call = f"cas({op.key!r}, {op.arg[0]!r} -> {op.arg[1]!r})"
        if op.ret is not None:
            call += f" = {op.result!r}"
    end = "?" if op.ret is None else f"{op.ret - t0:.6f}"
    outcome = " (outcome unknown)" if op.ret is None else ""
    return f"client {op.client} {call} [{op.call - t0:.6f}, {end}]{outcome}"


@dataclass(slots=True)
class _Pending:
    client: int
    kind: str
    key: str
    arg: Any
    call: float


class History:
    """Thread-safe recorder of client operations for `check`.

    Call `invoke` just before sending a request and exactly one of `complete`, `fail` or `unknown`
    when its fate is known. Every method only takes a lock around a dict update, so it is safe from
    any thread and cheap enough to call inside coroutines. Calls still open when `ops` is called are
    reported with an unknown outcome.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._next_token = 0
        self._pending: dict[int, _Pending] = {}
        self._done: list[Op] = []

    def invoke(self, client: int, kind: str, key: str, arg: Any = None) -> int:
        """Record the start of a call and return a token identifying it."""
        if kind not in _KINDS:
            raise ValueError(f"unknown op kind {kind!r}; expected one of {_KINDS}")
        now = self._clock()
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._pending[token] = _Pending(client=client, kind=kind, key=key, arg=arg, call=now)
        return token

    def complete(self, token: int, result: Any = None, ok: bool = True) -> None:
        """The call returned `result`; `ok=False` means it definitely did not take effect."""
        self._finish(token, result=result, ok=ok, returned=True)

    def fail(self, token: int) -> None:
        """The call definitely did not take effect (e.g. a clean precondition or validation error)."""
        self._finish(token, result=None, ok=False, returned=True)

    def unknown(self, token: int) -> None:
        """The call may or may not have taken effect (timeout, connection lost mid-request)."""
        self._finish(token, result=None, ok=False, returned=False)

    def _finish(self, token: int, *, result: Any, ok: bool, returned: bool) -> None:
        now = self._clock()
        with self._lock:
            pending = self._pending.pop(token, None)
            if pending is None:
                raise KeyError(f"token {token} is not an open call")
            self._done.append(
                Op(
                    client=pending.client,
                    kind=pending.kind,
                    key=pending.key,
                    arg=pending.arg,
                    result=result,
                    call=pending.call,
                    ret=now if returned else None,
                    ok=ok,
                )
            )

    def ops(self) -> list[Op]:
        """All recorded operations, in call order; open calls count as outcome unknown."""
        with self._lock:
            out = list(self._done)
            out += [
                Op(client=p.client, kind=p.kind, key=p.key, arg=p.arg, result=None, call=p.call,
                   ret=None, ok=False)
                for p in self._pending.values()
            ]
        out.sort(key=lambda o: o.call)
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._done) + len(self._pending)

"""models/batching.py: token-budget batching, the fixed baseline, and shrinking on GPU out-of-memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llara_bench.models.batching import run_batches

# varied lengths with ties, so the stable longest-first order is exercised too
LENGTHS = [5, 40, 3, 40, 17, 1, 90, 8, 8, 23, 60, 2, 33, 12, 8, 70, 4, 55, 9, 30]


def _collect(lengths, **kwargs) -> list[list[int]]:
    batches: list[list[int]] = []
    run_batches(lengths, lambda idx: batches.append([int(i) for i in idx]), **kwargs)
    return batches


def _assert_each_index_once(batches: list[list[int]], n: int) -> None:
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(n)), "every index exactly once"


@pytest.mark.parametrize("token_budget,batch_size", [(100, 64), (200, 4), (1000, 3), (16384, 64), (91, 1)])
def test_token_budget_covers_every_index_longest_first_within_budget(token_budget, batch_size):
    batches = _collect(LENGTHS, batching="token_budget", token_budget=token_budget, batch_size=batch_size)
    _assert_each_index_once(batches, len(LENGTHS))
    # longest first over the whole sequence of batches (stable among ties: lower index first)
    flat = [i for b in batches for i in b]
    assert flat == sorted(range(len(LENGTHS)), key=lambda i: (-LENGTHS[i], i))
    for b in batches:
        longest = max(LENGTHS[i] for i in b)
        assert len(b) <= batch_size
        assert len(b) * longest <= token_budget
        assert LENGTHS[b[0]] == longest  # a batch starts with its longest item


def test_token_budget_fills_batches_greedily():
    """Not only within budget: each batch takes as many rows as fit (no needless small batches)."""
    lengths = [10] * 10 + [3] * 9
    batches = _collect(lengths, batching="token_budget", token_budget=30, batch_size=64)
    assert [len(b) for b in batches] == [3, 3, 3, 3, 7]
    assert batches[3] == [9, 10, 11]  # the last long item shares its batch with short ones
    assert batches[-1] == list(range(12, 19))


def test_token_budget_item_longer_than_budget_runs_alone():
    lengths = [5, 500, 5, 300, 5]
    batches = _collect(lengths, batching="token_budget", token_budget=100, batch_size=8)
    _assert_each_index_once(batches, len(lengths))
    assert batches[0] == [1] and batches[1] == [3]  # each over the budget: one row
    assert batches[2] == [0, 2, 4]
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100


def test_token_budget_caps_rows_at_batch_size():
    batches = _collect([1] * 10, batching="token_budget", token_budget=1000, batch_size=4)
    assert [len(b) for b in batches] == [4, 4, 2]


def test_fixed_keeps_arrival_order_in_batch_size_rows():
    batches = _collect(LENGTHS, batching="fixed", token_budget=10, batch_size=6)  # the budget is ignored
    assert batches == [list(range(0, 6)), list(range(6, 12)), list(range(12, 18)), [18, 19]]


def test_indices_are_numpy_integer_arrays():
    seen = []
    run_batches([3, 1, 2], seen.append, batching="token_budget", token_budget=100, batch_size=8)
    assert len(seen) == 1 and isinstance(seen[0], np.ndarray) and seen[0].dtype.kind == "i"
    assert seen[0].tolist() == [0, 2, 1]
    out = np.zeros(3)
    out[seen[0]] = [300, 200, 100]  # results in batch order, put back in input order by fancy indexing
    assert out.tolist() == [300, 100, 200]


def test_empty_input_never_calls_run():
    calls = []
    run_batches([], calls.append)
    run_batches([], calls.append, batching="fixed")
    assert calls == []


@pytest.mark.parametrize("batching", ["token_budget", "fixed"])
def test_oom_shrinks_and_retries_without_losing_or_repeating_items(batching):
    attempts: list[int] = []
    done: list[int] = []

    def run(idx):
        attempts.append(len(idx))
        if len(idx) > 3:
            raise torch.cuda.OutOfMemoryError("x")
        done.extend(int(i) for i in idx)

    run_batches(LENGTHS, run, batching=batching, token_budget=10_000, batch_size=16)
    assert sorted(done) == list(range(len(LENGTHS)))  # exactly once: failed attempts are not counted
    first_success = next(i for i, n in enumerate(attempts) if n <= 3)
    assert attempts[:first_success] == [16, 8, 4]  # the row cap is halved on each OOM
    assert all(n <= 3 for n in attempts[first_success:])  # and stays down for later batches
    if batching == "token_budget":
        assert done == sorted(range(len(LENGTHS)), key=lambda i: (-LENGTHS[i], i))
    else:
        assert done == list(range(len(LENGTHS)))


def test_non_oom_error_propagates_unchanged():
    error = RuntimeError("CUDA error: device-side assert triggered")
    calls = []

    def run(idx):
        calls.append(len(idx))
        raise error

    with pytest.raises(RuntimeError) as info:
        run_batches(LENGTHS, run, token_budget=10_000, batch_size=16)
    assert info.value is error
    assert calls == [16]  # not retried


def test_oom_on_a_single_row_propagates():
    calls = []

    def run(idx):
        calls.append(len(idx))
        raise torch.cuda.OutOfMemoryError("x")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_batches([10, 20, 30, 40], run, token_budget=10_000, batch_size=4)
    assert calls == [4, 2, 1]


def test_oom_on_an_item_alone_over_the_budget_propagates():
    def run(idx):
        raise torch.cuda.OutOfMemoryError("x")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_batches([10, 5000], run, token_budget=100, batch_size=8)


@pytest.mark.parametrize("kwargs", [dict(batching="dynamic"), dict(batching="Fixed"), dict(token_budget=0),
                                    dict(token_budget=-5), dict(batch_size=0), dict(batch_size=-1)])
def test_bad_arguments_raise_value_error(kwargs):
    calls = []
    with pytest.raises(ValueError):
        run_batches([1, 2, 3], calls.append, **kwargs)
    assert calls == []

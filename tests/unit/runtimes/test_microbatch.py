"""Requests that arrive together share one model call, and each still gets its own answer.

The batcher runs on a real event loop with a real fitted scikit-learn model (runtimes/conftest.py);
it is what `mlc runtime serve` calls for a request of up to INLINE_ROWS rows.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from modelops_mlc.runtimes.batching import MicroBatcher
from modelops_mlc.runtimes.predictor import Batch, InputError


def _requests(X, cols, sizes):
    out, start = [], 0
    for n in sizes:
        out.append(Batch(columns=cols, rows=X.iloc[start:start + n].to_numpy().tolist()))
        start += n
    return out


async def _together(batcher, predictor, batches):
    return await asyncio.gather(*(batcher.predict(predictor, b) for b in batches), return_exceptions=True)


def test_requests_arriving_together_share_one_call_and_get_their_own_rows(make_predictor, small_model):
    X, model, cols = small_model
    pred = make_predictor()
    assert pred.batchable  # shown on the model's example at load
    batcher = MicroBatcher()
    sizes = [1, 3, 1, 2, 1, 1, 4, 1]
    answers = asyncio.run(_together(batcher, pred, _requests(X, cols, sizes)))
    assert (batcher.calls, batcher.requests) == (1, len(sizes))
    start = 0
    for n, answer in zip(sizes, answers):
        assert np.array_equal(answer, model.predict(X.iloc[start:start + n])), (start, n)
        start += n


def test_a_lone_request_is_answered_without_waiting_for_company(make_predictor, small_model):
    X, model, cols = small_model
    pred, batcher = make_predictor(), MicroBatcher()

    async def one_after_another():
        return [await batcher.predict(pred, b) for b in _requests(X, cols, [2, 2, 2])]

    answers = asyncio.run(asyncio.wait_for(one_after_another(), timeout=5))
    assert (batcher.calls, batcher.requests) == (3, 3)
    assert np.array_equal(np.concatenate(answers), model.predict(X.head(6)))


def test_a_bad_request_fails_alone(make_predictor, small_model):
    X, model, cols = small_model
    pred, batcher = make_predictor(), MicroBatcher()
    good = _requests(X, cols, [2, 1])
    bad = Batch(columns=cols, rows=[[1.0] * (len(cols) - 1)])  # one value short
    nan = Batch(columns=cols, rows=[[float("nan")] * len(cols)])
    answers = asyncio.run(_together(batcher, pred, [good[0], bad, nan, good[1]]))
    assert isinstance(answers[1], InputError) and "expected 6" in answers[1].reason
    assert isinstance(answers[2], InputError) and "NaN" in answers[2].reason
    assert np.array_equal(answers[0], model.predict(X.head(2)))
    assert np.array_equal(answers[3], model.predict(X.iloc[2:3]))
    assert batcher.calls == 1  # the two good ones still shared a call


def test_when_the_stacked_call_fails_each_request_is_predicted_alone(make_predictor, small_model):
    """A model that refuses the batch (here: it refuses more than 2 rows) answers each request itself."""
    X, model, cols = small_model
    pred, batcher = make_predictor(), MicroBatcher()
    real = pred.raw.predict

    def picky(matrix):
        if len(matrix) > 2:
            raise ValueError("at most 2 rows")
        return real(matrix)

    pred.raw.predict = picky
    try:
        answers = asyncio.run(_together(batcher, pred, _requests(X, cols, [1, 1, 1])))
    finally:
        del pred.raw.predict
    assert [np.asarray(a).tolist() for a in answers] == [model.predict(X.iloc[i:i + 1]).tolist() for i in range(3)]
    assert batcher.calls == 4  # the failed batch, then one call each


def test_a_model_whose_rows_depend_on_each_other_is_not_batched(make_predictor):
    """Batching is only for models shown row-independent on their example at load."""
    pred = make_predictor()

    class BatchNormalised:  # predicts each row against the mean of the call's rows
        def predict(self, matrix):
            return (matrix - matrix.mean(axis=0)).sum(axis=1)

    pred.raw = BatchNormalised()
    assert pred._rows_independent() is False


@pytest.mark.parametrize("setting", [True, False])
def test_the_server_batches_only_when_the_setting_allows(make_predictor, settings, setting):
    from modelops_mlc.runtimes.server import ModelServer

    server = ModelServer(settings.model_copy(update={"runtime_microbatch": setting}), "rt")
    pred = make_predictor()
    batch = Batch(columns=pred.columns, rows=pred.example["data"])

    async def twice():
        return await asyncio.gather(server._predict(pred, batch), server._predict(pred, batch))

    first, second = asyncio.run(twice())
    assert np.array_equal(first, second)
    assert server.batcher.requests == (2 if setting else 0)

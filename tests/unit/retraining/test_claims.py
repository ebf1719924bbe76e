"""One retrain per model: the claim row in a real sqlite MLC store, raced by threads."""

from __future__ import annotations

import threading

import pytest

from modelops_mlc.retraining.claims import claim, holder_of, release
from modelops_mlc.store import open_store


@pytest.fixture
def store(settings):
    return open_store(settings)


def test_a_second_claim_is_refused_while_the_holder_runs_and_released_claims_are_free(store) -> None:
    assert claim(store, "churn", "pi-1", is_active=lambda _: True).claimed
    refused = claim(store, "churn", "pi-2", is_active=lambda _: True)
    assert (refused.claimed, refused.holder) == (False, "pi-1")
    assert claim(store, "churn", "pi-1", is_active=lambda _: True).claimed  # a redelivered claim task
    assert claim(store, "fraud", "pi-2", is_active=lambda _: True).claimed  # other models are independent
    assert release(store, "churn", "pi-2") is False  # not the holder: nothing happens
    assert holder_of(store, "churn") == "pi-1"
    assert release(store, "churn", "pi-1") is True and holder_of(store, "churn") is None
    assert claim(store, "churn", "pi-3", is_active=lambda _: True).claimed


def test_the_claim_of_an_instance_that_is_gone_is_taken_over(store) -> None:
    claim(store, "churn", "pi-dead", is_active=lambda _: True)
    asked: list[str] = []
    taken = claim(store, "churn", "pi-new", is_active=lambda holder: asked.append(holder) or False)
    assert (taken.claimed, taken.taken_over_from, asked) == (True, "pi-dead", ["pi-dead"])
    assert holder_of(store, "churn") == "pi-new"


def test_of_many_simultaneous_claims_exactly_one_wins(store) -> None:
    barrier = threading.Barrier(8)
    results = []

    def contend(i: int) -> None:
        barrier.wait()
        results.append(claim(store, "race", f"pi-{i}", is_active=lambda _: True))

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r.holder for r in results if r.claimed]
    assert len(winners) == 1
    assert {r.holder for r in results} == {winners[0]}  # every loser names the winner

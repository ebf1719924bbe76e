"""gateway.Nodes: which engine node of MLC_ENGINE_URL a call goes to, and when it goes on."""

import pytest

from modelops_mlc.engine.gateway import NodeDown, Nodes
from modelops_mlc.errors import EngineUnavailable, UsageError

A, B, C = (f"http://127.0.0.1:{p}/engine-rest" for p in (8081, 8082, 8083))


def test_calls_stay_on_the_node_that_answered_last() -> None:
    nodes = Nodes(f"{A}, {B}/ ,{C}")
    assert nodes.order() == [A, B, C]
    nodes.answered(B)
    assert nodes.order() == [B, C, A]


def test_a_node_that_cannot_be_reached_rests_behind_the_others() -> None:
    nodes = Nodes(f"{A},{B},{C}")
    nodes.failed(NodeDown(A, sent=False), replay=False)
    assert nodes.order()[-1] == A
    assert all(order[-1] == A for order in (nodes.spread(), nodes.spread(), nodes.spread()))


def test_a_rested_node_is_tried_again() -> None:
    nodes = Nodes(f"{A},{B}", rest_s=0)
    nodes.failed(NodeDown(A, sent=False), replay=False)
    assert nodes.order() == [A, B]


def test_fetches_start_at_each_node_in_turn() -> None:
    nodes = Nodes(f"{A},{B}")
    assert [nodes.spread()[0] for _ in range(4)] == [B, A, B, A]


def test_a_call_that_may_have_had_its_effect_is_not_sent_elsewhere_unless_it_is_safe_to_repeat() -> None:
    nodes = Nodes(f"{A},{B}")
    with pytest.raises(EngineUnavailable, match="8081"):
        nodes.failed(NodeDown(A, sent=True), replay=False)
    nodes.failed(NodeDown(B, sent=True), replay=True)  # goes on
    nodes.failed(NodeDown(A, sent=False), replay=False)  # never reached it: goes on


def test_one_node_fails_as_before_and_an_empty_list_is_refused() -> None:
    with pytest.raises(EngineUnavailable, match="cannot reach the engine at http://127.0.0.1:8081"):
        Nodes(A).failed(NodeDown(A, sent=False), replay=True)
    assert "8081" in str(Nodes(f"{A},{B}").unreachable()) and "8082" in str(Nodes(f"{A},{B}").unreachable())
    with pytest.raises(UsageError):
        Nodes(" , ")

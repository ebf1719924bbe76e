"""The registry schema an applied plan leaves on its model, checked the way `mlc model register` checks a new
version (on a real MLflow registry)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelops_mlc.errors import UsageError
from modelops_mlc.plan import SCHEMA_TAG, check_version_metadata, decide, load_inputs
from modelops_mlc.plan.outputs import registry_schema


@pytest.fixture
def planned(registry: Any) -> Any:
    inputs = load_inputs({"model_name": "fraud", "model_type": "classification", "deployment_target": "online",
                          "scale_requirements": {"rps": 10}, "governance_level": "staging"})
    registry.client.create_registered_model("fraud")
    registry.client.set_registered_model_tag("fraud", SCHEMA_TAG, json.dumps(registry_schema(inputs, decide(inputs))))
    return registry


GOOD = {"owner": "risk", "target": "label", "TAG": "fraud", "primary_metric": "f1"}


def test_a_version_with_the_required_metadata_passes(planned: Any) -> None:
    check_version_metadata(planned, "fraud", GOOD, ["TEST_DATA", "training_data"], None)


@pytest.mark.parametrize(("tags", "assets", "message"), [
    ({k: v for k, v in GOOD.items() if k != "owner"}, ["TEST_DATA", "TRAINING_DATA"], "tags: 'owner' is a required property"),
    (GOOD, ["TEST_DATA"], "assets: an asset TRAINING_DATA is required"),
    ({**GOOD, "risk_tier": "EXTREME"}, ["TEST_DATA", "TRAINING_DATA"], "tags/risk_tier: 'EXTREME' is not one of"),
])
def test_a_version_that_breaks_the_schema_is_refused_in_one_line(planned: Any, tags: dict[str, str],
                                                                   assets: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_version_metadata(planned, "fraud", tags, assets, None)
    assert caught.value.message.startswith("version metadata of fraud does not match its plan's registry schema: ")
    assert message in caught.value.message and "\n" not in caught.value.message


def test_a_model_without_an_applied_plan_takes_any_metadata(registry: Any) -> None:
    check_version_metadata(registry, "unplanned", {}, [], None)
    registry.client.create_registered_model("bare")
    check_version_metadata(registry, "bare", {}, [], None)

"""get-model reads the governance tags the decisions need, from the version or else the registered
model, and says whether the version has a model card."""

from __future__ import annotations

from workers.get_model import get_model
from workers.handlers import TaskContext


def run(settings, **variables) -> dict:
    return get_model(TaskContext(topic="get-model", task_id="t", process_instance_id="pi", activity_id="task_get_model",
                                 activity_instance_id="task_get_model:1", variables=variables, settings=settings))


def test_governance_tags_come_from_the_version_or_the_model(registry, settings, breast_cancer) -> None:
    X, _, model = breast_cancer
    v1 = registry.register("gov-tags", estimator=model, input_example=X.head(2),
                           tags={"risk_tier": "high", "governance_level": "Production", "submitted_by": "alice"})
    registry.client.set_registered_model_tag("gov-tags", "business_unit", "internal")
    registry.client.set_registered_model_tag("gov-tags", "risk_tier", "LOW")  # the version's tag wins

    out = run(settings, MODEL_ID="gov-tags", MODEL_VERSION=v1.version)
    assert (out["BUSINESS_UNIT"], out["RISK_TIER"], out["GOVERNANCE_LEVEL"], out["FRAMEWORK"]) == (
        "internal", "HIGH", "production", "sklearn")
    assert out["SEPARATION_OF_DUTIES"] is True  # on by default for production
    assert out["SUBMITTED_BY"] == "alice" and out["SERVICENOW"] is False
    assert out["HAS_MODEL_CARD"] is False
    assert "SUBMITTED_BY" not in run(settings, MODEL_ID="gov-tags", MODEL_VERSION=1, SUBMITTED_BY="bob")


def test_a_model_card_is_a_tag_or_a_run_artifact(registry, settings, breast_cancer) -> None:
    X, _, model = breast_cancer
    tagged = registry.register("gov-card", estimator=model, input_example=X.head(2),
                               tags={"mlc.model_card": "runs:/x/model_card.md", "separation_of_duties": "false",
                                     "governance_level": "production"})
    logged = registry.register("gov-card", estimator=model, input_example=X.head(2))
    registry.client.log_text(logged.run_id, "# Model card", "model_card.md")

    first = run(settings, MODEL_ID="gov-card", MODEL_VERSION=tagged.version)
    assert first["HAS_MODEL_CARD"] is True and first["SEPARATION_OF_DUTIES"] is False
    assert run(settings, MODEL_ID="gov-card", MODEL_VERSION=logged.version)["HAS_MODEL_CARD"] is True
    assert run(settings, MODEL_ID="gov-card", MODEL_VERSION=logged.version)["RISK_TIER"] is None

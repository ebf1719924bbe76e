"""Topic ``drift``: current data against reference data, per feature, with an overall verdict.

The reference defaults to the model's TRAINING_DATA asset; the model's signature (when it has
one) names the features, and its ``target`` tag is left out. With ``PREDICTION_DRIFT`` true (and a
model) the drift of the model's outputs on reference and current data joins the results as
``DRIFT_RESULTS.prediction``.
"""

from __future__ import annotations

from typing import Any

from modelops_mlc.errors import BpmnError
from modelops_mlc.serialize import json_safe
from workers.handlers import TaskContext, topic
from workers.support import job_errors, model_spec
from workers.variables import (
    CURRENT_DATA,
    DRIFT_RESULTS,
    DRIFT_VERDICT,
    MLC_MISSING_TEST_DATA,
    MODEL_ID,
    PREDICTION_DRIFT,
    REFERENCE_DATA,
    TOPIC_DRIFT,
)


@topic(TOPIC_DRIFT, cpu_bound=True)
def drift(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.jobs import drift as drift_job

    current = ctx.get(CURRENT_DATA)
    if not current:
        raise BpmnError(MLC_MISSING_TEST_DATA, f"no {CURRENT_DATA} to check for drift")
    reference = ctx.get(REFERENCE_DATA)
    prediction = None
    with job_errors():
        if ctx.get(MODEL_ID):
            from modelops_mlc.monitoring.checks import model_drift
            from modelops_mlc.registry import Registry

            predictions = str(ctx.get(PREDICTION_DRIFT, "")).strip().lower() == "true"
            result, found, reference = model_drift(Registry(ctx.settings), model_spec(ctx), str(current), reference,
                                                   predictions=predictions)
            if found is not None:
                prediction = {"psi": found.psi, "test": found.test, "p_value": found.p_value, "verdict": found.verdict,
                              "kind": found.kind}
        elif not reference:
            raise BpmnError(MLC_MISSING_TEST_DATA, f"no {REFERENCE_DATA} given and no {MODEL_ID} to take it from")
        else:
            result = drift_job(str(reference), str(current))
    return {
        DRIFT_VERDICT: result.verdict,
        DRIFT_RESULTS: json_safe({
            "reference_data": str(reference),
            "current_data": str(current),
            "prediction": prediction,
            "verdict": result.verdict,
            "drifted_features": result.drifted_features,
            "reference_rows": result.reference_rows,
            "current_rows": result.current_rows,
            "features": {f.feature: {"psi": f.psi, "test": f.test, "p_value": f.p_value, "verdict": f.verdict}
                         for f in result.features},
            "skipped_features": result.skipped_features,
        }),
    }

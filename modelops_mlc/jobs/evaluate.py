"""The metrics test and champion/challenger comparison, built on ``mlflow.models.evaluate``.

MLflow's built-in evaluators compute the classification metrics (binary with the largest label as
positive, multiclass weighted with one-vs-rest ROC AUC) and the regression metrics, and log them to
an evaluation run linked to the model. We add what they lack: a flat metric dict under the
contract's names, the confusion matrix as data, and bias metrics for a protected attribute.
``plots=False`` (the ``run-test`` worker) leaves out the classifier's plot images, which cost most
of its time; the metrics and run records are the same.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import JobError, MissingDataError, MlcError, first_line
from modelops_mlc.jobs._data import (data_ref, read_frame, require_file, require_signature_types, role_data,
                                     write_frame)
from modelops_mlc.jobs.results import CompareResult, DataRef, MetricComparison, TestResult
from modelops_mlc.registry import ModelVersionInfo, Registry
from modelops_mlc.registry.quiet import quiet_mlflow
from modelops_mlc.serialize import json_safe

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GREATER_IS_BETTER", "compare", "metrics_test"]

log = logging.getLogger(__name__)

# MLflow's metric names -> the contract's flat names (process variables, DMN inputs)
_MLFLOW_NAMES = {
    "accuracy_score": "accuracy",
    "precision_score": "precision",
    "recall_score": "recall",
    "f1_score": "f1",
    "roc_auc": "roc_auc",
    "log_loss": "log_loss",
    "root_mean_squared_error": "rmse",
    "mean_absolute_error": "mae",
    "r2_score": "r2",
}
GREATER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
    "demographic_parity_difference": False,
    "equal_opportunity_difference": False,
}
PREDICTION = "prediction"
_EVALUATOR_CONFIG = {"log_model_explainability": False}
_LINKED_MODEL = "mlc_linked_model_id"  # our evaluator_config key: the LoggedModel to link metrics to
_EVALUATORS = {  # (task type, plots) -> the name our evaluator is registered under
    ("classification", True): "mlc-classifier",
    ("classification", False): "mlc-classifier-no-plots",
    ("regression", True): "mlc-regressor",
    ("regression", False): "mlc-regressor",
}


def _register_evaluators() -> None:
    """Register MLflow's classifier and regressor evaluators under our names (once per process).

    They compute and log exactly what MLflow's do, linked to the LoggedModel named in the config
    (see :func:`_evaluate_kwargs`); the no-plots classifier also skips its image artifacts.
    """
    from mlflow.models.evaluation.evaluator_registry import _model_evaluation_registry as registry

    if all(registry.is_registered(name) for name in _EVALUATORS.values()):
        return
    from mlflow.entities import LoggedModelInput
    from mlflow.models.evaluation.evaluators.classifier import ClassifierEvaluator
    from mlflow.models.evaluation.evaluators.regressor import RegressorEvaluator

    class _Linked:
        def evaluate(self, *, evaluator_config: dict[str, Any], run_id: str, model_id: str | None = None,
                     **kwargs: Any) -> Any:
            config = dict(evaluator_config)
            linked = config.pop(_LINKED_MODEL, None)
            if linked and not model_id:
                model_id = linked
                # what mlflow.models.evaluate records for a linked model: the model as a run input
                self.client.log_inputs(run_id, models=[LoggedModelInput(model_id)])  # type: ignore[attr-defined]
            return super().evaluate(evaluator_config=config, run_id=run_id, model_id=model_id,  # type: ignore[misc]
                                    **kwargs)

    class _Classifier(_Linked, ClassifierEvaluator):  # type: ignore[misc, valid-type]
        name = _EVALUATORS["classification", True]

    class _ClassifierWithoutPlots(_Classifier):
        name = _EVALUATORS["classification", False]

        def _log_image_artifact(self, do_plot: Any, artifact_name: str) -> None:
            return None

    class _Regressor(_Linked, RegressorEvaluator):  # type: ignore[misc, valid-type]
        name = _EVALUATORS["regression", True]

    for cls in (_Classifier, _ClassifierWithoutPlots, _Regressor):
        registry.register(cls.name, cls)


def _evaluate_kwargs(model: Any, task_type: str, plots: bool) -> dict[str, Any]:
    """``model``, ``evaluators`` and ``evaluator_config`` for ``mlflow.models.evaluate``.

    We go around one part of ``mlflow.models.evaluate``: given a model that carries a LoggedModel
    id, it looks that LoggedModel up (``get_logged_model``, which on the SQL store loads every metric
    ever linked to it, so each back test is slower than the one before) and, after its evaluator has
    logged the metrics linked to the model, logs them all a second time. So we pass the same
    pyfunc model without the id and let our evaluator link the metrics and the run input to it:
    the metrics, the dataset input and tag, and the links are recorded once, as MLflow would.
    Should MLflow's internals move, we fall back to its default evaluator, plots and all.
    """
    try:
        _register_evaluators()
        name = _EVALUATORS[task_type, plots]
        config: dict[str, Any] = dict(_EVALUATOR_CONFIG)
        if getattr(model, "model_id", None):
            config[_LINKED_MODEL] = model.model_id
            unlinked = copy.copy(model)  # the cached model keeps its id
            unlinked._model_id = None
            model = unlinked
        return {"model": model, "evaluators": [name], "evaluator_config": {name: config}}
    except Exception as exc:  # pragma: no cover - depends on MLflow's private layout
        log.debug("cannot set up our evaluators, using MLflow's default one: %s", exc)
    return {"model": model, "evaluators": ["default"], "evaluator_config": {"default": dict(_EVALUATOR_CONFIG)}}


def _test_data(registry: Registry, info: ModelVersionInfo, data_path: str | Path | None) -> tuple[Path, DataRef]:
    return role_data(registry, info, "TEST_DATA", data_path, what="test data", given_as="input file")


def _features(info: ModelVersionInfo, df: pd.DataFrame, target: str) -> list[str]:
    if target not in df.columns:
        raise JobError(f"test data has no target column {target!r} (columns: {', '.join(map(str, df.columns[:20]))}); "
                       f"set the version tag 'target'")
    wanted = info.input_columns()
    if wanted is None:
        return [c for c in df.columns if c != target]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise JobError(f"data does not match the signature of {info.model_id}: missing columns {', '.join(missing)}")
    return wanted


def _task_type(info: ModelVersionInfo, model: Any, y: Any) -> str:
    declared = (info.tags.get("task_type") or "").strip().lower()
    if declared in ("classification", "classifier"):
        return "classification"
    if declared in ("regression", "regressor"):
        return "regression"
    raw = None
    try:
        raw = model.get_raw_model()
    except Exception:
        pass
    if raw is not None:
        from sklearn.base import is_classifier, is_regressor

        if is_classifier(raw) or hasattr(raw, "predict_proba"):
            return "classification"
        if is_regressor(raw):
            return "regression"
    from sklearn.utils.multiclass import type_of_target

    return "classification" if type_of_target(y) in ("binary", "multiclass") and y.dtype.kind != "f" else "regression"


def _fairness(y_true: Any, y_pred: Any, groups: Any, pos_label: Any) -> dict[str, float]:
    """Demographic parity difference (spread of P(pred=pos) across groups) and equal opportunity
    difference (spread of the true positive rate across groups)."""
    import numpy as np

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    groups = np.asarray(groups)
    selection, tpr = [], []
    for g in np.unique(groups[~_isnull(groups)]):
        mask = groups == g
        selection.append(float(np.mean(y_pred[mask] == pos_label)))
        pos = mask & (y_true == pos_label)
        if pos.any():
            tpr.append(float(np.mean(y_pred[pos] == pos_label)))
    out: dict[str, float] = {}
    if len(selection) >= 2:
        out["demographic_parity_difference"] = max(selection) - min(selection)
    if len(tpr) >= 2:
        out["equal_opportunity_difference"] = max(tpr) - min(tpr)
    return out


def _isnull(values: Any) -> Any:
    import pandas as pd

    return pd.isna(values)


class _Evaluation:
    """One model evaluated on one data set (inside an active MLflow run).

    MLflow's evaluator logs its metrics to the run; the bias metrics it lacks are left in
    ``extra_metrics`` for the caller to log with the rest of what it logs.
    """

    def __init__(self, registry: Registry, info: ModelVersionInfo, df: pd.DataFrame, target: str,
                 *, plots: bool = True) -> None:
        import mlflow
        import numpy as np

        self.features = _features(info, df, target)
        model = registry.load_pyfunc(info)
        y = df[target]
        self.task_type = _task_type(info, model, y)
        self.extra_metrics: dict[str, float] = {}
        columns = list(dict.fromkeys([*self.features, target]))
        try:
            with quiet_mlflow():
                result = mlflow.models.evaluate(
                    data=df[columns],
                    targets=target,
                    model_type="classifier" if self.task_type == "classification" else "regressor",
                    **_evaluate_kwargs(model, self.task_type, plots),
                )
                y_pred = np.asarray(model.predict(df[self.features]))
        except MlcError:
            raise
        except Exception as exc:
            raise JobError(f"evaluating {info.model_id} failed: {first_line(exc)}") from exc
        if y_pred.ndim > 1:
            y_pred = y_pred[:, 0]
        self.y_pred = y_pred
        self.run_id = result.run_id
        self.metrics: dict[str, float] = {
            ours: float(result.metrics[theirs]) for theirs, ours in _MLFLOW_NAMES.items() if theirs in result.metrics
        }
        self.confusion_matrix = None
        if self.task_type == "classification":
            from sklearn.metrics import confusion_matrix

            labels = np.unique(np.concatenate([np.asarray(y), y_pred]))
            self.labels = labels
            self.confusion_matrix = {
                "labels": [json_safe(v) for v in labels],
                "matrix": confusion_matrix(y, y_pred, labels=labels).tolist(),
            }
            protected = info.tags.get("protected_attribute")
            if protected:
                if protected not in df.columns:
                    raise JobError(f"protected attribute column {protected!r} is not in the test data")
                pos_label = _pos_label(info, labels)
                fair = _fairness(y, y_pred, df[protected], pos_label)
                self.metrics.update(fair)
                self.extra_metrics.update(fair)


def _pos_label(info: ModelVersionInfo, labels: Any) -> Any:
    """Tag ``pos_label`` when set (matched to the label type), else the largest label as MLflow does."""
    declared = info.tags.get("pos_label")
    if declared is not None:
        for label in labels:
            if str(json_safe(label)) == declared:
                return label
    return labels[-1]


def metrics_test(
    registry: Registry,
    model_id: str,
    data_path: str | Path | None = None,
    target: str | None = None,
    output_path: str | Path | None = None,
    *,
    record: bool = True,
    plots: bool = True,
    run_tags: Mapping[str, str] | None = None,
) -> TestResult:
    """Evaluate a version on labelled data (``data_path`` or its TEST_DATA asset).

    Metrics are logged to an evaluation run tagged with the version, kept on the version
    (``mlc.test_results``) and returned flat. ``output_path`` receives the data plus a
    ``prediction`` column. ``plots=False`` leaves out MLflow's plots (ROC, PR, lift, calibration,
    confusion matrix images), which cost most of a classifier's evaluation; the metrics are the same.
    ``run_tags`` go on the evaluation run as well (a worker's task key and process instance).
    """
    import mlflow

    started = time.monotonic()
    info = registry.get_version(model_id)
    path, data_in = _test_data(registry, info, data_path)
    df = read_frame(path, "test data")
    target = target or info.tags.get("target") or "target"
    data_in.rows = len(df)
    params = {"data_uri": data_in.uri[:500], "data_sha256": data_in.sha256 or "", "target": target, "rows": len(df)}
    tags: dict[str, str] = {}
    _features(info, df, target)  # data that cannot fit the model fails before a run records anything
    require_signature_types(df, info.signature, "test data")
    with registry.start_run(
        f"test-{info.name}-v{info.version}",
        {"mlc.kind": "test", "mlc.model_name": info.name, "mlc.model_version": info.version, **(run_tags or {})},
    ) as run:
        try:
            ev = _Evaluation(registry, info, df, target, plots=plots)
            outputs: list[DataRef] = []
            if output_path is not None:
                out_df = df.copy()
                out_df[PREDICTION] = ev.y_pred
                written = write_frame(out_df, output_path)
                outputs.append(data_ref(written, role="OUTPUT_FILE", rows=len(out_df)))
                tags["mlc.output_uri"] = outputs[0].uri
            if ev.confusion_matrix is not None:
                mlflow.log_dict(ev.confusion_matrix, "confusion_matrix.json")
        except BaseException:
            with contextlib.suppress(Exception):  # the failed run still says what it tested
                _log_batch(registry, run.info.run_id, params=params, tags=tags)
            raise
        # our params, bias metrics and tags in one write
        _log_batch(registry, run.info.run_id, params=params, metrics=ev.extra_metrics, tags=tags)
    result = TestResult(
        model_name=info.name,
        version=info.version,
        task_type=ev.task_type,  # type: ignore[arg-type]
        metrics=ev.metrics,
        confusion_matrix=ev.confusion_matrix,
        rows=len(df),
        target=target,
        run_id=run.info.run_id,
        output_path=str(outputs[0].uri) if outputs else None,
        inputs=[DataRef(uri=info.uri, role="MODEL"), data_in],
        outputs=outputs,
        duration_s=round(time.monotonic() - started, 3),
    )
    if record:
        registry.record_test_results(info.ref, {
            "metrics": result.metrics,
            "task_type": result.task_type,
            "run_id": result.run_id,
            "rows": result.rows,
            "data": data_in.uri,
            "data_sha256": data_in.sha256,
            "confusion_matrix": result.confusion_matrix,
            "at": datetime.now(tz=timezone.utc).isoformat(),
        })
    return result


def _log_batch(registry: Registry, run_id: str, *, params: Mapping[str, Any] | None = None,
               metrics: Mapping[str, float] | None = None, tags: Mapping[str, str] | None = None) -> None:
    """Params, metrics and tags of a run in one ``log_batch`` (each fluent call is a round trip,
    several sqlite commits on a local store). Values are stringified as ``mlflow.log_params`` does."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.time import get_current_time_millis

    now = get_current_time_millis()
    registry.client.log_batch(
        run_id,
        metrics=[Metric(key, float(value), now, 0) for key, value in (metrics or {}).items()],
        params=[Param(key, str(value)) for key, value in (params or {}).items()],
        tags=[RunTag(key, str(value)) for key, value in (tags or {}).items()],
        synchronous=True,
    )


def _threshold_objects(thresholds: Mapping[str, Any]) -> dict[str, Any]:
    from mlflow.models import MetricThreshold

    result = {}
    for metric, spec in thresholds.items():
        if metric not in GREATER_IS_BETTER:
            raise JobError(f"unknown metric {metric!r} in thresholds (known: {', '.join(GREATER_IS_BETTER)})")
        if isinstance(spec, MetricThreshold):
            result[metric] = spec
            continue
        spec = dict(spec or {})
        if "min_relative_change" in spec and spec["min_relative_change"] is not None:
            spec["min_relative_change"] = float(spec["min_relative_change"])
        try:
            result[metric] = MetricThreshold(greater_is_better=GREATER_IS_BETTER[metric], **spec)
        except Exception as exc:
            raise JobError(f"bad threshold for {metric}: {first_line(exc)}") from exc
    return result


def _compare_metric(metric: str, champ: float | None, chal: float | None) -> MetricComparison:
    gib = GREATER_IS_BETTER.get(metric, True)
    if champ is None or chal is None:
        return MetricComparison(metric=metric, champion=champ, challenger=chal, greater_is_better=gib,
                                winner=None, abs_delta=None, rel_delta=None)
    delta = chal - champ
    if abs(delta) <= 1e-12:
        winner = "tie"
    elif (delta > 0) == gib:
        winner = "challenger"
    else:
        winner = "champion"
    rel = delta / abs(champ) if champ != 0 else None
    return MetricComparison(metric=metric, champion=champ, challenger=chal, greater_is_better=gib,
                            winner=winner, abs_delta=delta, rel_delta=rel)


def compare(
    registry: Registry,
    champion: str,
    challenger: str,
    data_path: str | Path | None = None,
    target: str | None = None,
    *,
    thresholds: Mapping[str, Any] | None = None,
    primary_metric: str | None = None,
    plots: bool = True,
    run_tags: Mapping[str, str] | None = None,
) -> CompareResult:
    """Evaluate champion and challenger on the same data and say, per metric, who wins and by how much.

    With ``thresholds`` ({metric: {threshold, min_absolute_change, min_relative_change}}) the
    challenger wins only if ``mlflow.validate_evaluation_results`` accepts it against the champion;
    otherwise it wins when it beats the champion on the primary metric (tag ``primary_metric``,
    default roc_auc, else f1, for classification and rmse for regression). Ties keep the champion.
    ``plots=False`` leaves out MLflow's plots of both evaluations, as in :func:`metrics_test`;
    ``run_tags`` go on the comparison run and both evaluation runs.
    """
    import mlflow
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    started = time.monotonic()
    champ_info = registry.get_version(champion)
    chal_info = registry.get_version(challenger)
    if data_path is not None:
        path = require_file(data_path, "test data")
        data_in = data_ref(path, role="TEST_DATA")
    else:
        owner = chal_info if "TEST_DATA" in chal_info.assets else champ_info
        try:
            path, data_in = _test_data(registry, owner, None)
        except MissingDataError:
            raise MissingDataError(
                f"neither {chal_info.model_id} nor {champ_info.model_id} has TEST_DATA and no input file was given"
            ) from None
    df = read_frame(path, "test data")
    data_in.rows = len(df)
    target = target or chal_info.tags.get("target") or champ_info.tags.get("target") or "target"
    checks = _threshold_objects(thresholds) if thresholds else None
    with registry.start_run(
        f"compare-{chal_info.name}-v{champ_info.version}-v{chal_info.version}",
        {"mlc.kind": "compare", "mlc.model_name": chal_info.name, "mlc.model_version": chal_info.version,
         "mlc.champion": champ_info.model_id, "mlc.challenger": chal_info.model_id, **(run_tags or {})},
    ) as run:
        mlflow.log_params({"data_uri": data_in.uri[:500], "data_sha256": data_in.sha256 or "", "target": target})
        evals = {}
        for role, info in (("champion", champ_info), ("challenger", chal_info)):
            with registry.start_run(f"{role}-{info.name}-v{info.version}",
                                    {"mlc.kind": "test", "mlc.model_name": info.name,
                                     "mlc.model_version": info.version, "mlc.compare_role": role,
                                     **(run_tags or {})}):
                evals[role] = _Evaluation(registry, info, df, target, plots=plots)
                if evals[role].extra_metrics:
                    mlflow.log_metrics(evals[role].extra_metrics)
        champ_m, chal_m = evals["champion"].metrics, evals["challenger"].metrics
        task_type = evals["challenger"].task_type
        if evals["champion"].task_type != task_type:
            raise JobError(f"cannot compare a {evals['champion'].task_type} model with a {task_type} model")
        names = [m for m in GREATER_IS_BETTER if m in champ_m or m in chal_m]
        table = [_compare_metric(m, champ_m.get(m), chal_m.get(m)) for m in names]
        primary = primary_metric or chal_info.tags.get("primary_metric")
        if not primary:
            if task_type == "classification":
                primary = "roc_auc" if "roc_auc" in champ_m and "roc_auc" in chal_m else "f1"
            else:
                primary = "rmse"
        by_name = {m.metric: m for m in table}
        if primary not in by_name or by_name[primary].winner is None:
            raise JobError(f"primary metric {primary!r} is not available for both models")
        passed, failures = None, []
        if checks:
            try:
                mlflow.validate_evaluation_results(
                    checks,
                    EvaluationResult(metrics=chal_m, artifacts={}),
                    EvaluationResult(metrics=champ_m, artifacts={}),
                )
                passed = True
            except ModelValidationFailedException as exc:
                passed = False
                failures = [line.strip() for line in str(exc).splitlines() if line.strip()]
            winner = "challenger" if passed else "champion"
        else:
            winner = "challenger" if by_name[primary].winner == "challenger" else "champion"
        mlflow.log_metrics({f"{role}_{k}": v for role, ms in (("champion", champ_m), ("challenger", chal_m))
                            for k, v in ms.items()})
        mlflow.set_tags({"mlc.compare_winner": winner, "mlc.primary_metric": primary})
    return CompareResult(
        model_name=chal_info.name,
        champion_version=champ_info.version,
        challenger_version=chal_info.version,
        task_type=task_type,  # type: ignore[arg-type]
        primary_metric=primary,
        winner=winner,  # type: ignore[arg-type]
        metrics=table,
        thresholds_passed=passed,
        threshold_failures=failures,
        run_id=run.info.run_id,
        rows=len(df),
        inputs=[DataRef(uri=champ_info.uri, role="CHAMPION"), DataRef(uri=chal_info.uri, role="CHALLENGER"), data_in],
        duration_s=round(time.monotonic() - started, 3),
    )

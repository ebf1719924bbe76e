"""Training: run a version's declared entrypoint on its training data, register the result.

An entrypoint is ``module:function`` (version tag ``entrypoint`` or the ``entrypoint`` argument),
called as ``function(data, target=..., seed=..., params=...)`` (keywords it does not declare are
left out). It returns a fitted estimator, or a dict ``{"model": est, "metrics": {...},
"params": {...}}``. Without an entrypoint the parent's own scikit-learn estimator is cloned and
refitted (``modelops_mlc.jobs.train:refit``), which is what a plain retrain wants.
"""

from __future__ import annotations

import importlib
import inspect
import platform
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelops_mlc.errors import JobError, MlcError, UsageError, first_line
from modelops_mlc.jobs._data import read_frame, role_data
from modelops_mlc.jobs.results import DataRef, TrainResult
from modelops_mlc.registry import ModelRef, ModelVersionInfo, Registry
from modelops_mlc.registry.client import log_sklearn_model

__all__ = ["DEFAULT_ENTRYPOINT", "load_entrypoint", "refit", "train"]

DEFAULT_ENTRYPOINT = "modelops_mlc.jobs.train:refit"
_PACKAGES = ("scikit-learn", "mlflow", "numpy", "pandas", "scipy")
# version tags a trained version does not inherit from its parent
_NOT_INHERITED = {"train", "snapshot", "snapshot_at", "mlc.copied_from", "mlc.parent_version", "mlc.train_run_id"}


def refit(data: Any, *, target: str, seed: int, parent: Any) -> Any:
    """Default entrypoint: a fresh clone of the parent's estimator fitted on ``data``."""
    from sklearn.base import clone

    model = clone(parent)
    params = model.get_params()
    seeded = {k: seed for k in params if k == "random_state" or k.endswith("__random_state")}
    if seeded:
        model.set_params(**seeded)
    return model.fit(data.drop(columns=[target]), data[target])


def load_entrypoint(spec: str) -> Any:
    """Import ``module:function``; a bad spec is a UsageError, an import failure a JobError."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"bad training entrypoint {spec!r}: expected module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise JobError(f"cannot import training entrypoint module {module_name!r}: {first_line(exc)}") from exc
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise JobError(f"training entrypoint {spec!r}: {module_name} has no attribute {attr!r}")
    if not callable(fn):
        raise JobError(f"training entrypoint {spec!r} is not callable")
    return fn


def _call(fn: Any, data: Any, available: Mapping[str, Any]) -> Any:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn(data, **available)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    kwargs = {k: v for k, v in available.items() if takes_any or k in sig.parameters}
    return fn(data, **kwargs)


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for dist in _PACKAGES:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return found


def _flat_params(estimator: Any) -> dict[str, str]:
    try:
        params = estimator.get_params(deep=False)
    except Exception:
        return {}
    return {f"model.{k}": str(v)[:250] for k, v in list(params.items())[:80]}


def _training_data(registry: Registry, parent: ModelVersionInfo, training_data: str | Path | None) -> tuple[Path, DataRef]:
    return role_data(registry, parent, "TRAINING_DATA", training_data, what="training data", given_as="training data")


def train(
    registry: Registry,
    model_id: str,
    training_data: str | Path | None = None,
    entrypoint: str | None = None,
    seed: int = 42,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    run_tags: Mapping[str, str] | None = None,
) -> TrainResult:
    """Train a new version from ``model_id`` (the parent) on TRAINING_DATA and register it.

    The MLflow run logs the parameters, metrics, seed, package versions and the data's sha256;
    the new version is linked to the run and carries ``mlc.parent_version``. ``tags`` go on the
    new version, ``run_tags`` on the training run (a worker's task key and process instance).
    """
    import mlflow
    import numpy as np

    started = time.monotonic()
    parent = registry.get_version(model_id)
    path, data_in = _training_data(registry, parent, training_data)
    df = read_frame(path, "training data")
    data_in.rows = len(df)
    target = parent.tags.get("target") or "target"
    if target not in df.columns:
        raise JobError(f"training data has no target column {target!r} (columns: {', '.join(map(str, df.columns[:20]))})")
    spec = entrypoint or parent.tags.get("entrypoint") or DEFAULT_ENTRYPOINT
    fn = load_entrypoint(spec)
    available: dict[str, Any] = {"target": target, "seed": seed, "params": dict(params or {})}
    if spec == DEFAULT_ENTRYPOINT:
        if "sklearn" not in parent.flavors:
            raise JobError(f"model {parent.model_id} declares no training entrypoint (tag 'entrypoint') and is not "
                           f"a scikit-learn model that could be refitted")
        available["parent"] = registry.load_sklearn(parent.ref)
    features = parent.input_columns()
    if features:
        missing = [c for c in features if c not in df.columns]
        if missing:
            raise JobError(f"training data does not match the signature of {parent.model_id}: "
                           f"missing columns {', '.join(missing)}")
        df = df[[*features, target]]

    versions = _package_versions()
    with registry.start_run(
        f"train-{parent.name}-from-v{parent.version}",
        {"mlc.kind": "train", "mlc.model_name": parent.name, "mlc.parent_version": parent.version,
         **{f"mlc.pkg.{k}": v for k, v in versions.items()}, **(run_tags or {})},
    ) as run:
        mlflow.log_params({
            "seed": seed,
            "entrypoint": spec,
            "target": target,
            "training_data": data_in.uri[:500],
            "training_data_sha256": data_in.sha256 or "",
            "training_rows": len(df),
            "parent_version": parent.version,
            **{f"param.{k}": str(v)[:250] for k, v in (params or {}).items()},
        })
        random.seed(seed)
        np.random.seed(seed)
        try:
            produced = _call(fn, df, available)
        except MlcError:
            raise
        except Exception as exc:
            raise JobError(f"training entrypoint {spec} failed: {first_line(exc, typed=True)}") from exc
        metrics: dict[str, float] = {}
        extra_params: dict[str, Any] = {}
        estimator = produced
        if isinstance(produced, Mapping):
            estimator = produced.get("model")
            metrics = {k: float(v) for k, v in (produced.get("metrics") or {}).items()}
            extra_params = dict(produced.get("params") or {})
        if estimator is None or not hasattr(estimator, "predict"):
            raise JobError(f"training entrypoint {spec} returned {type(estimator).__name__}, not a model with predict()")
        X = df.drop(columns=[target])
        if hasattr(estimator, "score"):
            try:
                metrics.setdefault("training_score", float(estimator.score(X, df[target])))
            except Exception:
                pass
        mlflow.log_params({**_flat_params(estimator), **{f"param.{k}": str(v)[:250] for k, v in extra_params.items()}})
        if metrics:
            mlflow.log_metrics(metrics)
        try:
            logged = log_sklearn_model(estimator, "model", X.head(5))
        except Exception as exc:
            raise JobError(f"cannot log the trained model: {first_line(exc)}") from exc
    run_id = run.info.run_id

    inherited = {k: v for k, v in parent.tags.items() if k not in _NOT_INHERITED}
    new_tags = {**inherited, **(tags or {}), "train": False, "mlc.parent_version": parent.version,
                "mlc.train_run_id": run_id, "entrypoint": spec if spec != DEFAULT_ENTRYPOINT else parent.tags.get("entrypoint")}
    try:
        info = registry.register(parent.name, run_id=run_id, tags=new_tags)
    except MlcError as exc:
        raise JobError(f"cannot register the trained model: {exc.message}") from exc
    ref = ModelRef(name=info.name, version=info.version)
    for role, asset in parent.assets.items():
        if role != "TRAINING_DATA":
            registry.set_asset_record(ref, role, asset)
    if training_data is not None:
        registry.add_asset(ref, "TRAINING_DATA", path, copy=False)
    else:
        registry.set_asset_record(ref, "TRAINING_DATA", parent.assets["TRAINING_DATA"])
    return TrainResult(
        model_name=info.name,
        version=info.version,
        parent_version=parent.version,
        run_id=run_id,
        seed=seed,
        entrypoint=spec,
        params={k: str(v) for k, v in {**dict(params or {}), **extra_params}.items()},
        metrics=metrics,
        rows=len(df),
        inputs=[DataRef(uri=parent.uri, role="PARENT_MODEL"), data_in],
        outputs=[DataRef(uri=info.uri, role="MODEL"), DataRef(uri=logged.model_uri, role="LOGGED_MODEL")],
        duration_s=round(time.monotonic() - started, 3),
    )


"""The model registry on MLflow 3: versions are snapshots, aliases mark champion and challenger,
tags carry the lifecycle flags, and data assets hang off a version under a role.

MLflow is imported inside the methods, so importing this module stays cheap. MLflow's global
tracking/registry URI is only set for the duration of a call that needs it (logging a model,
loading one) and restored afterwards, so several ``Registry`` objects can live in one process.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import ModelNotFoundError, NotFoundError, RegistryError, UsageError, first_line
from modelops_mlc.registry.quiet import quiet_mlflow
from modelops_mlc.registry.types import AssetInfo, ModelRef, ModelVersionInfo, RegisteredModelInfo
from modelops_mlc.serialize import json_safe

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from modelops_mlc.config import Settings

__all__ = ["Registry", "parse_model_id", "set_model_cache_size", "sha256_file", "signature_dict"]

log = logging.getLogger(__name__)

EXPERIMENT = "mlc"
ASSET_TAG_PREFIX = "mlc.asset."
TEST_RESULTS_TAG = "mlc.test_results"
ASSET_RUN_TAG = "mlc.asset_run_id"
SNAPSHOT_TAG = "snapshot"
_HIDDEN_TAG_PREFIXES = (ASSET_TAG_PREFIX, TEST_RESULTS_TAG, ASSET_RUN_TAG)
_ROLE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_REMOTE_SCHEMES = ("s3://", "gs://", "wasbs://", "abfss://", "hdfs://", "http://", "https://", "dbfs:/",
                   "mlflow-artifacts:/", "runs:/", "models:/")
_uri_lock = threading.RLock()

# Process-wide caches of immutable version data, keyed by (tracking URI, name, version, source,
# created): a version deleted and registered again under the same number has another source or
# creation time, so it never hits a stale entry. Aliases are resolved before any lookup here.
_meta_cache: dict[tuple[Any, ...], tuple[list[str], dict[str, Any] | None]] = {}
_META_CACHE_MAX = 256
_model_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_model_cache_size = 0  # loaded pyfunc models kept per process; 0 (the default) keeps none
_model_cache_lock = threading.Lock()


def set_model_cache_size(size: int) -> None:
    """Keep up to ``size`` loaded pyfunc models per process (LRU; 0 turns the cache off).

    Meant for long-lived processes that load the same versions again and again, such as the
    worker's process-pool processes; the models are shared, so callers must not mutate them.
    """
    global _model_cache_size
    with _model_cache_lock:
        _model_cache_size = max(int(size), 0)
        while len(_model_cache) > _model_cache_size:
            _model_cache.popitem(last=False)


def parse_model_id(model_id: str) -> tuple[str, int | None, str | None]:
    """Split ``name``, ``name/version`` or ``name@alias`` into (name, version, alias)."""
    text = (model_id or "").strip()
    if not text:
        raise UsageError("a model id is required (name, name/version or name@alias)")
    if "@" in text:
        name, _, alias = text.rpartition("@")
        if not name or not alias:
            raise UsageError(f"bad model id {model_id!r}: expected name@alias")
        return name, None, alias
    head, sep, tail = text.rpartition("/")
    if sep and head and tail.isdigit():
        return head, int(tail), None
    if sep and head and tail.lower() == "latest":
        return head, None, None
    return text, None, None


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _is_remote(uri: str) -> bool:
    return uri.startswith(_REMOTE_SCHEMES)


def _local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    return Path(uri)


def _ts(millis: int | None) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc) if millis else None


def _tag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(json_safe(value))
    return str(value)


def signature_dict(signature: Any) -> dict[str, Any] | None:
    """An MLflow ModelSignature as a plain dict (inputs, outputs, params as lists); None for none."""
    if signature is None:
        return None
    raw = signature.to_dict()
    result: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        result[key] = value
    return result


def _error_code(exc: BaseException) -> str | None:
    return getattr(exc, "error_code", None)


class Registry:
    """Model registry facade over an MLflow tracking + registry URI (sqlite under MLC_HOME by default)."""

    def __init__(self, settings: Settings | None = None, *, experiment: str = EXPERIMENT) -> None:
        if settings is None:
            from modelops_mlc.config import load_settings

            settings = load_settings()
        self.settings = settings
        self.tracking_uri = settings.mlflow_tracking_uri
        self.experiment_name = experiment
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for process pools: the MLflow client is rebuilt on the other side."""
        state = self.__dict__.copy()
        state["_client"] = None
        return state

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            try:
                with self._first_open_lock():
                    from mlflow import MlflowClient

                    client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
                    # Touch both stores while the lock is held: each one creates the schema on
                    # first use of a fresh database.
                    client.search_experiments(max_results=1)
                    client.search_registered_models(max_results=1)
            except Exception as exc:
                raise RegistryError(f"cannot open the MLflow registry at {self.tracking_uri}: {first_line(exc)}") from exc
            from modelops_mlc.insight.audit import AuditedMlflowClient

            self._client = AuditedMlflowClient(client, self.settings)  # registry changes land in the audit log
        return self._client

    def _first_open_lock(self) -> contextlib.AbstractContextManager[object]:
        """Serialise the first open of a sqlite store across processes.

        MLflow runs its alembic migrations when it opens a fresh sqlite file, and two processes
        doing that at once (the worker daemon and the CLI, say) collide on alembic's temporary
        tables ("table _alembic_tmp_experiments already exists"). A lock file beside the
        database makes the first opener migrate and the others wait for it.
        """
        if not self.tracking_uri.startswith("sqlite:///"):
            return contextlib.nullcontext()
        db = Path(self.tracking_uri[len("sqlite:///"):])
        if str(db) in ("", ":memory:"):
            return contextlib.nullcontext()
        db.parent.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock

        return FileLock(f"{db}.lock", timeout=300)

    @property
    def is_local(self) -> bool:
        return self.tracking_uri.startswith(("sqlite:", "file:", "/", "postgresql", "mysql", "mssql")) or "://" not in self.tracking_uri

    @contextlib.contextmanager
    def mlflow_context(self) -> Iterator[None]:
        """Point MLflow's global tracking and registry URI here for the block, then restore them."""
        import mlflow
        from mlflow.tracking._model_registry import utils as reg_utils
        from mlflow.tracking._tracking_service import utils as trk_utils

        with _uri_lock:
            saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
            saved = (getattr(trk_utils, "_tracking_uri", None), getattr(reg_utils, "_registry_uri", None))
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
            try:
                yield
            finally:
                trk_utils._tracking_uri, reg_utils._registry_uri = saved
                for key, value in saved_env.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    @property
    def experiment_id(self) -> str:
        """The experiment that holds MLC runs; created with its artifacts under $MLC_HOME/mlartifacts."""
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment_name)
            if exp is not None:
                self._experiment_id = exp.experiment_id
            else:
                location = None
                if self.is_local:
                    self.settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
                    location = self.settings.artifacts_dir.resolve().as_uri()
                try:
                    self._experiment_id = self.client.create_experiment(self.experiment_name, artifact_location=location)
                except Exception as exc:
                    exp = self.client.get_experiment_by_name(self.experiment_name)  # lost a creation race
                    if exp is None:
                        raise RegistryError(f"cannot create MLflow experiment {self.experiment_name!r}: {first_line(exc)}") from exc
                    self._experiment_id = exp.experiment_id
        return self._experiment_id

    @contextlib.contextmanager
    def start_run(self, run_name: str, tags: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """An MLflow run in the MLC experiment, with the global URI pointed here for its duration."""
        import mlflow

        with self.mlflow_context():
            with mlflow.start_run(
                experiment_id=self.experiment_id,
                run_name=run_name,
                tags={k: _tag_value(v) for k, v in (tags or {}).items()},
                nested=mlflow.active_run() is not None,
            ) as run:
                yield run

    # ------------------------------------------------------------------ lookup

    def _raise_not_found(self, name: str) -> None:
        self.model_tags(name)

    def _latest_version(self, name: str) -> int | None:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(
                f"name='{_quote(name)}'", order_by=["version_number DESC"], max_results=1
            )
        except MlflowException as exc:
            raise RegistryError(f"registry lookup of {name!r} failed: {first_line(exc)}") from exc
        return int(found[0].version) if found else None

    def resolve(self, model_id: str) -> ModelRef:
        """``name`` (latest version), ``name/version`` or ``name@alias`` to a concrete version."""
        from mlflow.exceptions import MlflowException

        name, version, alias = parse_model_id(model_id)
        if alias is not None:
            try:
                mv = self.client.get_model_version_by_alias(name, alias)
            except MlflowException as exc:
                self._raise_not_found(name)
                known = sorted(self._aliases(name))
                hint = f" (aliases: {', '.join(known)})" if known else " (it has no aliases)"
                raise ModelNotFoundError(f"model {name!r} has no alias {alias!r}{hint}") from exc
            return ModelRef(name=name, version=int(mv.version))
        if version is None:
            latest = self._latest_version(name)
            if latest is None:
                self._raise_not_found(name)
                raise ModelNotFoundError(f"model {name!r} has no versions")
            return ModelRef(name=name, version=latest)
        try:
            self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            if _error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(f"registry lookup of {name}/{version} failed: {first_line(exc)}") from exc
            self._raise_not_found(name)
            latest = self._latest_version(name)
            have = f" (latest is {latest})" if latest else " (it has no versions)"
            raise ModelNotFoundError(f"model {name!r} has no version {version}{have}") from None
        return ModelRef(name=name, version=version)

    def _aliases(self, name: str) -> dict[str, int]:
        rm = self.client.get_registered_model(name)
        aliases = getattr(rm, "aliases", {}) or {}
        return {k: int(v) for k, v in aliases.items()}

    def _mv(self, ref: ModelRef) -> Any:
        return self.client.get_model_version(ref.name, str(ref.version))

    def _model_meta(self, name: str, version: int, source: str | None,
                    created: int | None = None) -> tuple[list[str], dict[str, Any] | None]:
        """Flavors and signature from the version's MLmodel file (cached per process: versions
        are immutable; an unreadable MLmodel is not cached, so it is retried next time)."""
        key = (self.tracking_uri, name, version, source, created)
        found = _meta_cache.get(key)
        if found is not None:
            return found
        try:
            from mlflow.models import get_model_info

            with self.mlflow_context():
                info = get_model_info(f"models:/{name}/{version}")
        except Exception as exc:  # an unreadable model still shows its registry record
            log.warning("cannot read MLmodel of %s/%s from %s: %s", name, version, source, first_line(exc))
            return [], None
        result = (sorted(info.flavors), signature_dict(info.signature))
        if len(_meta_cache) >= _META_CACHE_MAX:
            _meta_cache.clear()
        _meta_cache[key] = result
        return result

    def _info(self, mv: Any, *, meta: bool = True, aliases: list[str] | None = None) -> ModelVersionInfo:
        tags = dict(mv.tags or {})
        assets: dict[str, AssetInfo] = {}
        test_results = None
        for key, value in tags.items():
            if key.startswith(ASSET_TAG_PREFIX):
                try:
                    assets[key[len(ASSET_TAG_PREFIX):]] = AssetInfo.model_validate_json(value)
                except ValueError:
                    assets[key[len(ASSET_TAG_PREFIX):]] = AssetInfo(uri=value)
            elif key == TEST_RESULTS_TAG:
                try:
                    test_results = json.loads(value)
                except ValueError:
                    test_results = None
        visible = {k: v for k, v in tags.items() if not k.startswith(_HIDDEN_TAG_PREFIXES)}
        version = int(mv.version)
        flavors, signature = (self._model_meta(mv.name, version, mv.source, mv.creation_timestamp) if meta
                              else ([], None))
        return ModelVersionInfo(
            name=mv.name,
            version=version,
            tags=visible,
            aliases=sorted(aliases if aliases is not None else (getattr(mv, "aliases", []) or [])),
            run_id=mv.run_id or None,
            source=mv.source,
            flavors=flavors,
            signature=signature,
            assets=assets,
            test_results=test_results,
            description=mv.description or None,
            status=str(mv.status) if mv.status is not None else None,
            created_at=_ts(mv.creation_timestamp),
        )

    def get_version(self, model_id: str | ModelRef) -> ModelVersionInfo:
        """The version a model id names, with tags, aliases, assets, flavors and signature."""
        ref = model_id if isinstance(model_id, ModelRef) else self.resolve(model_id)
        return self._info(self._mv(ref))

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """Every version of a model, newest first (without flavors and signature, which cost a read each)."""
        self._raise_not_found(name)
        by_version: dict[int, list[str]] = {}
        for alias, version in self._aliases(name).items():
            by_version.setdefault(version, []).append(alias)
        versions = self.client.search_model_versions(f"name='{_quote(name)}'", order_by=["version_number DESC"])
        return [self._info(mv, meta=False, aliases=by_version.get(int(mv.version), [])) for mv in versions]

    def get_model(self, name: str) -> RegisteredModelInfo:
        self._raise_not_found(name)
        rm = self.client.get_registered_model(name)
        return self._model_record(rm)

    def model_tags(self, name: str) -> dict[str, str]:
        """The registered model's own tags (governance tags may sit there; a version's tags are on its
        :class:`ModelVersionInfo`), in one call: unlike :meth:`get_model` it counts no versions."""
        from mlflow.exceptions import MlflowException

        try:
            return dict(self.client.get_registered_model(name).tags or {})
        except MlflowException as exc:
            if _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                raise ModelNotFoundError(f"model {name!r} not found in the registry") from None
            raise RegistryError(f"registry lookup of {name!r} failed: {first_line(exc)}") from exc

    def run_artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        """The paths of the artifacts a run logged under ``path`` (its top level by default)."""
        return [f.path for f in self.client.list_artifacts(run_id, path)]

    def run_experiment_id(self, run_id: str) -> str:
        """The id of the experiment a run belongs to (what a link to the run's MLflow page needs)."""
        return str(self.client.get_run(run_id).info.experiment_id)

    def _model_record(self, rm: Any) -> RegisteredModelInfo:
        latest = self._latest_version(rm.name)
        count = len(self.client.search_model_versions(f"name='{_quote(rm.name)}'")) if latest else 0
        return RegisteredModelInfo(
            name=rm.name,
            latest_version=latest,
            versions=count,
            aliases={k: int(v) for k, v in (getattr(rm, "aliases", {}) or {}).items()},
            tags=dict(rm.tags or {}),
            description=rm.description or None,
            updated_at=_ts(rm.last_updated_timestamp),
        )

    def list_models(self) -> list[RegisteredModelInfo]:
        """All registered models, by name."""
        from mlflow.exceptions import MlflowException

        models: list[RegisteredModelInfo] = []
        token = None
        try:
            while True:
                page = self.client.search_registered_models(max_results=200, page_token=token)
                models.extend(self._model_record(rm) for rm in page)
                token = page.token
                if not token:
                    break
        except MlflowException as exc:
            raise RegistryError(f"cannot list models: {first_line(exc)}") from exc
        return sorted(models, key=lambda m: m.name)

    # ------------------------------------------------------------------ register

    def register(
        self,
        name: str,
        *,
        run_id: str | None = None,
        path: str | os.PathLike[str] | None = None,
        estimator: Any = None,
        tags: Mapping[str, Any] | None = None,
        assets: Mapping[str, str | os.PathLike[str]] | None = None,
        input_example: Any = None,
        artifact_path: str = "model",
        description: str | None = None,
    ) -> ModelVersionInfo:
        """Register a new version from an MLflow run, a saved MLflow model directory, or an estimator."""
        import mlflow
        from mlflow.exceptions import MlflowException

        given = [x for x in (run_id, path, estimator) if x is not None]
        if len(given) != 1:
            raise UsageError("register needs exactly one of a run id, a model directory or an estimator")
        if not name or not name.strip():
            raise UsageError("a model name is required")
        asset_files = {self._check_role(role): src for role, src in (assets or {}).items()}
        for src in asset_files.values():
            self._check_local_source(str(src))
        if path is not None:
            model_dir = self._check_model_dir(Path(path))
            with self.start_run(f"register-{name}", {"mlc.kind": "register", "mlc.model_name": name}) as run:
                try:
                    logged = mlflow.initialize_logged_model(
                        name=artifact_path, source_run_id=run.info.run_id, experiment_id=self.experiment_id
                    )
                    self.client.log_model_artifacts(logged.model_id, str(model_dir))
                    mlflow.finalize_logged_model(logged.model_id, mlflow.entities.LoggedModelStatus.READY)
                except MlflowException as exc:
                    raise RegistryError(f"cannot store the model from {model_dir}: {first_line(exc)}") from exc
            source = f"models:/{logged.model_id}"
        elif estimator is not None:
            source = self._log_estimator(name, estimator, input_example, artifact_path)
        else:
            assert run_id is not None
            source = self._run_model_source(run_id, artifact_path)
        try:
            # register_model prints "Successfully registered ..." on stderr; our caller reports instead
            with self.mlflow_context(), quiet_mlflow(), contextlib.redirect_stderr(io.StringIO()):
                mv = mlflow.register_model(source, name, await_registration_for=0)
        except MlflowException as exc:
            raise RegistryError(f"cannot register {name!r} from {source}: {first_line(exc)}") from exc
        ref = ModelRef(name=name, version=int(mv.version))
        if description:
            self.client.update_model_version(name, str(ref.version), description=description)
        if tags:
            self.set_tags(ref, tags)
        for role, src in asset_files.items():
            self.add_asset(ref, role, src)
        info = self.get_version(ref)
        if not info.flavors:
            with contextlib.suppress(Exception):
                self.client.delete_model_version(name, str(ref.version))
            raise RegistryError(f"cannot register {name!r}: the model at {source} is unreadable (no MLmodel)")
        from modelops_mlc.insight.audit import record

        record(self.settings, "model.register", str(ref), model_id=name, after={"source": source, "run_id": info.run_id})
        return info

    def _run_model_source(self, run_id: str, artifact_path: str) -> str:
        """The model a run logged: an MLflow 3 logged model of that run, else ``runs:/RUN/PATH``."""
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException as exc:
            if _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                raise NotFoundError(f"MLflow run {run_id!r} not found") from None
            raise RegistryError(f"cannot read MLflow run {run_id!r}: {first_line(exc)}") from exc
        try:
            logged = self.client.search_logged_models(
                experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
            )
        except MlflowException:
            logged = []
        named = [m for m in logged if m.name == artifact_path] or (logged if len(logged) == 1 else [])
        if named:
            return f"models:/{named[0].model_id}"
        try:
            files = {Path(f.path).name for f in self.client.list_artifacts(run_id, artifact_path)}
        except Exception:
            files = set()
        if "MLmodel" in files:
            return f"runs:/{run_id}/{artifact_path}"
        raise RegistryError(f"MLflow run {run_id!r} has no model at artifact path {artifact_path!r}")

    def _log_estimator(self, name: str, estimator: Any, input_example: Any, artifact_path: str) -> str:
        with self.start_run(f"register-{name}", {"mlc.kind": "register", "mlc.model_name": name}):
            info = log_sklearn_model(estimator, artifact_path, input_example)
        return info.model_uri

    @staticmethod
    def _check_model_dir(path: Path) -> Path:
        if not path.exists():
            raise UsageError(f"model directory not found: {path}")
        if not path.is_dir():
            raise RegistryError(f"not an MLflow model directory (not a directory): {path}")
        mlmodel = path / "MLmodel"
        if not mlmodel.is_file():
            raise RegistryError(f"not an MLflow model directory (no MLmodel file): {path}")
        try:
            from mlflow.models import Model

            model = Model.load(str(mlmodel))
        except Exception as exc:
            raise RegistryError(f"unreadable MLmodel file in {path}: {first_line(exc)}") from exc
        if not model.flavors:
            raise RegistryError(f"MLmodel in {path} declares no flavors")
        return path

    # ------------------------------------------------------------------ tags, aliases

    def set_tags(self, model_id: str | ModelRef, tags: Mapping[str, Any]) -> ModelVersionInfo:
        """Set version tags (bools become ``true``/``false``); a value of None deletes the tag."""
        ref = model_id if isinstance(model_id, ModelRef) else self.resolve(model_id)
        for key, value in tags.items():
            if not key or key.startswith(_HIDDEN_TAG_PREFIXES):
                raise UsageError(f"tag {key!r} is reserved or empty")
            if value is None:
                with contextlib.suppress(Exception):
                    self.client.delete_model_version_tag(ref.name, str(ref.version), key)
            else:
                self.client.set_model_version_tag(ref.name, str(ref.version), key, _tag_value(value))
        return self.get_version(ref)

    def set_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``alias`` at a version of ``name`` (the version must exist)."""
        self.move_aliases(name, {alias: version})

    def move_aliases(self, name: str, moves: Mapping[str, int | str]) -> dict[str, int]:
        """Set several aliases together: all targets are checked first, and on a failure half-way
        the aliases already moved are put back (MLflow has no multi-alias transaction)."""
        targets: dict[str, int] = {}
        for alias, version in moves.items():
            if not alias or "@" in alias or "/" in alias or str(alias).isdigit():
                raise UsageError(f"bad alias name {alias!r}")
            targets[alias] = self.resolve(f"{name}/{int(version)}").version
        before = self._aliases(name)
        moved: list[str] = []
        try:
            for alias, version in targets.items():
                self.client.set_registered_model_alias(name, alias, str(version))
                moved.append(alias)
        except Exception as exc:
            for alias in moved:
                with contextlib.suppress(Exception):
                    if alias in before:
                        self.client.set_registered_model_alias(name, alias, str(before[alias]))
                    else:
                        self.client.delete_registered_model_alias(name, alias)
            raise RegistryError(f"cannot move aliases of {name!r}: {first_line(exc)}") from exc
        return self._aliases(name)

    def delete_alias(self, name: str, alias: str) -> None:
        self.resolve(f"{name}@{alias}")
        self.client.delete_registered_model_alias(name, alias)

    # ------------------------------------------------------------------ assets

    @staticmethod
    def _check_role(role: str) -> str:
        role = (role or "").strip().upper()
        if not _ROLE_RE.match(role):
            raise UsageError(f"bad asset role {role!r}: use letters, digits and _ (e.g. TEST_DATA)")
        return role

    @staticmethod
    def _check_local_source(src: str) -> None:
        if _is_remote(src):
            return
        path = _local_path(src)
        if not path.exists():
            raise UsageError(f"file not found: {path}")
        if not path.is_file():
            raise UsageError(f"not a file: {path}")

    def _asset_run_id(self, ref: ModelRef, mv: Any) -> str:
        tags = mv.tags or {}
        if tags.get(ASSET_RUN_TAG):
            return tags[ASSET_RUN_TAG]
        if mv.run_id:
            return mv.run_id
        run = self.client.create_run(self.experiment_id, run_name=f"assets-{ref.name}-v{ref.version}",
                                     tags={"mlc.kind": "assets", "mlc.model_name": ref.name,
                                           "mlc.model_version": str(ref.version)})
        self.client.set_terminated(run.info.run_id)
        self.client.set_model_version_tag(ref.name, str(ref.version), ASSET_RUN_TAG, run.info.run_id)
        return run.info.run_id

    def add_asset(
        self, model_id: str | ModelRef, role: str, file_or_uri: str | os.PathLike[str], *, copy: bool | None = None
    ) -> AssetInfo:
        """Attach data to a version under ``role``. A local file is copied into the version's artifacts
        (``copy=False`` records its path instead); a remote URI (s3://, ...) is recorded as is.
        Either way the sha256 of a local file is recorded for lineage."""
        role = self._check_role(role)
        ref = model_id if isinstance(model_id, ModelRef) else self.resolve(model_id)
        src = str(file_or_uri)
        self._check_local_source(src)
        now = datetime.now(tz=timezone.utc)
        if _is_remote(src):
            asset = AssetInfo(uri=src, sha256=None, copied=False, added_at=now)
        else:
            path = _local_path(src).resolve()
            digest = sha256_file(path)
            size = path.stat().st_size
            if copy is False:
                asset = AssetInfo(uri=str(path), sha256=digest, copied=False, size=size, added_at=now)
            else:
                mv = self._mv(ref)
                run_id = self._asset_run_id(ref, mv)
                artifact_dir = f"mlc-assets/v{ref.version}/{role}"
                try:
                    self.client.log_artifact(run_id, str(path), artifact_dir)
                    base = self.client.get_run(run_id).info.artifact_uri.rstrip("/")
                except Exception as exc:
                    raise RegistryError(f"cannot store asset {role} of {ref}: {first_line(exc)}") from exc
                asset = AssetInfo(uri=f"{base}/{artifact_dir}/{path.name}", sha256=digest, copied=True, size=size,
                                  added_at=now)
        self.client.set_model_version_tag(ref.name, str(ref.version), ASSET_TAG_PREFIX + role,
                                          asset.model_dump_json(exclude_none=True))
        return asset

    def set_asset_record(self, model_id: str | ModelRef, role: str, asset: AssetInfo) -> None:
        """Record an asset as is (used to carry a parent's assets over to a trained version)."""
        ref = model_id if isinstance(model_id, ModelRef) else self.resolve(model_id)
        self.client.set_model_version_tag(ref.name, str(ref.version), ASSET_TAG_PREFIX + self._check_role(role),
                                          asset.model_dump_json(exclude_none=True))

    def asset_path(self, model_id: str | ModelRef | ModelVersionInfo, role: str, *, verify: bool = False) -> Path | None:
        """A local path to the asset's file (downloaded when remote), or None when the role is unset."""
        info = model_id if isinstance(model_id, ModelVersionInfo) else self.get_version(model_id)
        asset = info.assets.get(self._check_role(role))
        if asset is None:
            return None
        if _is_remote(asset.uri):
            import mlflow.artifacts

            dest = self.settings.home / "cache" / "assets" / info.name / str(info.version) / role
            dest.mkdir(parents=True, exist_ok=True)
            try:
                with self.mlflow_context():
                    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=asset.uri, dst_path=str(dest)))
            except Exception as exc:
                raise RegistryError(f"cannot download asset {role} of {info.model_id} from {asset.uri}: "
                                    f"{first_line(exc)}") from exc
        else:
            local = _local_path(asset.uri)
        if verify and asset.sha256 and local.is_file() and sha256_file(local) != asset.sha256:
            raise RegistryError(f"asset {role} of {info.model_id} changed since it was recorded: {local}")
        return local

    # ------------------------------------------------------------------ load, snapshot, results

    def load_pyfunc(self, model_id: str | ModelRef | ModelVersionInfo) -> Any:
        """The version as an MLflow pyfunc model.

        With the process's model cache on (:func:`set_model_cache_size`) a version loaded before
        is returned from it; pass the ``ModelVersionInfo`` at hand to spare the registry lookup
        that builds the cache key.
        """
        import mlflow.pyfunc

        if isinstance(model_id, ModelVersionInfo):
            ref = model_id.ref
            identity: tuple[Any, ...] | None = (model_id.source, model_id.created_at)
        else:
            ref = model_id if isinstance(model_id, ModelRef) else self.resolve(model_id)
            identity = None
        key = None
        if _model_cache_size:
            if identity is None:
                mv = self._mv(ref)
                identity = (mv.source, _ts(mv.creation_timestamp))
            key = (self.tracking_uri, ref.name, ref.version, *identity)
            with _model_cache_lock:
                if key in _model_cache:
                    _model_cache.move_to_end(key)
                    return _model_cache[key]
        try:
            with self.mlflow_context(), quiet_mlflow():
                model = mlflow.pyfunc.load_model(ref.uri)
        except Exception as exc:
            raise RegistryError(f"cannot load model {ref}: {first_line(exc)}") from exc
        if key is not None:
            with _model_cache_lock:
                if _model_cache_size:
                    _model_cache[key] = model
                    _model_cache.move_to_end(key)
                    while len(_model_cache) > _model_cache_size:
                        _model_cache.popitem(last=False)
        return model

    def load_sklearn(self, model_id: str | ModelRef) -> Any:
        """The version's scikit-learn object (RegistryError when it has no sklearn flavor)."""
        import mlflow.sklearn

        ref = model_id if isinstance(model_id, ModelRef) else self.resolve(model_id)
        try:
            with self.mlflow_context(), quiet_mlflow():
                return mlflow.sklearn.load_model(ref.uri)
        except Exception as exc:
            raise RegistryError(f"cannot load {ref} as a scikit-learn model: {first_line(exc)}") from exc

    def snapshot(
        self, name: str, version: int | str | None = None, tags: Mapping[str, Any] | None = None, *, new: bool = False
    ) -> ModelVersionInfo:
        """Mark a version as a snapshot (tag ``snapshot=true``, ``snapshot_at``) with extra tags.

        ``name`` may be any model id; ``version`` overrides it. With ``new=True`` a fresh version is
        created from the same source (and tags and assets) first, so a lifecycle gets its own object.
        Firing ``mlc.model-submitted`` is the caller's job.
        """
        base_name, _, _ = parse_model_id(name)
        ref = self.resolve(f"{base_name}/{int(version)}") if version is not None else self.resolve(name)
        if new:
            ref = self._copy_version(ref)
        marks: dict[str, Any] = {SNAPSHOT_TAG: True, "snapshot_at": datetime.now(tz=timezone.utc).isoformat()}
        marks.update(tags or {})
        return self.set_tags(ref, marks)

    def _copy_version(self, ref: ModelRef) -> ModelRef:
        from mlflow.exceptions import MlflowException

        mv = self._mv(ref)
        try:
            new = self.client.create_model_version(ref.name, mv.source, run_id=mv.run_id or None,
                                                   tags={k: v for k, v in (mv.tags or {}).items()
                                                         if k not in (TEST_RESULTS_TAG, SNAPSHOT_TAG, "snapshot_at")},
                                                   description=mv.description)
        except MlflowException as exc:
            raise RegistryError(f"cannot create a new version of {ref.name}: {first_line(exc)}") from exc
        new_ref = ModelRef(name=ref.name, version=int(new.version))
        self.client.set_model_version_tag(ref.name, str(new_ref.version), "mlc.copied_from", str(ref.version))
        return new_ref

    def record_test_results(self, model_id: str | ModelRef, results: Mapping[str, Any]) -> None:
        """Keep the latest test results on the version (tag ``mlc.test_results``, JSON)."""
        ref = model_id if isinstance(model_id, ModelRef) else self.resolve(model_id)
        text = json.dumps(json_safe(results))
        if len(text) > 4900:  # MLflow's tag value limit is 5000 characters
            slim = {k: v for k, v in results.items() if k in ("metrics", "run_id", "task_type", "at", "rows", "data")}
            text = json.dumps(json_safe(slim))[:4900]
        self.client.set_model_version_tag(ref.name, str(ref.version), TEST_RESULTS_TAG, text)

    def delete_model(self, name: str) -> None:
        self._raise_not_found(name)
        self.client.delete_registered_model(name)


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def package_requirements() -> list[str]:
    """Pinned requirements for a scikit-learn model, so MLflow skips its slow requirement inference."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in ("scikit-learn", "numpy", "pandas", "scipy", "cloudpickle"):
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            pass
    return reqs


def log_sklearn_model(estimator: Any, artifact_path: str, input_example: Any = None) -> Any:
    """Log a scikit-learn model into the active run (signature inferred from ``input_example``)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = None
    if input_example is not None:
        try:
            signature = infer_signature(input_example, estimator.predict(input_example))
        except Exception as exc:
            log.warning("cannot infer a signature: %s", first_line(exc))
    from mlflow.exceptions import MlflowException

    kwargs = dict(name=artifact_path, signature=signature, input_example=input_example,
                  pip_requirements=package_requirements())
    with quiet_mlflow():  # "Successfully registered model", schema hints
        try:
            return mlflow.sklearn.log_model(estimator, **kwargs)
        except MlflowException as exc:
            if "skops" not in str(exc):
                raise
            # skops (MLflow's safe default) cannot hold custom classes defined outside a module's top level
            log.info("skops cannot serialize %s, using cloudpickle", type(estimator).__name__)
            return mlflow.sklearn.log_model(estimator, serialization_format="cloudpickle", **kwargs)

"""The model registry on MLflow 3: snapshots (model versions), tags, aliases and data assets.

Model ids are accepted everywhere as ``name`` (latest version), ``name/version`` or ``name@alias``.

Version tags the lifecycle reads (all strings; booleans are ``true``/``false``):

    train, run_test, jira   flags of mlc-deploy-with-test
    TAG                     model service tag matched against runtimes
    dmn                     decision key of the test criteria (default mlc-test-criteria)
    target                  label column of TEST_DATA / TRAINING_DATA (default ``target``)
    task_type               classification | regression (inferred when absent)
    protected_attribute     column for demographic parity / equal opportunity differences
    pos_label               positive class for the bias metrics (default: the largest label)
    primary_metric          metric that decides champion vs challenger
    entrypoint              training function ``module:function``
    snapshot, snapshot_at   set by ``snapshot``; mlc.parent_version, mlc.train_run_id set by training

Assets live in hidden tags ``mlc.asset.<ROLE>`` (JSON: uri, sha256, copied, size) and the latest
test results in ``mlc.test_results``; :class:`ModelVersionInfo` exposes them as ``assets`` and
``test_results`` rather than as tags.
"""

from modelops_mlc.registry.client import Registry, parse_model_id, set_model_cache_size, sha256_file
from modelops_mlc.registry.types import AssetInfo, ModelRef, ModelVersionInfo, RegisteredModelInfo

__all__ = [
    "AssetInfo",
    "ModelRef",
    "ModelVersionInfo",
    "RegisteredModelInfo",
    "Registry",
    "parse_model_id",
    "set_model_cache_size",
    "sha256_file",
]

"""The per-process cache of loaded pyfunc models (on in the worker's pool processes)."""

from __future__ import annotations

import pytest

from modelops_mlc.registry.client import set_model_cache_size


@pytest.fixture
def model_cache():
    set_model_cache_size(2)
    yield
    set_model_cache_size(0)


def test_off_by_default(registry, breast_cancer) -> None:
    X, _, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2))
    assert registry.load_pyfunc("bc/1") is not registry.load_pyfunc("bc/1")


def test_cached_per_version_aliases_resolved_each_time(registry, breast_cancer, model_cache) -> None:
    from modelops_mlc.registry import Registry

    X, _, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2))
    registry.register("bc", estimator=model, input_example=X.head(2))
    registry.set_alias("bc", "champion", 1)
    first = registry.load_pyfunc("bc/1")
    assert Registry(registry.settings).load_pyfunc("bc@champion") is first  # a new Registry, same process
    assert registry.load_pyfunc(registry.get_version("bc/1")) is first
    registry.set_alias("bc", "champion", 2)
    second = registry.load_pyfunc("bc@champion")
    assert second is not first and second.metadata.model_id == registry.load_pyfunc("bc/2").metadata.model_id
    registry.register("bc", estimator=model, input_example=X.head(2))
    registry.load_pyfunc("bc/3")  # LRU of 2: bc/1 is evicted
    assert registry.load_pyfunc("bc/1") is not first


def test_deleted_and_registered_again_is_not_stale(registry, breast_cancer, model_cache) -> None:
    from sklearn.dummy import DummyClassifier

    X, y, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2))
    old = registry.load_pyfunc("bc/1")
    registry.delete_model("bc")
    registry.register("bc", estimator=DummyClassifier(strategy="constant", constant=0).fit(X, y),
                      input_example=X.head(2))
    new = registry.load_pyfunc("bc/1")
    assert new is not old and set(new.predict(X.head(20))) == {0}

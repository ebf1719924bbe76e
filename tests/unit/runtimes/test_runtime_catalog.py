"""The runtime catalog in the MLC store and runtime matching (sqlite store, no MLflow, no HTTP)."""

from __future__ import annotations

import datetime as dt

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.errors import NoRuntimeError, NotFoundError, RuntimeServiceError, UsageError
from modelops_mlc.runtimes import RuntimeCatalog, find_runtime
from modelops_mlc.runtimes.matching import rank_runtimes
from modelops_mlc.runtimes.models import DeploymentRow, RuntimeRow
from modelops_mlc.runtimes.catalog import Runtime


@pytest.fixture
def cfg(tmp_path) -> Settings:
    return Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/mlc.db", runtime_heartbeat_interval=0.2,
                    runtime_missed_heartbeats=3)


@pytest.fixture
def catalog(cfg) -> RuntimeCatalog:
    return RuntimeCatalog(cfg)


def test_add_list_get_remove(catalog):
    batch = catalog.add("batch-qa", {"stage": "QA", "tag": "credit"})
    assert batch.mode == "batch" and batch.status == "unknown" and batch.flavors == ["python_function"]
    online = catalog.add("web", {"stage": "PROD"}, ["sklearn"], ["http://127.0.0.1:9000/"])
    assert online.mode == "online" and online.endpoints == ["http://127.0.0.1:9000"]
    assert [r.name for r in catalog.list()] == ["batch-qa", "web"]
    assert catalog.get("web").flavors == ["sklearn"]
    with pytest.raises(UsageError, match="already exists"):
        catalog.add("web")
    assert catalog.add("web", {"stage": "QA"}, replace=True).tags == {"stage": "QA"}
    catalog.remove("web")
    with pytest.raises(NotFoundError):
        catalog.get("web")


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 201])
def test_bad_names_are_refused(catalog, name):
    with pytest.raises(UsageError, match="invalid runtime name"):
        catalog.add(name)


def test_bad_endpoint_is_refused(catalog):
    with pytest.raises(UsageError, match="invalid runtime endpoint"):
        catalog.add("x", endpoints=["localhost:80"])


def test_remove_with_active_deployments_needs_force(catalog):
    catalog.add("b", {"stage": "QA"})
    with catalog.store.session() as s:
        s.add(DeploymentRow(model_name="m", model_version="1", runtime="b", mode="batch", state="deployed"))
    with pytest.raises(RuntimeServiceError, match="active deployments"):
        catalog.remove("b")
    catalog.remove("b", force=True)
    with catalog.store.session() as s:
        assert s.query(DeploymentRow).one().state == "retired"


def test_missed_heartbeats_mark_unhealthy_and_a_heartbeat_heals(catalog):
    catalog.register("srv", {"stage": "QA"}, None, ["http://127.0.0.1:1"], heartbeat_interval=0.2, pid=1)
    assert catalog.get("srv").status == "healthy"
    with catalog.store.session() as s:
        row = s.query(RuntimeRow).filter_by(name="srv").one()
        row.last_heartbeat = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    rt = catalog.get("srv")
    assert rt.status == "unhealthy" and "missed heartbeats" in (rt.status_reason or "")
    catalog.heartbeat("srv")
    assert catalog.get("srv").status == "healthy"
    assert catalog.mark("srv", "unhealthy", "stopped").status_reason == "stopped"


def _rt(name: str, tags: dict[str, str], status: str = "healthy", flavors=("python_function",), endpoints=()) -> Runtime:
    return Runtime(name=name, tags=tags, flavors=list(flavors), endpoints=list(endpoints), status=status)


def test_ranking_prefers_more_tags_then_health_then_name():
    runtimes = [
        _rt("z-generic", {"stage": "QA"}),
        _rt("b-credit", {"stage": "QA", "tag": "credit"}, status="unknown"),
        _rt("a-credit", {"stage": "QA,PROD", "service": "credit,fraud"}, status="unknown"),
        _rt("c-credit", {"stage": "QA", "tag": "credit"}),
    ]
    eligible, refused = rank_runtimes(runtimes, "credit", "QA", ["python_function", "sklearn"])
    assert [e[0].name for e in eligible] == ["c-credit", "a-credit", "b-credit", "z-generic"]
    assert refused == {}


def test_refusal_reasons():
    runtimes = [
        _rt("prod", {"stage": "PROD", "tag": "credit"}),
        _rt("other", {"stage": "QA", "tag": "fraud"}),
        _rt("nostage", {"tag": "credit"}),
        _rt("h2o", {"stage": "QA"}, flavors=["h2o"]),
        _rt("sick", {"stage": "QA"}, status="unhealthy"),
    ]
    eligible, refused = rank_runtimes(runtimes, "credit", "QA", ["python_function", "sklearn"])
    assert eligible == []
    assert refused["prod"] == "serves stage=PROD, not QA"
    assert refused["other"] == "serves tag fraud, not credit"
    assert "no stage tag" in refused["nostage"]
    assert "runs flavors h2o" in refused["h2o"]
    assert refused["sick"].startswith("unhealthy")


def test_find_runtime_explains_and_raises_with_reasons(cfg, catalog):
    with pytest.raises(NoRuntimeError, match="no runtime is registered"):
        find_runtime(cfg, "credit", "QA", ["python_function"])
    catalog.add("batch-qa", {"stage": "QA", "tag": "credit"})
    catalog.add("web-prod", {"stage": "PROD", "tag": "credit"}, endpoints=["http://127.0.0.1:1"])
    match = find_runtime(cfg, "credit", "QA", ["python_function", "sklearn"])
    assert match.runtime.name == "batch-qa" and match.mode == "batch"
    assert "stage=QA" in match.explanation and "web-prod" in match.refused
    assert find_runtime(cfg, "credit", "PROD", ["python_function"]).mode == "online"
    with pytest.raises(NoRuntimeError) as info:
        find_runtime(cfg, "credit", "DEV", ["python_function"])
    assert set(info.value.reasons) == {"batch-qa", "web-prod"}
    assert "batch-qa: serves stage=QA, not DEV" in info.value.message
    assert "web-prod: serves stage=PROD, not DEV" in info.value.message


def test_share_scales_weights_and_keeps_the_sum():
    from modelops_mlc.runtimes.deployments import _share

    rows = [DeploymentRow(traffic_weight=w) for w in (90, 10)]
    _share(rows, 80)
    assert [r.traffic_weight for r in rows] == [72, 8]
    rows = [DeploymentRow(traffic_weight=w) for w in (1, 1, 1)]
    _share(rows, 100)
    assert sorted(r.traffic_weight for r in rows) == [33, 33, 34]
    rows = [DeploymentRow(traffic_weight=0)]
    _share(rows, 100)
    assert rows[0].traffic_weight == 100

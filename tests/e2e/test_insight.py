"""The read side on the real stack. A few life cycles run once for the module (a model trained,
tested, approved from the CLI, batch-deployed, scored, back-tested and monitored; a weak model
rejected by its criteria; a model whose deployment fails), then history, lineage, KPIs, the model
card, the report and the audit log are checked against what was done and against the engine's own
history, read straight from its REST API."""

from __future__ import annotations

import asyncio
import base64
import getpass
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelops_mlc.engine import EngineClient
from modelops_mlc.insight.facts import parse_time
from tests.conftest import free_port, mlc_command
from tests.e2e.conftest import StackHandle
from tests.support.artifacts import artifact_path
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

OS_USER = f"user:{getpass.getuser()}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mlc(stack: StackHandle, *args: str) -> Any:
    """The real CLI against the stack (no --user, no MLC_USER); JSON output parsed when it printed some."""
    env = {**os.environ, **stack.env, "COLUMNS": "200"}
    env.pop("MLC_USER", None)
    r = subprocess.run([*mlc_command(), *args], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"mlc {' '.join(args)}: {r.stderr}"
    return json.loads(r.stdout) if r.stdout.strip().startswith(("{", "[")) else r


def rest(client: EngineClient, path: str, **params: Any) -> Any:
    """The engine's own history, read without the SDK."""
    return httpx.get(f"{client.url}{path}", params=params, timeout=30).json()


def settled(client: EngineClient, name: str, count: int) -> list[Any]:
    """Wait until ``count`` instances of the model exist and none is running (failing on an incident)."""
    def done() -> list[Any] | None:
        found = client.instances(model_id=name)
        for inst in found:
            incidents = client.incidents(process_instance_id=inst.id)
            assert not incidents, f"incident in {inst.process_key}: {incidents[0].message}"
        return found if len(found) >= count and all(i.state != "ACTIVE" for i in found) else None

    return wait_for(done, timeout=300, what=f"{count} finished instance(s) of {name}")


def review_task(client: EngineClient, name: str) -> Any:
    def waiting() -> Any:
        for inst in client.instances(model_id=name, active_only=True):
            tasks = client.tasks(process_instance_id=inst.id)
            if tasks:
                return tasks[0]
        return None

    return wait_for(waiting, timeout=240, what=f"the review of {name}")


@pytest.fixture(scope="module")
def lives(stack: StackHandle, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from modelops_mlc.registry import Registry

    d = tmp_path_factory.mktemp("insight-data")
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    train, test = train_test_split(frame, test_size=0.4, random_state=5, stratify=frame["target"])
    paths = {k: d / f"{k}.csv" for k in ("train", "test", "flipped", "features")}
    train.to_csv(paths["train"], index=False)
    test.to_csv(paths["test"], index=False)
    test.assign(target=1 - test["target"]).to_csv(paths["flipped"], index=False)
    test.drop(columns=["target"]).to_csv(paths["features"], index=False)
    x, y = train.drop(columns=["target"]), train["target"]

    suffix = uuid.uuid4().hex[:6]
    good, weak, lost, waits = (f"ins-{kind}-{suffix}" for kind in ("good", "weak", "lost", "waits"))
    stage = f"BATCH{suffix.upper()}"
    mlc(stack, "runtime", "add", f"batch-{suffix}", "--tag", f"stage={stage}")
    registry = Registry(stack.settings)
    since = pd.Timestamp.now(tz="UTC").to_pydatetime()
    registry.register(good, estimator=make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y),
                      input_example=x.head(3), assets={"TEST_DATA": str(paths["test"]), "TRAINING_DATA": str(paths["train"])},
                      tags={"TAG": f"svc-{suffix}", "target": "target", "run_test": "true", "train": "true"})
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    for name, model, assets in ((weak, DummyClassifier(strategy="most_frequent").fit(x, y), {"TEST_DATA": str(paths["test"])}),
                                (lost, logistic, {"TEST_DATA": str(paths["test"])}),
                                (waits, logistic, {})):  # no test data: a ticket asks for it, the process waits
        registry.register(name, estimator=model, input_example=x.head(3), assets=assets,
                          tags={"TAG": f"svc-{name}", "target": "target", "run_test": "true"})

    with EngineClient(stack.settings) as client:
        for name, stage_of in ((good, stage), (weak, None), (lost, "NOWHERE"), (waits, None)):
            client.signal("mlc.model-submitted", {"MODEL_ID": name, "MODEL_VERSION": 1, "SUBMITTED_BY": "alice",
                                                  **({"MODEL_STAGE": stage_of} if stage_of else {})})
        for name in (good, lost):  # approved from the CLI without --user: the approver is the OS user
            task = review_task(client, name)
            mlc(stack, "tasks", "complete", task.id, "--var", "approved=true")
        wait_for(lambda: any(a.activity_id == "catch_test_ticket_updated" and a.end_time is None
                             for i in client.instances(model_id=waits, active_only=True)
                             for a in client.history_activities(i.id)), timeout=240, what=f"{waits} to wait on its ticket")
        [ticket] = mlc(stack, "ticket", "list", "--model-id", waits, "--json")
        mlc(stack, "ticket", "move", ticket["key"], "Rejected")  # the watcher passes it to the waiting process
        deployed = settled(client, good, 1)
        lost_instances = settled(client, lost, 1)
        weak_instances = settled(client, weak, 1)
        waits_instances = settled(client, waits, 1)

        out = d / "scores.csv"
        client.signal("mlc.deployed-batch-job", {"TAG": f"svc-{suffix}", "MODEL_STAGE": stage,
                                                 "INPUT_FILE": str(paths["features"]), "OUTPUT_FILE": str(out)})
        client.signal("mlc.run-back-test", {"MODEL_ID": good, "INPUT_FILE": str(paths["flipped"])})
        client.signal("mlc.monitor", {"MODEL_ID": good, "REFERENCE_DATA": str(paths["train"]),
                                      "CURRENT_DATA": str(paths["test"])})
        everything = settled(client, good, len(deployed) + 3)
    return {"good": good, "weak": weak, "lost": lost, "waits": waits, "ticket": ticket, "paths": paths, "scores": out,
            "since": since, "deployed": deployed, "instances": everything, "weak_instances": weak_instances,
            "lost_instances": lost_instances, "waits_instances": waits_instances, "registry": registry}


def _by_process(instances: list[Any], key: str) -> list[Any]:
    return [i for i in instances if i.process_key == key]


def test_history_covers_what_was_done_with_actors_and_links(stack: StackHandle, client: EngineClient, lives) -> None:
    good = lives["good"]
    events = mlc(stack, "history", good, "--json")
    kinds = {e["kind"] for e in events}
    assert {"version", "process", "step", "approval", "test", "deployment", "drift"} <= kinds
    assert all(e["actor"] for e in events), [e for e in events if not e["actor"]]
    assert [e["version"] for e in events if e["kind"] == "version"] == [1, 2]  # 2 is the trained one

    [approval] = [e for e in events if e["kind"] == "approval"]
    assert approval["actor"] == OS_USER and approval["details"]["approved"] is True
    assert approval["link"].endswith(f"#/process-instance/{approval['instance_id']}")

    [deploy] = _by_process(lives["instances"], "mlc-deploy-with-test")
    [process] = [e for e in events if e["kind"] == "process" and e["instance_id"] == deploy.id]
    engine_path = [a["activityId"] for a in rest(client, "/history/activity-instance", processInstanceId=deploy.id,
                                                 sortBy="startTime", sortOrder="asc")]
    assert process["details"]["path"] == [a for a in engine_path if a in process["details"]["path"]]
    assert {"task_train", "task_run_test", "task_review", "task_deploy", "end_deployed"} <= set(process["details"]["path"])

    [decided] = [e for e in events if e["instance_id"] == deploy.id and e["details"].get("decision")]
    [engine_decision] = rest(client, "/history/decision-instance", processInstanceId=deploy.id, includeOutputs="true")
    assert decided["details"]["decision"] == engine_decision["decisionDefinitionKey"]
    assert decided["details"]["outputs"] == {o["variableName"]: o["value"] for o in engine_decision["outputs"]}
    assert decided["details"]["outputs"]["passed"] is True

    variables = client.variables(deploy.id)
    tests = {e["details"]["run_id"]: e for e in events if e["kind"] == "test"}
    deploy_test = tests[variables["TEST_RUN_ID"]]
    assert deploy_test["details"]["verdict"]["passed"] is True and deploy_test["link"] == f"runs:/{variables['TEST_RUN_ID']}"
    assert deploy_test["details"]["metrics"] == lives["registry"].client.get_run(variables["TEST_RUN_ID"]).data.metrics
    assert deploy_test["actor"].startswith("worker:")
    [back_test] = _by_process(lives["instances"], "mlc-run-back-test")
    assert tests[client.variables(back_test.id)["TEST_RUN_ID"]]["details"]["verdict"]["passed"] is False

    deployments = [e for e in events if e["kind"] == "deployment"]
    assert {e["details"]["action"] for e in deployments} >= {"deploy", "deployed"}
    assert all(e["instance_id"] == deploy.id for e in deployments)
    [deployer] = {e["actor"] for e in deployments}  # the deploy task's worker, named as the audit log names it
    assert deployer.startswith("worker:")
    [drift] = [e for e in events if e["kind"] == "drift"]
    assert drift["details"]["features"]  # PSI per feature

    weak_events = mlc(stack, "timeline", lives["weak"], "--json")  # the earlier name, the same command
    [ticket] = [e for e in weak_events if e["kind"] == "ticket"]
    assert ticket["instance_id"] in {i.id for i in lives["weak_instances"]} and ticket["actor"]


def test_lineage_follows_recorded_facts(stack: StackHandle, client: EngineClient, lives) -> None:
    good = lives["good"]
    root = mlc(stack, "lineage", f"{good}/2", "--json")
    assert root["kind"] == "training_data" and root["facts"]["sha256"] == sha256(lives["paths"]["train"])
    [run] = root["children"]
    version = lives["registry"].get_version(f"{good}/2")
    assert run["kind"] == "training_run" and run["id"] == version.tags["mlc.train_run_id"]
    [ver] = run["children"]
    assert ver["kind"] == "version" and ver["id"] == f"{good}/2"

    [deploy] = _by_process(lives["instances"], "mlc-deploy-with-test")
    [back_test] = _by_process(lives["instances"], "mlc-run-back-test")
    variables = client.variables(deploy.id)
    test_runs = {n["id"]: n for n in ver["children"] if n["kind"] == "test_run"}
    registry = lives["registry"]
    recorded = registry.client.search_runs([registry.experiment_id], filter_string=(
        f"tags.`mlc.model_name` = '{good}' and tags.`mlc.kind` = 'test' and tags.`mlc.model_version` = '2'"))
    assert set(test_runs) == {r.info.run_id for r in recorded}  # the monitor's performance check tests too
    assert {variables["TEST_RUN_ID"], client.variables(back_test.id)["TEST_RUN_ID"]} <= set(test_runs)
    deploy_test = test_runs[variables["TEST_RUN_ID"]]
    assert deploy_test["facts"]["data_sha256"] == sha256(lives["paths"]["test"])
    [dep] = deploy_test["children"]
    assert dep["kind"] == "deployment" and dep["id"] == str(variables["DEPLOYMENT_ID"])
    assert deploy.id in dep["because"]
    [output] = dep["children"]
    assert output["kind"] == "scoring_output" and output["facts"]["sha256"] == sha256(lives["scores"])
    assert all(n["because"] for n in (run, ver, deploy_test, dep, output))

    text = mlc(stack, "lineage", f"{good}/2").stdout
    assert f"{good}/2" in text and sha256(lives["scores"])[:12] in text


def test_kpis_equal_the_engine_history(stack: StackHandle, client: EngineClient, lives) -> None:
    good = lives["good"]
    kpis = mlc(stack, "kpi", "--model-id", good, "--json")
    [deploy] = _by_process(lives["instances"], "mlc-deploy-with-test")
    # the snapshot's first instance: the router, when a process called deploy-with-test (same business key)
    first = min((i for i in lives["deployed"] if i.business_key == deploy.business_key), key=lambda i: i.start_time)
    [end] = rest(client, "/history/activity-instance", processInstanceId=deploy.id, activityId="end_deployed")
    expected = (parse_time(end["endTime"]) - parse_time(first.start_time)).total_seconds()
    [sample] = kpis["time_to_deployment"]["samples"]
    assert sample["seconds"] == pytest.approx(expected, abs=0.001)
    assert kpis["time_to_deployment"]["median_s"] == kpis["time_to_deployment"]["p90_s"] == sample["seconds"]

    [task] = rest(client, "/history/task", processInstanceId=deploy.id, taskDefinitionKey="task_review")
    waited = (parse_time(task["endTime"]) - parse_time(task["startTime"])).total_seconds()
    assert kpis["approval_wait"]["task_review"]["samples"][0]["seconds"] == pytest.approx(waited, abs=0.001)

    assert (kpis["tests"], kpis["tests_passed"]) == (2, 1)  # the deploy test passed, the back test failed
    assert kpis["test_pass_rate"] == 0.5
    assert (kpis["deployments"], kpis["rollbacks"], kpis["incidents"], kpis["open_incidents"]) == (1, 0, 0, 0)
    assert kpis["last_back_test_failed"] == [good] and kpis["unmonitored"] == []

    overall = mlc(stack, "kpi", "--since", lives["since"].isoformat(), "--json")
    assert {good, lives["weak"], lives["lost"]} <= set(overall["models"])
    assert lives["weak"] in overall["unmonitored"] and good not in overall["unmonitored"]
    from modelops_mlc.insight.kpi import compute_kpis

    weak = compute_kpis(client, lives["registry"], model_id=lives["weak"])
    assert (weak.tests, weak.tests_passed, weak.deployments, weak.time_to_deployment.count) == (1, 0, 0, 0)

    waits = compute_kpis(client, lives["registry"], model_id=lives["waits"])
    [sample] = waits.ticket_wait["catch_test_ticket_updated"].samples
    [caught] = [a for i in lives["waits_instances"] for a in rest(client, "/history/activity-instance",
                processInstanceId=i.id, activityId="catch_test_ticket_updated")]
    assert sample.ticket == f"local:{lives['ticket']['key']}" and sample.instance_id == caught["processInstanceId"]
    assert sample.seconds == pytest.approx((parse_time(caught["endTime"]) - parse_time(caught["startTime"])).total_seconds(),
                                           abs=0.001)


def test_model_card_holds_the_real_metrics_and_is_kept_with_the_version(stack: StackHandle, lives, tmp_path: Path) -> None:
    from modelops_mlc.insight.card import CARD_TAG, PLACEHOLDER

    good = lives["good"]
    out = tmp_path / "card.md"
    mlc(stack, "model", "card", f"{good}/2", "--out", str(out))
    card = out.read_text()
    version = lives["registry"].get_version(f"{good}/2")
    for section in ("## Model details", "## Intended use", "## Metrics", "## Training data",
                    "## Ethical considerations", "## Caveats and recommendations"):
        assert section in card
    for metric, value in version.test_results["metrics"].items():
        assert f"| {metric} | {value:.4g} |" in card
    assert sha256(lives["paths"]["train"]) in card
    assert card.count(PLACEHOLDER.split("{")[0]) >= 5
    uri = version.tags[CARD_TAG]
    assert uri.startswith("file://") and uri.endswith(".md")
    from urllib.parse import unquote, urlparse

    assert Path(unquote(urlparse(uri).path)).read_text() == card


class Page:
    """A page in headless Chromium, driven over the DevTools protocol: console errors, exceptions,
    a script evaluated in the page and a screenshot."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.next_id, self.problems = ws, 0, []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("method") == "Runtime.exceptionThrown":
                self.problems.append(msg["params"]["exceptionDetails"].get("text"))
            elif msg.get("method") == "Runtime.consoleAPICalled" and msg["params"]["type"] in ("error", "assert"):
                self.problems.append(" ".join(str(a.get("value")) for a in msg["params"]["args"]))
            elif msg.get("method") == "Log.entryAdded" and msg["params"]["entry"]["level"] == "error":
                self.problems.append(msg["params"]["entry"]["text"])
            elif msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]


async def open_in_chromium(chromium: str, url: str, profile: Path, screenshot: Path) -> dict[str, Any]:
    import aiohttp

    port = free_port()
    browser = await asyncio.create_subprocess_exec(
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
        f"--remote-debugging-port={port}", "--window-size=1400,2400", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                        targets = [t for t in await r.json() if t["type"] == "page"]
                        if targets:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            async with http.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                for domain in ("Runtime", "Log", "Page"):
                    await page.call(f"{domain}.enable")
                await page.call("Page.navigate", url=url)
                check = ("document.readyState === 'complete' && "
                         "[...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('svg.main-svg'))")
                for _ in range(300):
                    if (await page.call("Runtime.evaluate", expression=check))["result"]["value"]:
                        break
                    await asyncio.sleep(0.1)
                found = (await page.call("Runtime.evaluate", returnByValue=True, expression=(
                    "({plots: document.querySelectorAll('.js-plotly-plot').length,"
                    " drawn: [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('svg.main-svg')).length,"
                    " text: document.body.innerText,"
                    " remote: [...document.querySelectorAll('script[src], link[href]')].map(e => e.src || e.href)})")))
                shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                return {**found["result"]["value"], "problems": page.problems}
    finally:
        browser.kill()
        await browser.wait()


def test_report_renders_in_headless_chromium(stack: StackHandle, lives, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("the Debian package chromium is not installed (.ci/run installs it)")
    good = lives["good"]
    result = mlc(stack, "report", "--model-id", good, "--out", str(tmp_path / "report"), "--json")
    page = Path(result["path"])
    assert result["plots"] == 3  # life cycle, metric trend, drift trend

    kept = artifact_path("report/report.html")
    shutil.copyfile(page, kept)
    screenshot = artifact_path("report/report.png")
    seen = asyncio.run(open_in_chromium(chromium, page.as_uri(), tmp_path / "profile", screenshot))
    assert seen["problems"] == []
    assert seen["plots"] == seen["drawn"] == 3
    assert seen["remote"] == []
    assert "snapshot to deployment, median (s)" in seen["text"] and good in seen["text"]
    assert screenshot.stat().st_size > 10_000  # kept with the page as the test's artifacts (tests/support/artifacts.py)


def test_audit_log_has_the_changes_and_not_the_failed_one(stack: StackHandle, client: EngineClient, lives) -> None:
    good, lost = lives["good"], lives["lost"]
    rows = mlc(stack, "audit", "--model-id", good, "--json")
    [deploy] = _by_process(lives["instances"], "mlc-deploy-with-test")
    registered = [r for r in rows if r["action"] == "model.register"]
    assert [r["target"] for r in registered] == [f"{good}/1", f"{good}/2"]
    assert registered[1]["actor"].startswith("worker:")  # the trained version, registered by the worker
    [created] = [r for r in rows if r["action"] == "deployment.create"]
    assert created["actor"].startswith("worker:") and created["process_instance_id"] == deploy.id
    assert created["after"]["model_version"] == "2"
    states = [r["after"].get("state") for r in rows if r["target_kind"] == "deployment" and r["target"] == created["target"]]
    assert [s for s in states if s][-1] == "deployed"
    assert any(r["action"] == "model.tag" and "mlc.test_results" in r["after"] for r in rows)

    # the deployment of `lost` was refused (no runtime for stage NOWHERE): no row claims it
    assert any(client.variables(i.id).get("MLC_ERROR_CODE") == "MLC_NO_RUNTIME" for i in lives["lost_instances"])
    assert not [r for r in mlc(stack, "audit", "--model-id", lost, "--json") if r["target_kind"] == "deployment"]
    r = subprocess.run([*mlc_command(), "model", "tag", f"{good}/99", "x=y"], capture_output=True, text=True,
                       env={**os.environ, **stack.env})
    assert r.returncode != 0
    assert not [x for x in mlc(stack, "audit", "--model-id", good, "--json") if x["target"] == f"{good}/99"]

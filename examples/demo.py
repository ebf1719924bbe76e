"""The modelops-mlc story on one machine, told with the commands a user would type.

`make demo` runs this: it brings the stack up (`mlc up`), trains a scikit-learn model on a data
set scikit-learn ships, registers it with its test data, submits it, lets the deploy-with-test
process test it, approves the review from the CLI, calls the deployed model, back-tests it twice
(one pass, one deliberately failing case that opens a ticket), runs a batch scoring job and prints
the model's timeline. State lives in $MLC_HOME (./.mlc with make); `make down` stops the stack.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.rule import Rule

console = Console()
ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("MLC_HOME", ROOT / ".mlc"))
WORK = HOME / "demo"
MODEL = os.environ.get("MLC_DEMO_MODEL", f"cancer-{time.strftime('%H%M%S')}")
SERVICE_TAG = "cancer"
MLC = [str(Path(sys.executable).parent / "mlc")]


class DemoFailed(Exception):
    pass


def chapter(title: str, text: str) -> None:
    console.print()
    console.print(Rule(f"[bold]{title}"))
    console.print(text, style="dim")


def mlc(*args: str, capture: bool = False, check: bool = True) -> str:
    """Run an `mlc` command the way a user would, showing it first."""
    console.print(f"[bold cyan]$ mlc {' '.join(shlex.quote(a) for a in args)}[/]")
    proc = subprocess.run([*MLC, *args], text=True, capture_output=capture, env={**os.environ, "COLUMNS": "140"})
    if capture and proc.stderr.strip():
        console.print(proc.stderr.rstrip(), style="dim", markup=False, highlight=False)
    if check and proc.returncode != 0:
        raise DemoFailed(f"`mlc {' '.join(args)}` exited {proc.returncode}")
    return proc.stdout if capture else ""


def mlc_json(*args: str) -> Any:
    return json.loads(mlc(*args, "--json", capture=True))


def wait_for(what: str, predicate, timeout: float = 240) -> Any:
    with console.status(f"waiting for {what}…"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(1)
    raise DemoFailed(f"timed out waiting for {what}; see `mlc status`, `mlc incidents` and {HOME}/logs")


def end_event(instance_id: str) -> str | None:
    """The end event an instance reached, from the engine's history."""
    from modelops_mlc.config import load_settings
    from modelops_mlc.engine import EngineClient

    with EngineClient(load_settings()) as client:
        ends = [a.activity_id for a in client.history_activities(instance_id) if a.activity_type.endswith("EndEvent")]
    return ends[-1] if ends else None


def newest_instance(process: str, after: set[str]) -> dict | None:
    rows = json.loads(subprocess.run([*MLC, "instances", "--model-id", MODEL, "--process", process, "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    fresh = [r for r in rows if r["id"] not in after]
    return fresh[0] if fresh else None


def known_instances() -> set[str]:
    rows = json.loads(subprocess.run([*MLC, "instances", "--model-id", MODEL, "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    return {r["id"] for r in rows}


def finished(process: str, before: set[str]) -> dict:
    def done() -> dict | None:
        inst = newest_instance(process, before)
        return inst if inst and inst["state"] != "ACTIVE" else None

    inst = wait_for(f"{process} to finish", done)
    inst["end"] = end_event(inst["id"])
    console.print(f"  {process} ended at [bold]{inst['end']}[/] ({inst['state']})")
    return inst


def prepare_data() -> dict[str, Path]:
    """Breast cancer data (shipped with scikit-learn): train/test split, new labeled data, a bad batch."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    WORK.mkdir(parents=True, exist_ok=True)
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    train, rest = train_test_split(frame, test_size=0.5, random_state=7, stratify=frame["target"])
    test, new = train_test_split(rest, test_size=0.5, random_state=7, stratify=rest["target"])
    files = {
        "train": WORK / "train.csv", "test": WORK / "test.csv", "new": WORK / "new_labeled.csv",
        "flipped": WORK / "mislabeled.csv", "batch": WORK / "batch_input.csv", "scores": WORK / "batch_scores.csv",
    }
    train.to_csv(files["train"], index=False)
    test.to_csv(files["test"], index=False)
    new.to_csv(files["new"], index=False)
    bad = new.copy()
    bad["target"] = 1 - bad["target"]  # a deliberately failing back test: labels flipped upstream
    bad.to_csv(files["flipped"], index=False)
    pd.concat([test, new]).drop(columns=["target"]).to_csv(files["batch"], index=False)
    return files


def train_model(files: dict[str, Path]) -> Path:
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = pd.read_csv(files["train"])
    x, y = train.drop(columns=["target"]), train["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    out = WORK / f"model-{MODEL}"
    mlflow.sklearn.save_model(model, out, signature=infer_signature(x, model.predict(x)), input_example=x.head(3))
    console.print(f"  trained {type(model[-1]).__name__} on {len(x)} rows → {out}")
    return out


def main() -> int:
    console.print(Panel.fit(
        "[bold]modelops-mlc demo[/]\nA model's life cycle as BPMN processes on a stock Camunda 7 engine,\n"
        f"with MLflow as the registry. Model name: [bold]{MODEL}[/]   State: {HOME}", border_style="cyan"))

    chapter("1. The stack", "Engine (Camunda 7.24), MLC processes from bpmn/, a worker, a local runtime "
            "serving stages QA and PROD, and the ticket watcher.")
    mlc("up")

    chapter("2. Train and register", "A logistic regression on the breast cancer data set that scikit-learn "
            "ships, registered in MLflow with its test data as an asset.")
    files = prepare_data()
    model_dir = train_model(files)
    mlc("model", "register", MODEL, "--path", str(model_dir), "--tag", f"TAG={SERVICE_TAG}", "--tag", "target=target",
        "--asset", f"TEST_DATA={files['test']}")

    chapter("3. Submit a snapshot", "Marking version 1 as a snapshot with run_test=true fires "
            "mlc.model-submitted: mlc-productionize asks the decision mlc-process-selection which process "
            "this model takes (deploy-with-test: it has no low-risk tags), scans the model and calls it.")
    before = known_instances()
    mlc("model", "snapshot", MODEL, "--version", "1", "--tag", "run_test=true")

    chapter("4. Test, decide, review", "The worker runs the metrics test; the engine evaluates the DMN "
            "mlc-test-criteria; then the process waits for a reviewer in group mlc-reviewers.")

    def review_task() -> dict | None:
        inst = newest_instance("mlc-deploy-with-test", before)
        if inst is None:
            return None
        if inst["state"] != "ACTIVE":
            raise DemoFailed(f"deploy-with-test ended early at {end_event(inst['id'])}; see `mlc ticket list`")
        tasks = json.loads(subprocess.run([*MLC, "tasks", "--instance", inst["id"], "--json"],
                                          capture_output=True, text=True, check=True).stdout)
        return tasks[0] if tasks else None

    task = wait_for("the review task", review_task)
    mlc("model", "show", MODEL)
    mlc("tasks", "--group", "mlc-reviewers")
    mlc("tasks", "complete", task["id"], "--var", "approved=true", "--var", "review_comment=metrics look good",
        "--user", "demo")

    chapter("5. Deployed online", "The deploy worker found the compatible runtime (stage QA, it has an "
            "endpoint, so online), loaded the version and passed a smoke request.")
    inst = finished("mlc-deploy-with-test", before)
    if inst["end"] != "end_deployed":
        raise DemoFailed(f"expected end_deployed, got {inst['end']}")
    mlc("deployment", "list", "--model", MODEL, check=False)
    import httpx
    import pandas as pd

    rows = pd.read_csv(files["new"]).drop(columns=["target"]).head(3)
    endpoint = [r for r in mlc_json("runtime", "list") if r["name"] == "local"][0]["endpoints"][0]
    payload = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
    console.print(f"[bold cyan]$ curl -X POST {endpoint}/invocations?model={MODEL} -d '{{\"dataframe_split\": …3 rows…}}'[/]")
    answer = httpx.post(f"{endpoint}/invocations", params={"model": MODEL}, json=payload, timeout=30).json()
    console.print(f"  predictions: {answer}")

    chapter("6. Back tests", "New labeled data arrives: one back test passes (a notification), one with "
            "mislabeled data fails and opens a ticket.")
    before = known_instances()
    mlc("signal", "run-back-test", "--model-id", MODEL, "--var", f"INPUT_FILE={files['new']}")
    passed = finished("mlc-run-back-test", before)
    before = known_instances()
    mlc("signal", "run-back-test", "--model-id", MODEL, "--var", f"INPUT_FILE={files['flipped']}")
    failed = finished("mlc-run-back-test", before)
    if passed["end"] != "end_passed" or failed["end"] != "end_failed":
        raise DemoFailed(f"back tests ended at {passed['end']} and {failed['end']}")
    mlc("ticket", "list", "--model-id", MODEL)
    mlc("alerts", "--model-id", MODEL)

    chapter("7. A batch job", "A batch runtime (no endpoints) gets the model as a batch deployment; the "
            "run-batch-job process finds it by its service tag and scores a file in chunks.")
    mlc("runtime", "add", "batch", "--tag", "stage=BATCH")
    mlc("deployment", "create", f"{MODEL}/1", "--stage", "BATCH")
    before = known_instances()
    mlc("signal", "deployed-batch-job", "--var", f"TAG={SERVICE_TAG}", "--var", "MODEL_STAGE=BATCH",
        "--var", f"INPUT_FILE={files['batch']}", "--var", f"OUTPUT_FILE={files['scores']}", "--var", f"MODEL_ID={MODEL}")
    scored = finished("mlc-run-batch-job", before)
    if scored["end"] != "end_scored":
        raise DemoFailed(f"batch job ended at {scored['end']}")
    console.print(f"  {sum(1 for _ in files['scores'].open()) - 1} predictions written to {files['scores']}")

    chapter("8. The model's timeline", "Every step of every process, from the engine's history.")
    mlc("timeline", MODEL)

    console.print()
    console.print(Panel.fit(
        "[green bold]Done.[/] Cockpit: http://127.0.0.1:8080/camunda/app/ (demo/demo)\n"
        "Try: mlc status · mlc instances · mlc ticket list · mlc timeline " + MODEL + "\nStop everything: make down",
        border_style="green"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DemoFailed as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        sys.exit(1)

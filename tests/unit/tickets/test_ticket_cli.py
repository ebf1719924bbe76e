"""`mlc ticket` and `mlc alerts` end to end: the real CLI in a subprocess on a throwaway store."""

from __future__ import annotations

import json

from modelops_mlc.config import Settings
from modelops_mlc.tickets import TicketContext, get_ticket_system
from modelops_mlc.tickets.notifications import notify


def _seed(settings: Settings) -> None:
    system = get_ticket_system(settings, "local")
    system.create("churn v3 rejected", "The test failed.", ["rejection"],
                  TicketContext(model_id="churn", model_version="3", metrics={"accuracy": 0.71},
                                process_instance_id="pi-1"))
    system.create("fraud v1 error", "", ["error"], TicketContext(model_id="fraud", model_version="1"))


def test_local_tickets_through_the_cli(settings: Settings, run_mlc) -> None:
    _seed(settings)
    listed = run_mlc("ticket", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [t["key"] for t in json.loads(listed.stdout)] == ["MLC-2", "MLC-1"]
    table = run_mlc("ticket", "list", "--model-id", "churn")
    assert "MLC-1" in table.stdout and "MLC-2" not in table.stdout

    moved = run_mlc("ticket", "move", "MLC-1", "done", "--comment", "data fixed, retest")
    assert moved.returncode == 0, moved.stderr
    assert "MLC-1 is now Done" in moved.stderr

    shown = run_mlc("ticket", "show", "MLC-1")
    assert shown.returncode == 0
    for text in ["Done", "Model: churn version 3", "- accuracy: 0.71", "Open -> Done", "data fixed, retest",
                 "/camunda/app/cockpit/default/#/process-instance/pi-1"]:
        assert text in shown.stdout
    as_json = json.loads(run_mlc("ticket", "show", "MLC-1", "--json").stdout)
    assert as_json["state"] == "Done" and as_json["history"][-1]["text"] == "data fixed, retest"

    done = json.loads(run_mlc("ticket", "list", "--state", "Done", "--json").stdout)
    assert [t["key"] for t in done] == ["MLC-1"]
    assert run_mlc("ticket", "comment", "MLC-2", "looking").returncode == 0


def test_bad_input_is_one_line_and_non_zero(settings: Settings, run_mlc) -> None:
    _seed(settings)
    for args, code in [
        (("ticket", "move", "MLC-1", "finished"), 2),
        (("ticket", "show", "MLC-42"), 4),
        (("ticket", "list", "--state", "whatever"), 2),
        (("ticket", "list", "--system", "trello"), 2),
        (("alerts", "--since", "last tuesday"), 2),
        (("ticket", "list", "--system", "jira"), 2),  # not configured
    ]:
        result = run_mlc(*args)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith("error:") and "Traceback" not in result.stderr


def test_alerts(settings: Settings, run_mlc) -> None:
    notify(settings, "info", "test passed", model_id="churn", process_instance_id="pi-1")
    notify(settings, "error", "deploy failed", model_id="fraud")
    rows = json.loads(run_mlc("alerts", "--json").stdout)
    assert [r["message"] for r in rows] == ["deploy failed", "test passed"]
    rows = json.loads(run_mlc("alerts", "--model-id", "churn", "--since", "1h", "--json").stdout)
    assert [(r["level"], r["process_instance_id"]) for r in rows] == [("info", "pi-1")]
    table = run_mlc("alerts")
    assert "deploy failed" in table.stdout and table.returncode == 0
    empty = run_mlc("alerts", "--since", "2999-01-01")
    assert empty.returncode == 0 and "no notifications" in empty.stderr


def test_jira_through_the_cli(jira_env, fake_jira, run_mlc) -> None:
    get_ticket_system(Settings(), "jira").create("a", "", [], TicketContext(model_id="churn"))
    listed = json.loads(run_mlc("ticket", "list", "--system", "jira", "--json", env=jira_env).stdout)
    assert [t["key"] for t in listed] == ["OPS-1"]
    moved = run_mlc("ticket", "move", "OPS-1", "Rejected", "--comment", "not good enough", env=jira_env)
    assert moved.returncode == 0, moved.stderr
    assert fake_jira.issues["OPS-1"]["fields"]["status"]["name"] == "Rejected"
    assert json.loads(run_mlc("ticket", "show", "OPS-1", "--json", env=jira_env).stdout)["state"] == "Rejected"

"""`mlc tasks complete` on the review of mlc-deploy-with-test: the approver is recorded (the login
name when no --user is given), and under separation of duties the submitter is refused with one
line while the task stays as it was."""

from __future__ import annotations

import getpass
import time
import uuid

KEY = "mlc-deploy-with-test"


def review_task(driver, token: str) -> dict:
    driver.run("get-model", token, {"TRAIN": False, "RUN_TEST": False, "JIRA": False, "SERVICENOW": False})
    return driver.user_task(token)


def start(driver, **variables) -> str:
    model = f"gov-cli-{uuid.uuid4().hex[:8]}"
    return driver.start(KEY, {"MODEL_ID": model, "MODEL_VERSION": 1, **variables})


def test_the_submitter_is_refused_and_another_reviewer_approves(driver, run_mlc):
    token = start(driver, SUBMITTED_BY="alice", SEPARATION_OF_DUTIES=True)
    task = review_task(driver, token)

    r = run_mlc("tasks", "complete", task["id"], "--var", "approved=true", "--user", "alice")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "Separation of duties: alice submitted" in r.stderr and "cannot approve it" in r.stderr
    assert driver.http.get(f"/task/{task['id']}").json()["assignee"] is None  # not even claimed
    assert "approved" not in driver.variables(token)

    r = run_mlc("tasks", "complete", task["id"], "--var", "approved=true", "--user", "bob")
    assert r.returncode == 0, r.stderr
    assert driver.variables(token)["APPROVED_BY"] == "bob"
    assert driver.fetch("deploy", token)["vars"]["approved"] is True


def test_the_approver_is_the_login_name_without_user(driver, run_mlc):
    token = start(driver)
    task = review_task(driver, token)
    r = run_mlc("tasks", "complete", task["id"], "--var", "approved=false")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 20
    while "APPROVED_BY" not in driver.variables(token) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert driver.variables(token)["APPROVED_BY"] == getpass.getuser()


def test_a_task_claimed_by_someone_else_is_not_completed_in_their_name(driver, run_mlc):
    token = start(driver)
    task = review_task(driver, token)
    assert driver.http.post(f"/task/{task['id']}/claim", json={"userId": "dave"}).status_code == 204
    r = run_mlc("tasks", "complete", task["id"], "--var", "approved=true", "--user", "erin")
    assert r.returncode != 0 and "claimed by dave" in r.stderr and "Traceback" not in r.stderr
    assert driver.http.get(f"/task/{task['id']}").json()["assignee"] == "dave"
    assert driver.http.delete(f"/process-instance/{driver.instance(token)}").status_code == 204

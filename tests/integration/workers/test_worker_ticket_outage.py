"""A ticket system that is down: create-ticket retries, ends in an incident, and recovers with
`mlc incidents --retry` once Jira answers again — one ticket, no secret in the variables."""

from __future__ import annotations

import time
from typing import Any

from tests.unit.tickets.fake_saas import FakeJira

JIRA_TOKEN = "jira-api-token-do-not-leak"


def _wait_for(predicate: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_jira_down_becomes_an_incident_and_retry_recovers(start_worker, instances, wt_client, wt_cli) -> None:
    jira = FakeJira(user="bot@example.com", secret=JIRA_TOKEN).start()
    jira.down_status = 503
    try:
        env = {"MLC_JIRA_URL": jira.url, "MLC_JIRA_PROJECT": "OPS", "MLC_JIRA_USER": "bot@example.com",
               "MLC_JIRA_TOKEN": JIRA_TOKEN}
        worker = start_worker("--topic", "create-ticket", "--retries", "2", "--retry-backoff", "100",
                              "--long-poll", "1000", env=env)
        pi = instances.start("wt-create-ticket", {
            "TICKET_KIND": "rejection", "TICKET_REASON": "f1 below 0.7", "TICKET_SYSTEM": "jira",
            "MODEL_ID": "wt-outage", "MODEL_VERSION": 1,
        })
        incident = _wait_for(lambda: wt_client.incidents(process_instance_id=pi), what="the incident")[0]
        assert incident.activity_id == "Task_create_ticket"
        assert "503" in (incident.message or "") or "unavailable" in (incident.message or "").lower()
        assert not jira.issues  # nothing was opened while Jira was down

        jira.down_status = None
        retried = wt_cli("incidents", "--retry", incident.id)
        assert retried.returncode == 0, retried.stderr
        assert instances.wait_ended(pi, timeout=60) == "COMPLETED"
        assert instances.ended_at(pi) == "End_ok"
        variables = instances.variables(pi)
        assert variables["TICKET_KEY"] == "OPS-1" and len(jira.issues) == 1
        assert JIRA_TOKEN not in repr(variables)
        assert worker.terminate() == 0
        assert JIRA_TOKEN not in worker.log_path.read_text()
    finally:
        jira.stop()

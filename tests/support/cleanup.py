"""Cleaning up after a test on the shared session engine: an instance a test leaves waiting would be
picked up later by another suite's workers (the e2e stack's worker writes its error tickets and
notifications into its own store)."""

from __future__ import annotations

from modelops_mlc.engine import EngineClient


def delete_unfinished(client: EngineClient, instance_ids: list[str]) -> None:
    """Delete those of ``instance_ids`` still running (a finished test, or one failed midway)."""
    states = client.request("POST", "/history/process-instance", params={"maxResults": 1000},
                            json={"processInstanceIds": instance_ids}) if instance_ids else []
    active = [row["id"] for row in states if row["state"] == "ACTIVE"]
    if active:
        client.request("POST", "/process-instance/delete", json={"processInstanceIds": active,
                                                                 "skipCustomListeners": True})

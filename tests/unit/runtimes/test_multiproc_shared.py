"""What the processes of one `--workers N` runtime share on disk: the change stamp and who routes what."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from modelops_mlc.runtimes.multiproc import Shared


def test_every_announcement_is_seen_as_a_change(tmp_path):
    shared = Shared(tmp_path)
    shared.reset()
    seen = [shared.seen()]
    for _ in range(20):  # back to back, as two admin calls may come
        shared.announce()
        seen.append(shared.seen())
    assert None not in seen and len(set(seen)) == len(seen)


def test_a_model_is_ready_when_every_live_worker_routes_it(tmp_path):
    shared = Shared(tmp_path)
    shared.reset()
    shared.publish(["bc"], [("bc", "1"), ("bc", "2")])
    assert shared.lagging("bc") == [] and shared.lagging("bc", "2") == []

    # another live worker that has not loaded version 2 yet holds it back
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (shared.routes_dir / f"{sibling.pid}.json").write_text(json.dumps({"routed": ["bc"], "loaded": ["bc/1"]}))
        assert shared.lagging("bc") == []
        assert shared.lagging("bc", "2") == [sibling.pid]
        assert set(shared.lagging("other")) == {sibling.pid, os.getpid()}
    finally:
        sibling.kill()
        sibling.wait()
    # a worker that is gone (replaced) holds nothing back
    assert shared.lagging("bc", "2") == []


def test_reset_drops_what_a_previous_run_left(tmp_path):
    shared = Shared(tmp_path)
    shared.reset()
    (shared.metrics_dir / "counter_123.db").write_bytes(b"old")
    shared.publish(["bc"], [])
    shared.reset()
    assert list(shared.metrics_dir.iterdir()) == [] and list(shared.routes_dir.iterdir()) == []

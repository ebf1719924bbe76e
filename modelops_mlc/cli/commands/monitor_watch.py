"""`mlc monitor watch DIR --model M`: the new-data watcher daemon (added to the `monitor` group)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from modelops_mlc.cli._common import info, settings


def watch(
    folder: Annotated[Path, typer.Argument(help="Folder that new data files (CSV, Parquet) arrive in.", show_default=False)],
    model: Annotated[str, typer.Option("--model", "-m", help="Model to monitor (name, name/version or name@alias).",
                                       show_default=False)],
    settle: Annotated[Optional[float], typer.Option(
        "--settle", help="Seconds a file's size and mtime must stay unchanged before it counts as complete.",
        show_default=False)] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="Daemon log lines on stderr: text or json.")] = "text",
) -> None:
    """Fire signal mlc.monitor once for each new, completely written file in FOLDER (also across restarts)."""
    import logging

    from modelops_mlc.daemon import GracefulStop, StatusFile, configure_logging
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.errors import UsageError
    from modelops_mlc.monitoring.watch import DEFAULT_SETTLE_S, FolderWatcher

    if log_format not in ("text", "json"):
        raise UsageError("--log-format must be text or json")
    with EngineClient(settings()) as client:
        watcher = FolderWatcher(settings(), client, folder, model,
                                settle_s=DEFAULT_SETTLE_S if settle is None else settle)
        configure_logging(log_format, level=logging.INFO)
        stop = GracefulStop(5.0, on_request=watcher.wake)  # a round is short: no forced stop needed
        stop.install()
        info(f"watching {watcher.folder} for model {watcher.model_id} (Ctrl-C to stop)")
        try:
            watcher.run(stop, StatusFile(settings().home, watcher.name, kind="watchers"))
        except OSError as exc:
            raise UsageError(f"cannot watch {watcher.folder}: {exc.strerror or exc}") from None
        finally:
            stop.uninstall()


def register(app: typer.Typer) -> None:
    """Add ``watch`` to the ``monitor`` group ``app``."""
    app.command("watch")(watch)

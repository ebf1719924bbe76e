"""`mlc webhook serve|register`: the receiver of MLflow registry webhooks, and its webhook on the
MLflow tracking server."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from modelops_mlc.cli._common import JsonOpt, info, print_json, render, settings

app = typer.Typer(help="MLflow registry webhooks that start MLC processes (model tags name the process).",
                  no_args_is_help=True)


@app.command("serve")
def serve(
    port: Annotated[Optional[int], typer.Option("--port", "-p", help="Port to listen on (default: MLC_WEBHOOK_PORT, 8092).",
                                                show_default=False)] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    log_format: Annotated[str, typer.Option("--log-format", help="Log lines on stderr: text or json.")] = "text",
) -> None:
    """Receive MLflow webhooks (HMAC-verified with MLC_WEBHOOK_SECRET) and start the processes the model's tags name."""
    import logging

    from modelops_mlc.daemon import configure_logging
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.errors import UsageError
    from modelops_mlc.monitoring.webhooks import serve as run_receiver

    if log_format not in ("text", "json"):
        raise UsageError("--log-format must be text or json")
    if settings().webhook_secret is None or not settings().webhook_secret.get_secret_value():
        raise UsageError("no webhook secret: set MLC_WEBHOOK_SECRET (the same secret the MLflow webhook carries)")
    configure_logging(log_format, level=logging.INFO)
    with EngineClient(settings()) as client:
        run_receiver(settings(), client, host=host, port=settings().webhook_port if port is None else port,
                     on_ready=lambda url: info(f"[green]receiving MLflow webhooks at {url}[/] (Ctrl+C to stop)"))


@app.command("register")
def register_webhook(
    url: Annotated[Optional[str], typer.Option(
        "--url", help="Where MLflow delivers (default: http://127.0.0.1:MLC_WEBHOOK_PORT/webhooks/mlflow).",
        show_default=False)] = None,
    name: Annotated[str, typer.Option("--name", help="Webhook name in MLflow (an existing one is updated).")] = "mlc",
    tracking_uri: Annotated[Optional[str], typer.Option(
        "--tracking-uri", help="MLflow tracking server (default: MLFLOW_TRACKING_URI).", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create (or update) the webhook on the MLflow tracking server; its secret is MLC_WEBHOOK_SECRET."""
    from modelops_mlc.monitoring.webhooks import register

    secret = settings().webhook_secret
    hook = register(settings(), secret=secret.get_secret_value() if secret else "", url=url, name=name,
                    tracking_uri=tracking_uri)
    if as_json:
        print_json(hook)
        return
    render(hook, as_json=False)
    info(f"[green]webhook {hook['name']} delivers {', '.join(hook['events'])} to {hook['url']}[/]")


def register(root: typer.Typer) -> None:
    """Add the ``webhook`` group to the root app."""
    root.add_typer(app, name="webhook")

"""What every command shares: settings, output (rich table or --json), key=value parsing, fail().

Data goes to stdout, messages to stderr. Commands build pydantic results (or plain dicts) and call
:func:`render`; errors are raised as ``MlcError`` and turned into one line by ``app.main``.
"""

from __future__ import annotations

import enum
import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from modelops_mlc.errors import MlcError, UsageError
from modelops_mlc.serialize import json_safe

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
VarOpt = Annotated[
    list[str] | None,
    typer.Option("--var", "-v", help="Process variable as key=value (repeatable); value typed as JSON when it parses "
                                     "(one starting with { or [ must be valid JSON)."),
]

_settings: "Settings | None" = None


def settings() -> "Settings":
    """The Settings of this invocation, loaded once (environment, mlc.yaml, global flags)."""
    global _settings
    if _settings is None:
        from modelops_mlc.config import load_settings

        _settings = load_settings()
    return _settings


def set_settings(value: "Settings") -> None:
    global _settings
    _settings = value


def fail(message: str, *, code: int = 1, hint: str | None = None) -> NoReturn:
    """Print one error line (and an optional hint) on stderr and exit with ``code``."""
    error_line(message, hint)
    raise typer.Exit(code)


def error_line(message: str, hint: str | None = None) -> None:
    """``error: message`` on stderr as one line (a multi-line message is joined), then the hint."""
    err.print(f"[bold red]error:[/] {escape(one_line(message))}")
    if hint:
        err.print(f"[dim]hint: {escape(one_line(hint))}[/]")


def one_line(text: str) -> str:
    """Join a multi-line message (the engine's parser lists its errors as ``* ...`` lines) into one."""
    parts = [line.strip().removeprefix("* ").strip() for line in str(text).splitlines()]
    return " ".join(p for p in parts if p)


def info(message: str) -> None:
    err.print(message)


def escape(text: str) -> str:
    from rich.markup import escape as _escape

    return _escape(str(text))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_value(raw: str) -> Any:
    """``true``/``42``/``1.5``/``{"a":1}`` become typed; anything else stays a string.

    ``NaN`` and ``Infinity`` stay strings (no engine variable can hold them). A value that opens
    like a JSON object or list (``{``, ``[``) must be valid JSON: UsageError says why not.
    """
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:
        if raw.lstrip().startswith(("{", "[")):
            raise UsageError(f"{raw!r} is not valid JSON: {exc}") from None
        return raw


def parse_pairs(pairs: Iterable[str] | None, *, what: str = "--var", typed: bool = True) -> dict[str, Any]:
    """Parse ``key=value`` items; a malformed one is a UsageError naming it."""
    result: dict[str, Any] = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} expects key=value, got {item!r}")
        try:
            result[key.strip()] = parse_value(value) if typed else value
        except UsageError as exc:
            raise UsageError(f"{what} {key.strip()}: {exc.message}",
                             hint="quote a JSON string to pass text that starts with { or [") from None
    return result


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(json_safe(obj), indent=2) + "\n")


_ISO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2}:?\d{2}|Z)?$")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str) and (m := _ISO_TIME.match(value)):
        return f"{m.group(1)} {m.group(2)}"  # tables show seconds; --json keeps the full timestamp
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def render(
    rows: Any,
    *,
    as_json: bool,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """Render a list of results as a table (or one result as key/value lines), or as JSON."""
    if as_json:
        print_json(rows)
        return
    data = json_safe(rows)
    if isinstance(data, dict):
        table = Table(show_header=False, title=title, box=None)
        table.add_column(style="bold cyan")
        table.add_column()
        for key, value in data.items():
            table.add_row(key, escape(_cell(value)))
        out.print(table)
        return
    if not data:
        err.print(f"[dim]{empty}[/]")
        return
    cols = list(columns or data[0].keys())
    table = Table(title=title, header_style="bold")
    for col in cols:
        table.add_column(col, overflow="fold")
    for row in data:
        table.add_row(*(escape(_cell(row.get(c))) for c in cols))
    out.print(table)


__all__ = [
    "JsonOpt",
    "MlcError",
    "VarOpt",
    "err",
    "error_line",
    "fail",
    "info",
    "one_line",
    "out",
    "parse_pairs",
    "parse_value",
    "print_json",
    "render",
    "set_settings",
    "settings",
]

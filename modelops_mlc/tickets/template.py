"""The one template every ticket description is rendered from (local, Jira and ServiceNow), and
the redaction of secrets from any text that leaves for a ticket system, a webhook or a log."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from modelops_mlc.serialize import json_safe
from modelops_mlc.tickets.base import TicketContext

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["TICKET_TEMPLATE", "redact", "render_description", "secret_values"]

# Plain text that reads well as Jira wiki markup, in ServiceNow and in a terminal.
TICKET_TEMPLATE = """\
{% if intro %}{{ intro }}

{% endif %}Model: {{ ctx.model_id or "unknown" }}{% if ctx.model_version %} version {{ ctx.model_version }}{% endif %}
{% if ctx.kind %}Ticket kind: {{ ctx.kind }}
{% endif %}{% if ctx.reason %}Reason: {{ ctx.reason }}
{% endif %}{% if ctx.error_code or ctx.error_message %}Error: {{ ctx.error_code or "error" }}{% if ctx.error_message %}: {{ ctx.error_message }}{% endif %}
{% endif %}{% if verdict %}Test verdict: {{ verdict }}
{% endif %}{% if ctx.metrics %}
Test metrics:
{% for name, value in ctx.metrics | dictsort %}- {{ name }}: {{ fmt(value) }}
{% endfor %}{% endif %}{% if ctx.tags %}
Tags:
{% for name, value in ctx.tags | dictsort %}- {{ name }}: {{ value }}
{% endfor %}{% endif %}{% if ctx.process_instance_id %}
Process instance: {{ ctx.process_instance_id }}{% if ctx.process_key %} ({{ ctx.process_key }}){% endif %}
{% endif %}{% if ctx.cockpit_url %}Cockpit: {{ ctx.cockpit_url }}
{% endif %}{% if ctx.run_id %}MLflow run: {{ ctx.run_url or ctx.run_id }}
{% endif %}{% if labels %}
Labels: {{ labels | join(", ") }}
{% endif %}
Opened by modelops-mlc.
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(json_safe(value), sort_keys=True)
    return str(value)


def _verdict(verdict: Any) -> str:
    if verdict is None or verdict == "" or verdict == {}:
        return ""
    if isinstance(verdict, str):
        try:
            verdict = json.loads(verdict)
        except ValueError:
            return verdict
    if isinstance(verdict, list) and len(verdict) == 1:  # a DMN collect result with one row
        verdict = verdict[0]
    if isinstance(verdict, dict):
        passed = verdict.get("passed")
        word = "passed" if passed is True else "failed" if passed is False else "unknown"
        reason = verdict.get("reason")
        return f"{word}{f' ({reason})' if reason else ''}"
    return str(verdict)


def render_description(
    context: TicketContext, *, intro: str = "", labels: list[str] | None = None, settings: "Settings | None" = None
) -> str:
    """Render the model context (and the caller's own text) into a ticket description."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
    text = env.from_string(TICKET_TEMPLATE).render(
        ctx=context, intro=(intro or "").strip(), verdict=_verdict(context.verdict), labels=labels or [], fmt=_fmt
    )
    return redact(text, settings)


def secret_values(settings: "Settings | None") -> list[str]:
    """Every secret configured in ``settings`` (non-trivial values only), longest first."""
    if settings is None:
        return []
    found: set[str] = set()
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()
            default = field.default.get_secret_value() if isinstance(field.default, SecretStr) else None
            if raw and len(raw) >= 6 and raw != default:  # a short default ("demo") would mangle text
                found.add(raw)
    return sorted(found, key=len, reverse=True)


def redact(text: str | None, settings: "Settings | None") -> str:
    """Replace every configured secret in ``text`` with ``***``."""
    if not text:
        return text or ""
    for secret in secret_values(settings):
        text = text.replace(secret, "***")
    return text

"""The decorator API, handler loading (--handlers specs, entry points) and the built-in topics."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelops_mlc.errors import UsageError
from workers.handlers import TopicHandler, TopicHandlers, load_builtin_handlers, load_handlers
from workers.variables import BUILTIN_TOPICS

CPU_BOUND = {"train", "run-test", "compare", "score", "drift"}
CPU_BOUND |= {"monitor-check"}


def test_decorator_registers_and_returns_the_function() -> None:
    handlers = TopicHandlers()

    @handlers.topic("a", cpu_bound=True, lock_duration_ms=5000)
    def a(ctx):  # noqa: ANN001
        return {}

    assert a.__mlc_handler__.topic == "a"
    handler = handlers.get("a")
    assert handler.func is a and handler.cpu_bound and handler.lock_duration_ms == 5000
    assert handlers.names() == ["a"] and "a" in handlers and len(handlers) == 1


def test_a_second_handler_for_a_topic_needs_replace() -> None:
    handlers = TopicHandlers()
    handlers.topic("a")(lambda ctx: None)
    with pytest.raises(UsageError, match="already has a handler"):
        handlers.topic("a")(lambda ctx: None)
    replacement = handlers.topic("a", replace=True)(lambda ctx: {"new": 1})
    assert handlers.get("a").func is replacement


def test_async_handlers_cannot_be_cpu_bound_and_unknown_topics_are_usage_errors() -> None:
    handlers = TopicHandlers()

    async def handler(ctx):  # noqa: ANN001
        return None

    with pytest.raises(UsageError, match="async"):
        handlers.topic("a", cpu_bound=True)(handler)
    with pytest.raises(UsageError, match="no handler for topic"):
        handlers.get("missing")


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "wt_plugin_module.py").write_text(textwrap.dedent("""
        from workers.handlers import TopicHandlers, topic

        @topic("plugin-decorated", replace=True)
        def decorated(ctx):
            return {"A": 1}

        REG = TopicHandlers()

        @REG.topic("plugin-in-handlers", cpu_bound=True)
        def in_registry(ctx):
            return None

        def plain(ctx):
            return None

        MAPPING = {"plugin-mapped": plain}
        NOT_A_HANDLER = 42
    """))
    return tmp_path


def test_load_handlers_accepts_a_module_a_registry_a_mapping_and_a_function(plugin_dir: Path) -> None:
    handlers = TopicHandlers()
    assert load_handlers(["wt_plugin_module"], handlers) == ["plugin-decorated"]
    assert load_handlers(["wt_plugin_module:REG"], handlers) == ["plugin-in-handlers"]
    assert load_handlers(["wt_plugin_module:MAPPING"], handlers) == ["plugin-mapped"]
    assert load_handlers(["wt_plugin_module:in_registry"], handlers) == ["plugin-in-handlers"]
    assert handlers.get("plugin-in-handlers").cpu_bound  # options travel with the function
    assert sorted(handlers.names()) == ["plugin-decorated", "plugin-in-handlers", "plugin-mapped"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_anywhere", "cannot import handler module"),
        ("wt_plugin_module:missing", "has no attribute"),
        ("wt_plugin_module:NOT_A_HANDLER", "is not a TopicHandlers"),
        (":x", "expects module or module:object"),
    ],
)
def test_bad_handler_specs_are_usage_errors(plugin_dir: Path, spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_handlers([spec], TopicHandlers())


def test_builtin_topics_are_the_contract_and_heavy_jobs_run_in_the_pool() -> None:
    handlers = load_builtin_handlers(TopicHandlers())
    assert sorted(handlers.names()) == sorted(BUILTIN_TOPICS)
    assert {h.topic for h in handlers if h.cpu_bound} == CPU_BOUND
    assert all(isinstance(h, TopicHandler) and h.replay for h in handlers)


def test_loading_the_builtins_imports_no_heavy_library() -> None:
    code = ("import sys; from workers.handlers import load_builtin_handlers; load_builtin_handlers(); "
            "import modelops_mlc.cli.commands.worker; "
            "print(sorted(m for m in ('mlflow', 'pandas', 'sklearn', 'numpy', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "[]"

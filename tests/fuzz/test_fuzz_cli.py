"""The `mlc` command line, fuzzed: any arguments to any command give success or one clean error
line (`error: ...`, optionally a `hint:` line) with a non-zero exit, never a traceback or an
"internal error".

The commands run in this process through the console entry point (``modelops_mlc.cli.app.main``)
against the session's real engine, a throwaway MLC_HOME (store and MLflow registry) and a
throwaway working directory. Commands that block or start daemons (up, engine start, worker
start, runtime serve, watchers) are left out, and so is anything that could act on the shared
engine beyond this test: signals that a deployed process listens to, `incidents --retry-all`,
engine users, `deploy` (of whatever BPMN a path such as `/` finds).
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.fuzz.conftest import examples

pytestmark = pytest.mark.slow

SKIPPED = {
    ("up",), ("down",), ("report",), ("engine", "start"), ("engine", "build"), ("engine", "stop"), ("engine", "logs"),
    ("engine", "users", "add"), ("runtime", "serve"), ("ticket", "watch"), ("worker", "start"), ("monitor", "watch"),
    ("webhook", "serve"), ("webhook", "register"),
    # a path such as `/` or `..` walks the filesystem and deploys any BPMN found, test ones that
    # start on shared signals among them; tests/integration/badinput covers bad input to deploy
    ("deploy",),
}
SKIPPED_OPTIONS = {"--retry-all", "--follow", "--home", "--engine-url"}
LISTENED_SIGNALS = set(re.findall(r'<bpmn:signal id="[^"]*" name="([^"]*)"',
                                  "".join(p.read_text() for p in (ROOT / "bpmn").glob("*.bpmn"))))


@dataclass(frozen=True)
class Leaf:
    path: tuple[str, ...]
    arguments: tuple[tuple[str, int], ...]  # (name, nargs)
    options: tuple[tuple[str, bool], ...]  # (flag, is_flag)


def _leaves() -> list[Leaf]:
    from modelops_mlc.cli.app import app

    found: list[Leaf] = []

    def walk(cmd, path: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, (*path, name))
            return
        if path in SKIPPED:
            return
        args = tuple((p.name, p.nargs) for p in cmd.params if p.param_type_name == "argument")
        opts = tuple((p.opts[0], bool(p.is_flag)) for p in cmd.params
                     if p.param_type_name == "option" and p.opts[0] not in SKIPPED_OPTIONS)
        found.append(Leaf(path, args, opts))

    walk(typer.main.get_command(app), ())
    return found


LEAVES = _leaves()

# values a user might type, and some a user should not
tokens = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="ascii", categories=["L", "N", "P"]), max_size=12),
    st.sampled_from(["", "-", "--", "-1", "0", "1e309", "nan", "true", "null", "[]", "{", "{}", '{"a": [1, 2]}',
                     "x=1", "=", "a=", "=b", "a=b=c", "MODEL_ID=123", 'VAR={"bad json', "DATE=2024-13-45",
                     "m/1", "m@champion", "m/999", "m@", "/", ".", "..", "/dev/null", "/nonexistent/x.csv",
                     "PT5M", "R/PT1H", "0 2 * * 0", "* * *", "99999999999999999999", "\x00", "é", "\n"]),
)
kv_tokens = st.one_of(tokens, st.builds(lambda k, v: f"{k}={v}", st.text(max_size=8), tokens))


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    leaf = draw(st.sampled_from(LEAVES))
    argv = list(leaf.path)
    for name, nargs in leaf.arguments:
        for _ in range(draw(st.integers(0, 2)) if nargs == -1 else draw(st.sampled_from([1, 1, 1, 0]))):
            argv.append(draw(kv_tokens))
    for _ in range(draw(st.integers(0, 4))):
        if not leaf.options:
            break
        flag, is_flag = draw(st.sampled_from(leaf.options))
        argv.append(flag)
        if not is_flag:
            argv.append(draw(kv_tokens))
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(st.sampled_from(["--bogus", "-z", "--json", "extra"])))
    if argv[0] == "signal" and len(argv) > 1 and not argv[1].startswith("-"):
        from modelops_mlc.cli.commands.process import signal_name

        if signal_name(argv[1]) in LISTENED_SIGNALS:  # would start real processes on the shared engine
            argv[1] = "fuzz." + argv[1]
    return argv


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_main(argv: list[str]) -> Outcome:
    """`mlc ARGV` through the console entry point, in this process."""
    from modelops_mlc.cli import _common
    from modelops_mlc.cli.app import main

    _common.set_settings(None)  # type: ignore[arg-type]  # each invocation loads its own settings
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["mlc", *argv]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return Outcome(code, out.getvalue(), err.getvalue())


def check_clean(result: Outcome, argv: list[str]) -> None:
    """Success, or one `error:` line (plus an optional hint) and a non-zero exit; no traceback."""
    text = result.stdout + result.stderr
    assert "Traceback" not in text, (argv, text[-3000:])
    assert "internal error" not in result.stderr, (argv, result.stderr)
    status_report = argv[:1] == ["status"] or argv[:2] == ["engine", "status"]
    if result.code == 0 or status_report and not result.stderr.strip():
        return  # a status report's exit code tells what is not running
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, (argv, result.code, result.stderr)
    after = lines[lines.index(errors[0]) + 1:]
    assert all(line.startswith("hint:") for line in after), (argv, result.stderr)
    assert result.code in (1, 2, 3, 4, 5, 6), (argv, result.code, result.stderr)


@pytest.fixture(scope="module")
def cli_env(engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("fuzz-cli-home")
    work = tmp_path_factory.mktemp("fuzz-cli-cwd")
    with pytest.MonkeyPatch.context() as mp:
        for key in ("MLC_ENGINE_PORT", "MLC_ENGINE_USER", "MLC_ENGINE_PASSWORD", "MLC_ENGINE_TOKEN", "MLC_CONFIG_FILE",
                    "MLC_USER", "MLC_POSTGRES_URL"):
            mp.delenv(key, raising=False)
        mp.setenv("MLC_HOME", str(home))
        mp.setenv("MLC_ENGINE_URL", engine.url)
        mp.setenv("MLC_STORE_URL", f"sqlite:///{home / 'mlc.db'}")
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        mp.setenv("MLC_ENGINE_AUTH", "none")
        mp.setenv("COLUMNS", "200")
        mp.chdir(work)
        yield


@examples(30)
@given(argv=command_lines())
def test_any_command_line_fails_cleanly_or_succeeds(cli_env, argv):
    check_clean(run_main(argv), argv)


@examples(15)
@given(pairs=st.lists(kv_tokens, min_size=1, max_size=4), model=st.one_of(st.none(), tokens))
def test_signal_vars_fail_cleanly_or_succeed(cli_env, pairs, model):
    argv = ["signal", "fuzz.nobody-listens"]
    for pair in pairs:
        argv += ["--var", pair]
    if model is not None:
        argv += ["--model-id", model]
    check_clean(run_main(argv), argv)


def test_usage_errors_are_one_line(cli_env):
    """What the fuzzing above holds every command to, on the errors Click itself raises."""
    for argv, message in [
        (["signal"], "error: Missing argument 'NAME'."),
        (["instances", "--limit", "many"], "error: Invalid value for '--limit'"),
        (["no-such-command"], "error: No such command 'no-such-command'."),
        (["signal", "x", "--var", "novalue"], "error: --var expects key=value, got 'novalue'"),
    ]:
        result = run_main(argv)
        assert result.code == 2, (argv, result)
        assert result.stderr.splitlines()[0].lower().startswith(message.lower()), (argv, result.stderr)
    help_ = run_main(["signal", "--help"])
    assert help_.code == 0 and "Usage:" in help_.stdout

"""Starting, using and stopping Flower's runtime from fedfer: SuperLink, SuperNodes, `flwr run`.

Every process fedfer starts is started in its own process group and recorded; leaving the
`ProcessGroup` context stops them all by PID — terminate, then kill — also when the run fails or
is interrupted. Flower's own state (connections, app cache, SuperLink database) lives under a
FLWR_HOME that fedfer chooses per run, so nothing lands in the user's home directory and the repo's
pyproject.toml is never rewritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedfer.flower.certs import Credentials

APP_DIR = Path(__file__).resolve().parents[2]  # the Flower app: pyproject.toml, server_app.py, client_app.py
# Flower log lines worth echoing as progress when its full log is not shown.
PROGRESS_LINE = re.compile(
    r"\[ROUND \d+/\d+\]|aggregate_(train|evaluate): Received|Global evaluation"
    r"|MetricRecord: \{'macro|ERROR|Exception|Traceback|\[fedfer\]"
)

IN_MEMORY_STATE = ":flwr-in-memory:"  # a SuperLink `--database` kept in the process (Flower's name for it)
QUIET_FLOWER_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    # Flower would otherwise install the app's dependencies (torch!) for every run.
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
}


def superlink_command(
    *, host: str, port: int, database: str, credentials: Credentials | None, simulation: bool = False
) -> list[str]:
    """`flower-superlink` serving Fleet, Control and Runtime APIs on `host:port`; TLS + node auth unless
    `credentials` is None; with `simulation`, it runs the SuperNodes itself (Flower's simulation engine).
    The one definition of the SuperLink's flags, for `fedfer run`, `fedfer deploy` and the compose file."""
    command = [
        "flower-superlink",
        "--isolation",
        "subprocess",
        "--host",
        host,
        "--port",
        str(port),
        "--database",
        database,
        "--disable-runtime-dependency-installation",
    ]
    if simulation:
        command.append("--simulation")
    if credentials is None:
        return [*command, "--insecure"]
    return [
        *command,
        "--ssl-ca-certfile",
        str(credentials.ca_cert),
        "--ssl-certfile",
        str(credentials.server_cert),
        "--ssl-keyfile",
        str(credentials.server_key),
        "--enable-supernode-auth",
    ]


def flower_env(flwr_home: Path) -> dict[str, str]:
    return {**os.environ, **QUIET_FLOWER_ENV, "FLWR_HOME": str(flwr_home), "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    """A TCP port on the loopback interface that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ProcessGroup:
    """Processes started for one run; all of them are stopped when the context exits."""

    log_dir: Path
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: Mapping[str, str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop_all
        self._logs.append(log)
        process = subprocess.Popen(
            command,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes.append((name, process))
        return process

    def stop_all(self, grace_seconds: float = 10.0) -> None:
        """Stop every process (see `stop_processes`) and close their logs."""
        stop_processes([p for _, p in self.processes], grace_seconds)
        for log in self._logs:
            log.close()
        self.processes.clear()
        self._logs.clear()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_all()


def stop_processes(processes: Sequence[subprocess.Popen], grace_seconds: float = 10.0) -> None:
    """SIGTERM every process group (the last started first), wait up to `grace_seconds`, SIGKILL
    what is left: children of a leader that has already exited may still run."""
    for p in reversed(processes):
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for p in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    for p in processes:
        _signal_group(p, signal.SIGKILL)
        if p.poll() is None:
            p.wait(timeout=5)
    # SIGKILL is delivered, not awaited: return only once no member of the groups still runs, so
    # a caller that checks for leftovers (or reuses a port) never races a process still dying.
    deadline = time.monotonic() + 10.0
    while _live_group_members({p.pid for p in processes}) and time.monotonic() < deadline:
        time.sleep(0.05)


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _live_group_members(groups: set[int]) -> list[int]:
    """PIDs of processes (not zombies) whose process group is one of `groups` (Linux /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
        except OSError:
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) in groups:
            members.append(int(stat.parent.name))
    return members


def flower_healthy(host: str, port: int, ca_cert: Path | str | None = None) -> bool:
    """Whether the Flower process on `host:port` answers its health endpoint (GET /health → 200): a
    SuperLink on its one port, or a SuperNode on its local `--port`.

    With TLS the endpoint is HTTPS on the same port, and the certificate is checked against
    `ca_cert` (so `host` must be a name the certificate holds). The container healthchecks call this
    too, so the check that gates a deployment here is the one Docker runs."""
    scheme, context = ("http", None) if ca_cert is None else ("https", ssl.create_default_context(cafile=str(ca_cert)))
    # Straight to the SuperLink: a lab machine's http(s)_proxy must not carry (or swallow) the probe.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(f"{scheme}://{host}:{port}/health", timeout=1.0) as r:
            return r.status == 200
    except OSError:  # refused, timed out, TLS failure (ssl.SSLError is an OSError)
        return False


def wait_for_superlink(
    port: int,
    process: subprocess.Popen,
    log_file: Path,
    *,
    host: str = "127.0.0.1",
    ca_cert: Path | None = None,
    timeout: float = 60.0,
) -> None:
    """Block until the SuperLink on `host:port` is up (`flower_healthy`, over HTTPS when `ca_cert`
    is given). Fail with its log when it dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"flower-superlink exited with code {process.returncode}; its log ({log_file}):\n{_tail(log_file)}"
            )
        if flower_healthy(host, port, ca_cert):
            return
        time.sleep(0.3)
    raise RuntimeError(f"flower-superlink did not come up on {host}:{port} within {timeout:.0f} s; log: {log_file}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def write_connection(
    flwr_home: Path,
    name: str,
    address: str,
    *,
    insecure: bool,
    root_certificates: Path | None = None,
    options: Mapping[str, Any] | None = None,
) -> Path:
    """Write FLWR_HOME/config.toml with one SuperLink connection, the default for `flwr` commands."""
    lines = ["[superlink]", f'default = "{name}"', "", f"[superlink.{name}]", f'address = "{address}"']
    if insecure:
        lines.append("insecure = true")
    else:
        lines.append(f'root-certificates = "{Path(root_certificates).resolve()}"')
    for key, value in (options or {}).items():
        lines.append(f"options.{key} = {_toml_value(value)}")
    flwr_home.mkdir(parents=True, exist_ok=True)
    path = flwr_home / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_run_config(path: Path, values: Mapping[str, Any]) -> Path:
    """A TOML file of run-config overrides for `flwr run --run-config FILE` (no shell quoting games)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items()))
    return path


def flwr_run(
    app_dir: Path,
    connection: str,
    run_config_file: Path,
    env: Mapping[str, str],
    log_file: Path,
    on_line: Callable[[str], None] | None = None,
) -> int:
    """`flwr run APP CONNECTION --stream` until the run ends; output goes to `log_file`, each line also to `on_line`.

    The log is rewritten, not appended to: callers read it back (errors, the run id) and must see
    this run only, not an earlier one in the same results folder."""
    command = ["flwr", "run", str(app_dir), connection, "--run-config", str(run_config_file), "--stream"]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "wb") as log:
        log.write(f"$ {shlex.join(command)}\n".encode())
        process = subprocess.Popen(
            command,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                log.flush()
                if on_line is not None:
                    on_line(line.decode(errors="replace"))
            return process.wait()
        finally:
            stop_processes([process])


STARTED_RUN = re.compile(r"Successfully started run (\d+)")
COMPLETED = "finished:completed"


def started_run(flower_log: Path) -> int:
    """The run id `flwr run` printed; raises naming the log when it is missing."""
    match = STARTED_RUN.search(flower_log.read_text(errors="replace"))
    if match is None:
        raise RuntimeError(f"no 'Successfully started run' line in {flower_log}: the run never started")
    return int(match.group(1))


def run_record(connection: str, run: int, env: Mapping[str, str]) -> dict[str, Any]:
    """The SuperLink's record of run `run` (`flwr ls --run-id … --format json`): status, byte counts, times."""
    command = ["flwr", "ls", connection, "--run-id", str(run), "--format", "json"]
    result = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=60)
    try:
        return json.loads(result.stdout)["runs"][0]
    except (ValueError, KeyError, IndexError) as err:
        answer = result.stdout.strip() or result.stderr.strip()
        raise RuntimeError(f"`flwr ls --run-id {run}` gave no run (exit code {result.returncode}): {answer}") from err


def stream_flower(
    app_dir: Path, connection: str, run_config_file: Path, env: Mapping[str, str], log_file: Path, verbose: bool
) -> int:
    """`flwr run` with progress on the terminal; returns the run id, raises naming the log when the run failed.

    Failure is what Flower records: `flwr run`'s exit status and the SuperLink's status of the run
    (a ServerApp that raises ends the run `finished:failed` while `flwr run --stream` may exit 0). A
    client that fails inside a round is not a failed run: the round goes on with the others and the
    strategy records the failure."""
    started = time.monotonic()

    def show(line: str) -> None:
        if verbose:
            print(line, end="", flush=True)
        elif PROGRESS_LINE.search(line):
            print(f"  [{time.monotonic() - started:6.1f} s] " + re.sub(r"\x1b\[[0-9;]*m", "", line).strip(), flush=True)

    code = flwr_run(app_dir, connection, run_config_file, env, log_file, on_line=show)
    run = started_run(log_file)
    status = run_record(connection, run, env)["status"]
    if code != 0 or status != COMPLETED:
        raise RuntimeError(f"the Flower run {run} ended '{status}' (flwr run exit code {code}); see {log_file}")
    print(f"Flower run finished in {time.monotonic() - started:.1f} s")
    return run

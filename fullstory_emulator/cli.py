"""`fullstory-emulator`: flags -> Settings -> a running server.

Flags are generated from the Settings declaration; each also reads `FULLSTORY_EMULATOR_<NAME>`,
and a flag given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import __version__, netloc
from .auth import DEMO_KEY, MCP_KEY, mask
from .recording import Recording, RecordingError
from .settings import ENV_PREFIX, Settings, SettingsError, choices, redact_url, shown_default
from .tls import trust_instructions

if TYPE_CHECKING:
    from .client.mcp import McpThread


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fullstory-emulator",
        description="A local, offline emulator of FullStory's Segment Export API.",
        epilog=f"Every flag can also be set as {ENV_PREFIX}<NAME> (flags win).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the emulator (the default command)")
    sub.add_parser(
        "demo", help="run the whole export workflow against a private emulator", add_help=False
    )
    sub.add_parser(
        "mcp", help="run only the MCP server (stdio or HTTP) for an agent", add_help=False
    )
    sub.add_parser(
        "record",
        help="record a FullStory org (segments, exports, field catalogue) into a folder",
        add_help=False,
    )
    sub.add_parser(
        "conformance",
        help="check a FullStory API (yours, with your key) against this emulator, and report",
        add_help=False,
    )
    sub.add_parser(
        "exercise",
        help="grade an export client against FullStory's failure modes (docs/grading.md)",
        add_help=False,
    )
    health = sub.add_parser(
        "health", help="exit 0 if the emulator these settings describe answers its health check"
    )
    store = sub.add_parser("store", help="check the database that --store names")
    actions = store.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="say whether the store is usable, and what it holds (changes nothing)"
    )
    for target in (parser, serve, health, check):
        _add_settings(target)
    return parser


def _add_settings(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings")
    for f in dataclasses.fields(Settings):
        meta = f.metadata
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        env = ENV_PREFIX + f.name.upper()
        help_text = meta["help"]
        if meta["negate"]:
            group.add_argument(
                flag,
                dest=f.name,
                action="store_false",
                default=argparse.SUPPRESS,
                help=_escape(f"{help_text}; this flag turns it off [env {env}=false]"),
            )
        elif f.type in (bool, "bool"):
            group.add_argument(
                flag,
                dest=f.name,
                action="store_true",
                default=argparse.SUPPRESS,
                help=_escape(f"{help_text} [env {env}=true]"),
            )
        else:
            allowed = choices(meta["parse"])
            metavar = "{" + ",".join(allowed) + "}" if allowed else meta["metavar"]
            # no default (None) is not shown: the help text says what its absence means
            default = shown_default(f.default)
            if default:
                help_text += f" (default: {default})"
            group.add_argument(
                flag,
                dest=f.name,
                type=_argtype(meta["parse"], flag),
                default=argparse.SUPPRESS,
                metavar=metavar or f.name.upper(),
                help=_escape(f"{help_text} [env {env}]"),
            )


def _argtype(parse: Any, flag: str) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = flag
    return convert


def _escape(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help with %


def settings_from(
    argv: Sequence[str] | None, environ: dict[str, str] | None = None
) -> tuple[str, Settings]:
    args = vars(_parser().parse_args(argv))
    command = args.pop("command", None) or "serve"
    if "action" in args:
        command += " " + args.pop("action")
    try:
        return command, Settings.load(args, os.environ if environ is None else environ)
    except SettingsError as exc:
        raise SystemExit(f"fullstory-emulator: {exc}") from None


def serve(settings: Settings) -> None:
    """Serve until stopped (Ctrl-C or SIGTERM, see `server.sigterm_as_interrupt`); whatever
    stops it, the emulator is closed and a temporary data dir made here is removed."""
    temporary = None
    if ((settings.workers > 1 and not settings.store) or settings.tls) and not settings.data_dir:
        from .server import data_dir

        # workers share state through SQLite (unless --store); TLS keeps its CA beside it
        settings = dataclasses.replace(settings, data_dir=data_dir(settings))
        temporary = settings.data_dir
    try:
        _serve(settings)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def _serve(settings: Settings) -> None:
    from .server import (
        bind,
        check_state,
        configure_logging,
        emulator_of,
        make_server,
        run_workers,
        settle,
    )

    try:
        sock, settings = bind(settings)
    except OSError as exc:
        raise SystemExit(
            f"fullstory-emulator: cannot listen on {settings.host}:{settings.port}: {exc} "
            "(--port N moves it; --port 0 takes any free port)"
        ) from None
    try:
        # a recording that does not load stops the start once, before any worker tries it
        recording = Recording.load(settings.replay) if settings.replay else None
        if settings.workers > 1:
            if recording is not None:
                recording.rows_digests()  # its rows too (one worker would read them anyway)
            check_state(settings)  # each worker opens the store: say once what is wrong
        server = make_server(settings) if settings.workers == 1 else None
    except RecordingError as exc:  # one line naming the file and the fix; 2, as a bad flag
        print(f"fullstory-emulator: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    except ValueError as exc:  # unreadable keys or segments, an unusable store
        raise SystemExit(f"fullstory-emulator: {exc}") from None
    mcp = McpStarter.bind(settings)
    configure_logging(settings)  # last: each server's uvicorn config reset the shared loggers
    _banner(settings, mcp, recording)
    if mcp is not None:
        mcp.start(ready=(lambda: server.started) if server is not None else (lambda: True))
    settle()
    try:
        if server is None:
            run_workers(settings, sock)
        else:
            server.run(sockets=[sock])
    finally:
        if mcp is not None:
            mcp.stop()
        if server is not None:
            emulator_of(server).close()


def _load_mcp(api_url: str, api_key: str, settings: Settings, sock: socket.socket) -> McpThread:
    """The MCP server on `sock` (importing the mcp SDK takes about a second)."""
    from .client.mcp import McpThread

    hosts = settings.host_policy()  # the names the API answers, on the MCP port too
    return McpThread(api_url, api_key, host=settings.host, sock=sock, hosts=hosts)


class McpStarter:
    """The MCP adapter beside the API, on a tenant of its own (its own key, so an agent never
    spends the demo key's rate limit), started without delaying the API's cold start.

    Its socket is bound and listening first, so the banner knows its URL and a client that
    connects early waits in the backlog; the SDK is imported and served in the background once
    the API serves."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.api_url = local_url(settings)
        self.api_key = os.environ.get("FULLSTORY_API_KEY") or MCP_KEY
        self.host = settings.host
        self.settings = settings
        self.port: int = sock.getsockname()[1]
        self._sock = sock
        self._server: McpThread | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @classmethod
    def bind(cls, settings: Settings) -> McpStarter | None:
        if settings.mcp_port is None:
            return None
        from .serving import listen

        try:
            sock = listen(settings.host, settings.mcp_port)
            sock.listen(128)
        except OSError as exc:
            raise SystemExit(
                f"fullstory-emulator: cannot start MCP on {settings.host}:{settings.mcp_port}: "
                f"{exc} (--mcp-port N moves it, --mcp-port off turns it off)"
            ) from None
        return cls(settings, sock)

    @property
    def url(self) -> str:
        return netloc.local_url("http", self.host, self.port, "/mcp")

    def start(self, ready: Callable[[], bool]) -> None:
        """Load and serve MCP in the background once `ready()` (the API serves)."""
        self._thread = threading.Thread(
            target=self._run, args=(ready,), daemon=True, name="mcp-starter"
        )
        self._thread.start()

    def _run(self, ready: Callable[[], bool]) -> None:
        while not ready() and not self._stopped.wait(0.01):
            pass
        if self._stopped.is_set():
            return
        try:
            server = _load_mcp(self.api_url, self.api_key, self.settings, self._sock)
            if not self._stopped.is_set():
                self._server = server.start()
        except Exception as exc:  # the API goes on serving; say why MCP does not
            self.error = exc
            print(f"fullstory-emulator: MCP server failed to start: {exc}", file=sys.stderr)

    @property
    def started(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._server is not None:
            self._server.stop()
        else:
            self._sock.close()


def local_url(settings: Settings) -> str:
    """Where the API is reached from its own machine: where it listens, not --public-url (which
    may name a host that only clients outside can resolve)."""
    return netloc.local_url("https" if settings.tls else "http", settings.host, settings.port)


def health(settings: Settings) -> int:
    """Ask the emulator these settings describe for /__emulator/health: the Docker HEALTHCHECK,
    which runs with the container's environment and so follows its port and TLS settings."""
    import ssl
    import urllib.request

    url = local_url(settings) + "/__emulator/health"
    context = None
    if settings.tls:
        ca = settings.data_dir / "tls" / "ca.pem" if settings.data_dir else None
        if ca and ca.exists():
            context = ssl.create_default_context(cafile=str(ca))
        else:  # a CA in a temporary folder: whether it answers is all that is asked here
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            print(f"{url}: {response.status}")
            return 0
    except OSError as exc:  # refused, timed out, TLS failure, or an HTTP error status
        print(f"fullstory-emulator health: {url}: {exc}", file=sys.stderr)
        return 1


def _banner(
    settings: Settings, mcp: McpStarter | None = None, recording: Recording | None = None
) -> None:
    from .instance import served_failure_state

    base = redact_url(settings.base_url())
    keys = f"from {settings.keys}" if settings.keys else f"any well-formed key, e.g. {DEMO_KEY}"
    lines = [
        f"fullstory-emulator {__version__} listening on "
        f"{'https' if settings.tls else 'http'}://{_host(settings.host)}:{settings.port}",
        f"  API base URL:   {base}   (download URLs: {base}/{settings.bucket}/...)",
        f"  API keys:       {keys}",
        f"  MCP server:     {_mcp_line(mcp)}",
        f"  web console:    {base}/__emulator/ui",
        f"  OpenAPI:        {base}/openapi.json   metrics: {base}/metrics",
        f"  try:            curl -H 'Authorization: Basic {DEMO_KEY}' {base}/segments/v1",
        *([_replay_line(settings, recording)] if recording is not None else []),
        *(
            [trust_instructions(settings.data_dir / "tls" / "ca.pem")]
            if settings.tls and settings.data_dir
            else []
        ),
        *(
            [f"  state:          {_state(settings)} ({settings.workers} worker(s))"]
            if settings.data_dir or settings.store
            else []
        ),
        f"  seed {settings.seed}, population {settings.population}, export duration "
        f"{settings.export_duration:g}s, URL TTL {settings.url_ttl:g}s, rate limit "
        f"{settings.rate_limit or 'off'}",
        _failure_line(served_failure_state(settings)),
    ]
    print("\n".join(lines), flush=True)


def _replay_line(settings: Settings, recording: Recording) -> str:
    """What is replayed: the folder, its segments and its recorded windows."""
    windows = "; ".join(
        f"{e.segment_id} {e.type} {e.start} .. {e.end} ({e.rows} rows)" for e in recording.exports
    )
    extra = f", plus those of {settings.segments}" if settings.segments else ""
    return (
        f"  replaying:      {settings.replay} (recorded from {redact_url(recording.api_url)} at "
        f"{recording.recorded_at}{', scrubbed' if recording.scrubbed else ''})\n"
        f"                  {len(recording.segments)} recorded segment(s){extra}; recorded "
        f"windows: {windows or 'none'}; outside them, data in the org's shape"
    )


def _mcp_line(mcp: McpStarter | None) -> str:
    if mcp is None:
        return "off"
    if mcp.api_key == MCP_KEY:
        return (
            f"{mcp.url}   (a tenant of its own: calls the API with key {MCP_KEY}, apart from "
            "your exports' rate limit)"
        )
    return f"{mcp.url}   (calls the API with $FULLSTORY_API_KEY, {mask(mcp.api_key)})"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _failure_line(state: str) -> str:
    """Which failure state is served, and which clients expect which: a FullStory client that
    knows only FAILED (hauser, the SDKs) would poll an ERROR operation forever."""
    if state == "FAILED":
        return (
            "  failed exports: state FAILED, as FullStory's own clients (hauser, the SDKs) "
            "expect;\n                  --failure-state ERROR for clients written against ERROR"
        )
    return (
        "  failed exports: state ERROR; FullStory's own clients (hauser, the SDKs) recognise "
        "only FAILED:\n                  --failure-state FAILED, or per tenant POST "
        '/__emulator/config {"failureState": "FAILED"}'
    )


def _state(settings: Settings) -> str:
    if settings.store:
        return f"PostgreSQL {redact_url(settings.store)}"
    return str(settings.data_dir)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("demo", "mcp", "record", "conformance", "exercise"):  # own flags
        if args[0] == "demo":
            from .testing.demo import main as demo

            raise SystemExit(demo(args[1:]))
        if args[0] == "record":
            from .client.record import main as record

            raise SystemExit(record(args[1:]))
        if args[0] == "conformance":
            from .testing.conformance import main as conformance

            raise SystemExit(conformance(args[1:]))
        if args[0] == "exercise":
            from .testing.exercise import main as exercise

            raise SystemExit(exercise(args[1:]))
        from .client.mcp import main as mcp

        mcp(args[1:])
        return
    command, settings = settings_from(args)
    if command == "health":
        raise SystemExit(health(settings))
    if command == "serve":
        from .server import Terminated, sigterm_as_interrupt

        try:
            with sigterm_as_interrupt():
                serve(settings)
        except KeyboardInterrupt as exc:  # uvicorn has shut down, or we were still starting
            print("fullstory-emulator: stopped", file=sys.stderr, flush=True)
            raise SystemExit(143 if isinstance(exc, Terminated) else 130) from None
    elif command == "store check":
        raise SystemExit(store_check(settings))


def store_check(settings: Settings) -> int:
    """`fullstory-emulator store check`: 0 if the store is usable, 1 if not."""
    from .server import check_store

    usable, lines = check_store(settings)
    print("\n".join(lines))
    print("usable" if usable else "not usable")
    return 0 if usable else 1


if __name__ == "__main__":
    main(sys.argv[1:])

"""`fullstory-emulator`: flags -> Settings -> a running server.

Flags are generated from the Settings declaration; each also reads `FULLSTORY_EMULATOR_<NAME>`,
and a flag given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import __version__
from .auth import DEMO_KEY
from .settings import ENV_PREFIX, Settings, SettingsError
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
    for target in (parser, serve):
        _add_settings(target)
    return parser


def _add_settings(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings")
    for f in dataclasses.fields(Settings):
        meta = f.metadata
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        env = ENV_PREFIX + f.name.upper()
        if meta["negate"]:
            group.add_argument(
                flag,
                dest=f.name,
                action="store_false",
                default=argparse.SUPPRESS,
                help=f"{meta['help']}: turn off [env {env}]",
            )
        elif f.type in (bool, "bool"):
            group.add_argument(
                flag,
                dest=f.name,
                action="store_true",
                default=argparse.SUPPRESS,
                help=f"{meta['help']} [env {env}]",
            )
        else:
            group.add_argument(
                flag,
                dest=f.name,
                type=_argtype(meta["parse"], flag),
                default=argparse.SUPPRESS,
                metavar=meta["metavar"] or f.name.upper(),
                help=f"{meta['help']} (default: {_shown(f.default)}) [env {env}]",
            )


def _argtype(parse: Any, flag: str) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = flag
    return convert


def _shown(value: Any) -> str:
    return "none" if value is None else str(value).replace("%", "%%")


def settings_from(
    argv: Sequence[str] | None, environ: dict[str, str] | None = None
) -> tuple[str, Settings]:
    args = vars(_parser().parse_args(argv))
    command = args.pop("command", None) or "serve"
    try:
        return command, Settings.load(args, os.environ if environ is None else environ)
    except SettingsError as exc:
        raise SystemExit(f"fullstory-emulator: {exc}") from None


def serve(settings: Settings) -> None:
    from .server import bind, check_state, data_dir, make_server, run_workers

    if settings.workers > 1 or settings.tls:
        # workers share state through SQLite; TLS keeps its CA beside it
        settings = dataclasses.replace(settings, data_dir=data_dir(settings))
    try:
        sock, settings = bind(settings)
    except OSError as exc:
        raise SystemExit(
            f"fullstory-emulator: cannot listen on {settings.host}:{settings.port}: {exc}"
        ) from None
    try:
        if settings.workers > 1:
            check_state(settings)  # each worker opens the data dir: say once what is wrong
        server = make_server(settings) if settings.workers == 1 else None
    except ValueError as exc:  # unreadable keys or segments fixtures, an unusable data dir
        raise SystemExit(f"fullstory-emulator: {exc}") from None
    mcp = _start_mcp(settings)
    _banner(settings, mcp.url if mcp else None)
    try:
        if server is None:
            run_workers(settings, sock)
        else:
            server.run(sockets=[sock])
    finally:
        if mcp:
            mcp.stop()


def _start_mcp(settings: Settings) -> McpThread | None:
    """The MCP adapter beside the API, calling it with the demo key unless FULLSTORY_API_KEY."""
    if settings.mcp_port is None:
        return None
    from .client.mcp import McpThread

    # The adapter calls the API where it listens, not through --public-url (which may name a
    # host only clients outside can resolve).
    local = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
    local = f"[{local}]" if ":" in local else local
    api_url = f"{'https' if settings.tls else 'http'}://{local}:{settings.port}"
    try:
        return McpThread(api_url, host=settings.host, port=settings.mcp_port).start()
    except OSError as exc:
        raise SystemExit(
            f"fullstory-emulator: cannot start MCP on {settings.host}:{settings.mcp_port}: {exc} "
            "(--mcp-port N moves it, --mcp-port off turns it off)"
        ) from None


def _banner(settings: Settings, mcp_url: str | None = None) -> None:
    base = settings.base_url()
    keys = f"from {settings.keys}" if settings.keys else f"any well-formed key, e.g. {DEMO_KEY}"
    lines = [
        f"fullstory-emulator {__version__} listening on http://{settings.host}:{settings.port}",
        f"  API base URL:   {base}   (download URLs: {base}/{settings.bucket}/...)",
        f"  API keys:       {keys}",
        f"  MCP server:     {mcp_url or 'off'}",
        f"  OpenAPI:        {base}/openapi.json   metrics: {base}/metrics",
        f"  try:            curl -H 'Authorization: Basic {DEMO_KEY}' {base}/segments/v1",
        *(
            [trust_instructions(settings.data_dir / "tls" / "ca.pem")]
            if settings.tls and settings.data_dir
            else []
        ),
        *(
            [f"  state:          {settings.data_dir} ({settings.workers} worker(s))"]
            if settings.data_dir
            else []
        ),
        f"  seed {settings.seed}, population {settings.population}, export duration "
        f"{settings.export_duration:g}s, URL TTL {settings.url_ttl:g}s, rate limit "
        f"{settings.rate_limit or 'off'}, failure state {settings.failure_state}",
    ]
    print("\n".join(lines), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("demo", "mcp"):  # commands with flags of their own
        if args[0] == "demo":
            from .testing.demo import main as demo

            raise SystemExit(demo(args[1:]))
        from .client.mcp import main as mcp

        mcp(args[1:])
        return
    command, settings = settings_from(args)
    if command == "serve":
        serve(settings)


if __name__ == "__main__":
    main(sys.argv[1:])

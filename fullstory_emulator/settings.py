"""One typed settings object, fed by defaults, then `FULLSTORY_EMULATOR_*` variables, then flags.

Each setting is declared once, as a dataclass field whose metadata carries its flag, help text and
parser; the CLI and the environment reader are both generated from that declaration, so the
README table, `--help` and the env names cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .clock import check_instant
from .durations import MAX_SECONDS, parse_seconds
from .errors import echo
from .hosts import HostPolicy, parse_allowed_hosts
from .netloc import local_url
from .timestamps import parse_rfc3339

ENV_PREFIX = "FULLSTORY_EMULATOR_"
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?|s|sec|min|h|hour)\s*,\s*(\d+)", re.ASCII)
MAX_REFILL = 1_000_000  # tokens per period
MIN_PERIOD, MAX_PERIOD = 0.001, MAX_SECONDS  # seconds
MAX_BURST = 1_000_000


class SettingsError(ValueError):
    """A setting's value could not be understood; the message names the setting."""


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `refill` tokens every `period` seconds, holding at most `burst`."""

    refill: float
    period: float
    burst: int

    @property
    def per_second(self) -> float:
        return self.refill / self.period

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """`2/60,50` (2 per 60 s, burst 50), `2/min,50`, or `off`."""
        text = text.strip().lower()
        if text in ("off", "none", "0", "false", "no"):
            return None
        match = _RATE.fullmatch(text)
        if not match:
            raise ValueError(
                f"{echo(text)} is not a rate limit like '2/60,50' (2 per 60 s, burst 50) or 'off'"
            )
        period_text = match.group(2)
        period = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}.get(period_text)
        refill, burst_text = float(match.group(1)), match.group(3)
        period = period if period is not None else float(period_text)
        if not 0 < refill <= MAX_REFILL:
            raise ValueError(f"{echo(text)}: the rate must be above 0 and at most {MAX_REFILL}")
        if not MIN_PERIOD <= period <= MAX_PERIOD:
            raise ValueError(
                f"{echo(text)}: the period must be from {MIN_PERIOD:g} to {MAX_PERIOD} seconds"
            )
        if len(burst_text) > 7 or not 1 <= int(burst_text) <= MAX_BURST:
            raise ValueError(f"{echo(text)}: the burst must be from 1 to {MAX_BURST}")
        return cls(refill=refill, period=period, burst=int(burst_text))

    def __str__(self) -> str:
        return f"{self.refill:g}/{self.period:g},{self.burst}"


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def _seconds(text: str) -> float:
    """Seconds: a bare number, or with a unit (500ms, 5m, 2h, 7d); at most ten years."""
    return parse_seconds(text)


def _url_ttl(text: str) -> float:
    """Seconds, at least one: a signed URL's X-Goog-Expires is 1 or more, as the control API's
    urlTtl holds it."""
    value = parse_seconds(text)
    if value < 1:
        raise ValueError(f"{value:g}s is less than 1s: a signed URL lives at least a second")
    return value


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}..{high}")
        return value

    return parse


def _choice(*allowed: str, upper: bool = True) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().upper() if upper else text.strip().lower()
        if value not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return value

    parse.choices = allowed  # type: ignore[attr-defined]  # listed by --help
    return parse


def choices(parse: Callable[[str], Any]) -> tuple[str, ...] | None:
    """The values a setting's parser accepts, when they are a fixed list."""
    found = getattr(parse, "choices", None)
    return tuple(found) if found is not None else None


def _positive(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise ValueError(f"{value:g} is outside {low:g}..{high:g}")
        return value

    return parse


def _start_time(text: str) -> datetime | None:
    if text.strip().lower() in ("", "now"):
        return None
    return check_instant(parse_rfc3339(text.strip()), "--start-time")


def _host(text: str) -> str:
    """An interface to bind: empty means the default (loopback), never every interface."""
    return text.strip() or "127.0.0.1"


def _path(text: str) -> Path | None:
    return Path(text).expanduser() if text.strip() else None


def _optional_text(text: str) -> str | None:
    return text or None


def _port_or_off(text: str) -> int | None:
    if text.strip().lower() in ("off", "none", "no", "false", ""):
        return None
    return _int_range(0, 65535)(text)


_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}


def _bytes(text: str) -> int:
    """A size in bytes: 1000000, 500MB, 2GiB (KB/MB/GB are powers of 10, KiB/MiB/GiB of 2)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*", text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a size such as 1000000, 500MB or 2GiB")
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2) or ""])


MAX_EXPORT_EVENTS = 10**12  # the largest --max-export-events (and control maxExportEvents)
_COUNT_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def _count(text: str) -> int:
    """A count: 10000000, 10_000_000, 500k, 10M or 2G (powers of 10), from 1 to 10^12."""
    match = re.fullmatch(r"\s*(\d+(?:_\d+)*(?:\.\d+)?)\s*([kmg])?\s*", text.lower(), re.ASCII)
    if not match:
        raise ValueError(f"{text!r} is not a count such as 10000000, 500k or 10M")
    value = float(match.group(1).replace("_", "")) * _COUNT_UNITS[match.group(2) or ""]
    if not 1 <= value <= MAX_EXPORT_EVENTS or value != int(value):
        raise ValueError(f"{text!r} is not a whole number from 1 to {MAX_EXPORT_EVENTS:,}")
    return int(value)


MIN_FILE_CACHE_BYTES = 10**6


def _cache_size(text: str) -> int:
    """--file-cache-bytes: a file larger than the whole cache is refused, so a cache too small
    for any export (0 among them) is refused at start instead."""
    value = _bytes(text)
    if value < MIN_FILE_CACHE_BYTES:
        raise ValueError(
            f"{text!r} is less than 1MB; an export file larger than the cache cannot be "
            "downloaded (the emulator answers 507 instead of making it again for every download)"
        )
    return value


def _rate_limit(text: str) -> RateLimit | None:
    return RateLimit.parse(text)


STORE_SCHEMES = ("postgresql://", "postgres://")


def _store(text: str) -> str | None:
    """A PostgreSQL URL, or nothing (memory, or SQLite with --data-dir)."""
    value = text.strip()
    if value.lower() in ("", "memory"):
        return None
    if not value.lower().startswith(STORE_SCHEMES):
        raise ValueError(
            f"{redact_url(value)!r} is not a PostgreSQL URL such as "
            "postgresql://user:password@host:5432/database (or 'memory'; for SQLite use "
            "--data-dir)"
        )
    return value


def redact_url(url: str) -> str:
    """`url` fit for banners, logs and error messages: the one place a URL from a setting or a
    recording is made safe to show. A web URL's user info goes whole (`https://***@host`: its
    user name may be an API key); another's password only (`postgresql://emu:***@db`: a
    database user name is a role, worth showing); a query value named like a credential
    (`password`, `token`, `key`, a signature) becomes ***."""
    match = _AUTHORITY.match(url)
    if match:
        scheme, userinfo = match.group(1), match.group(2)
        if scheme.lower().rstrip(":/") in ("http", "https", "ws", "wss"):
            shown = "***"
        else:
            user, colon, _password = userinfo.partition(":")
            shown = f"{user}:***" if colon else userinfo
        url = f"{scheme}{shown}@{url[match.end() :]}"
    return _SECRET_QUERY.sub(r"\1***", url)


_AUTHORITY = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/?#]*)@", re.I)
_SECRET_QUERY = re.compile(
    r"([?&](?:password|passwd|pwd|token|access_token|api_key|apikey|key|secret|signature|sig"
    r"|x-goog-signature|x-amz-signature)=)[^&#]*",
    re.I,
)


def _option(
    default: Any,
    parse: Callable[[str], Any],
    help: str,
    *,
    flag: str | None = None,
    negate: bool = False,
    metavar: str | None = None,
) -> Any:
    """Declare a setting: `flag` overrides the derived `--name`, `negate` makes a --no-X switch."""
    return field(
        default=default,
        metadata={"parse": parse, "help": help, "flag": flag, "negate": negate, "metavar": metavar},
    )


@dataclass(frozen=True)
class Settings:
    host: str = _option(
        "127.0.0.1", _host, "interface to bind (empty: loopback); 0.0.0.0 exposes the emulator"
    )
    port: int = _option(8080, _int_range(0, 65535), "port of the REST API and downloads")
    mcp_port: int | None = _option(
        9090,
        _port_or_off,
        "port of the MCP server (streamable HTTP at /mcp) started beside the API, or 'off'",
        metavar="PORT",
    )
    allowed_hosts: tuple[str, ...] | None = _option(
        None,
        parse_allowed_hosts,
        "host names answered besides localhost, 127.x, [::1] and --public-url's host, on any "
        "port ('.example.com': a domain and its subdomains; '*': any host); another Host gets "
        "421. Unset: only those on a loopback --host, any host on another (0.0.0.0)",
        metavar="HOST[,HOST...]",
    )
    seed: int = _option(1, _int_range(0, 2**63 - 1), "seed of every id, datum and file")
    start_time: datetime | None = _option(
        None, _start_time, "the clock's initial instant (RFC 3339); default now", metavar="TIME"
    )
    freeze_clock: bool = _option(
        False, _bool, "stop the clock at its start; time moves only when told"
    )
    finish_stalled_after_polls: int = _option(
        0,
        _int_range(0, 10**6),
        "finish a pending export anyway once this many polls in a row found the clock standing "
        "still (a frozen clock and a client that really sleeps); 0: never",
        metavar="N",
    )
    export_duration: float = _option(
        2.0, _seconds, "seconds a small export stays PENDING", metavar="SECONDS"
    )
    export_duration_per_million: float = _option(
        10.0, _seconds, "extra PENDING seconds per million exported events", metavar="SECONDS"
    )
    url_ttl: float = _option(300.0, _url_ttl, "download URL lifetime in seconds", metavar="SECONDS")
    export_retention: float = _option(
        7 * 86400.0,
        _seconds,
        "how long a finished export can be fetched (results.expires)",
        metavar="SECONDS",
    )
    failure_state: str = _option(
        "ERROR",
        _choice("ERROR", "FAILED"),
        "state name of a failed operation; FullStory's own clients (hauser, the SDKs) "
        "recognise only FAILED",
    )
    rate_limit: RateLimit | None = _option(
        RateLimit(2, 60, 50),
        _rate_limit,
        "token bucket per key and endpoint: 'N/SECONDS,BURST' or 'off'",
        metavar="SPEC",
    )
    html_escape: bool = _option(
        True,
        _bool,
        "write & < > in JSON strings as \\u0026 \\u003c \\u003e, as Go does; on unless "
        "--no-html-escape or FULLSTORY_EMULATOR_HTML_ESCAPE=false",
        flag="--no-html-escape",
        negate=True,
    )
    keys: Path | None = _option(
        None,
        _path,
        "JSON file of API keys and roles ('example': the packaged one); without it any "
        "well-formed key is an admin",
        metavar="FILE",
    )
    strict_auth: bool = _option(
        False, _bool, "accept only 'Authorization: Basic <key>' (no Bearer, no base64 user:pass)"
    )
    segments: Path | None = _option(
        None,
        _path,
        "JSON file of segments added to the embedded ones ('example': the packaged examples)",
        metavar="FILE",
    )
    replay: Path | None = _option(
        None,
        _path,
        "replay a folder written by `fullstory-emulator record`: its segments, its recorded "
        "exports inside their windows, data in the org's shape outside them, its timelines "
        "(--segments then adds to the recorded segments)",
        metavar="DIR",
    )
    population: int = _option(1000, _int_range(1, 10**9), "number of individuals in the world")
    density: float = _option(
        1.0,
        _positive(0.01, 100.0),
        "visits per individual, as a multiple of the default world's: 1 gives 1000 individuals "
        "~200 sessions and ~8k events a day (a few hundred an hour, in a daily and weekly "
        "rhythm, growing over the first 90 days)",
        metavar="FACTOR",
    )
    data_days: int = _option(90, _int_range(1, 3650), "days of data before the clock's start")
    org_id: str = _option("o-EMU42-na1", str, "organisation id shown in segment URLs")
    public_url: str | None = _option(
        None,
        _optional_text,
        "base URL written into download links (default http://HOST:PORT)",
        metavar="URL",
    )
    bucket: str = _option("fullstory-emulator-exports", str, "storage bucket in download URLs")
    signing_secret: str | None = _option(
        None,
        _optional_text,
        "HMAC secret for download URLs (default: random per instance)",
        metavar="SECRET",
    )
    data_dir: Path | None = _option(
        None, _path, "keep all state in SQLite in DIR, across restarts and workers", metavar="DIR"
    )
    store: str | None = _option(
        None,
        _store,
        "keep all state in PostgreSQL at this URL (postgresql://user:password@host/db), "
        "shared by every replica",
        metavar="URL",
    )
    workers: int = _option(
        1, _int_range(1, 64), "uvicorn worker processes (sharing --data-dir or --store)"
    )
    tls: bool = _option(
        False, _bool, "serve HTTPS with a certificate from a local CA kept in the data dir"
    )
    access_log: str = _option(
        "text",
        _choice("text", "json", "off", upper=False),
        "access log on stdout: text (uvicorn's lines), json (one object per request) or off",
    )
    log_level: str = _option(
        "info",
        _choice("debug", "info", "warning", "error", upper=False),
        "level of the server's own messages on stderr (uvicorn's and the emulator's); "
        "the access log follows --access-log",
    )
    control_token: str | None = _option(
        None,
        _optional_text,
        "require X-Emulator-Token: TOKEN on /__emulator/* (except health); with "
        "--control-auth tenant, the admin token for instance-wide control",
        metavar="TOKEN",
    )
    control_auth: str = _option(
        "open",
        _choice("open", "tenant", upper=False),
        "control API authority: 'open' (a key acts on its tenant, no key on the instance) or "
        "'tenant' (a key is required and touches only its tenant; no key needs the admin token)",
    )
    scenario: str | None = _option(
        None,
        _optional_text,
        "apply named scenarios at start (comma-separated), embedded or from --scenarios",
        metavar="NAMES",
    )
    scenarios: Path | None = _option(
        None,
        _path,
        "JSON file of your own scenarios, added over the embedded ones (same name: yours)",
        metavar="FILE",
    )
    max_body_bytes: int = _option(
        1 << 20, _int_range(1024, 1 << 30), "largest accepted request body, in bytes"
    )
    read_timeout: float = _option(
        30.0,
        _seconds,
        "seconds a client has to send a request's headers, and again its body",
        metavar="SECONDS",
    )
    journal_max_bytes: int = _option(
        16 << 20,
        _int_range(1 << 16, 1 << 34),
        "bytes of request journal kept (the oldest entries go first; at most 50,000 entries)",
    )
    operations_max_bytes: int = _option(
        64 << 20,
        _int_range(1 << 16, 1 << 36),
        "bytes of export operations kept in memory without --data-dir (the oldest go first)",
    )
    export_workers: int = _option(
        0,
        _int_range(0, 256),
        "processes that make large export files; 0: one per usable core, 1: none (in-process)",
        metavar="N",
    )
    file_cache_bytes: int = _option(
        2 << 30,
        _cache_size,
        "disk kept for finished export files (in --data-dir/files, else a temporary folder); "
        "least recently used files go first and are remade byte-identically; making a file that "
        "outgrows all of it stops there, and its downloads answer 507 (at least 1MB)",
        metavar="SIZE",
    )
    max_export_events: int = _option(
        10_000_000,
        _count,
        "largest export a tenant may create, in estimated events (10M: ~0.7 GB of NDJSON gzip, "
        "half a minute of two cores); a larger one is refused with 400 (per tenant: "
        "POST /__emulator/config maxExportEvents)",
        metavar="N",
    )

    @classmethod
    def load(
        cls, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Defaults, overridden by `FULLSTORY_EMULATOR_*` from `environ`, overridden by `flags`.

        `flags` holds already-parsed values keyed by field name (only those given on the command
        line); `environ` holds raw strings.
        """
        _warn_unknown(environ or {})
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = (environ or {}).get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                try:
                    values[f.name] = f.metadata["parse"](raw)
                except ValueError as exc:
                    raise SettingsError(f"{ENV_PREFIX}{f.name.upper()}: {exc}") from None
        values.update(flags or {})
        return cls(**values)

    def export_processes(self) -> int:
        """How many processes make a large export file: --export-workers, or the usable cores."""
        if self.export_workers:
            return self.export_workers
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1

    def host_policy(self) -> HostPolicy:
        """The Host and Origin headers this server answers (--allowed-hosts)."""
        return HostPolicy.build(self.host, self.allowed_hosts, self.public_url)

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return local_url("https" if self.tls else "http", self.host, self.port)

    def to_environ(self) -> dict[str, str]:
        """These settings as FULLSTORY_EMULATOR_* variables, which `load` reads back: how worker
        processes receive them."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                text = "off" if f.name in ("rate_limit", "mcp_port") else ""
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, datetime):
                text = value.isoformat().replace("+00:00", "Z")
            elif isinstance(value, tuple):
                text = ",".join(value)
            else:
                text = str(value)
            out[ENV_PREFIX + f.name.upper()] = text
        return out


_warned: set[str] = set()  # unknown variables already reported by this process


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each FULLSTORY_EMULATOR_* variable that names no setting (a typo would
    otherwise be ignored without a word), with the closest setting's variable."""
    known = [f.name.upper() for f in dataclasses.fields(Settings)]
    warnings = []
    for name in sorted(environ):
        suffix = name[len(ENV_PREFIX) :]
        if not name.startswith(ENV_PREFIX) or suffix in known:
            continue
        close = difflib.get_close_matches(suffix, known, n=1, cutoff=0.6)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        warnings.append(f"fullstory-emulator: warning: {name} is not a setting, ignored{hint}")
    return warnings


def _warn_unknown(environ: Mapping[str, str]) -> None:
    for warning in unknown_variables(environ):
        if warning not in _warned:
            _warned.add(warning)
            print(warning, file=sys.stderr, flush=True)


def describe() -> list[tuple[str, str, str, str]]:
    """(flag, env var, default, help) for every setting, for --help and the README."""
    rows = []
    for f in dataclasses.fields(Settings):
        meta = f.metadata
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        env = ENV_PREFIX + f.name.upper()
        if meta["negate"]:  # the flag turns off what the variable names
            env += "=false"
        rows.append((flag, env, shown_default(f.default), meta["help"]))
    return rows


def shown_default(value: Any) -> str:
    """A default as a user would type it ('' for none)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def markdown_table() -> str:
    """The README's settings table, generated from the declaration (a test keeps them equal)."""
    lines = [
        "| flag | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for f, (flag, env, default, help_text) in zip(
        dataclasses.fields(Settings), describe(), strict=True
    ):
        allowed = choices(f.metadata["parse"])
        shown = f"`{default}`" if default else "—"
        if allowed:
            help_text += f" (one of {', '.join(f'`{c}`' for c in allowed)})"
        meaning = help_text.replace("|", "\\|")
        lines.append(f"| `{flag}` | `{env}` | {shown} | {meaning} |")
    return "\n".join(lines)

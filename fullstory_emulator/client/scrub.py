"""Scrubbing: the personal data of recorded rows replaced by fake data of the same kind.

A recording is meant to be committed to a test repository, so before a row is written its
personal values are replaced: an email by an email, a name by a name, an IP address by an IP
address, a location by a location in the same format, a user id by one of the same shape, and
the values of a URL's query string by values of the same shape (the scheme, host and path, which
say what the page is, stay). Any string anywhere that holds an email address has it replaced.
FullStory's own ids (IndvId, SessionId, PageId) are not personal and stay, so rows stay joinable.

A replacement is a function of the value and a per-recording secret salt: a keyed HMAC of the
value seeds faker. So the same email becomes the same fake email in every row, every file and
every run of the recording (joins across files still work), while nobody without the salt can
confirm a guess ("was alice@example.com in this org?") by scrubbing it and comparing. The salt
lives beside the resume state in `.recording/`, which is never committed.

Only what changes is rewritten: a row's other values keep their bytes exactly as served.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import random
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from faker import Faker

from ..recording import CUSTOM_VAR_PREFIXES

SALT_FILE = "salt"
USER_ID_FIELDS = frozenset({"UserId", "Uid", "UserAppKey"})
EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_LATLONG = re.compile(r"(\s*)(-?)(\d+)(?:\.(\d+))?(\s*,\s*)(-?)(\d+)(?:\.(\d+))?(\s*)")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_AUTHORITY = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)(.*)", re.DOTALL)
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_GO_ESCAPES = (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"))
_MAX_INT64 = 2**63 - 1
V = TypeVar("V")
R = TypeVar("R")


def field_kind(name: str) -> str | None:
    """What a field holds, from its name: FullStory's export fields say it plainly."""
    if name.endswith("Email"):
        return "email"
    if name.endswith("DisplayName"):
        return "name"
    if name in USER_ID_FIELDS:
        return "uid"
    if name.endswith("Ip"):
        return "ip"
    if name.endswith("LatLong"):
        return "latlong"
    if name.endswith("Url") or name == "LastPage":
        return "url"
    return None


def load_salt(folder: Path) -> bytes:
    """The recording's salt from `folder/salt`, made (32 random bytes, readable by the owner
    only) on first use; copy the file into a new recording's `.recording/` to scrub it alike."""
    path = folder / SALT_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise ValueError(f"{path}: not a salt (hex); delete it to make a new one") from None
    folder.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(salt.hex() + "\n")
    return salt


class Scrubber:
    """Replaces personal values, consistently for one salt."""

    def __init__(self, salt: bytes) -> None:
        if len(salt) < 16:
            raise ValueError("a scrub salt has at least 16 bytes")
        self._salt = salt
        self._fake = Faker("en_US")
        self._seen: dict[tuple[str, Any], Any] = {}

    # -- rows ----------------------------------------------------------------------------------

    def line(self, raw: bytes) -> bytes:
        """One NDJSON line (without its newline), scrubbed. In a flat row (as FullStory's
        export rows are) the bytes of every value that holds nothing personal are kept as they
        were; a row with nested values is written again whole. Raises ValueError for a line that
        is not JSON."""
        text = raw.decode("utf-8")
        data = json.loads(text)
        if not isinstance(data, dict) or any(isinstance(v, dict | list) for v in data.values()):
            scrubbed = self.value(None, data)
            return raw if _same(scrubbed, data) else _encode(scrubbed, text).encode("utf-8")
        edits: list[tuple[int, int, str]] = []
        for name, value in data.items():
            if _same(self.value(name, value), value):
                continue
            for start, end, original in _spans(text, name):
                edits.append((start, end, _encode(self.value(name, original), text[start:end])))
        if not edits:
            return raw
        out, last = [], 0
        for start, end, replacement in sorted(edits):
            out += [text[last:start], replacement]
            last = end
        out.append(text[last:])
        return "".join(out).encode("utf-8")

    def value(self, name: str | None, value: Any) -> Any:
        """`value` of the field `name` (None inside a nested value), scrubbed."""
        if isinstance(value, dict):
            return {k: self.value(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(name, v) for v in value]
        kind = field_kind(name) if name else None
        if kind == "uid" and isinstance(value, int) and not isinstance(value, bool):
            return self._cached("uid", value, self._int_id)
        if not isinstance(value, str) or not value.strip():
            return value
        if kind == "email":
            return self.email(value) if "@" in value else self._cached("shape", value, _shape)
        if kind == "name":
            return self._cached("name", value, self._name)
        if kind == "uid":
            return (
                self.email(value) if EMAIL.fullmatch(value) else self._cached("uid", value, _shape)
            )
        if kind == "ip":
            return self.ip(value)
        if kind == "latlong":
            return self._cached("latlong", value, _latlong)
        if kind == "url" or _URL.fullmatch(value):
            return self.url(value)
        if name and name.startswith(CUSTOM_VAR_PREFIXES) and _is_ip(value):
            return self.ip(value)
        return self.text(value)

    # -- kinds ---------------------------------------------------------------------------------

    def email(self, value: str) -> str:
        return self._cached("email", value, self._email)

    def text(self, value: str) -> str:
        """Free text with every email address in it replaced."""
        if "@" not in value:
            return value
        return EMAIL.sub(lambda m: self.email(m.group(0)), value)

    def ip(self, value: str) -> str:
        if _is_ip(value):
            return self._cached("ip", value, self._ip)
        replaced = _IPV4.sub(lambda m: self._cached("ip", m.group(0), self._ip), value)
        return replaced if replaced != value else self._cached("shape", value, _shape)

    def url(self, value: str) -> str:
        """The same scheme, host and path (emails in it replaced), the query string's values
        (and a fragment's, when it holds `key=value` pairs) replaced by values of their shape,
        and a password or user name before the host replaced too."""
        return self._cached("url", value, self._url)

    def _url(self, value: str, rng: random.Random) -> str:
        rest, hash_, fragment = value.partition("#")
        base, mark, query = rest.partition("?")
        parts = _AUTHORITY.match(base)
        if parts:
            scheme, authority, path = parts.groups()
            userinfo, at, host = authority.rpartition("@")
            if at:
                userinfo = ":".join(self._cached("shape", p, _shape) for p in userinfo.split(":"))
            base = scheme + userinfo + at + host + self.text(path)
        else:
            base = self.text(base)
        if mark:
            query = self._query(query)
        if hash_ and "=" in fragment:
            fragment = self._query(fragment)
        return base + mark + query + hash_ + fragment

    def _query(self, query: str) -> str:
        pairs = []
        for pair in query.split("&"):
            key, eq, val = pair.partition("=")
            if not eq:  # a bare value
                pairs.append(self._cached("shape", key, _shape) if key else key)
            else:
                pairs.append(key + eq + (self._cached("shape", val, _shape) if val else val))
        return "&".join(pairs)

    def _email(self, value: str, rng: random.Random) -> str:
        fake = self._faker(rng)
        return f"{fake.user_name()}{rng.randrange(100, 1000)}@{fake.safe_domain_name()}"

    def _name(self, value: str, rng: random.Random) -> str:
        fake = self._faker(rng)
        if len(value.split()) == 1:
            return str(fake.first_name())
        return f"{fake.first_name()} {fake.last_name()}"

    def _ip(self, value: str, rng: random.Random) -> str:
        fake = self._faker(rng)
        return str(fake.ipv6() if ":" in value else fake.ipv4_public())

    @staticmethod
    def _int_id(value: int, rng: random.Random) -> int:
        digits = len(str(abs(value)))
        low = 10 ** (digits - 1) if digits > 1 else 0
        new = rng.randint(low, min(10**digits - 1, _MAX_INT64))
        return -new if value < 0 else new

    # -- consistency ---------------------------------------------------------------------------

    def _cached(self, kind: str, value: V, make: Callable[[V, random.Random], R]) -> R:
        """The replacement of `value` as `kind`: made once, from a generator seeded by the
        keyed digest of both, and never the value itself."""
        key = (kind, value)
        if key in self._seen:
            seen: R = self._seen[key]
            return seen
        digest = hmac.new(self._salt, f"{kind}\0{value}".encode(), hashlib.sha256).digest()
        rng = random.Random(digest)
        new = make(value, rng)
        draws = 1
        while _same(new, value) and draws < 20:  # a short value may come out as itself
            new, draws = make(value, rng), draws + 1
        self._seen[key] = new
        return new

    def _faker(self, rng: random.Random) -> Faker:
        self._fake.seed_instance(rng.getrandbits(64))
        return self._fake


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


def _shape(value: str, rng: random.Random) -> str:
    """A value of the same shape: each digit, lower- and upper-case letter replaced by a random
    one of its class, everything else (punctuation, `%XX` escapes) kept."""
    out: list[str] = []
    i = 0
    while i < len(value):
        escape = _ESCAPE.match(value, i)
        if escape:
            out.append(escape.group(0))
            i = escape.end()
            continue
        c = value[i]
        if c.isdigit():
            out.append(str(rng.randrange(10)))
        elif c.isalpha():
            letter = chr(rng.randrange(ord("a"), ord("z") + 1))
            out.append(letter.upper() if c.isupper() else letter)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _latlong(value: str, rng: random.Random) -> str:
    """A random place, written like `value` (`33.7490,-84.3880`: the same separator and the
    same number of decimals)."""
    match = _LATLONG.fullmatch(value)
    if not match:
        return _shape(value, rng)
    lead, _, _, lat_dec, sep, _, _, lng_dec, trail = match.groups()
    lat = f"{rng.uniform(-60.0, 70.0):.{len(lat_dec or '')}f}"
    lng = f"{rng.uniform(-180.0, 180.0):.{len(lng_dec or '')}f}"
    return f"{lead}{lat}{sep}{lng}{trail}"


def _spans(text: str, name: str) -> Iterator[tuple[int, int, Any]]:
    """(start, end, value) of each top-level value named `name` in a flat JSON object's text.

    In a flat object a string value cannot hold `"name":` (its quotes are escaped), so every
    match is a member."""
    decoder = json.JSONDecoder()
    for match in re.finditer(re.escape(json.dumps(name)) + r"[ \t\r\n]*:[ \t\r\n]*", text):
        value, end = decoder.raw_decode(text, match.end())
        yield match.end(), end, value


def _encode(value: Any, like: str) -> str:
    """`value` as JSON, escaped as the text it replaces was: `\\u0026` for `&` as Go writes
    it, `\\u00e9` for non-ASCII letters as an ASCII-only encoder does."""
    ascii_only = like.isascii() and re.search(r"\\u(?!00(?:26|3[cCeE]))[0-9a-fA-F]{4}", like)
    text = json.dumps(value, ensure_ascii=bool(ascii_only), separators=(",", ":"))
    if re.search(r"\\u00(?:26|3[cCeE])", like):
        for raw, escaped in _GO_ESCAPES:
            text = text.replace(raw, escaped)
    return text


def scrub_segments(
    segments: Sequence[Mapping[str, Any]], scrubber: Scrubber
) -> list[dict[str, Any]]:
    """The segments list with its creators (emails in FullStory) replaced like the rows'."""
    out = []
    for segment in segments:
        item = dict(segment)
        creator = item.get("creator")
        if isinstance(creator, str) and creator.strip():
            item["creator"] = (
                scrubber.email(creator)
                if "@" in creator
                else scrubber.value("DisplayName", creator)
            )
        out.append(item)
    return out

"""API keys: who is calling (tenant) and what they may do (role).

FullStory sends the key raw after `Basic ` (not base64 of user:pass). Real clients also send
`Bearer <key>`, and clients generated from a username/password description send base64 of
`key:` or `:key`; all are accepted unless strict mode asks for the documented form only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

from .errors import ApiError, PermissionDenied, Unauthenticated

DEMO_KEY = "na1.emulator-demo-key"
# The MCP adapter's own key, so that an agent's calls are a tenant of their own and never spend
# the rate limit of the demo key a user exports with.
MCP_KEY = "na1.emulator-mcp-key"
EXPORT_ROLES = frozenset({"admin", "architect"})
KNOWN_ROLES = frozenset({"admin", "architect", "standard", "readonly"})
KNOWN_HEADERS = 4096
MIN_TOKEN = 4
_KEY_SHAPE = re.compile(rf"^[a-z]{{2}}\d\.[A-Za-z0-9._~+/=-]{{{MIN_TOKEN},}}$")


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: str
    key_id: str  # a digest of the key: what rate limits and logs may keep
    label: str = ""  # how a person recognises the tenant: its name, or the key's region and prefix

    def require_export_role(self) -> None:
        if self.role not in EXPORT_ROLES:
            raise PermissionDenied(
                f"Segment Export needs an Admin or Architect API key; this key's role is "
                f"{self.role!r}"
            )


def is_well_formed(key: str) -> bool:
    return bool(_KEY_SHAPE.match(key))


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def mask(key: str) -> str:
    return key[:4] + "…" if len(key) > 4 else "…"


def label_of(key: str) -> str:
    """The key's region and a short prefix of its token (`na1.emul…`): enough for a person to
    tell their tenant from another, never enough to use the key."""
    region, _, token = key.partition(".")
    return f"{region}.{token[: 4 if len(token) >= 8 else 2]}…"


@dataclass(frozen=True)
class KeyEntry:
    role: str
    tenant: str
    label: str


class KeyRing:
    """Known keys from a fixtures file; with none, every well-formed key is its own admin tenant."""

    def __init__(self, entries: dict[str, KeyEntry] | None = None, *, strict: bool = False) -> None:
        self._entries = entries
        self.strict = strict
        self._known: dict[str, Principal] = {}  # Authorization header -> its principal

    @classmethod
    def from_file(cls, path: Path | Traversable, *, strict: bool = False) -> KeyRing:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read keys file {path}: {exc}") from None
        items = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ValueError(f'keys file {path}: expected {{"keys": [{{"key": ..., ...}}]}}')
        entries: dict[str, KeyEntry] = {}
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise ValueError(f"keys file {path}: entry {i} needs a string 'key'")
            role = str(item.get("role", "admin")).lower()
            if role not in KNOWN_ROLES:
                raise ValueError(
                    f"keys file {path}: entry {i} has role {role!r}; "
                    f"allowed: {', '.join(sorted(KNOWN_ROLES))}"
                )
            named = item.get("tenant")
            tenant = str(named or key_id(item["key"]))
            label = str(named) if named else label_of(item["key"])
            entries[item["key"]] = KeyEntry(role=role, tenant=tenant, label=label)
        return cls(entries, strict=strict)

    @property
    def open(self) -> bool:
        """True when any well-formed key is accepted (no keys file)."""
        return self._entries is None

    def authenticate(self, header: str | None) -> Principal:
        """The principal of an Authorization header; a header seen before costs one lookup."""
        if header is not None:
            known = self._known.get(header)
            if known is not None:
                return known
        principal = self._authenticate(header)
        if header is not None and len(header) <= 256:  # bounded in count and size
            if len(self._known) >= KNOWN_HEADERS:
                self._known.clear()
            self._known[header] = principal
        return principal

    def _authenticate(self, header: str | None) -> Principal:
        key = self._credential(header)
        if self._entries is None:
            if not is_well_formed(key):
                raise Unauthenticated(
                    f"API key {mask(key)!r} is not well formed; FullStory keys look like "
                    f"'na1.<token>' or 'eu1.<token>': a region (two letters and a digit), a dot, "
                    f"and a token of at least {MIN_TOKEN} characters (letters, digits, ._~+/=-)"
                )
            digest = key_id(key)
            return Principal(tenant=digest, role="admin", key_id=digest, label=label_of(key))
        entry = self._entries.get(key)
        if entry is None:
            raise Unauthenticated(f"API key {mask(key)!r} is not recognised")
        return Principal(entry.tenant, entry.role, key_id=key_id(key), label=entry.label)

    def labels(self) -> dict[str, str]:
        """Tenant -> label, for the tenants whose keys this process has seen (and every tenant
        of a keys file): key ids alone mean nothing to a person."""
        found = {} if self._entries is None else {e.tenant: e.label for e in self._entries.values()}
        found.update((p.tenant, p.label) for p in self._known.values())
        return found

    def demo(self) -> Principal | None:
        """The demo key's principal, if it may export: the tenant a fresh console starts
        exports for before any API call has made one."""
        try:
            principal = self.authenticate(f"Basic {DEMO_KEY}")
        except ApiError:
            return None
        return principal if principal.role in EXPORT_ROLES else None

    def _credential(self, header: str | None) -> str:
        if not header or not header.strip():
            raise Unauthenticated(
                "missing Authorization header; send 'Authorization: Basic <your API key>'"
            )
        scheme, _, value = header.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        allowed = ("basic",) if self.strict else ("basic", "bearer")
        if scheme not in allowed or not value:
            raise Unauthenticated(
                "Authorization must be 'Basic <your API key>'"
                + ("" if self.strict else " (or 'Bearer <your API key>')")
            )
        if scheme == "basic" and not self.strict and not is_well_formed(value):
            return _from_user_pass(value) or value
        return value


def _from_user_pass(value: str) -> str | None:
    """The key inside base64 `user:pass`, as clients built for HTTP basic auth send it."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, or non-ASCII text
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    for candidate in (user, password):
        if is_well_formed(candidate):
            return candidate
    return None

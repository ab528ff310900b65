"""The shape of a recorded org, laid over the shop's world: data generated "in the org's shape".

A recording's catalogue (`recording.Catalogue`) says which fields the org's rows carried, how
their values looked, and which hosts and paths its pages had. A `Shape` rewrites the world's rows
with it as they are made (each page's part once, then custom events), as a pure function of
(seed, the row, the catalogue), so a shaped world is as deterministic as the plain one and can
be rebuilt in a worker process from the catalogue alone:

- the org's custom variables replace the shop's: `user_*` drawn once per individual, `page_*`
  once per page, `evt_*` on custom events (each custom event name carries a stable subset of
  them, about as often as the recording saw them); each value comes from its profile (its
  sample of values, else its range) and is left out at the profile's null rate;
- page URLs (`PageUrl`, and `PageRefererUrl` when it is one of the shop's own) move onto the
  org's hosts and paths, by a stable mapping of each shop path onto one of the org's; custom
  event names and page names likewise onto the org's recorded ones;
- the fields the org never had are left out (for a kind of export the recording holds).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..contract import CUSTOM_KINDS, EVENT_FIELDS, INDIVIDUAL_FIELDS
from ..ids import mix, text_key
from ..recording import Catalogue, FieldProfile, catalogue_json
from . import vocab as V
from .events import EVENT_LEVEL_FIELDS

TAG_USER, TAG_PAGE, TAG_EVT, TAG_CARRIES, TAG_HOST, TAG_PATH, TAG_WORD = range(0x91, 0x98)
# Names the org gives things: the shop's are mapped onto the org's recorded ones.
VOCABULARY = ("EventCustomName", "PageName")
_URL_CACHE = 4096  # shop URLs (a few hundred paths) and event names remembered
_MASK64 = (1 << 64) - 1
_EVENT_ONLY = frozenset(EVENT_FIELDS) - frozenset(INDIVIDUAL_FIELDS)
_INDIVIDUAL_ONLY = frozenset(INDIVIDUAL_FIELDS) - frozenset(EVENT_FIELDS)
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _typed(value: Any, json_type: str) -> bool:
    if isinstance(value, bool) and json_type != "boolean":
        return False
    return isinstance(value, _TYPES[json_type])


class Draws:
    """A cheap stream of seeded draws (splitmix64): seeding `random.Random` costs ~10 us, too
    much once per page and per custom event; this costs nothing to start."""

    __slots__ = ("_state",)

    def __init__(self, key: int) -> None:
        self._state = key & _MASK64

    def random(self) -> float:
        """A float in [0, 1)."""
        self._state = z = (self._state + 0x9E3779B97F4A7C15) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return ((z ^ (z >> 31)) >> 11) / 9007199254740992.0  # 53 bits

    def below(self, n: int) -> int:
        """An integer in [0, n)."""
        return min(n - 1, int(self.random() * n))


def typed_values(profile: FieldProfile) -> tuple[Any, ...]:
    """The profile's sampled values of its own type (a sample may hold a stray other one)."""
    return tuple(v for v in profile.values if _typed(v, profile.type))


def draw(profile: FieldProfile, rng: Draws, values: tuple[Any, ...] = ()) -> Any:
    """A value like the profile's, or None (left out) at its null rate: one of its sampled
    `values` (`typed_values`), else a number in its range (a boolean needs neither)."""
    if rng.random() < profile.null_rate:
        return None
    if values:
        return values[rng.below(len(values))]
    low, high = profile.minimum, profile.maximum
    if profile.type in ("integer", "number") and low is not None and high is not None:
        if profile.type == "integer":
            lo, hi = math.ceil(low), math.floor(high)
            return lo + rng.below(hi - lo + 1) if lo <= hi else int(low)
        return round(low + (high - low) * rng.random(), 2)
    if profile.type == "boolean":
        return rng.random() < 0.5
    return None


class Shape:
    """How the org's rows look, applied to the world's (see the module's docstring). Equal
    shapes have equal digests; the digest is part of every export file's identity."""

    __slots__ = (
        "_carried",
        "_carries",
        "_drop",
        "_hosts",
        "_named",
        "_paths",
        "_profiles",
        "_salts",
        "_unwanted_on_event",
        "_unwanted_on_page",
        "_urls",
        "_values",
        "_words",
        "catalogue",
        "custom_vars",
        "digest",
        "event_drop",
        "event_level",
    )

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        canonical = json.dumps(
            catalogue_json(catalogue), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        self.digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
        found = catalogue.custom_vars
        self.custom_vars: dict[str, tuple[str, ...]] = {
            kind: tuple(sorted(n for n in found if n.startswith(kind + "_")))
            for kind in CUSTOM_KINDS
        }
        self._profiles = {name: found[name] for name in sorted(found)}
        self._values = {name: typed_values(p) for name, p in self._profiles.items()}
        known = frozenset(catalogue.fields)
        # A kind the recording holds no export of keeps every field: nothing says it lacks any.
        self._drop = {
            "event": frozenset(EVENT_FIELDS) - known if known & _EVENT_ONLY else frozenset(),
            "individual": (
                frozenset(INDIVIDUAL_FIELDS) - known if known & _INDIVIDUAL_ONLY else frozenset()
            ),
        }
        self.event_level = (EVENT_LEVEL_FIELDS - frozenset(V.EVT_VARS)) | frozenset(
            self.custom_vars["evt"]
        )
        self._hosts = tuple(
            h.rstrip("/") if "://" in h else f"https://{h}" for h in catalogue.hosts
        )
        self._paths = tuple(p if p.startswith("/") else "/" + p for p in catalogue.paths)
        # How often an evt_* variable rides on a custom event: its rows over the custom events.
        custom = catalogue.fields.get("EventCustomName")
        self._carries = {
            name: min(1.0, p.count / custom.count) if custom and custom.count else 1.0
            for name, p in self._profiles.items()
            if name.startswith("evt_")
        }
        self._words = {
            field: words
            for field in VOCABULARY
            if field in catalogue.fields and (words := typed_values(catalogue.fields[field]))
        }
        # event-level fields the org never had: every event is rewritten when there are some
        self.event_drop = self._drop["event"] & EVENT_LEVEL_FIELDS
        self._unwanted_on_page = (self._drop["event"] - EVENT_LEVEL_FIELDS) | frozenset(V.PAGE_VARS)
        self._unwanted_on_event = self.event_drop | frozenset(V.EVT_VARS)
        self._urls: dict[str, str] = {}  # by shop path
        self._salts: dict[tuple[int, int], int] = {}
        self._named: dict[tuple[str, str], Any] = {}
        self._carried: dict[tuple[int, str], tuple[int, tuple[str, ...]]] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Shape) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Shape({self.digest})"

    def __reduce__(self) -> tuple[Any, ...]:  # to worker processes: the catalogue, no caches
        return (Shape, (self.catalogue,))

    # -- fields --------------------------------------------------------------------------------
    def columns(self, kind: str, columns: Iterable[str]) -> tuple[str, ...]:
        """`columns` without the fields the org never had in an export of `kind`."""
        drop = self._drop[kind]
        return tuple(c for c in columns if c not in drop)

    def individual_row(self, row: dict[str, Any]) -> dict[str, Any]:
        drop = self._drop["individual"]
        return {k: v for k, v in row.items() if k not in drop} if drop else row

    # -- values --------------------------------------------------------------------------------
    def _vars(self, rng: Draws, names: Iterable[str]) -> dict[str, Any]:
        out = {}
        for name in names:
            value = draw(self._profiles[name], rng, self._values[name])
            if value is not None and value != "":
                out[name] = value
        return out

    def user_vars(self, seed: int, index: int) -> dict[str, Any]:
        """The individual's `user_*` variables: the same in every row and export."""
        return self._vars(Draws(mix(seed, index, TAG_USER)), self.custom_vars["user"])

    def page_vars(self, seed: int, page_id: int) -> dict[str, Any]:
        # page ids are already well-spread 63-bit hashes: one xor keys the page's draws
        return self._vars(Draws(page_id ^ self._salt(seed, TAG_PAGE)), self.custom_vars["page"])

    def event_vars(self, seed: int, row: Mapping[str, Any]) -> dict[str, Any]:
        """A custom event's `evt_*` variables: the event name decides which it carries."""
        text = str(row.get("EventCustomName", ""))
        found = self._carried.get((seed, text))
        if found is None:
            name = text_key(text)
            found = (
                name,
                tuple(
                    var
                    for var in self.custom_vars["evt"]
                    if mix(seed, name, text_key(var), TAG_CARRIES) / 2**64 < self._carries[var]
                ),
            )
            if len(self._carried) >= _URL_CACHE:
                self._carried.clear()
            self._carried[(seed, text)] = found
        name, carried = found
        if not carried:
            return {}
        page, offset = int(row.get("PageId", 0)), int(row.get("EventPageOffset", 0))
        key = page ^ (offset * 0x9E3779B97F4A7C15) ^ name ^ self._salt(seed, TAG_EVT)
        return self._vars(Draws(key), carried)

    def _salt(self, seed: int, tag: int) -> int:
        found = self._salts.get((seed, tag))
        if found is None:
            if len(self._salts) >= _URL_CACHE:
                self._salts.clear()
            found = self._salts[(seed, tag)] = mix(seed, tag)
        return found

    def url(self, url: str) -> str:
        """A shop URL on the org's hosts and paths (the same shop path, the same org URL); any
        other URL as it is."""
        if not url.startswith(V.SHOP) or not (self._hosts or self._paths):
            return url
        path = url[len(V.SHOP) :].split("#", 1)[0].split("?", 1)[0] or "/"
        found = self._urls.get(path)
        if found is None:
            key = text_key(path)
            host = self._hosts[mix(key, TAG_HOST) % len(self._hosts)] if self._hosts else V.SHOP
            org_path = self._paths[mix(key, TAG_PATH) % len(self._paths)] if self._paths else path
            found = host + org_path
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            self._urls[path] = found
        return found

    def word(self, field: str, value: Any) -> Any:
        """The org's name for one of the shop's (a custom event's, a page's): always the same
        one of the recorded names, or the shop's when none was recorded."""
        words = self._words.get(field)
        if not words or not isinstance(value, str):
            return value
        found = self._named.get((field, value))
        if found is None:
            if len(self._named) >= _URL_CACHE:
                self._named.clear()
            found = self._named[(field, value)] = words[mix(text_key(value), TAG_WORD) % len(words)]
        return found

    # -- rows ----------------------------------------------------------------------------------
    def page(self, seed: int, page: dict[str, Any]) -> dict[str, Any]:
        """A page's part of its rows (every field but the event-level ones) in the org's shape:
        without the shop's page variables and the fields the org never had, its URLs and name
        the org's, and the org's page variables last."""
        out = page.copy()
        for key in self._unwanted_on_page.intersection(page):
            del out[key]
        for key in ("PageUrl", "PageRefererUrl"):
            if key in out:
                out[key] = self.url(out[key])
        if "PageName" in out:
            out["PageName"] = self.word("PageName", out["PageName"])
        out.update(self.page_vars(seed, int(page.get("PageId", 0))))
        return out

    def event(self, seed: int, row: dict[str, Any]) -> None:
        """Rewrite an event's row in place: without the shop's `evt_*` variables and the
        event-level fields the org never had, and a custom event with the org's name for it
        and its variables (appended: they are event-level)."""
        for key in self._unwanted_on_event.intersection(row):
            del row[key]
        if row.get("EventType") == "custom":
            if "EventCustomName" in row:
                row["EventCustomName"] = self.word("EventCustomName", row["EventCustomName"])
            row.update(self.event_vars(seed, row))

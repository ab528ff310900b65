"""The shape of a recorded org, laid over the shop's world: data generated "in the org's shape".

A recording's catalogue (`recording.Catalogue`) says which fields the org's rows carried, how
their values looked, and which hosts and paths its pages had. A `Shape` rewrites the world's rows
with it, as a pure function of (seed, the row, the catalogue), so a shaped world is as
deterministic as the plain one and can be rebuilt in a worker process from the catalogue alone:

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
import random
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from ..contract import CUSTOM_KINDS, EVENT_FIELDS, INDIVIDUAL_FIELDS
from ..ids import mix, text_key
from ..recording import Catalogue, FieldProfile, catalogue_json
from . import vocab as V
from .events import EVENT_LEVEL_FIELDS, Event

TAG_USER, TAG_PAGE, TAG_EVT, TAG_CARRIES, TAG_HOST, TAG_PATH, TAG_WORD = range(0x91, 0x98)
# Names the org gives things: the shop's are mapped onto the org's recorded ones.
VOCABULARY = ("EventCustomName", "PageName")
_URL_CACHE = 4096  # shop URLs (a few hundred paths) and event names remembered
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


def typed_values(profile: FieldProfile) -> tuple[Any, ...]:
    """The profile's sampled values of its own type (a sample may hold a stray other one)."""
    return tuple(v for v in profile.values if _typed(v, profile.type))


def draw(profile: FieldProfile, rng: random.Random, values: tuple[Any, ...] = ()) -> Any:
    """A value like the profile's, or None (left out) at its null rate: one of its sampled
    `values` (`typed_values`), else a number in its range (a boolean needs neither)."""
    if rng.random() < profile.null_rate:
        return None
    if values:
        return values[rng.randrange(len(values))]
    low, high = profile.minimum, profile.maximum
    if profile.type in ("integer", "number") and low is not None and high is not None:
        if profile.type == "integer":
            lo, hi = math.ceil(low), math.floor(high)
            return rng.randint(lo, hi) if lo <= hi else int(low)
        return round(rng.uniform(low, high), 2)
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
        "_paths",
        "_profiles",
        "_urls",
        "_values",
        "_words",
        "catalogue",
        "custom_vars",
        "digest",
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
        self._urls: dict[str, str] = {}
        self._carried: dict[tuple[int, int], tuple[str, ...]] = {}

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
    def _vars(self, rng: random.Random, names: Iterable[str]) -> dict[str, Any]:
        out = {}
        for name in names:
            value = draw(self._profiles[name], rng, self._values[name])
            if value is not None and value != "":
                out[name] = value
        return out

    def user_vars(self, seed: int, index: int) -> dict[str, Any]:
        """The individual's `user_*` variables: the same in every row and export."""
        rng = random.Random(mix(seed, index, TAG_USER))
        return self._vars(rng, self.custom_vars["user"])

    def page_vars(self, seed: int, page_id: int) -> dict[str, Any]:
        rng = random.Random(mix(seed, page_id, TAG_PAGE))
        return self._vars(rng, self.custom_vars["page"])

    def event_vars(self, seed: int, row: Mapping[str, Any]) -> dict[str, Any]:
        """A custom event's `evt_*` variables: the event name decides which it carries."""
        name = text_key(str(row.get("EventCustomName", "")))
        carried = self._carried.get((seed, name))
        if carried is None:
            carried = tuple(
                var
                for var in self.custom_vars["evt"]
                if mix(seed, name, text_key(var), TAG_CARRIES) / 2**64 < self._carries[var]
            )
            if len(self._carried) >= _URL_CACHE:
                self._carried.clear()
            self._carried[(seed, name)] = carried
        key = mix(seed, int(row.get("PageId", 0)), int(row.get("EventPageOffset", 0)), name)
        return self._vars(random.Random(mix(key, TAG_EVT)), carried)

    def url(self, url: str) -> str:
        """A shop URL on the org's hosts and paths (the same shop path, the same org URL); any
        other URL as it is."""
        if not url.startswith(V.SHOP) or not (self._hosts or self._paths):
            return url
        found = self._urls.get(url)
        if found is None:
            path = url[len(V.SHOP) :].split("#")[0].split("?")[0] or "/"
            key = text_key(path)
            host = self._hosts[mix(key, TAG_HOST) % len(self._hosts)] if self._hosts else V.SHOP
            org_path = self._paths[mix(key, TAG_PATH) % len(self._paths)] if self._paths else path
            found = host + org_path
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            self._urls[url] = found
        return found

    def word(self, field: str, value: Any) -> Any:
        """The org's name for one of the shop's (a custom event's, a page's): always the same
        one of the recorded names, or the shop's when none was recorded."""
        words = self._words.get(field)
        if not words or not isinstance(value, str):
            return value
        return words[mix(text_key(value), TAG_WORD) % len(words)]

    # -- rows ----------------------------------------------------------------------------------
    def events(self, seed: int, events: Iterable[Event]) -> Iterator[Event]:
        """The events with their rows in the org's shape. Page-constant fields still come
        first and event-level ones last (CSV renders a page's part once by relying on it); the
        page's part is rewritten once per page."""
        level, drop = self.event_level, self._drop["event"]
        page_id: int | None = None
        prefix: dict[str, Any] = {}
        head = 0  # keys of the world's row before its event-level ones
        for event in events:
            row = event.row
            if event.page_id != page_id:
                page_id = event.page_id
                prefix, head = self._page_part(seed, row, level, drop)
            out = prefix.copy()
            for key, value in islice(row.items(), head, None):
                if key not in drop and not key.startswith("evt_"):
                    out[key] = value
            if "EventCustomName" in out:
                out["EventCustomName"] = self.word("EventCustomName", out["EventCustomName"])
            if row.get("EventType") == "custom":
                out.update(self.event_vars(seed, out))
            yield Event(event.t, event.session_id, event.page_id, out)

    def _page_part(
        self, seed: int, row: Mapping[str, Any], level: frozenset[str], drop: frozenset[str]
    ) -> tuple[dict[str, Any], int]:
        prefix: dict[str, Any] = {}
        head = 0
        for key, value in row.items():
            if key in level:
                break
            head += 1
            if key in drop or key.startswith("page_"):  # the shop's page variables
                continue
            if key in ("PageUrl", "PageRefererUrl"):
                value = self.url(value)
            elif key == "PageName":
                value = self.word(key, value)
            prefix[key] = value
        prefix.update(self.page_vars(seed, int(row.get("PageId", 0))))
        return prefix, head

"""A recorded org's shape over the world (fullstory_emulator/world/shape.py): its custom variables,
its hosts and paths, only its fields, and as deterministic as the plain world."""

from __future__ import annotations

import pickle
from urllib.parse import urlsplit

from fullstory_emulator.contract import EVENT_FIELDS, INDIVIDUAL_FIELDS
from fullstory_emulator.recording import Catalogue, FieldProfile
from fullstory_emulator.timestamps import parse_rfc3339, to_ms
from fullstory_emulator.world import CUSTOM_VARS, World
from fullstory_emulator.world.shape import Shape

ORIGIN = 1_700_000_000_000
DAY = 86_400_000
SHOP_VARS = {name for names in CUSTOM_VARS.values() for name in names}
WEB_FIELDS = [f for f in EVENT_FIELDS if not f.startswith("App")]  # the org has no mobile app
HOSTS = ("app.example.org", "https://docs.example.org")
PATHS = ("/pricing", "/docs/start", "/blog/über-uns", "/search")


def catalogue() -> Catalogue:
    fields = {name: FieldProfile("string", 100, 0.0) for name in WEB_FIELDS}
    fields["EventCustomName"] = FieldProfile("string", 40, 0.0, ("Signed Up", "Upgraded"))
    fields.update(
        user_tier_str=FieldProfile("string", 100, 0.25, ("gold", "silver", "bronze & <co>")),
        user_seats_int=FieldProfile("integer", 100, 0.0, minimum=1, maximum=12),
        user_trial_bool=FieldProfile("boolean", 100, 0.0, (True, False)),
        page_section_str=FieldProfile("string", 100, 0.0, ("docs", "marketing", "app")),
        evt_plan_str=FieldProfile("string", 40, 0.0, ("team", "business")),
        evt_amount_real=FieldProfile("number", 20, 0.0, minimum=9.5, maximum=99.0),
    )
    return Catalogue(fields, HOSTS, PATHS)


def shaped(seed: int = 5, population: int = 40) -> World:
    return World(seed=seed, origin_ms=ORIGIN, population=population, shape=Shape(catalogue()))


def rows(world: World, lo: int = ORIGIN, hi: int = ORIGIN + 20 * DAY) -> list[dict[str, object]]:
    return [e.row for i in range(world.population) for e in world.events_between(i, lo, hi)]


def test_the_orgs_custom_variables_replace_the_shops():
    found = rows(shaped())
    customs = [r for r in found if r["EventType"] == "custom"]
    # each of the org's custom event names carries a stable subset of the evt_* variables
    carried: dict[object, set[frozenset[str]]] = {}
    for row in customs:
        names = frozenset(k for k in row if k.startswith("evt_"))
        carried.setdefault(row["EventCustomName"], set()).add(names)
    assert set(carried) == {"Signed Up", "Upgraded"}  # the org's names for its events
    assert all(len(subsets) == 1 for subsets in carried.values())
    assert len(found) > 1000
    names = {key for row in found for key in row}
    assert not names & SHOP_VARS
    assert names >= {"user_tier_str", "user_seats_int", "user_trial_bool", "page_section_str"}
    assert names >= {"evt_plan_str", "evt_amount_real"}
    for row in found:
        assert row.get("user_tier_str", "gold") in ("gold", "silver", "bronze & <co>")
        seats = row["user_seats_int"]
        assert type(seats) is int and 1 <= seats <= 12
        assert type(row["user_trial_bool"]) is bool
        assert row["page_section_str"] in ("docs", "marketing", "app")
        if "evt_amount_real" in row:
            assert isinstance(row["evt_amount_real"], float)
            assert 9.5 <= row["evt_amount_real"] <= 99.0
        if any(k.startswith("evt_") for k in row):
            assert row["EventType"] == "custom"


def test_null_rates_and_stability_per_individual_and_page():
    world = shaped(population=120)
    by_person: dict[object, set[object]] = {}
    by_page: dict[object, set[object]] = {}
    for row in rows(world):
        by_person.setdefault(row["IndvId"], set()).add(row.get("user_tier_str"))
        by_page.setdefault(row["PageId"], set()).add(row["page_section_str"])
    assert all(len(v) == 1 for v in by_person.values())
    assert all(len(v) == 1 for v in by_page.values())
    missing = sum(v == {None} for v in by_person.values()) / len(by_person)
    assert 0.1 < missing < 0.45  # the profile's null rate is 0.25


def test_page_urls_move_onto_the_orgs_hosts_and_paths():
    found = rows(shaped())
    org = {"https://app.example.org", "https://docs.example.org"}
    web = [r for r in found if "PageUrl" in r]
    assert web
    mapping: dict[str, set[str]] = {}
    for row in web:
        url = urlsplit(str(row["PageUrl"]))
        assert f"{url.scheme}://{url.netloc}" in org and url.path in PATHS
        referer = str(row.get("PageRefererUrl", ""))
        assert "acme-outfitters" not in referer
    # the same shop page lands on the same org URL whoever visits it
    plain = World(seed=5, origin_ms=ORIGIN, population=40)
    for a, b in zip(rows(plain), found, strict=True):
        if "PageUrl" in a:
            path = urlsplit(str(a["PageUrl"])).path
            mapping.setdefault(path, set()).add(str(b["PageUrl"]))
    assert all(len(urls) == 1 for urls in mapping.values())
    assert len(set().union(*mapping.values())) > 2


def test_fields_the_org_never_had_are_left_out():
    shape = Shape(catalogue())
    found = rows(shaped())
    assert not any(k.startswith("App") for row in found for k in row)
    assert shape.columns("event", EVENT_FIELDS) == tuple(WEB_FIELDS)
    # the recording holds no individuals export: nothing says that kind lacks a field
    assert shape.columns("individual", INDIVIDUAL_FIELDS) == INDIVIDUAL_FIELDS


def test_rows_keep_page_fields_first_and_event_fields_last():
    shape = Shape(catalogue())
    for row in rows(shaped())[:3000]:
        keys = list(row)
        first = next(i for i, k in enumerate(keys) if k in shape.event_level)
        assert all(k in shape.event_level for k in keys[first:]), keys


def test_deterministic_and_a_window_is_an_exact_filter():
    a, b = shaped(seed=9), shaped(seed=9)
    assert rows(a) == rows(b)
    assert rows(a) != rows(shaped(seed=10))
    lo, hi = ORIGIN + 5 * DAY, ORIGIN + 6 * DAY
    assert rows(a, lo, hi) == [
        r for r in rows(b) if lo <= to_ms(parse_rfc3339(str(r["EventStart"]))) < hi
    ]


def test_a_shape_pickles_to_a_worker_as_its_catalogue():
    shape = Shape(catalogue())
    again = pickle.loads(pickle.dumps(shape))
    assert again == shape and again.digest == shape.digest
    other = Shape(Catalogue({**catalogue().fields}, HOSTS, PATHS[:2]))
    assert other != shape


def test_an_individuals_recording_drops_what_its_rows_never_had():
    fields = {name: FieldProfile("string", 5, 0.0) for name in INDIVIDUAL_FIELDS}
    del fields["LastIp"], fields["LastLatLong"]
    shape = Shape(Catalogue(fields))
    assert shape.columns("individual", INDIVIDUAL_FIELDS) == tuple(
        f for f in INDIVIDUAL_FIELDS if f not in ("LastIp", "LastLatLong")
    )
    row = {"IndvId": 1, "LastIp": "10.0.0.1", "LastLatLong": "1,2", "NumEvents": 3}
    assert shape.individual_row(row) == {"IndvId": 1, "NumEvents": 3}
    assert shape.columns("event", EVENT_FIELDS) == EVENT_FIELDS  # no events export recorded

"""Sessions, pages and events of one individual, generated on the fly.

A session is a pure function of (seed, index, session number, start): it seeds its own
`random.Random`, so any session can be generated alone, in any order, and a time window can skip
sessions without disturbing the others. Each page is built in two steps: first its events as
light `(offset, type, extra)` triples (every row carries the page's counts and duration, so those
must be known before the first row), then the page's row; `session_pages` yields that `Page`,
and `page_events` makes each event's row as a copy of the page's row plus a few event fields.
A serialiser that renders a page once (CSV) takes the pages and never builds the rows. Only
events inside the requested window are kept, and RNG use never depends on the window, so a
window is always an exact filter of the full stream.

Speed: ~3 us per event is the budget. Weighted choices index power-of-two tables with
`getrandbits`; constant event fields are prebuilt dicts (`actions`), shared by the events that
have them, as are navigations', first input delays' and requests'; the hot loop binds
everything to locals; EventStart/PageStart reuse one MillisFormatter result per minute.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from fullstory_emulator.contract import EVENT_FIELDS
from fullstory_emulator.ids import mix
from fullstory_emulator.timestamps import MillisFormatter
from fullstory_emulator.world import actions as A
from fullstory_emulator.world import vocab as V
from fullstory_emulator.world.population import TAG_SESSION, Profile

if TYPE_CHECKING:
    from fullstory_emulator.world.shape import Shape

MINUTE_MS = 60_000
PAGE_CAP_MS = 20 * MINUTE_MS  # no new action after this page offset
SESSION_PAGES_CAP_MS = 90 * MINUTE_MS  # no new page after this session offset
MAX_GAP_MS = 45_000
_NO_MINUTE = -(1 << 62)  # before any instant: no minute formatted yet (not -60000: 1969 is one)

# Row keys whose value can differ between the events of one page. Every other key of a row has
# the same value on all rows with the same PageId (and rows list those first), so a serialiser
# may encode that part once per page.
EVENT_LEVEL_FIELDS: frozenset[str] = frozenset(
    [f for f in EVENT_FIELDS if f.startswith(("Event", "Load", "Req"))]
    + ["PageMaxScrollDepthPercent", *V.EVT_VARS]
)

# Row keys whose value is the same on every row with the same SessionId: the session dict's
# (the individual, the session, its address, place and device), so a serialiser may encode that
# part once per session. Never in a row of a recorded org's shape (`Shape` may rewrite pages).
SESSION_LEVEL_FIELDS: frozenset[str] = frozenset(
    [
        *("IndvId", "UserId", "UserCreated", "UserAppKey", "UserDisplayName", "UserEmail"),
        *("SessionId", "SessionStart", "PageIp", "PageLatLong", "PageUserAgent", "PageBrowser"),
        *("PageBrowserVersion", "PageDevice", "PagePlatform", "PageOperatingSystem"),
        *("PageScreenWidth", "PageScreenHeight", "PageViewportWidth", "PageViewportHeight"),
        *("AppName", "AppPackageName", "AppDeviceModel", "AppDeviceVendor", "AppVersion"),
        *("AppOsVersion", *V.USER_VARS),
    ]
)


@dataclass(frozen=True, slots=True)
class Event:
    """One exported event. `row` is a fresh dict per event: callers may keep or mutate it."""

    t: int
    session_id: int
    page_id: int
    row: dict[str, object]


class Page(NamedTuple):
    """One page of a session and the events of it that a window holds, before any row is made.

    `row` holds the page's columns (every row of the page starts as a copy of it, and it holds
    none of `EVENT_LEVEL_FIELDS`); `events` are `(EventPageOffset, EventType, extra)` with
    `extra` the event's other fields, a dict that is often shared between events and must not
    be mutated; `starts` are the events' EventStart texts. A serialiser that renders the page
    once and each event's few fields saves building a 60-key row per event."""

    session_id: int
    page_id: int
    start: int  # PageStart, ms
    session_offset: int  # PageStart - SessionStart, ms
    row: dict[str, object]
    events: list[tuple[int, str, Mapping[str, object] | None]]
    starts: list[str]


# A frozen dataclass's generated __init__ costs ~0.5 us (object.__setattr__ per field), a sixth
# of the per-event budget; the hot loop fills the slots through their descriptors instead, which
# is what __init__ does minus the overhead. The instance is as frozen as any other afterwards.
_EVENT_SETTERS = (
    Event.t.__set__,  # type: ignore[attr-defined, misc]
    Event.session_id.__set__,  # type: ignore[attr-defined, misc]
    Event.page_id.__set__,  # type: ignore[attr-defined, misc]
    Event.row.__set__,  # type: ignore[attr-defined, misc]
)
_MASK63 = (1 << 63) - 1
SECONDS = tuple(f"{i:02d}." for i in range(60))
MILLIS = tuple(f"{i:03d}Z" for i in range(1000))


def _cart_value(cart: list[tuple[int, int]]) -> float:
    return round(sum(V.PRODUCTS[p][3] * q for p, q in cart), 2)


def _cart_items(cart: list[tuple[int, int]]) -> int:
    return sum(q for _, q in cart)


def session_pages(
    seed: int,
    index: int,
    n: int,
    s: int,
    prof: Profile,
    clusters: tuple[int, ...],
    lo: int,
    hi: int,
    fmt: MillisFormatter,
    shape: Shape | None = None,
    requests: A.Requests | None = None,
) -> Iterator[Page]:
    """Pages of session number `n` (starting at `s`) holding events with lo <= t < hi, in
    time order, each with only those events; with a recorded org's `shape`, the page rows are
    in the org's shape (its events are shaped as `page_events` makes their rows). `requests`
    lends request events one dict per (url, method, status) across sessions."""
    if requests is None:
        requests = A.Requests()
    key = mix(seed, index, n, TAG_SESSION)
    rng = random.Random(key)
    rand = rng.random
    bits = rng.getrandbits
    log = math.log
    sid = (key & _MASK63) or 1  # the session's key doubles as its id: one hash fewer
    web = not prof.mobile
    android = prof.platform == "Android"
    kinds = A.plan(rng)
    n_pages = len(kinds)

    # web visitors mostly come from their home connection; app users roam
    home = web and bits(2) != 0
    ip = prof.ip_home if home else f"{prof.ip_prefix}.{bits(8)}.{1 + bits(8) % 254}"
    sess: dict[str, object] = {
        **prof.user_fields,
        "SessionId": sid,
        "SessionStart": fmt(s),
        "PageIp": ip,
        "PageLatLong": prof.latlong,
        **prof.device_fields,
    }
    api = V.API if web else V.APP_API
    tables = A.WEB_TABLES if web else A.APP_TABLES
    views = V.ANDROID_VIEWS if android else V.IOS_VIEWS
    app_exc = A.APP_EXCEPTIONS[0 if android else 1]
    app_crash = A.APP_CRASHES[0 if android else 1]
    landing_ref, landing_query = V.LANDING_SOURCES[bits(4)]
    focus = bits(3)  # the category this visit is about
    experiment = V.EXPERIMENTS[bits(2)]
    coupon_i = bits(2) if rand() < 0.2 else -1
    payment_i = bits(3)
    cart: list[tuple[int, int]] = []

    ps = s  # page start
    ref = url = subject = prefix = ""
    page_vars: dict[str, object] = {}
    kind = prod = term_i = pending_term = -1
    minute_start = _NO_MINUTE  # start of the minute `prefix` formats
    p = 0  # index into the plan
    pn = 0  # pages so far, reloads included
    crashed = False
    while p < n_pages and not crashed:
        if ps >= hi:
            return
        if ps - s > SESSION_PAGES_CAP_MS:
            break
        # --- navigation: a new page, back/forward, or a reload of the current one ---
        if pn == 0:
            nav = 0
        else:
            r = bits(6)  # a checkout that led to an order is never reloaded
            nav = 1 if r < 2 and kind != V.CHECKOUT else 2 if r < 7 else 0
        if nav == 1:
            p -= 1  # a reload repeats the page (URL, referrer, subject) and uses no plan slot
        else:
            kind = kinds[p]
            ref = url if pn else landing_ref
            if kind == V.PRODUCT:
                pool = V.PRODUCTS_BY_CATEGORY[focus] if bits(2) else range(len(V.PRODUCTS))
                pick = bits(8) % len(pool)
                if pool[pick] == prod:  # moving on to another product
                    pick = (pick + 1) % len(pool)
                prod = pool[pick]
                slug, _name, sku, price, cat = V.PRODUCTS[prod]
                subject = sku
                url = f"{V.SHOP}/products/{slug}{V.PRODUCT_QUERIES[bits(3)]}"
                page_vars = {
                    "page_category_str": V.CATEGORIES[cat][0],
                    "page_product_sku_str": sku,
                    "page_product_price_real": price,
                }
            elif kind == V.CATEGORY:
                if bits(2) == 0:
                    focus = bits(3)
                subject = V.CATEGORIES[focus][0]
                url = f"{V.SHOP}/category/{subject}{V.CATEGORY_QUERIES[bits(3)]}"
                page_vars = {"page_category_str": subject}
            elif kind == V.SEARCH:
                term_i = pending_term if pending_term >= 0 else bits(8) % len(V.SEARCH_TERMS)
                subject = V.SEARCH_QUERIES[term_i]
                url = f"{V.SHOP}/search?q={subject}"
                page_vars = {
                    "page_search_term_str": V.SEARCH_TERMS[term_i],
                    "page_results_int": A.SEARCH_RESULTS[term_i],
                }
            elif kind == V.HOME:
                subject = ""
                url = f"{V.SHOP}/"
                page_vars = {"page_experiment_str": experiment}
            elif kind == V.CART or kind == V.CHECKOUT:
                if not cart:  # came back to a cart saved on an earlier visit
                    pool = V.PRODUCTS_BY_CATEGORY[focus]
                    cart.append((pool[bits(8) % len(pool)], 1))
                subject = ""
                url = f"{V.SHOP}/cart" if kind == V.CART else f"{V.SHOP}/checkout"
                page_vars = {
                    "page_cart_items_int": _cart_items(cart),
                    "page_cart_value_real": _cart_value(cart),
                    "page_experiment_str": experiment,
                }
            elif kind == V.CONFIRMATION:
                subject = f"AO-{sid % 100_000_000:08d}"
                url = f"{V.SHOP}/checkout/confirmation?order={subject}"
                page_vars = {}
            elif kind == V.ACCOUNT:
                subject = ""
                url = V.SHOP + V.ACCOUNT_PATHS[bits(2)]
                page_vars = {"page_logged_in_bool": "UserAppKey" in prof.user_fields}
            elif kind == V.HELP:
                subject = V.HELP_ARTICLES[bits(8) % len(V.HELP_ARTICLES)][0]
                url = f"{V.SHOP}/help/{subject}"
                page_vars = {}
            else:
                subject = V.BLOG_POSTS[bits(8) % len(V.BLOG_POSTS)][0]
                url = f"{V.SHOP}/blog/{subject}"
                page_vars = {}
            if pn == 0 and landing_query:
                url += landing_query if "?" not in url else "&" + landing_query[1:]
        pending_term = -1
        next_kind = kinds[p + 1] if p + 1 < n_pages else -1

        # --- the page's events as (offset, type, extra) ---
        specs: list[tuple[int, str, Mapping[str, object] | None]] = []
        add = specs.append
        errors = derived = active = 0
        scroll = bits(7) % 101  # FullStory reports scroll depth on navigate events only
        add((0, "navigate", A.NAVIGATES[nav][scroll]))
        if web:
            slow = -log(1.0 - rand())  # one network/device slowness drives all load timings
            fp = 200 + int(slow * 400.0) + bits(8)
            dcl = fp + int(slow * 250.0) + bits(8)
            lcp = fp + int(slow * 700.0) + bits(9)
            c = max(dcl, lcp) + 20 + int(slow * 500.0) + bits(9)
            add(
                (
                    c,
                    "load",
                    {
                        "LoadDomContentTime": dcl,
                        "LoadEventTime": c,
                        "LoadFirstPaintTime": fp,
                        "LoadLargestPaintTime": lcp,
                    },
                )
            )
            if bits(2) == 0:
                c += 50 + bits(10)
                cls = round(rand() * rand() * 0.5, 4)
                add((c, "cumulative_layout_shift", {"EventCumulativeLayoutShift": cls}))
            fid = bits(2) != 0
        else:
            c = 200 + bits(9)
            fid = False

        # head: what the page does on arrival
        if nav == 1:
            pass
        elif kind == V.PRODUCT:
            c += 20 + bits(6)
            add((c, "custom", A.PRODUCT_VIEWED[prod]))
            c += 5
            url_r = f"{api}/products/reviews?sku={subject}"
            add((c, "request", requests[url_r, "GET", 200]))
        elif kind == V.CATEGORY:
            c += 20 + bits(6)
            url_r = f"{api}/catalog?category={subject}"
            add((c, "request", requests[url_r, "GET", 200]))
            c += 3
            add((c, "custom", A.LIST_VIEWED[focus]))
        elif kind == V.SEARCH:
            c += 20 + bits(6)
            url_r = f"{api}/search?q={subject}"
            add((c, "request", requests[url_r, "GET", 200]))
            c += 4
            add((c, "custom", A.SEARCHED[term_i]))
        elif kind == V.CART:
            c += 20 + bits(6)
            add((c, "request", requests[api + "/cart", "GET", 200]))
            c += 2
            viewed = A.custom(
                "Cart Viewed", cart_value_real=_cart_value(cart), num_items_int=_cart_items(cart)
            )
            add((c, "custom", viewed))
            if coupon_i >= 0 and bits(1):
                c += 2000 + bits(12)
                add((c, "change", A.PROMO_CHANGES[coupon_i]))
                c += 800 + bits(10)
                add((c, "click", A.KIND_CLICKS[V.CART][2]))
                c += 40
                url_r = api + "/cart/promo"
                add((c, "request", requests[url_r, "POST", 200]))
                c += 5
                add((c, "custom", A.COUPON_APPLIED[coupon_i]))
        elif kind == V.CHECKOUT:
            c += 30 + bits(6)
            started = A.custom(
                "Checkout Started",
                cart_value_real=_cart_value(cart),
                num_items_int=_cart_items(cart),
            )
            add((c, "custom", started))
            if not web:
                c += 400 + bits(9)
                add((c, "keyboard_open", None))
            for i in range(5):  # contact and shipping fields
                g = 1500 + bits(12)
                c += g
                active += g
                add((c, "change", A.CHECKOUT_CHANGES[i]))
                if i == 0:
                    c += 600 + bits(10)
                    add((c, "click", A.CHECKOUT_CLICKS[0]))
                    c += 1
                    add((c, "custom", A.STEP_DONE[0]))
            if not web:
                c += 300 + bits(8)
                add((c, "keyboard_close", None))
            c += 500 + bits(10)
            url_r = api + "/checkout/shipping-rates"
            add((c, "request", requests[url_r, "POST", 200]))
            c += 1500 + bits(12)
            add((c, "click", A.CHECKOUT_CLICKS[1 + bits(1)]))
            c += 900 + bits(10)
            add((c, "click", A.CHECKOUT_CLICKS[3]))
            c += 1
            add((c, "custom", A.STEP_DONE[1]))
            c += 4000 + bits(13)
            add((c, "change", A.CHECKOUT_CHANGES[5]))  # the card field (its text is excluded)
            if next_kind == V.CONFIRMATION:
                c += 800 + bits(10)
                add((c, "custom", A.PAYMENT_INFO[payment_i]))
                c += 1500 + bits(11)
                add((c, "click", A.PLACE_ORDER))
                c += 60
                add(
                    (
                        c,
                        "request",
                        requests[api + "/orders", "POST", 201],
                    )
                )
            elif bits(1):  # tries to pay and fails
                c += 1500 + bits(11)
                add((c, "click", A.PLACE_ORDER))
                fail = bits(2)
                c += 300
                add(
                    (
                        c,
                        "request",
                        requests[api + "/orders", "POST", V.ORDER_FAIL_STATUSES[fail]],
                    )
                )
                if web:
                    c += 10
                    add((c, "console_message", A.ORDER_FAIL_CONSOLE[fail]))
                    errors += 1
                if bits(1):
                    for rage in A.PLACE_ORDER_RAGE[: 3 + bits(2)]:
                        c += 90 + bits(7)
                        add((c, "click", rage))
        elif kind == V.CONFIRMATION:
            c += 40 + bits(6)
            value = _cart_value(cart)
            order: dict[str, object] = {
                "order_id_str": subject,
                "revenue_real": round(value * 0.9, 2) if coupon_i >= 0 else value,
                "currency_str": "USD",
                "num_items_int": _cart_items(cart),
                "payment_method_str": V.PAYMENT_METHODS[payment_i],
            }
            if coupon_i >= 0:
                order["coupon_str"] = V.COUPONS[coupon_i]
            add((c, "custom", A.custom("Order Completed", **order)))
        elif kind == V.ACCOUNT and url.endswith("login"):
            c += 1200 + bits(11)
            if not web:
                add((c, "keyboard_open", None))
            c += 1500 + bits(11)
            add((c, "change", A.LOGIN_CHANGE))
            if not web:
                c += 200 + bits(8)
                add((c, "keyboard_close", None))
            c += 700 + bits(10)
            add((c, "click", A.KIND_CLICKS[V.ACCOUNT][0]))
            c += 150
            url_r = api + "/auth/login"
            add((c, "request", requests[url_r, "POST", 200]))
            c += 5
            add((c, "custom", A.SIGNED_IN[bits(2)]))
        elif kind == V.HOME and web and bits(1):
            c += 100 + bits(8)
            add(
                (
                    c,
                    "seen",
                    {
                        **A.SEEN_EVENTS[0],
                        "EventDuration": 2000 + bits(14),
                        "EventSecondaryDuration": 500 + bits(12),
                    },
                )
            )

        # body: random actions
        table = tables[kind]
        kclicks = A.KIND_CLICKS[kind]
        think = A.THINK_MS[kind]
        n_actions = A.ACTIONS_TABLE[bits(5)]
        if kind == V.CHECKOUT or kind == V.CONFIRMATION:
            n_actions >>= 1
        for _ in range(n_actions):
            g = 300 + int(-log(1.0 - rand()) * think)
            if g > MAX_GAP_MS:
                g = MAX_GAP_MS
            c += g
            active += g if g < 8000 else 8000
            if c > PAGE_CAP_MS:
                break
            a = table[bits(6)]
            if a == A.A_CLICK:
                add((c, "click", kclicks[bits(8) % len(kclicks)]))
                if fid:
                    add((c, "first_input_delay", A.FIRST_INPUT_DELAYS[1 + bits(6) + bits(4)]))
                    fid = False
            elif a == A.A_NAV:
                add((c, "click", A.NAV_CLICKS[bits(8) % len(A.NAV_CLICKS)]))
            elif a == A.A_REQUEST:
                reqs = A.REQUESTS[kind]
                method, path, with_subject = reqs[bits(8) % len(reqs)]
                if path[0] == "/":
                    path = api + path
                if with_subject:
                    path += subject
                status = bits(6)
                add(
                    (
                        c,
                        "request",
                        requests[path, method, V.STATUS_TABLE[status]],
                    )
                )
                if web and A.STATUS_CONSOLE[status] is not None:
                    c += 3
                    add((c, "console_message", A.STATUS_CONSOLE[status]))
                    errors += 1
            elif a == A.A_CHANGE:
                changes = A.CHANGES[kind]
                if not web:
                    add((c, "keyboard_open", None))
                    c += 900 + bits(11)
                if bits(9) == 0:  # someone probing the search box
                    add((c, "change", A.SUSPICIOUS[bits(1)]))
                else:
                    add((c, "change", changes[bits(8) % len(changes)]))
                if not web:
                    c += 300 + bits(9)
                    add((c, "keyboard_close", None))
            elif a == A.A_DEAD:
                dead = A.DEAD_CLICKS[kind]
                add((c, "click", dead[bits(8) % len(dead)]))
            elif a == A.A_CONSOLE:
                add((c, "console_message", A.CONSOLE_MESSAGES[bits(8) % len(A.CONSOLE_MESSAGES)]))
                errors += 1
            elif a == A.A_SEEN:
                seen = A.SEEN_EVENTS[bits(8) % len(A.SEEN_EVENTS)]
                add(
                    (
                        c,
                        "seen",
                        {
                            **seen,
                            "EventDuration": 1000 + bits(14),
                            "EventSecondaryDuration": 200 + bits(12),
                        },
                    )
                )
            elif a == A.A_HIGHLIGHT:
                add((c, "highlight", A.HIGHLIGHTS[bits(8) % len(A.HIGHLIGHTS)]))
            elif a == A.A_COPY:
                add((c, "copy", A.COPIES[bits(8) % len(A.COPIES)]))
            elif a == A.A_PASTE:
                add((c, "paste", A.PASTES[bits(2)]))
            elif a == A.A_RAGE:  # a burst of clicks; EventModFrustrated counts them
                burst = A.RAGE_CLICKS[kind]
                for i in range(3 + bits(2)):
                    if i:
                        c += 80 + bits(7)
                    add((c, "click", burst[i]))
            elif a == A.A_THRASH:
                add((c, "thrash", A.THRASH))
            elif a == A.A_EXCEPTION:
                exc = A.WEB_EXCEPTIONS if web else app_exc
                add((c, "exception", exc[bits(8) % len(exc)]))
                errors += 1
            elif a == A.A_ERR_CLICK:
                i = bits(8) % len(kclicks)
                if web and bits(1):
                    add((c, "click", A.ERR_CLICKS[kind][0][i]))
                    c += 4
                    msgs = A.CONSOLE_MESSAGES
                    add((c, "console_message", msgs[bits(8) % len(msgs)]))
                else:
                    add((c, "click", A.ERR_CLICKS[kind][1][i]))
                    c += 4
                    exc = A.WEB_EXCEPTIONS if web else app_exc
                    add((c, "exception", exc[bits(8) % len(exc)]))
                errors += 1
            elif a == A.A_CLICK_ERROR:
                add((c, "click_error", A.CLICK_ERRORS[bits(8) % len(A.CLICK_ERRORS)]))
                derived += 1
            elif a == A.A_CUSTOM_ERROR:
                add((c, "custom_error", A.CUSTOM_ERRORS[bits(8) % len(A.CUSTOM_ERRORS)]))
                derived += 1
            elif a == A.A_PINCH:
                add((c, "pinch_gesture", A.PINCHES[bits(2)]))
            else:  # A_LOW_MEMORY
                add((c, "low_memory", None))

        # tail: how the visitor leaves
        if next_kind == V.SEARCH:
            pending_term = bits(8) % len(V.SEARCH_TERMS)
            c += 1500 + bits(12)
            if not web:
                add((c, "keyboard_open", None))
                c += 800 + bits(10)
            add((c, "change", A.SEARCH_CHANGES[pending_term]))
            if not web:
                c += 200 + bits(8)
                add((c, "keyboard_close", None))
        elif kind == V.PRODUCT and next_kind == V.CART:
            c += 1500 + bits(12)
            qty = 1 if bits(2) else 2
            cart.append((prod, qty))
            _slug, name, sku, price, cat = V.PRODUCTS[prod]
            add((c, "click", A.ADD_TO_CART))
            c += 90
            url_r = api + "/cart/items"
            add((c, "request", requests[url_r, "POST", 200]))
            c += 5
            added = A.custom(
                "Added to Cart",
                product_sku_str=sku,
                product_name_str=name,
                category_str=V.CATEGORIES[cat][0],
                price_real=price,
                quantity_int=qty,
                cart_value_real=_cart_value(cart),
            )
            add((c, "custom", added))
            c += 1200 + bits(11)
            add((c, "click", A.LEAVE_CLICKS[V.CART][0]))
        elif next_kind >= 0 and next_kind != V.CONFIRMATION and bits(2):
            c += 800 + bits(11)
            leave = A.LEAVE_CLICKS[next_kind]
            add((c, "click", leave[bits(4) % len(leave)]))
        if kind == V.CHECKOUT and next_kind != V.CONFIRMATION and bits(1):
            c += 2000 + bits(13)
            add((c, "abandon", A.ABANDON_CHECKOUT))
        elif kind == V.ACCOUNT and bits(5) == 0:
            c += 2000 + bits(13)
            add((c, "abandon", A.ABANDON_SIGNUP))
        if not web:
            if bits(8) == 0:  # a crash ends the session
                c += 500 + bits(10)
                i = bits(8) % len(app_exc)
                add((c, "exception", app_exc[i]))
                errors += 1
                crashed = True
                c += 1
                add((c, "crashed", app_crash[i]))
            elif next_kind < 0 and bits(2):
                c += 2000 + bits(14)
                add((c, "backgrounded", None))
        tail = 300 + int(-log(1.0 - rand()) * A.TAIL_MS[kind])
        if tail > 120_000:
            tail = 120_000
        duration = c + tail
        active += tail if tail < 2000 else 2000
        infos = bits(3) if web else bits(1)
        warnings = 0 if bits(2) else 1 + bits(2)
        pid = bits(63) or 1  # drawn even when the page is skipped: RNG use must not vary

        # --- the page: its row, and its events inside the window ---
        if ps + c >= lo:
            pf = sess.copy()
            pf["PageId"] = pid
            pf["PageName"] = V.PAGE_NAMES[kind]
            in_minute = ps - minute_start
            if not 0 <= in_minute < MINUTE_MS:
                minute_start = ps - ps % MINUTE_MS
                in_minute = ps - minute_start
                prefix = fmt(minute_start)[:17]  # 'YYYY-MM-DDTHH:MM:'
            pf["PageStart"] = prefix + SECONDS[in_minute // 1000] + MILLIS[in_minute % 1000]
            pf["PageDuration"] = duration
            pf["PageActiveDuration"] = active
            if web:
                pf["PageUrl"] = url
                if ref:
                    pf["PageRefererUrl"] = ref
            else:
                pf["AppViewName"] = views[kind]
            pf["PageNumEvents"] = len(specs)
            pf["PageNumDerivedEvents"] = derived
            pf["PageNumInfos"] = infos
            pf["PageNumWarnings"] = warnings
            pf["PageNumErrors"] = errors
            pf["PageClusterId"] = clusters[kind]
            if page_vars:
                pf |= page_vars
            if shape is not None:
                pf = shape.page(seed, pf)
            if lo > ps or ps + c >= hi:  # the window cuts this page (a later one starts >= hi)
                specs = [x for x in specs if lo <= ps + x[0] < hi]
            if specs:
                starts: list[str] = []
                stamp = starts.append
                for off, _etype, _extra in specs:
                    t = ps + off
                    in_minute = t - minute_start
                    if not 0 <= in_minute < MINUTE_MS:
                        minute_start = t - t % MINUTE_MS
                        in_minute = t - minute_start
                        prefix = fmt(minute_start)[:17]
                    stamp(prefix + SECONDS[in_minute // 1000] + MILLIS[in_minute % 1000])
                yield Page(sid, pid, ps, ps - s, pf, specs, starts)
        ps += duration + 20 + bits(9)
        p += 1
        pn += 1


def page_events(pages: Iterable[Page], seed: int, shape: Shape | None = None) -> Iterator[Event]:
    """The pages' events with their rows: each a copy of its page's row plus its own fields
    (with a recorded org's `shape`, custom events, and any event when the org lacks some
    event-level field, are rewritten in the org's shape)."""
    new_event = object.__new__
    set_t, set_sid, set_pid, set_row = _EVENT_SETTERS
    for sid, pid, ps, so, pf, specs, starts in pages:
        copy = pf.copy
        for (off, etype, extra), start in zip(specs, starts, strict=True):
            row = copy()
            row["EventStart"] = start
            row["EventType"] = etype
            row["EventPageOffset"] = off
            row["EventSessionOffset"] = so + off
            if extra:
                row |= extra
            if shape is not None and (etype == "custom" or shape.event_drop):
                shape.event(seed, row)
            ev = new_event(Event)
            set_t(ev, ps + off)
            set_sid(ev, sid)
            set_pid(ev, pid)
            set_row(ev, row)
            yield ev

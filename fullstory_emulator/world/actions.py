"""What visitors do: session plans, per-page action tables, and prebuilt event fields.

Event-specific fields that do not vary are prepared once here as small dicts and merged into
rows with `row |= extra` (the cheapest merge CPython has). They are module constants that no code
path mutates: rows receive copies of their items, never the dicts themselves.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from fullstory_emulator.ids import mix
from fullstory_emulator.world import vocab as V

Extra = dict[str, object]

# --- action codes and per-page-kind tables -------------------------------------------------------

(
    A_CLICK,
    A_NAV,
    A_DEAD,
    A_RAGE,
    A_THRASH,
    A_CHANGE,
    A_COPY,
    A_PASTE,
    A_HIGHLIGHT,
    A_REQUEST,
    A_CONSOLE,
    A_EXCEPTION,
    A_CLICK_ERROR,
    A_SEEN,
    A_PINCH,
    A_CUSTOM_ERROR,
    A_ERR_CLICK,
    A_LOW_MEMORY,
) = range(18)

# Browser-only actions; in the app they become pinches (image-heavy views) or taps.
_WEB_ONLY = (A_COPY, A_PASTE, A_HIGHLIGHT, A_THRASH, A_SEEN, A_CONSOLE)


def _table(weights: dict[int, int], mobile: bool, pinch: bool) -> tuple[int, ...]:
    """A 64-entry action table; clicks take whatever weight is left."""
    out: list[int] = []
    for action, weight in weights.items():
        if mobile and action in _WEB_ONLY:
            action = A_PINCH if pinch else A_CLICK
        out.extend([action] * weight)
    if mobile:
        out.append(A_LOW_MEMORY)
    if len(out) >= 64:
        raise ValueError("action weights leave no room for clicks")
    out.extend([A_CLICK] * (64 - len(out)))
    return tuple(out)


# Non-click action weights out of 64, per page kind (vocab.HOME .. vocab.BLOG).
_KIND_WEIGHTS: tuple[dict[int, int], ...] = (
    {
        A_NAV: 14,
        A_DEAD: 2,
        A_RAGE: 1,
        A_THRASH: 1,
        A_SEEN: 6,
        A_REQUEST: 8,
        A_CONSOLE: 2,
        A_EXCEPTION: 1,
        A_HIGHLIGHT: 1,
        A_ERR_CLICK: 1,
        A_CLICK_ERROR: 1,
        A_CUSTOM_ERROR: 1,
    },
    {
        A_NAV: 8,
        A_DEAD: 2,
        A_RAGE: 1,
        A_THRASH: 1,
        A_REQUEST: 10,
        A_CONSOLE: 2,
        A_EXCEPTION: 1,
        A_CHANGE: 2,
        A_ERR_CLICK: 1,
        A_CLICK_ERROR: 1,
        A_SEEN: 2,
    },
    {
        A_NAV: 6,
        A_DEAD: 4,
        A_RAGE: 2,
        A_THRASH: 1,
        A_REQUEST: 8,
        A_CONSOLE: 2,
        A_EXCEPTION: 1,
        A_HIGHLIGHT: 3,
        A_COPY: 2,
        A_SEEN: 3,
        A_ERR_CLICK: 1,
        A_CLICK_ERROR: 1,
        A_CUSTOM_ERROR: 1,
    },
    {
        A_NAV: 6,
        A_DEAD: 1,
        A_RAGE: 1,
        A_REQUEST: 10,
        A_CHANGE: 8,
        A_CONSOLE: 2,
        A_EXCEPTION: 1,
        A_CLICK_ERROR: 1,
    },
    {
        A_NAV: 4,
        A_DEAD: 1,
        A_RAGE: 2,
        A_THRASH: 1,
        A_REQUEST: 10,
        A_CHANGE: 6,
        A_PASTE: 3,
        A_CONSOLE: 2,
        A_EXCEPTION: 1,
        A_ERR_CLICK: 2,
        A_CLICK_ERROR: 1,
    },
    {
        A_NAV: 2,
        A_DEAD: 3,
        A_RAGE: 3,
        A_THRASH: 2,
        A_REQUEST: 10,
        A_CHANGE: 8,
        A_PASTE: 4,
        A_COPY: 1,
        A_CONSOLE: 3,
        A_EXCEPTION: 1,
        A_ERR_CLICK: 2,
        A_CLICK_ERROR: 1,
        A_CUSTOM_ERROR: 1,
    },
    {A_NAV: 8, A_COPY: 4, A_HIGHLIGHT: 3, A_REQUEST: 8, A_SEEN: 4, A_CONSOLE: 1},
    {
        A_NAV: 8,
        A_CHANGE: 8,
        A_PASTE: 2,
        A_COPY: 2,
        A_REQUEST: 10,
        A_CONSOLE: 2,
        A_EXCEPTION: 1,
        A_DEAD: 2,
        A_RAGE: 1,
    },
    {
        A_NAV: 8,
        A_COPY: 5,
        A_HIGHLIGHT: 6,
        A_REQUEST: 6,
        A_CHANGE: 4,
        A_DEAD: 2,
        A_CONSOLE: 1,
        A_SEEN: 2,
    },
    {
        A_NAV: 8,
        A_HIGHLIGHT: 10,
        A_COPY: 4,
        A_SEEN: 6,
        A_REQUEST: 4,
        A_DEAD: 2,
        A_CONSOLE: 1,
        A_THRASH: 1,
    },
)
WEB_TABLES = tuple(_table(w, False, False) for w in _KIND_WEIGHTS)
APP_TABLES = tuple(
    _table(w, True, k in (V.PRODUCT, V.BLOG, V.CATEGORY)) for k, w in enumerate(_KIND_WEIGHTS)
)
# Random actions per page (32 entries, mean ~2.9; with the fixed ones a page has ~8 events).
ACTIONS_TABLE = (
    0,
    0,
    0,
    0,
    0,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    2,
    2,
    2,
    2,
    2,
    2,
    3,
    3,
    3,
    3,
    4,
    4,
    4,
    5,
    5,
    6,
    7,
    8,
    9,
    11,
)
# Mean think time between actions and mean time from the last event to leaving, per kind (ms).
THINK_MS = (5000.0, 6000.0, 8000.0, 5000.0, 6000.0, 7000.0, 8000.0, 6000.0, 12000.0, 18000.0)
TAIL_MS = (6000.0, 5000.0, 9000.0, 5000.0, 6000.0, 8000.0, 15000.0, 8000.0, 20000.0, 30000.0)

# --- session plans -------------------------------------------------------------------------------

# Planned pages per session (32 entries, mean ~4; reloads add a few percent).
PAGES_TABLE = (
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    2,
    2,
    2,
    2,
    2,
    3,
    3,
    3,
    3,
    4,
    4,
    4,
    4,
    5,
    5,
    5,
    6,
    6,
    7,
    7,
    8,
    8,
    9,
    10,
    11,
)


def _kinds(spec: str) -> tuple[int, ...]:
    """A 32-entry page-kind table from 'KIND:count' words."""
    names = {k.upper().split("/")[-1]: i for i, k in enumerate(V.KIND_KEYS)}
    out: list[int] = []
    for part in spec.split():
        name, count = part.split(":")
        out.extend([names[name]] * int(count))
    if len(out) != 32:
        raise ValueError(f"kind table {spec!r} has {len(out)} entries, not 32")
    return tuple(out)


LANDING_BROWSE = _kinds("HOME:15 PRODUCT:11 CATEGORY:6")
NEXT_BROWSE: tuple[tuple[int, ...], ...] = (
    _kinds("CATEGORY:14 SEARCH:8 PRODUCT:8 ACCOUNT:2"),  # from home
    _kinds("PRODUCT:20 CATEGORY:6 SEARCH:3 HOME:3"),  # from category
    _kinds("PRODUCT:11 CATEGORY:8 SEARCH:5 HOME:3 CART:5"),  # from product
    _kinds("PRODUCT:20 SEARCH:8 CATEGORY:4"),  # from search
    _kinds("PRODUCT:16 HOME:8 CATEGORY:8"),  # from cart
    _kinds("CART:16 PRODUCT:8 HOME:8"),  # from checkout
    _kinds("HOME:16 ACCOUNT:8 PRODUCT:8"),  # from confirmation
    _kinds("HOME:12 PRODUCT:8 CATEGORY:8 HELP:4"),  # from account
    _kinds("HELP:12 HOME:10 ACCOUNT:10"),  # from help
    _kinds("BLOG:12 PRODUCT:12 HOME:8"),  # from blog
)


def plan(rng: random.Random) -> list[int]:
    """The page kinds of one session.

    An intent is drawn first so that shares are controlled rather than emergent: a quarter of
    sessions are buyers who reach /checkout (55% of them convert), most others browse, a few
    look for help or read the blog.
    """
    bits = rng.getrandbits
    rand = rng.random
    n = PAGES_TABLE[bits(5)]
    u = rand()
    kinds: list[int] = []
    converts = False
    if u < 0.25:  # buy: ... -> cart -> checkout (-> confirmation)
        converts = rand() < 0.55
        core = [V.CART, V.CHECKOUT] + ([V.CONFIRMATION] if converts else [])
        m = n - len(core)
        if m <= 0:
            m = 1 if rand() < 0.6 else 0
        _browse(bits, kinds, m)
        if kinds and kinds[-1] == V.CART:
            kinds.pop()
        kinds += core
        if not converts and rand() < 0.3:
            kinds.append(V.CART)
    elif u < 0.80:
        _browse(bits, kinds, n)
    elif u < 0.90:  # support
        kinds.append((V.HOME, V.HELP, V.ACCOUNT, V.HELP)[bits(2)])
        while len(kinds) < min(n, 5):
            kinds.append(NEXT_BROWSE[V.HELP][bits(5)])
    else:  # read
        kinds.append(V.BLOG)
        while len(kinds) < min(n, 4):
            kinds.append(NEXT_BROWSE[V.BLOG][bits(5)])
    return kinds


def _browse(bits: Callable[[int], int], kinds: list[int], m: int) -> None:
    for _ in range(m):
        r = bits(5)
        kinds.append(NEXT_BROWSE[kinds[-1]][r] if kinds else LANDING_BROWSE[r])


# --- prebuilt event fields -----------------------------------------------------------------------


def target(text: str, selector: str, **more: object) -> Extra:
    """Target fields, leaving out an empty text (rows are sparse)."""
    out: Extra = {"EventTargetText": text} if text else {}
    out["EventTargetSelector"] = selector
    out.update(more)
    return out


def custom(name: str, **evt: object) -> Extra:
    """A custom event: its name, its evt_* vars and EventVarFields, the FS.event payload as JSON
    (property names as the page passed them, i.e. without the export's `evt_` prefix)."""
    out: Extra = {"EventCustomName": name}
    for key, value in evt.items():
        out["evt_" + key] = value
    out["EventVarFields"] = json.dumps(evt, separators=(",", ":"))
    return out


def _targets(pairs: tuple[tuple[str, str], ...], **more: object) -> tuple[Extra, ...]:
    return tuple(target(t, s, **more) for t, s in pairs)


KIND_CLICKS: tuple[tuple[Extra, ...], ...] = tuple(_targets(t) for t in V.KIND_TARGETS)
NAV_CLICKS = _targets(V.NAV_TARGETS)
_DEAD = _targets(V.DEAD_TARGETS, EventModDead=1)
# Dead clicks by page kind: on things that look clickable there.
DEAD_CLICKS: tuple[tuple[Extra, ...], ...] = tuple(
    _DEAD[1:4] if k == V.PRODUCT else (_DEAD[4], _DEAD[0]) if k == V.CHECKOUT else _DEAD[:1]
    for k in range(len(V.KIND_KEYS))
)
CLICK_ERRORS = _targets(V.KIND_TARGETS[V.PRODUCT] + V.NAV_TARGETS, EventModError=1)
# Clicks that caused an error: EventModError 2 = console error, 3 = uncaught exception.
ERR_CLICKS: tuple[tuple[tuple[Extra, ...], ...], ...] = tuple(
    (_targets(t, EventModError=2), _targets(t, EventModError=3)) for t in V.KIND_TARGETS
)
# Rage-click bursts by page kind (EventModFrustrated counts the clicks of the burst).
_RAGE_BY_KIND = {V.HOME: 4, V.CATEGORY: 3, V.PRODUCT: 0, V.CART: 1, V.CHECKOUT: 2}
RAGE_CLICKS: tuple[tuple[Extra, ...], ...] = tuple(
    tuple(
        target(
            *(V.RAGE_TARGETS[_RAGE_BY_KIND[k]] if k in _RAGE_BY_KIND else V.KIND_TARGETS[k][0]),
            EventModFrustrated=i,
        )
        for i in range(1, 8)
    )
    for k in range(len(V.KIND_KEYS))
)
PLACE_ORDER_RAGE: tuple[Extra, ...] = tuple(
    target(*V.PLACE_ORDER, EventModFrustrated=i) for i in range(1, 8)
)
# The click that leads to the next page, by next page kind.
_GRID = "html > body > div#__next > div.layout > main > div.product-grid > article.product-card"
LEAVE_CLICKS: tuple[tuple[Extra, ...], ...] = (
    (NAV_CLICKS[6],),  # home: the logo
    NAV_CLICKS[0:5],  # category: a nav link
    (target("", f"{_GRID} > a > img"), target("", f"{_GRID} > a > h3")),  # product
    (NAV_CLICKS[8],),  # search: (the change event on the box precedes it)
    (NAV_CLICKS[7],),  # cart: the cart icon
    (target(*V.GO_TO_CHECKOUT),),  # checkout
    (target(*V.PLACE_ORDER),),  # confirmation
    (NAV_CLICKS[9],),  # account
    (NAV_CLICKS[5],),  # help
    (target("Read more", "html > body > div#__next > div.layout > main > section.related > a"),),
)

CONSOLE_MESSAGES: tuple[Extra, ...] = tuple(
    {"EventSubType": "error", "EventTargetText": m, "EventVarErrorKind": k}
    for m, k in V.CONSOLE_ERRORS
)
WEB_EXCEPTIONS: tuple[Extra, ...] = tuple(
    {
        "EventSubType": "uncaught",
        "EventTargetText": m,
        "EventVarErrorKind": k,
        "EventWebSourceFileUrl": f,
    }
    for m, k in V.EXCEPTIONS
    for f in V.WEB_SCRIPTS
)
_APP_EXC = (
    tuple((m, f"{f}:{97 + 31 * i}") for i, (m, f) in enumerate(V.ANDROID_EXCEPTIONS)),
    tuple((m, f"{f}:{41 + 57 * i}") for i, (m, f) in enumerate(V.IOS_EXCEPTIONS)),
)
# [0] Android, [1] iOS
APP_EXCEPTIONS: tuple[tuple[Extra, ...], ...] = tuple(
    tuple(
        {"EventSubType": "uncaught", "EventTargetText": m, "EventMobileSourceFile": f}
        for m, f in table
    )
    for table in _APP_EXC
)
APP_CRASHES: tuple[tuple[Extra, ...], ...] = tuple(
    tuple({"EventTargetText": m, "EventMobileSourceFile": f} for m, f in table)
    for table in _APP_EXC
)
CUSTOM_ERRORS: tuple[Extra, ...] = tuple(
    {
        "EventCustomName": name,
        "EventVarErrorKind": kind,
        "EventVarFields": json.dumps({"fields": fields}, separators=(",", ":")),
    }
    for name, kind, fields in (
        ("Added to Cart", "invalid_arguments", ["price_real"]),
        ("Product Viewed", "rate_limited", []),
        ("Checkout Started", "cardinality_limit", ["cart_id_str"]),
    )
)
SEEN_EVENTS: tuple[Extra, ...] = tuple(
    {"EventSubType": sub, **target(t, s)}
    for t, s in V.SEEN_TARGETS
    for sub in ("visible", "visible", "visible", "rendered")
)
COPIES = tuple({"EventTargetText": t} for t in V.COPY_TEXTS)
PASTES = tuple({"EventTargetText": t} for t in V.PASTE_TEXTS)
HIGHLIGHTS = tuple({"EventTargetText": t} for t in V.HIGHLIGHT_TEXTS)
PINCHES: tuple[Extra, ...] = (
    {"EventSubType": "pinch_scale_in"},
    {"EventSubType": "pinch_scale_in"},
    {"EventSubType": "pinch_scale_in"},
    {"EventSubType": "pinch_scale_out"},
)
THRASH: Extra = {"EventModFrustrated": 1}
NAV_SUBTYPES = ("navigate", "reload", "back_forward")
# Fields of navigate events by navigation (an index of NAV_SUBTYPES) and scroll depth (0-100),
# and of first input delays by the delay (1-79 ms): shared, as constant fields are, so that
# a serialiser can remember how it wrote them.
NAVIGATES: tuple[tuple[Extra, ...], ...] = tuple(
    tuple({"EventSubType": sub, "PageMaxScrollDepthPercent": depth} for depth in range(101))
    for sub in NAV_SUBTYPES
)
FIRST_INPUT_DELAYS: tuple[Extra, ...] = tuple({"EventFirstInputDelay": ms} for ms in range(80))


class Requests(dict[tuple[str, str, int], Extra]):
    """Request events' fields by (url, method, status): one dict for each, made on first use.
    URLs come from a small vocabulary, so this stays small; past 4,096 it starts over."""

    def __missing__(self, key: tuple[str, str, int]) -> Extra:
        if len(self) >= 4096:
            self.clear()
        url, method, status = key
        extra: Extra = {"ReqUrl": url, "ReqMethod": method, "ReqStatus": status}
        self[key] = extra
        return extra


PRODUCT_VIEWED: tuple[Extra, ...] = tuple(
    custom(
        "Product Viewed",
        product_sku_str=sku,
        product_name_str=name,
        category_str=V.CATEGORIES[c][0],
        price_real=price,
    )
    for _slug, name, sku, price, c in V.PRODUCTS
)
LIST_VIEWED: tuple[Extra, ...] = tuple(
    custom(
        "Product List Viewed",
        category_str=slug,
        results_int=12 * len(V.PRODUCTS_BY_CATEGORY[c]),
    )
    for c, (slug, _title) in enumerate(V.CATEGORIES)
)
SEARCH_RESULTS = tuple(mix(len(t), sum(map(ord, t))) % 60 for t in V.SEARCH_TERMS)
SEARCHED: tuple[Extra, ...] = tuple(
    custom("Products Searched", search_term_str=t, results_int=r)
    for t, r in zip(V.SEARCH_TERMS, SEARCH_RESULTS, strict=True)
)
SEARCH_CHANGES: tuple[Extra, ...] = tuple(target(t, V.SEARCH_INPUT) for t in V.SEARCH_TERMS)
CHECKOUT_CHANGES = _targets(V.CHECKOUT_INPUTS)
CHECKOUT_CLICKS = KIND_CLICKS[V.CHECKOUT]
PLACE_ORDER = target(*V.PLACE_ORDER)
ADD_TO_CART = target(*V.ADD_TO_CART)
PROMO_CHANGES = tuple(target(c, V.PROMO_INPUT) for c in V.COUPONS)
LOGIN_CHANGE = target("", V.LOGIN_INPUT)
# change events by page kind
CHANGES: tuple[tuple[Extra, ...], ...] = (
    SEARCH_CHANGES,
    SEARCH_CHANGES,
    SEARCH_CHANGES,
    SEARCH_CHANGES,
    (target("2", V.QTY_INPUT), target("3", V.QTY_INPUT), *PROMO_CHANGES),
    CHECKOUT_CHANGES,
    SEARCH_CHANGES,
    (LOGIN_CHANGE,),
    SEARCH_CHANGES,
    SEARCH_CHANGES,
)
SUSPICIOUS: tuple[Extra, ...] = tuple(
    target(t, V.SEARCH_INPUT, EventModSuspicious=i)
    for i, t in enumerate(V.SUSPICIOUS_INPUTS, start=1)
)
ABANDON_CHECKOUT: Extra = {"EventTargetSelector": V.CHECKOUT_FORM}
ABANDON_SIGNUP: Extra = {"EventTargetSelector": V.SIGNUP_FORM}
SIGNED_IN: tuple[Extra, ...] = tuple(
    custom("Signed In", method_str=m) for m in ("password", "password", "google", "apple")
)
STEP_DONE: tuple[Extra, ...] = tuple(
    custom("Checkout Step Completed", step_int=i) for i in (1, 2, 3)
)
PAYMENT_INFO: tuple[Extra, ...] = tuple(
    custom("Payment Info Entered", payment_method_str=m) for m in V.PAYMENT_METHODS
)
COUPON_APPLIED: tuple[Extra, ...] = tuple(custom("Coupon Applied", coupon_str=c) for c in V.COUPONS)


def _status_error(status: int) -> Extra:
    return {
        "EventSubType": "error",
        "EventTargetText": f"Failed to load resource: the server responded with a status of "
        f"{status} ()",
        "EventVarErrorKind": "network",
    }


# The console error a failed request leaves behind (web only), aligned with vocab.STATUS_TABLE.
STATUS_CONSOLE: tuple[Extra | None, ...] = tuple(
    _status_error(s) if s >= 500 else None for s in V.STATUS_TABLE
)
ORDER_FAIL_CONSOLE: tuple[Extra, ...] = tuple(
    _status_error(s)
    if s >= 500
    else {
        "EventSubType": "error",
        "EventTargetText": "Payment failed: card_declined",
        "EventVarErrorKind": "PaymentError",
    }
    for s in V.ORDER_FAIL_STATUSES
)

# Background requests per page kind: (method, path or absolute URL, append the page subject).
REQUESTS: tuple[tuple[tuple[str, str, bool], ...], ...] = (
    (
        ("GET", "/recommendations?placement=home", False),
        ("GET", "/session", False),
        ("GET", "/cart/count", False),
        ("POST", "https://www.google-analytics.com/g/collect?v=2&tid=G-ACME2024", False),
    ),
    (
        ("GET", "/catalog?category=", True),
        ("GET", "/catalog/facets?category=", True),
        ("GET", "/cart/count", False),
        ("POST", "/events", False),
    ),
    (
        ("GET", "/products/reviews?sku=", True),
        ("GET", "/inventory?sku=", True),
        ("GET", "/recommendations?sku=", True),
        ("POST", "/events", False),
        ("POST", "https://www.google-analytics.com/g/collect?v=2&tid=G-ACME2024", False),
    ),
    (("GET", "/search?q=", True), ("GET", "/search/suggest?q=", True), ("POST", "/events", False)),
    (
        ("GET", "/cart", False),
        ("PATCH", "/cart/items", False),
        ("POST", "/cart/promo", False),
        ("GET", "/shipping/estimate", False),
    ),
    (
        ("POST", "/checkout/shipping-rates", False),
        ("POST", "/checkout/validate-address", False),
        ("GET", "/checkout/session", False),
        ("POST", "/events", False),
    ),
    (
        ("GET", "/orders/latest", False),
        ("POST", "/events", False),
        ("POST", "https://www.google-analytics.com/g/collect?v=2&tid=G-ACME2024", False),
    ),
    (
        ("GET", "/account", False),
        ("GET", "/account/orders", False),
        ("POST", "/auth/refresh", False),
    ),
    (("GET", "/help/articles/", True), ("GET", "/help/search?q=return", False)),
    (("GET", "/blog/related?post=", True), ("POST", "/events", False)),
)

"""Vocabularies of the fictional shop: catalogue, pages, devices, places, texts.

Everything here is an immutable module-level constant (tuples and strings) so the generators can
index it without building anything per event. Weighted choices are stored as lookup tables whose
length is a power of two: one `getrandbits(k)` picks an entry, which is several times cheaper than
`random.choices`.
"""

from __future__ import annotations

from urllib.parse import quote_plus

SHOP = "https://www.acme-outfitters.example"
API = "https://www.acme-outfitters.example/api"
APP_API = "https://api.acme-outfitters.example/mobile/v2"
CDN = "https://cdn.acme-outfitters.example"

# --- custom variables ---------------------------------------------------------------------------

USER_VARS: tuple[str, ...] = (
    "user_plan_str",
    "user_ltv_real",
    "user_signup_date",
    "user_newsletter_bool",
    "user_orders_int",
    "user_loyalty_points_int",
    "user_cohort_str",
)
PAGE_VARS: tuple[str, ...] = (
    "page_category_str",
    "page_product_sku_str",
    "page_product_price_real",
    "page_search_term_str",
    "page_results_int",
    "page_cart_items_int",
    "page_cart_value_real",
    "page_experiment_str",
    "page_logged_in_bool",
)
EVT_VARS: tuple[str, ...] = (
    "evt_product_sku_str",
    "evt_product_name_str",
    "evt_category_str",
    "evt_price_real",
    "evt_quantity_int",
    "evt_cart_value_real",
    "evt_num_items_int",
    "evt_order_id_str",
    "evt_revenue_real",
    "evt_currency_str",
    "evt_coupon_str",
    "evt_payment_method_str",
    "evt_search_term_str",
    "evt_results_int",
    "evt_step_int",
    "evt_method_str",
)

# --- page kinds ---------------------------------------------------------------------------------

HOME, CATEGORY, PRODUCT, SEARCH, CART, CHECKOUT, CONFIRMATION, ACCOUNT, HELP, BLOG = range(10)
KIND_KEYS = (
    "home",
    "category",
    "product",
    "search",
    "cart",
    "checkout",
    "checkout/confirmation",
    "account",
    "help",
    "blog",
)
PAGE_NAMES = (
    "Home",
    "Category",
    "Product Detail",
    "Search Results",
    "Cart",
    "Checkout",
    "Order Confirmation",
    "Account",
    "Help Center",
    "Blog Post",
)
ANDROID_VIEWS = (
    "MainActivity",
    "CategoryActivity",
    "ProductDetailActivity",
    "SearchActivity",
    "CartActivity",
    "CheckoutActivity",
    "OrderConfirmationActivity",
    "AccountActivity",
    "HelpCenterActivity",
    "ArticleActivity",
)
IOS_VIEWS = (
    "HomeViewController",
    "CategoryViewController",
    "ProductDetailViewController",
    "SearchResultsViewController",
    "CartViewController",
    "CheckoutViewController",
    "OrderConfirmationViewController",
    "AccountViewController",
    "HelpCenterViewController",
    "ArticleViewController",
)

# --- catalogue ----------------------------------------------------------------------------------

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("mens", "Men's"),
    ("womens", "Women's"),
    ("footwear", "Footwear"),
    ("outerwear", "Outerwear"),
    ("camping", "Camping"),
    ("packs", "Packs & Bags"),
    ("accessories", "Accessories"),
    ("sale", "Sale"),
)

# (slug, name, sku, price, category index)
PRODUCTS: tuple[tuple[str, str, str, float, int], ...] = (
    ("merino-crew-tee", "Merino Crew Tee", "AO-MN-1101", 65.0, 0),
    ("canyon-hiking-pant", "Canyon Hiking Pant", "AO-MN-1102", 85.0, 0),
    ("flannel-overshirt", "Flannel Overshirt", "AO-MN-1103", 79.0, 0),
    ("trailhead-legging", "Trailhead Legging", "AO-WM-1201", 75.0, 1),
    ("merino-hoodie-womens", "Women's Merino Hoodie", "AO-WM-1202", 120.0, 1),
    ("ripstop-skort", "Ripstop Skort", "AO-WM-1203", 59.0, 1),
    ("trail-runner-2", "Trail Runner 2", "AO-FW-1301", 129.0, 2),
    ("summit-hiking-boot", "Summit Hiking Boot", "AO-FW-1302", 189.0, 2),
    ("ridge-approach-shoe", "Ridge Approach Shoe", "AO-FW-1303", 145.0, 2),
    ("camp-slide", "Camp Slide", "AO-FW-1304", 39.0, 2),
    ("stormline-rain-jacket", "Stormline Rain Jacket", "AO-OW-1401", 179.0, 3),
    ("alpine-down-parka", "Alpine Down Parka", "AO-OW-1402", 299.0, 3),
    ("switchback-fleece", "Switchback Fleece", "AO-OW-1403", 89.0, 3),
    ("windbreaker-anorak", "Windbreaker Anorak", "AO-OW-1404", 99.0, 3),
    ("basecamp-2p-tent", "Basecamp 2P Tent", "AO-CP-1501", 349.0, 4),
    ("ember-20-sleeping-bag", "Ember 20 Sleeping Bag", "AO-CP-1502", 229.0, 4),
    ("trail-stove", "Trail Stove", "AO-CP-1503", 59.0, 4),
    ("camp-chair", "Camp Chair", "AO-CP-1504", 69.0, 4),
    ("insulated-sleeping-pad", "Insulated Sleeping Pad", "AO-CP-1505", 119.0, 4),
    ("daypack-24", "Daypack 24L", "AO-PK-1601", 99.0, 5),
    ("trek-pack-55", "Trek Pack 55L", "AO-PK-1602", 249.0, 5),
    ("sling-bag", "Sling Bag", "AO-PK-1603", 45.0, 5),
    ("duffel-70", "Duffel 70L", "AO-PK-1604", 129.0, 5),
    ("merino-hiking-socks", "Merino Hiking Socks", "AO-AC-1701", 24.0, 6),
    ("trail-cap", "Trail Cap", "AO-AC-1702", 29.0, 6),
    ("headlamp-400", "Headlamp 400", "AO-AC-1703", 49.0, 6),
    ("insulated-bottle", "Insulated Bottle 32oz", "AO-AC-1704", 34.0, 6),
    ("trekking-poles", "Carbon Trekking Poles", "AO-AC-1705", 119.0, 6),
    ("packable-vest", "Packable Vest", "AO-SL-1801", 59.0, 7),
    ("classic-rain-pant", "Classic Rain Pant", "AO-SL-1802", 49.0, 7),
    ("wool-beanie", "Wool Beanie", "AO-SL-1803", 19.0, 7),
)
PRODUCTS_BY_CATEGORY: tuple[tuple[int, ...], ...] = tuple(
    tuple(i for i, p in enumerate(PRODUCTS) if p[4] == c) for c in range(len(CATEGORIES))
)
SEARCH_TERMS = (
    "rain jacket",
    "hiking boots",
    "tent",
    "2 person tent",
    "merino socks",
    "fleece",
    "backpack",
    "daypack",
    "trail runners",
    "down jacket",
    "sleeping bag",
    "headlamp",
    "water bottle",
    "gift card",
    "womens leggings",
    "sale",
    "camp chair",
    "trekking poles",
    "beanie",
    "waterproof",
    "size guide",
    "returns",
    "vest",
    "duffel bag",
)
SEARCH_QUERIES = tuple(quote_plus(t) for t in SEARCH_TERMS)
SUSPICIOUS_INPUTS = ("' OR 1=1 --", "<script>alert(document.cookie)</script>")
HELP_ARTICLES = (
    ("shipping-and-delivery", "Shipping & Delivery"),
    ("returns-and-exchanges", "Returns"),
    ("order-status", "Where is my order?"),
    ("size-guide", "Size Guide"),
    ("warranty", "Lifetime Warranty"),
    ("gift-cards", "Gift Cards"),
    ("contact-us", "Contact Us"),
)
BLOG_POSTS = (
    ("how-to-layer-for-winter-hikes", "How to Layer for Winter Hikes"),
    ("first-backpacking-trip-checklist", "Your First Backpacking Trip: a Checklist"),
    ("choosing-trail-runners", "Choosing Trail Runners"),
    ("leave-no-trace-basics", "Leave No Trace Basics"),
    ("best-day-hikes-pacific-northwest", "Best Day Hikes in the Pacific Northwest"),
    ("caring-for-down-jackets", "Caring for Down Jackets"),
)
ACCOUNT_PATHS = ("/account", "/account/orders", "/account/login", "/account/addresses")
CATEGORY_QUERIES = ("", "", "", "?sort=price_asc", "?sort=newest", "?page=2", "?size=m", "")
PRODUCT_QUERIES = ("", "", "", "?ref=nav", "?ref=search", "?color=blue", "?color=black", "")
EXPERIMENTS = ("checkout_v2", "control", "free_shipping_banner", "control")
COUPONS = ("SPRING20", "WELCOME10", "FREESHIP", "HIKE15")
PAYMENT_METHODS = ("card", "card", "card", "paypal", "apple_pay", "gift_card", "card", "paypal")

# --- where visitors come from -------------------------------------------------------------------

# landing referrer, landing query string
LANDING_SOURCES: tuple[tuple[str, str], ...] = (
    ("https://www.google.com/", ""),
    ("https://www.google.com/", ""),
    ("https://www.google.com/", "?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale"),
    ("https://www.google.com/", "?gclid=Cj0KCQjw8J6wBhDXARIsAPo7QA9xk2"),
    ("https://www.bing.com/", ""),
    ("https://duckduckgo.com/", ""),
    ("https://www.facebook.com/", "?utm_source=facebook&utm_medium=paid_social"),
    ("https://l.instagram.com/", "?utm_source=instagram&utm_medium=social"),
    ("https://www.pinterest.com/", ""),
    ("https://t.co/", ""),
    ("", ""),
    ("", ""),
    ("", ""),
    ("", "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly"),
    ("", "?utm_source=klaviyo&utm_medium=email&utm_campaign=abandoned_cart"),
    ("https://www.reddit.com/", ""),
)

# --- places: (city, "lat,long", UTC offset hours, IP prefix) ------------------------------------

CITIES: tuple[tuple[str, str, int, str], ...] = (
    ("New York", "40.7128,-74.0060", -5, "72.229"),
    ("Brooklyn", "40.6782,-73.9442", -5, "108.41"),
    ("Ashburn", "39.0481,-77.4728", -5, "52.23"),
    ("Boston", "42.3601,-71.0589", -5, "73.38"),
    ("Atlanta", "33.7490,-84.3880", -5, "73.207"),
    ("Miami", "25.7617,-80.1918", -5, "98.254"),
    ("Chicago", "41.8781,-87.6298", -6, "73.44"),
    ("Austin", "30.2672,-97.7431", -6, "70.114"),
    ("Minneapolis", "44.9778,-93.2650", -6, "75.73"),
    ("Denver", "39.7392,-104.9903", -7, "73.95"),
    ("Phoenix", "33.4484,-112.0740", -7, "68.231"),
    ("Los Angeles", "34.0522,-118.2437", -8, "76.90"),
    ("San Francisco", "37.7749,-122.4194", -8, "67.169"),
    ("Seattle", "47.6062,-122.3321", -8, "73.225"),
    ("Portland", "45.5152,-122.6784", -8, "71.237"),
    ("Toronto", "43.6532,-79.3832", -5, "99.228"),
    ("London", "51.5074,-0.1278", 0, "86.134"),
    ("Berlin", "52.5200,13.4050", 1, "91.64"),
    ("Sydney", "-33.8688,151.2093", 10, "101.178"),
)
# US-heavy weighting: 64 entries
CITY_TABLE: tuple[int, ...] = (
    (0,) * 7
    + (1,) * 3
    + (2,) * 2
    + (3,) * 3
    + (4,) * 3
    + (5,) * 2
    + (6,) * 5
    + (7,) * 3
    + (8,) * 2
    + (9,) * 4
    + (10,) * 2
    + (11,) * 6
    + (12,) * 4
    + (13,) * 6
    + (14,) * 4
    + (15,) * 3
    + (16,) * 3
    + (17,) * 1
    + (18,) * 1
)
assert len(CITY_TABLE) == 64

# Local hour of day a session begins: 128 entries, mostly waking hours with an evening peak.
HOUR_TABLE: tuple[int, ...] = (
    (0,) * 2
    + (1,) * 1
    + (2,) * 1
    + (3,) * 1
    + (4,) * 1
    + (5,) * 1
    + (6,) * 2
    + (7,) * 4
    + (8,) * 6
    + (9,) * 7
    + (10,) * 7
    + (11,) * 7
    + (12,) * 8
    + (13,) * 8
    + (14,) * 6
    + (15,) * 6
    + (16,) * 7
    + (17,) * 6
    + (18,) * 7
    + (19,) * 10
    + (20,) * 10
    + (21,) * 10
    + (22,) * 7
    + (23,) * 3
)
assert len(HOUR_TABLE) == 128

# --- devices ------------------------------------------------------------------------------------


def _versions(template: str, pairs: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, str], ...]:
    """(browser version, user agent) pairs; template fields are {v}, {m} (major), {o} (os)."""
    out = []
    for pair in pairs:
        v = pair[0]
        o = pair[1] if len(pair) > 1 else ""
        out.append((v, template.format(v=v, m=v.split(".")[0], o=o)))
    return tuple(out)


_CHROME = (("122.0.0.0",), ("123.0.0.0",), ("124.0.0.0",), ("125.0.0.0",), ("126.0.0.0",))
_DESKTOP_SCREENS = (
    (1920, 1080),
    (1536, 864),
    (1440, 900),
    (2560, 1440),
    (1366, 768),
    (1280, 800),
    (1680, 1050),
    (1920, 1200),
)
_PHONE_SCREENS = ((390, 844), (393, 873), (412, 915), (375, 667), (360, 800), (430, 932))
_IPHONE_SCREENS = ((390, 844), (375, 667), (430, 932), (393, 852), (414, 896))
_TABLET_SCREENS = ((820, 1180), (768, 1024), (1024, 1366), (800, 1280))

# (browser, operating system, device, (version, UA) pairs, screens)
WEB_PROFILES: tuple[
    tuple[str, str, str, tuple[tuple[str, str], ...], tuple[tuple[int, int], ...]], ...
] = (
    (
        "Chrome",
        "Windows",
        "Desktop",
        _versions(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/{v} Safari/537.36",
            _CHROME,
        ),
        _DESKTOP_SCREENS,
    ),
    (
        "Chrome",
        "OS X",
        "Desktop",
        _versions(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/{v} Safari/537.36",
            _CHROME,
        ),
        _DESKTOP_SCREENS,
    ),
    (
        "Safari",
        "OS X",
        "Desktop",
        _versions(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/{v} Safari/605.1.15",
            (("16.6",), ("17.3.1",), ("17.4",), ("17.4.1",)),
        ),
        _DESKTOP_SCREENS,
    ),
    (
        "Edge",
        "Windows",
        "Desktop",
        _versions(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/{m}.0.0.0 Safari/537.36 Edg/{v}",
            (("123.0.2420.97",), ("124.0.2478.80",), ("125.0.2535.67",)),
        ),
        _DESKTOP_SCREENS,
    ),
    (
        "Firefox",
        "Windows",
        "Desktop",
        _versions(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{m}.0) Gecko/20100101 Firefox/{m}.0",
            (("124.0",), ("125.0",), ("126.0",)),
        ),
        _DESKTOP_SCREENS,
    ),
    (
        "Chrome",
        "Linux",
        "Desktop",
        _versions(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/{v} Safari/537.36",
            _CHROME,
        ),
        _DESKTOP_SCREENS,
    ),
    (
        "Chrome",
        "Chrome OS",
        "Desktop",
        _versions(
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/{v} Safari/537.36",
            _CHROME,
        ),
        ((1366, 768), (1536, 864), (1280, 800)),
    ),
    (
        "Safari",
        "iOS",
        "Mobile",
        _versions(
            "Mozilla/5.0 (iPhone; CPU iPhone OS {o} like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1",
            (("16.6", "16_6"), ("17.3.1", "17_3_1"), ("17.4", "17_4"), ("17.4.1", "17_4_1")),
        ),
        _IPHONE_SCREENS,
    ),
    (
        "Chrome",
        "Android",
        "Mobile",
        _versions(
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/{v} Mobile Safari/537.36",
            _CHROME,
        ),
        _PHONE_SCREENS,
    ),
    (
        "Samsung Internet",
        "Android",
        "Mobile",
        _versions(
            "Mozilla/5.0 (Linux; Android {o}; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/{v} Chrome/115.0.0.0 Mobile Safari/537.36",
            (("23.0", "13"), ("24.0", "14"), ("25.0", "14")),
        ),
        ((360, 780), (384, 832)),
    ),
    (
        "Safari",
        "iOS",
        "Tablet",
        _versions(
            "Mozilla/5.0 (iPad; CPU OS {o} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/{v} Mobile/15E148 Safari/604.1",
            (("17.3.1", "17_3_1"), ("17.4", "17_4")),
        ),
        _TABLET_SCREENS,
    ),
    (
        "Chrome",
        "Android",
        "Tablet",
        _versions(
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/{v} Safari/537.36",
            _CHROME,
        ),
        ((800, 1280), (1024, 1366)),
    ),
)
# 64 entries over WEB_PROFILES
WEB_PROFILE_TABLE: tuple[int, ...] = (
    (0,) * 21
    + (1,) * 7
    + (2,) * 5
    + (3,) * 4
    + (4,) * 2
    + (5,) * 1
    + (6,) * 1
    + (7,) * 11
    + (8,) * 7
    + (9,) * 2
    + (10,) * 2
    + (11,) * 1
)
assert len(WEB_PROFILE_TABLE) == 64

APP_NAME = "Acme Outfitters"
ANDROID_PACKAGE = "com.acmeoutfitters.shop"
IOS_PACKAGE = "com.acmeoutfitters.Shop"
APP_VERSIONS = ("5.8.0", "5.9.1", "5.10.0", "5.10.2")
# (model, vendor, (screen w, h), OS versions)
ANDROID_DEVICES: tuple[tuple[str, str, tuple[int, int], tuple[str, ...]], ...] = (
    ("Pixel 8", "Google", (412, 915), ("14",)),
    ("Pixel 7a", "Google", (412, 915), ("13", "14")),
    ("SM-S918U", "samsung", (384, 824), ("13", "14")),
    ("SM-A546U", "samsung", (412, 915), ("13", "14")),
    ("moto g power 5G - 2023", "motorola", (412, 892), ("13",)),
    ("CPH2449", "OnePlus", (412, 919), ("13", "14")),
    ("SM-X710", "samsung", (800, 1280), ("14",)),
)
IOS_DEVICES: tuple[tuple[str, str, tuple[int, int], tuple[str, ...]], ...] = (
    ("iPhone15,2", "Apple", (393, 852), ("17.3.1", "17.4.1", "17.5")),
    ("iPhone14,5", "Apple", (390, 844), ("16.7.5", "17.4.1", "17.5")),
    ("iPhone16,2", "Apple", (430, 932), ("17.4.1", "17.5")),
    ("iPhone12,8", "Apple", (375, 667), ("16.7.5", "17.4.1")),
    ("iPad13,18", "Apple", (820, 1180), ("17.4.1",)),
)

# --- interaction vocabularies -------------------------------------------------------------------

_ROOT = "html > body > div#__next > div.layout"
NAV_TARGETS: tuple[tuple[str, str], ...] = (
    *(
        (label, f"{_ROOT} > header.site-header > nav.main-nav > ul > li > a.nav-link")
        for label in ("Men's", "Women's", "Footwear", "Camping", "Sale", "Help")
    ),
    ("", f"{_ROOT} > header.site-header > a.logo > svg"),
    ("", f"{_ROOT} > header.site-header > button.cart-icon"),
    ("Search", f"{_ROOT} > header.site-header > form.search > input#q"),
    ("Sign in", f"{_ROOT} > header.site-header > a.account-link"),
)
_MAIN = f"{_ROOT} > main"
KIND_TARGETS: tuple[tuple[tuple[str, str], ...], ...] = (
    (  # home
        ("Shop the Spring Collection", f"{_MAIN} > section.hero > a.btn.btn-primary"),
        ("New Arrivals", f"{_MAIN} > section.tiles > a.tile"),
        ("Best Sellers", f"{_MAIN} > section.tiles > a.tile"),
        ("Shop Footwear", f"{_MAIN} > section.categories > a.category-card"),
        ("Shop Camping", f"{_MAIN} > section.categories > a.category-card"),
        ("", f"{_MAIN} > section.carousel > button.carousel-next"),
    ),
    (  # category
        ("Sort by", f"{_MAIN} > div.toolbar > div.sort > button.dropdown-toggle"),
        ("Price: Low to High", f"{_MAIN} > div.toolbar > div.sort > ul > li > button"),
        ("Size", f"{_MAIN} > aside.filters > details.filter-size > summary"),
        ("M", f"{_MAIN} > aside.filters > details.filter-size > label > input[type=checkbox]"),
        ("Load more", f"{_MAIN} > div.grid-footer > button.load-more"),
        ("", f"{_MAIN} > div.product-grid > article.product-card > a > img"),
    ),
    (  # product
        ("M", f"{_MAIN} > div.pdp > form.buy-box > fieldset.sizes > label.size"),
        ("L", f"{_MAIN} > div.pdp > form.buy-box > fieldset.sizes > label.size"),
        ("Blue", f"{_MAIN} > div.pdp > form.buy-box > fieldset.colors > label.swatch"),
        ("Size guide", f"{_MAIN} > div.pdp > form.buy-box > a.size-guide"),
        ("Reviews", f"{_MAIN} > div.pdp > nav.tabs > button.tab-reviews"),
        ("", f"{_MAIN} > div.pdp > div.gallery > button.thumb"),
        ("Add to wishlist", f"{_MAIN} > div.pdp > form.buy-box > button.wishlist"),
    ),
    (  # search
        ("Filters", f"{_MAIN} > div.search > button.filters-toggle"),
        ("Next", f"{_MAIN} > div.search > nav.pagination > a.next"),
        ("", f"{_MAIN} > div.search > ol.results > li > article.product-card > a"),
    ),
    (  # cart
        ("+", f"{_MAIN} > div.cart > ul.line-items > li > div.qty > button.increment"),
        ("Remove", f"{_MAIN} > div.cart > ul.line-items > li > button.remove"),
        ("Apply", f"{_MAIN} > div.cart > form.promo > button[type=submit]"),
        ("Continue shopping", f"{_MAIN} > div.cart > a.continue"),
    ),
    (  # checkout
        ("Continue to shipping", f"{_MAIN} > form#checkout > section.contact > button.next"),
        ("Standard (3-5 days)", f"{_MAIN} > form#checkout > section.shipping > label.rate"),
        ("Express (1-2 days)", f"{_MAIN} > form#checkout > section.shipping > label.rate"),
        ("Continue to payment", f"{_MAIN} > form#checkout > section.shipping > button.next"),
        ("Use shipping address", f"{_MAIN} > form#checkout > section.payment > label.same"),
    ),
    (  # confirmation
        ("Track your order", f"{_MAIN} > div.confirmation > a.track"),
        ("Continue shopping", f"{_MAIN} > div.confirmation > a.continue"),
        ("Create an account", f"{_MAIN} > div.confirmation > form.signup > button"),
    ),
    (  # account
        ("Sign in", f"{_MAIN} > div.account > form.login > button[type=submit]"),
        ("Orders", f"{_MAIN} > div.account > nav.account-nav > a.orders"),
        ("View order", f"{_MAIN} > div.account > table.orders > tbody > tr > td > a"),
        ("Addresses", f"{_MAIN} > div.account > nav.account-nav > a.addresses"),
        ("Sign out", f"{_MAIN} > div.account > nav.account-nav > button.sign-out"),
    ),
    (  # help
        ("Start a return", f"{_MAIN} > article.help > a.btn.return"),
        ("Chat with us", f"{_ROOT} > div#chat-widget > button.launcher"),
        ("Was this helpful? Yes", f"{_MAIN} > article.help > footer > button.yes"),
        ("Shipping & Delivery", f"{_MAIN} > aside.help-nav > ul > li > a"),
    ),
    (  # blog
        ("Shop the gear", f"{_MAIN} > article.post > aside.shop-the-post > a.product-card"),
        ("Read more", f"{_MAIN} > section.related > article > a"),
        ("Share", f"{_MAIN} > article.post > footer > button.share"),
    ),
)
DEAD_TARGETS: tuple[tuple[str, str], ...] = (
    ("Free shipping on orders over $75", f"{_ROOT} > div.promo-bar > p"),
    ("", f"{_MAIN} > div.pdp > div.gallery > figure > img.main"),
    ("In stock", f"{_MAIN} > div.pdp > form.buy-box > span.badge.stock"),
    ("4.7 ★ (128)", f"{_MAIN} > div.pdp > div.rating > span.stars"),
    ("Order summary", f"{_MAIN} > form#checkout > aside.summary > h2"),
)
RAGE_TARGETS: tuple[tuple[str, str], ...] = (
    ("Add to cart", f"{_MAIN} > div.pdp > form.buy-box > button.add-to-cart[disabled]"),
    ("Apply", f"{_MAIN} > div.cart > form.promo > button[type=submit]"),
    ("Place order", f"{_MAIN} > form#checkout > section.review > button.place-order"),
    ("Load more", f"{_MAIN} > div.grid-footer > button.load-more"),
    ("", f"{_MAIN} > section.carousel > button.carousel-next"),
)
ADD_TO_CART = ("Add to cart", f"{_MAIN} > div.pdp > form.buy-box > button.add-to-cart")
GO_TO_CHECKOUT = ("Checkout", f"{_MAIN} > div.cart > aside.summary > a.btn.checkout")
PLACE_ORDER = ("Place order", f"{_MAIN} > form#checkout > section.review > button.place-order")
CHECKOUT_INPUTS: tuple[tuple[str, str], ...] = (
    # (EventTargetText shown in the export: empty for fields FullStory excludes, selector)
    ("", f"{_MAIN} > form#checkout > section.contact > input#email"),
    ("", f"{_MAIN} > form#checkout > section.shipping > input#name"),
    ("", f"{_MAIN} > form#checkout > section.shipping > input#address1"),
    ("Seattle", f"{_MAIN} > form#checkout > section.shipping > input#city"),
    ("98103", f"{_MAIN} > form#checkout > section.shipping > input#zip"),
    ("", f"{_MAIN} > form#checkout > section.payment > div.card-element > iframe"),
)
SEARCH_INPUT = f"{_ROOT} > header.site-header > form.search > input#q"
PROMO_INPUT = f"{_MAIN} > div.cart > form.promo > input#promo"
QTY_INPUT = f"{_MAIN} > div.cart > ul.line-items > li > div.qty > input"
LOGIN_INPUT = f"{_MAIN} > div.account > form.login > input#email"
CHECKOUT_FORM = f"{_MAIN} > form#checkout"
SIGNUP_FORM = f"{_MAIN} > div.account > form.signup"
SEEN_TARGETS: tuple[tuple[str, str], ...] = (
    ("Spring sale: up to 40% off", f"{_MAIN} > section.hero > div.banner"),
    ("You may also like", f"{_MAIN} > section.recommendations"),
    ("Free returns within 60 days", f"{_ROOT} > div.promo-bar > p"),
)
COPY_TEXTS = (
    "AO-FW-1301",
    "Free returns within 60 days",
    "Stormline Rain Jacket",
    "SPRING20",
    "support@acme-outfitters.example",
    "Merino Hiking Socks",
)
HIGHLIGHT_TEXTS = (
    "100% recycled polyester",
    "Waterproof to 20,000 mm",
    "Ships in 1-2 business days",
    "Lifetime warranty",
    "Returns are free within 60 days of delivery",
    "Weight: 1.2 lb",
)
PASTE_TEXTS = ("SPRING20", "WELCOME10", "98103", "1450 NE 45th St")

# Console errors and exceptions: (message, error kind, script)
CONSOLE_ERRORS: tuple[tuple[str, str], ...] = (
    ("Failed to load resource: the server responded with a status of 500 ()", "network"),
    ("Uncaught (in promise) TypeError: Failed to fetch", "TypeError"),
    ("[reviews-widget] could not initialise: container not found", "Error"),
    (
        "Refused to load the script 'https://widgets.chatvendor.example/loader.js' because it "
        "violates the following Content Security Policy directive: \"script-src 'self'\"",
        "SecurityError",
    ),
    ('Warning: Each child in a list should have a unique "key" prop.', "Error"),
    ("Failed to load resource: net::ERR_BLOCKED_BY_CLIENT", "network"),
)
WEB_SCRIPTS = (
    f"{CDN}/static/js/main.4f9c2a1e.js",
    f"{CDN}/static/js/pdp.77ab03c2.chunk.js",
    f"{CDN}/static/js/checkout.1d2e9f40.chunk.js",
    f"{CDN}/static/js/vendor.b6e01f8d.js",
)
EXCEPTIONS: tuple[tuple[str, str], ...] = (
    ("TypeError: Cannot read properties of undefined (reading 'price')", "TypeError"),
    ("TypeError: undefined is not an object (evaluating 'e.variants.length')", "TypeError"),
    ("ReferenceError: dataLayer is not defined", "ReferenceError"),
    ("ChunkLoadError: Loading chunk 732 failed.", "ChunkLoadError"),
    ("Error: Minified React error #418", "Error"),
)
ANDROID_EXCEPTIONS: tuple[tuple[str, str], ...] = (
    (
        "java.lang.IllegalStateException: Fragment ProductDetailFragment not attached to a context.",
        "ProductDetailFragment.kt",
    ),
    (
        "java.lang.NullPointerException: Attempt to invoke virtual method 'int java.util.List.size()'"
        " on a null object reference",
        "CartAdapter.kt",
    ),
    ("java.net.SocketTimeoutException: timeout", "ApiClient.kt"),
)
IOS_EXCEPTIONS: tuple[tuple[str, str], ...] = (
    (
        "Fatal error: Unexpectedly found nil while unwrapping an Optional value",
        "ProductDetailViewController.swift",
    ),
    ("Fatal error: Index out of range", "CartViewModel.swift"),
    (
        "NSInvalidArgumentException: -[__NSCFNumber length]: unrecognized selector",
        "CheckoutCoordinator.swift",
    ),
)

# Request status lookup: 64 entries, mostly success.
STATUS_TABLE: tuple[int, ...] = (
    (200,) * 52 + (204,) * 3 + (304,) * 3 + (404,) * 2 + (429,) * 1 + (500,) * 2 + (503,) * 1
)
assert len(STATUS_TABLE) == 64
ORDER_FAIL_STATUSES = (402, 422, 500, 502)

# Every custom variable name the world can emit, by kind (the export's `user_*`, `evt_*` and
# `page_*` wildcard tokens expand to these).
CUSTOM_VARS: dict[str, tuple[str, ...]] = {"user": USER_VARS, "evt": EVT_VARS, "page": PAGE_VARS}

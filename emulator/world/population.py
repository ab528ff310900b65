"""Who visits the shop, from where, on what, and when.

Each individual is a pure function of (seed, index). Their *timing* (first visit, visit frequency,
time zone) comes from a couple of `ids.mix` hashes and no `random.Random`, because a million-person
world is scanned with `session_starts` and seeding a Mersenne Twister costs more than all the rest
of a one-time visitor. Names and e-mails come from Faker, which is slow, so the World caches
Individuals; device and place are cheap and recomputed on demand.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from emulator.ids import id63, mix, token
from emulator.timestamps import MillisFormatter
from emulator.world import vocab as V

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WINDOW_MS = 90 * DAY_MS
# No session lasts this long (pages stop being opened after 90 minutes and one page is capped at
# about 25 minutes), and consecutive session starts are at least this far apart, so sessions of
# one individual never overlap and a session starting before `t - SESSION_SPAN_MAX_MS` has
# certainly ended by `t`.
SESSION_SPAN_MAX_MS = 2 * HOUR_MS

# Domain-separation tags for ids.mix, so that different draws about one individual are
# independent.
TAG_TIME = 0x71
TAG_PLACE = 0x72
TAG_GAPS = 0x73
TAG_INDV = 0x74
TAG_USER = 0x75
TAG_UID = 0x76
TAG_TRAITS = 0x77
TAG_SESSION = 0x78
TAG_CLUSTER = 0x79

_U53 = 1.0 / (1 << 53)


@dataclass(frozen=True, slots=True)
class Individual:
    """One person as FullStory knows them: stable ids, identity (if identified), user vars."""

    index: int
    indv_id: int
    user_id: int
    uid: str
    display_name: str
    email: str
    created_ms: int
    mobile: bool
    user_vars: dict[str, object]


@dataclass(frozen=True, slots=True)
class Timing:
    """What `session_starts` needs about an individual; derived without a PRNG object."""

    first_ms: int
    mean_gap_ms: float
    tz_ms: int


def _unit(h: int, shift: int) -> float:
    """A uniform [0, 1) from 21 bits of a 64-bit hash."""
    return ((h >> shift) & 0x1FFFFF) / 2097152.0


def city_of(seed: int, index: int) -> int:
    return V.CITY_TABLE[mix(seed, index, TAG_PLACE) & 63]


def is_mobile(seed: int, index: int) -> bool:
    """About 15% of people use the shop's native app (10/64 of a uniform 6-bit draw)."""
    return (mix(seed, index, TAG_PLACE) >> 6) & 63 < 10


def _waking(h: int, base: int, tz_ms: int, shift: int) -> int:
    """The first instant at or after `base` whose local time of day is drawn from HOUR_TABLE."""
    hour = V.HOUR_TABLE[(h >> shift) & 127]
    want = hour * HOUR_MS + int(_unit(h, shift + 7) * HOUR_MS)
    return base + (want - (base + tz_ms)) % DAY_MS


def timing(seed: int, origin_ms: int, index: int) -> Timing:
    """First-seen instant in [origin, origin + 90 days) at a waking hour, and visit frequency.

    Sessions per 90 days are log-normal (median ~2.7, capped at 60), which with a uniform
    first-seen day gives ~4 sessions in the first 90 days on average, most people once or twice
    and a long tail of near-daily visitors.
    """
    h = mix(seed, index, TAG_TIME)
    tz_ms = V.CITIES[city_of(seed, index)][2] * HOUR_MS
    day = ((h & 0xFFFF) * 90) >> 16
    first = _waking(h, origin_ms + day * DAY_MS, tz_ms, 16)  # < origin + (day + 1) days
    h2 = mix(h, TAG_TIME)
    u1 = 1.0 - _unit(h2, 0)  # (0, 1]
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * _unit(h2, 21))
    per_window = min(60.0, math.exp(1.0 + 1.3 * z))
    return Timing(first, WINDOW_MS / per_window, tz_ms)


def session_starts(seed: int, origin_ms: int, index: int) -> Iterator[int]:
    """The individual's session starts, forever (a renewal process; callers stop it).

    Gaps are exponential on top of SESSION_SPAN_MAX_MS; a start that falls in the local night
    (before 07:00) is usually pushed to a waking hour. A handful of RNG calls per session.
    """
    tm = timing(seed, origin_ms, index)
    t = tm.first_ms
    yield t
    rng = random.Random(mix(seed, index, TAG_GAPS))
    rand = rng.random
    getbits = rng.getrandbits
    mean = tm.mean_gap_ms
    tz = tm.tz_ms
    log = math.log
    while True:
        t += SESSION_SPAN_MAX_MS + int(-log(1.0 - rand()) * mean)
        if (t + tz) % DAY_MS < 7 * HOUR_MS and rand() < 0.85:
            t = _waking(getbits(64), t, tz, 0)
        yield t


def _email(first: str, last: str, digits: int, domain: str, style: int) -> str:
    first, last = first.lower(), last.lower()
    if style == 0:
        local = f"{first}.{last}"
    elif style == 1:
        local = f"{first[0]}{last}{digits % 100}"
    elif style == 2:
        local = f"{first}{last[0]}{digits}"
    else:
        local = f"{first}_{last}{digits % 1000}"
    return f"{local}@{domain}"


def make_individual(seed: int, origin_ms: int, index: int, faker: object) -> Individual:
    """Build one Individual; the only place Faker is used (seeded per individual)."""
    tm = timing(seed, origin_ms, index)
    rng = random.Random(mix(seed, index, TAG_TRAITS))
    identified = rng.random() < 0.6
    mobile = is_mobile(seed, index)
    user_vars: dict[str, object] = {}
    uid = name = email = ""
    cohort = ("A", "B")[rng.getrandbits(1)]
    if identified:
        faker.seed_instance(mix(seed, index))  # type: ignore[attr-defined]
        first = faker.first_name()  # type: ignore[attr-defined]
        last = faker.last_name()  # type: ignore[attr-defined]
        domain = faker.free_email_domain()  # type: ignore[attr-defined]
        name = f"{first} {last}"
        email = _email(first, last, rng.randrange(1, 10000), domain, rng.getrandbits(2))
        uid = "u_" + token(seed, index, TAG_UID, length=12)
        plan = ("free", "free", "free", "plus", "plus", "premier", "free", "plus")[
            rng.getrandbits(3)
        ]
        orders = int(rng.expovariate(1 / 3.0)) if rng.random() < 0.8 else 0
        ltv = round(orders * (40.0 + rng.random() * 160.0), 2)
        if rng.random() < 0.7:
            signup_ms = tm.first_ms - rng.randrange(0, 3 * 365) * DAY_MS
        else:
            signup_ms = tm.first_ms
        signup_ms -= signup_ms % DAY_MS
        user_vars = {
            "user_plan_str": plan,
            "user_ltv_real": ltv,
            "user_signup_date": MillisFormatter()(signup_ms),
            "user_newsletter_bool": rng.random() < 0.45,
            "user_orders_int": orders,
            "user_loyalty_points_int": int(ltv * 10),
            "user_cohort_str": cohort,
        }
    elif rng.random() < 0.5:
        user_vars = {"user_cohort_str": cohort}
    return Individual(
        index=index,
        indv_id=id63(seed, index, TAG_INDV),
        user_id=id63(seed, index, TAG_USER),
        uid=uid,
        display_name=name,
        email=email,
        created_ms=tm.first_ms,
        mobile=mobile,
        user_vars=user_vars,
    )


class Profile:
    """Per-individual constants of every event row: user fields, device, place.

    Built once per `events()` call; the dicts here are copied into rows, never handed out.
    """

    __slots__ = (
        "device_fields",
        "ip_home",
        "ip_prefix",
        "latlong",
        "mobile",
        "platform",
        "user_fields",
    )

    def __init__(self, seed: int, indv: Individual) -> None:
        index = indv.index
        rng = random.Random(mix(seed, index, TAG_PLACE, 1))
        getbits = rng.getrandbits
        fmt = MillisFormatter()
        uf: dict[str, object] = {
            "IndvId": indv.indv_id,
            "UserId": indv.user_id,
            "UserCreated": fmt(indv.created_ms),
        }
        if indv.uid:
            uf["UserAppKey"] = indv.uid
        if indv.display_name:
            uf["UserDisplayName"] = indv.display_name
        if indv.email:
            uf["UserEmail"] = indv.email
        uf.update(indv.user_vars)
        self.user_fields = uf
        city = V.CITIES[city_of(seed, index)]
        self.latlong = city[1]
        self.ip_prefix = city[3]
        self.ip_home = f"{city[3]}.{getbits(8)}.{1 + getbits(8) % 254}"
        self.mobile = indv.mobile
        df: dict[str, object]
        if indv.mobile:
            android = getbits(8) < 150
            devices = V.ANDROID_DEVICES if android else V.IOS_DEVICES
            model, vendor, (w, h), os_versions = devices[rng.randrange(len(devices))]
            osv = os_versions[rng.randrange(len(os_versions))]
            appv = V.APP_VERSIONS[getbits(2)]
            platform = "Android" if android else "iOS"
            if android:
                ua = f"Dalvik/2.1.0 (Linux; U; Android {osv}; {model} Build/UQ1A.240205.004)"
                package = V.ANDROID_PACKAGE
            else:
                ua = (
                    f"AcmeOutfitters/{appv} ({V.IOS_PACKAGE}; build:{510 + getbits(4)}; "
                    f"iOS {osv}) Alamofire/5.8.1"
                )
                package = V.IOS_PACKAGE
            df = {
                "PageUserAgent": ua,
                "PageBrowser": "Mobile App",
                "PageDevice": "Tablet" if w >= 600 else "Mobile",
                "PagePlatform": platform,
                "PageOperatingSystem": platform,
                "PageScreenWidth": w,
                "PageScreenHeight": h,
                "PageViewportWidth": w,
                "PageViewportHeight": h,
                "AppName": V.APP_NAME,
                "AppPackageName": package,
                "AppDeviceModel": model,
                "AppDeviceVendor": vendor,
                "AppVersion": appv,
                "AppOsVersion": osv,
            }
            self.platform = platform
        else:
            browser, os_name, device, versions, screens = V.WEB_PROFILES[
                V.WEB_PROFILE_TABLE[getbits(6)]
            ]
            version, ua = versions[rng.randrange(len(versions))]
            w, h = screens[rng.randrange(len(screens))]
            if device == "Desktop":
                vw = w if getbits(2) else w - 16 * (1 + getbits(5))
                vh = h - (80 + 4 * getbits(5))
            else:
                vw, vh = w, h - (60 + 4 * getbits(4))
            df = {
                "PageUserAgent": ua,
                "PageBrowser": browser,
                "PageBrowserVersion": version,
                "PageDevice": device,
                "PagePlatform": "Web",
                "PageOperatingSystem": os_name,
                "PageScreenWidth": w,
                "PageScreenHeight": h,
                "PageViewportWidth": vw,
                "PageViewportHeight": vh,
            }
            self.platform = "Web"
        self.device_fields = df

"""Who visits the shop, from where, on what, and when.

Each individual is a pure function of (seed, index). Their *timing* (first visit, visit frequency,
time zone) comes from one `ids.mix` hash and an LCG, no `random.Random`, because a million-person
world is scanned with `session_starts` and seeding a Mersenne Twister costs more than all the rest
of a typical visitor's stream. Names and e-mails come from Faker, which is slow, so the World caches
Individuals; device and place are cheap and recomputed on demand.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

from fullstory_emulator.ids import id63, mix, token
from fullstory_emulator.timestamps import MillisFormatter
from fullstory_emulator.world import vocab as V

if TYPE_CHECKING:  # Faker is imported lazily by the World: it costs ~0.1 s to import
    from faker import Faker

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


def _visit_rates() -> tuple[float, ...]:
    """Mean gap between sessions (ms) at 256 quantiles of a log-normal visit frequency.

    Sessions per 90 days are log-normal (median ~2.7, capped at 60): with a uniform first-seen
    day that gives ~4 sessions in the first 90 days on average, most people once or twice and a
    long tail of near-daily visitors. A quantile table turns one byte of a hash into a rate.
    """
    normal = NormalDist()
    rates = (min(60.0, math.exp(1.0 + 1.3 * normal.inv_cdf((q + 0.5) / 256))) for q in range(256))
    return tuple(WINDOW_MS / r for r in rates)


MEAN_GAP_MS = _visit_rates()


def city_of(seed: int, index: int) -> int:
    return V.CITY_TABLE[mix(seed, index, TAG_TIME) >> 58]


def is_mobile(seed: int, index: int) -> bool:
    """About 15% of people use the shop's native app (10/64 of a uniform 6-bit draw)."""
    return mix(seed, index, TAG_PLACE) & 63 < 10


def _waking(h: int, base: int, tz_ms: int) -> int:
    """The first instant at or after `base` whose local time of day is drawn from HOUR_TABLE,
    using 27 bits of `h`."""
    want = V.HOUR_TABLE[h & 127] * HOUR_MS + ((h >> 7) & 0xFFFFF) * HOUR_MS // 0x100000
    return base + (want - (base + tz_ms)) % DAY_MS


# Traffic's rhythm: the share of would-be visits that happen, by local hour of the week (Monday
# 00:00 first). Evenings peak, nights are quiet, Friday and Saturday are slower and Sunday
# evening picks up again, as a consumer shop's traffic does. A renewal process thinned by it
# (see `session_starts`) has exactly this shape, at any density.
HOUR_WEIGHTS = (
    0.22, 0.14, 0.09, 0.07, 0.07, 0.10, 0.18, 0.32, 0.48, 0.60, 0.68, 0.72,
    0.78, 0.76, 0.72, 0.70, 0.70, 0.74, 0.82, 0.92, 1.00, 0.96, 0.74, 0.44,
)  # fmt: skip
DAY_WEIGHTS = (1.00, 0.98, 0.96, 0.94, 0.86, 0.74, 0.84)  # Monday .. Sunday
_Q24 = 1 << 24
RHYTHM = tuple(int(d * h * _Q24) for d in DAY_WEIGHTS for h in HOUR_WEIGHTS)  # of 2^24
RHYTHM_MEAN = sum(RHYTHM) / len(RHYTHM) / _Q24  # the share of candidate visits kept
_EPOCH_HOUR_OF_WEEK = 3 * 24  # 1970-01-01 was a Thursday
# Density 1: visits per person this many times the log-normal table's, calibrated so that the
# default world (1000 people) holds ~200 sessions and ~8k events a day at the end of its data.
VISIT_BOOST = 2.8
MIN_CANDIDATE_GAP_MS = 10 * 60_000
# Most people are already the shop's visitors when the data begins (their first session is
# within their usual gap of the origin); the rest arrive over the first 90 days: traffic grows.
REGULARS_OF_128 = 77  # ~60%


def _candidate_gap(base_gap_ms: float, density: float) -> float:
    """Mean exponential part of the gap between candidate visits, so that after thinning by
    RHYTHM a person visits `density * VISIT_BOOST` times as often as the table says."""
    wanted = base_gap_ms * RHYTHM_MEAN / (density * VISIT_BOOST)  # mean candidate spacing
    return max(MIN_CANDIDATE_GAP_MS, wanted - SESSION_SPAN_MAX_MS)


def timing(seed: int, origin_ms: int, index: int, density: float = 1.0) -> tuple[int, float, int]:
    """(first-seen ms, mean candidate gap in ms, UTC offset of the home city in ms).

    A regular (~60%) is first seen within their usual gap between visits after the origin; a
    newcomer on a day uniform over the 90 days from the origin; both at a waking local hour.
    One hash gives everything: bits 0-15 day (or offset), 16-42 time of day, 43-50 visit rate,
    51-57 regular or new, 58-63 city.
    """
    h = mix(seed, index, TAG_TIME)
    tz_ms = V.CITIES[V.CITY_TABLE[h >> 58]][2] * HOUR_MS
    mean = _candidate_gap(MEAN_GAP_MS[(h >> 43) & 255], density)
    if (h >> 51) & 127 < REGULARS_OF_128:
        usual = (SESSION_SPAN_MAX_MS + mean) / RHYTHM_MEAN  # mean gap between visits
        base = origin_ms + ((h & 0xFFFF) * int(min(usual, 89 * DAY_MS)) >> 16)
    else:
        base = origin_ms + (((h & 0xFFFF) * 90) >> 16) * DAY_MS
    first = _waking(h >> 16, base, tz_ms)  # < base + 1 day <= origin + 90 days
    return first, mean, tz_ms


_LCG_A = 6364136223846793005
_LCG_C = 1442695040888963407
_MASK64 = (1 << 64) - 1


def session_starts(
    seed: int, origin_ms: int, index: int, until_ms: int, density: float = 1.0
) -> Iterator[int]:
    """The individual's session starts before until_ms: a renewal process, thinned by RHYTHM.

    Candidate gaps are exponential on top of SESSION_SPAN_MAX_MS (so sessions never overlap); a
    candidate becomes a session with the RHYTHM weight of its local hour of the week. Draws
    come from a 64-bit LCG seeded by a hash (its high bits are plenty), not from random.Random,
    whose seeding alone would cost more than a typical individual's whole stream; a scan of a
    million people is cheap, and the cost is per session, never per event.
    """
    t, mean, tz = timing(seed, origin_ms, index, density)
    if t >= until_ms:
        return
    yield t
    state = mix(seed, index, TAG_GAPS)
    log = math.log
    rhythm = RHYTHM
    shift = tz // HOUR_MS + _EPOCH_HOUR_OF_WEEK  # whole-hour zones: local hour = UTC hour + tz
    while True:
        state = (state * _LCG_A + _LCG_C) & _MASK64
        t += SESSION_SPAN_MAX_MS + int(-log(1.0 - (state >> 11) * _U53) * mean)
        if t >= until_ms:
            return
        state = (state * _LCG_A + _LCG_C) & _MASK64
        if state >> 40 < rhythm[(t // HOUR_MS + shift) % 168]:
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


def make_individual(
    seed: int, origin_ms: int, index: int, faker: Faker, density: float = 1.0
) -> Individual:
    """Build one Individual; the only place Faker is used (seeded per individual)."""
    first_ms = timing(seed, origin_ms, index, density)[0]
    rng = random.Random(mix(seed, index, TAG_TRAITS))
    identified = rng.random() < 0.6
    mobile = is_mobile(seed, index)
    user_vars: dict[str, object] = {}
    uid = name = email = ""
    cohort = ("A", "B")[rng.getrandbits(1)]
    if identified:
        faker.seed_instance(mix(seed, index))
        first = faker.first_name()
        last = faker.last_name()
        domain = faker.free_email_domain()
        name = f"{first} {last}"
        email = _email(first, last, rng.randrange(1, 10000), domain, rng.getrandbits(2))
        uid = "u_" + token(seed, index, TAG_UID, length=12)
        plan = ("free", "free", "free", "plus", "plus", "premier", "free", "plus")[
            rng.getrandbits(3)
        ]
        orders = int(rng.expovariate(1 / 3.0)) if rng.random() < 0.8 else 0
        ltv = round(orders * (40.0 + rng.random() * 160.0), 2)
        if rng.random() < 0.7:
            signup_ms = first_ms - rng.randrange(0, 3 * 365) * DAY_MS
        else:
            signup_ms = first_ms
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
        created_ms=first_ms,
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

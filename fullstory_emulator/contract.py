"""The wire vocabulary of FullStory's Segment Export API, stated once.

Every enum value, operation type and export field name a client can send or receive is defined
here and imported by the server, the client tools and the OpenAPI document alike.
"""

from __future__ import annotations

from typing import Final, Literal

# -- export requests ---------------------------------------------------------------------------

TYPE_INDIVIDUAL: Final = "TYPE_INDIVIDUAL"
TYPE_EVENT: Final = "TYPE_EVENT"
EXPORT_TYPES: Final = (TYPE_INDIVIDUAL, TYPE_EVENT, "TYPE_PAGES", "TYPE_SESSIONS")
ExportType = Literal["TYPE_INDIVIDUAL", "TYPE_EVENT", "TYPE_PAGES", "TYPE_SESSIONS"]

FORMAT_EXTENSIONS: Final = {"FORMAT_CSV": "csv", "FORMAT_JSON": "json", "FORMAT_NDJSON": "ndjson"}
FORMATS: Final = tuple(FORMAT_EXTENSIONS)
ExportFormat = Literal["FORMAT_CSV", "FORMAT_JSON", "FORMAT_NDJSON"]

SCOPE_EVENT: Final = "SCOPE_EVENT"
SCOPE_INDIVIDUAL: Final = "SCOPE_INDIVIDUAL"
SCOPES: Final = (SCOPE_EVENT, "SCOPE_PAGES", "SCOPE_SESSIONS", SCOPE_INDIVIDUAL)
SCOPE_ALIASES: Final = {"SCOPE_EVENTS": SCOPE_EVENT}
EventScope = Literal["SCOPE_EVENT", "SCOPE_PAGES", "SCOPE_SESSIONS", "SCOPE_INDIVIDUAL"]
# Types that imply a scope of an event export.
TYPE_SCOPES: Final = {"TYPE_PAGES": "SCOPE_PAGES", "TYPE_SESSIONS": "SCOPE_SESSIONS"}

# -- operations --------------------------------------------------------------------------------

SEARCH_EXPORT: Final = "SEARCH_EXPORT"
# Every operation type FullStory documents; the emulator only ever creates SEARCH_EXPORT.
OPERATION_TYPES: Final = (
    SEARCH_EXPORT,
    "DELETE_USER",
    "DELETE_SESSION",
    "DELETE_SEGMENT_SESSIONS",
    "DELETE_SEGMENT_USERS",
)
PENDING: Final = "PENDING"
COMPLETED: Final = "COMPLETED"
# The help article names the failure state ERROR, the API reference FAILED (FullStory's own
# clients know only FAILED); the emulator answers with one of them, chosen by a setting.
FAILURE_STATES: Final = ("ERROR", "FAILED")
STATES: Final = (PENDING, COMPLETED, *FAILURE_STATES)
TERMINAL_STATES: Final = frozenset({COMPLETED, *FAILURE_STATES})

# -- export fields (exact names) ---------------------------------------------------------------

EVENT_FIELDS: Final[tuple[str, ...]] = (
    "IndvId",
    "UserId",
    "SessionId",
    "PageId",
    "UserCreated",
    "UserAppKey",
    "UserDisplayName",
    "UserEmail",
    "SessionStart",
    "EventStart",
    "EventType",
    "EventSubType",
    "EventCustomName",
    "EventTargetText",
    "EventTargetSelector",
    "EventDuration",
    "EventSecondaryDuration",
    "EventPageOffset",
    "EventSessionOffset",
    "EventModFrustrated",
    "EventModDead",
    "EventModError",
    "EventModSuspicious",
    "EventCumulativeLayoutShift",
    "EventFirstInputDelay",
    "EventVarErrorKind",
    "EventVarFields",
    "EventWebSourceFileUrl",
    "EventMobileSourceFile",
    "PageName",
    "PageStart",
    "PageDuration",
    "PageActiveDuration",
    "PageUrl",
    "PageRefererUrl",
    "PageIp",
    "PageLatLong",
    "PageUserAgent",
    "PageBrowser",
    "PageBrowserVersion",
    "PageDevice",
    "PagePlatform",
    "PageOperatingSystem",
    "PageScreenWidth",
    "PageScreenHeight",
    "PageViewportWidth",
    "PageViewportHeight",
    "PageNumEvents",
    "PageNumDerivedEvents",
    "PageNumInfos",
    "PageNumWarnings",
    "PageNumErrors",
    "PageClusterId",
    "PageMaxScrollDepthPercent",
    "LoadDomContentTime",
    "LoadEventTime",
    "LoadFirstPaintTime",
    "LoadLargestPaintTime",
    "ReqUrl",
    "ReqMethod",
    "ReqStatus",
    "AppName",
    "AppPackageName",
    "AppDeviceModel",
    "AppDeviceVendor",
    "AppVersion",
    "AppOsVersion",
    "AppViewName",
)

INDIVIDUAL_FIELDS: Final[tuple[str, ...]] = (
    "IndvId",
    "Created",
    "Uid",
    "DisplayName",
    "Email",
    "NumSessions",
    "NumPages",
    "NumEvents",
    "TotalSec",
    "ActiveSec",
    "AvgSessionSec",
    "AvgSessionActiveSec",
    "MaxSessionSec",
    "LastSessionNumPages",
    "LastSessionNumEvents",
    "LastSessionSec",
    "LastSessionActiveSec",
    "LastSessionStart",
    "LastPage",
    "LastIp",
    "LastLatLong",
    "LastEventStart",
    "LastBrowser",
    "LastDevice",
    "LastPlatform",
    "LastOperatingSystem",
)

# Custom variables are named <kind>_<name>_<type>; `<kind>_*` in `fields` stands for all of a kind.
CUSTOM_KINDS: Final = ("user", "evt", "page")
CUSTOM_TYPES: Final = ("str", "int", "real", "bool", "date")
# The JSON type a custom variable's value has, by its suffix (`rfc3339`: an RFC 3339 string); a
# plural suffix (`_strs`) holds an array of them.
CUSTOM_JSON_TYPES: Final = {
    "str": "string",
    "int": "integer",
    "real": "number",
    "bool": "boolean",
    "date": "rfc3339",
}
# Export columns holding FullStory's ids: 64-bit integers, which a client must not read as
# doubles (JavaScript) or 32-bit numbers.
ID_FIELDS: Final = ("IndvId", "SessionId", "PageId")

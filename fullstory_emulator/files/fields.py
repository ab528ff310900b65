"""The export field catalog and the `fields` request option.

`fields` selects and orders columns. `user_*`, `evt_*` and `page_*` are tokens standing for
every custom variable of that kind (they are not globs: `user_pl*` is an unknown name). An
explicit custom variable name must have the `<kind>_<name>_<type>` shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ..contract import CUSTOM_KINDS, CUSTOM_TYPES, EVENT_FIELDS, INDIVIDUAL_FIELDS
from ..errors import InvalidArgument, echo

WILDCARDS = {f"{kind}_*": kind for kind in CUSTOM_KINDS}
MAX_FIELDS = 1000  # names in one `fields` list (the catalog has about a hundred)
MAX_NAME_CHARS = 256
_CUSTOM_NAME = re.compile(
    rf"^({'|'.join(CUSTOM_KINDS)})_[A-Za-z0-9_]+_({'|'.join(CUSTOM_TYPES)})s?$"
)


def custom_kind(name: str) -> str | None:
    match = _CUSTOM_NAME.match(name)
    return match.group(1) if match else None


def resolve_fields(
    kind: str, requested: Sequence[str] | None, custom_vars: Mapping[str, Sequence[str]]
) -> tuple[str, ...]:
    """The columns of an export of `kind` ("event" or "individual"), in file order.

    Omitted: every default field, then every custom variable the kind carries.
    """
    defaults = EVENT_FIELDS if kind == "event" else INDIVIDUAL_FIELDS
    kinds = CUSTOM_KINDS if kind == "event" else ("user",)
    if requested is None:
        return defaults + tuple(name for k in kinds for name in sorted(custom_vars.get(k, ())))
    if len(requested) > MAX_FIELDS:
        raise InvalidArgument(f"fields lists {len(requested)} names; at most {MAX_FIELDS}")
    known = set(defaults)
    seen: set[str] = set()
    columns: dict[str, None] = {}  # ordered, with constant-time membership: linear overall
    for position, name in enumerate(requested):
        if len(name) > MAX_NAME_CHARS:
            raise InvalidArgument(
                f"fields[{position}]: a field name is at most {MAX_NAME_CHARS} characters"
            )
        if name in seen:
            raise InvalidArgument(f"fields[{position}]: {echo(name)} is listed more than once")
        seen.add(name)
        if name in WILDCARDS:
            wildcard_kind = WILDCARDS[name]
            if wildcard_kind not in kinds:
                raise InvalidArgument(
                    f"fields[{position}]: {echo(name)} is not available in a {kind} export; "
                    f"custom variables allowed there: {', '.join(k + '_*' for k in kinds)}"
                )
            expanded = sorted(custom_vars.get(wildcard_kind, ()))
        elif name in known or custom_kind(name) in kinds:
            expanded = [name]
        else:
            raise InvalidArgument(
                f"fields[{position}]: unknown field {echo(name)} for a {kind} export; allowed: "
                f"{', '.join(defaults)}, custom variables named <kind>_<name>_<type> "
                f"(kinds: {', '.join(kinds)}), or the tokens "
                f"{', '.join(k + '_*' for k in kinds)}"
            )
        columns.update(dict.fromkeys(expanded))
    if not columns:
        raise InvalidArgument("fields: an empty list selects no column; omit it for all fields")
    return tuple(columns)

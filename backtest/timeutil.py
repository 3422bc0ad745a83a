"""Timestamp and duration parsing shared by the CSV adapter's rules and the TOML config.

DESIGN §2: ISO-8601 with ``Z`` or ``±hh:mm`` (converted to UTC), optional fractional seconds, or unix
seconds (integer or decimal, ≤ 1e11). Naive and date-only values are rejected. Internally every instant is
an integer count of microseconds since the unix epoch (UTC).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

ISO_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"
)
UNIX_RE = re.compile(r"^[+]?\d+(\.\d*)?$")
DURATION_RE = re.compile(r"^(\d+)(s|min|h|d)$")
_UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400}
MAX_UNIX_SECONDS = 1e11


def parse_instant(text: str) -> int:
    """Parse one timestamp (DESIGN §2 rules) into microseconds since the epoch, UTC.

    Raises ``ValueError`` with a short reason.
    """
    s = text.strip()
    if UNIX_RE.match(s):
        value = float(s)
        if value > MAX_UNIX_SECONDS:
            raise ValueError(f"unix timestamp {s} looks like milliseconds (> 1e11 s)")
        whole, _, frac = s.partition(".")
        return int(whole) * 1_000_000 + int((frac + "000000")[:6] or 0)
    if not ISO_RE.match(s):
        if re.match(r"^\d{4}-\d{2}-\d{2}$", s):
            raise ValueError(f"date-only timestamp {s!r}; give a time and a zone, e.g. {s}T00:00:00Z")
        if re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$", s):
            raise ValueError(f"timestamp {s!r} has no time zone; add Z or ±hh:mm")
        raise ValueError(f"unparsable timestamp {s!r}")
    iso = s.replace(" ", "T", 1)
    if iso.endswith("Z"):
        iso = iso[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise ValueError(f"unparsable timestamp {s!r}") from exc
    delta = dt.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_instant(us: int) -> str:
    """Microseconds since the epoch → ISO-8601 UTC with ``Z`` (fraction only when non-zero)."""
    dt = datetime.fromtimestamp(us // 1_000_000, tz=timezone.utc).replace(microsecond=us % 1_000_000)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_duration(text: str) -> int:
    """``"10min"`` → seconds. Integer + one of s, min, h, d; must be > 0."""
    m = DURATION_RE.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"invalid duration {text!r}; use a positive integer + s, min, h or d (e.g. \"10min\")")
    return int(m.group(1)) * _UNITS[m.group(2)]

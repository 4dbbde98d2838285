"""Small helpers shared by the providers: time formats, ids, ARM path handling."""
import base64
import datetime as dt
import re
import time
import uuid

ZERO_TIME = "0001-01-01T00:00:00Z"


def now():
    return time.time()


def iso(ts, frac=True):
    """Epoch seconds -> '2026-01-02T03:04:05.1234567Z' (the 7-digit form the service returns)."""
    if ts is None:
        return None
    d = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    if not frac:
        return d.strftime("%Y-%m-%dT%H:%M:%SZ")
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%07dZ" % (d.microsecond * 10)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def micros(ts):
    """Epoch seconds -> whole microseconds, rounded exactly as iso() shows them (datetime's rounding of the float;
    ``round(ts * 1e6)`` can differ by one when the product rounds), so that a time a client copies from a response
    compares equal to the record it came from."""
    return (dt.datetime.fromtimestamp(ts, dt.timezone.utc) - _EPOCH) // dt.timedelta(microseconds=1)


_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text):
    """ISO 8601 (any fractional precision, 'Z' or offset, date only) -> epoch seconds; ValueError."""
    m = _ISO_RE.match(str(text).strip())
    if not m:
        raise ValueError("not an ISO 8601 date/time: %r" % text)
    y, mo, d, h, mi, s, frac, tz = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tzinfo = dt.timezone.utc
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        hh, mm = int(tz[1:3]), int(tz[-2:])
        tzinfo = dt.timezone(sign * dt.timedelta(hours=hh, minutes=mm))
    value = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro, tzinfo)
    return value.timestamp()


def iso_duration(seconds):
    """Seconds -> 'PT1M5.3S' (the job `duration` format of the live service)."""
    seconds = max(0.0, float(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    out = "PT"
    if h:
        out += "%dH" % h
    if m:
        out += "%dM" % m
    out += ("%.1f" % s).rstrip("0").rstrip(".") + "S"
    return out


def new_guid():
    return str(uuid.uuid4())


def hex_id():
    return uuid.uuid4().hex


def operation_id():
    """Opaque base64 text, as the service's operation ids look (url-safe so it can sit in a path)."""
    raw = ("%s;%s" % (uuid.uuid4(), uuid.uuid4())).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def norm_id(arm_id):
    """Case-insensitive key for an ARM id (ARM ids compare case-insensitively)."""
    return "/" + "/".join(p for p in str(arm_id).lower().split("/") if p)


def scope_covers(scope, resource_id):
    """True when a role assignment at `scope` applies to `resource_id` (same or an ancestor)."""
    s, r = norm_id(scope), norm_id(resource_id)
    return s == "/" or r == s or r.startswith(s + "/")


def version_key(version):
    """'9.6' < '10' < '11' < '16': compare declared Azure versions numerically."""
    parts = re.findall(r"\d+", str(version))
    return tuple(int(p) for p in parts) or (0,)


def b64_token(n):
    return base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=")


def b64_untoken(text):
    pad = "=" * (-len(text) % 4)
    return int(base64.urlsafe_b64decode(text + pad).decode())

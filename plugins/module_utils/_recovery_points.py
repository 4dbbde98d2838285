# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: this file is private to the azure_backup.dataprotection collection.
# Its functions may change without notice; do not import it from other collections.
"""Recovery points: time parsing, normalisation and streaming selection (pure: no HTTP)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

VAULT_STORE = 'VaultStore'
ARCHIVE_STORE = 'ArchiveStore'
OPERATIONAL_STORE = 'OperationalStore'
DATASTORES = (VAULT_STORE, ARCHIVE_STORE)
_KNOWN_STORES = {s.lower(): s for s in (VAULT_STORE, ARCHIVE_STORE, OPERATIONAL_STORE)}

SELECT_MODES = ('all', 'latest', 'earliest')

# ISO 8601 as users type it and as the service sends it (.NET sends 7 fractional digits).
_TIME_RE = re.compile(
    r'^\s*(?P<date>\d{4}-\d{2}-\d{2})'
    r'(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d+))?)?)?'
    r'\s*(?P<tz>Z|z|[+-]\d{2}:?\d{2})?\s*$'
)
_TIME_HELP = "use ISO 8601 such as '2024-05-01T10:00:00Z' or '2024-05-01T12:00:00+02:00' (no zone means UTC)"
# The service's "not set" date (for example endTime of a running operation).
_ZERO_TIME_PREFIX = '0001-01-01'


class RecoveryPointNotFound(LookupError):
    """No recovery point satisfies the selection.

    ``count`` is how many points matched the other filters, ``earliest`` the earliest of them
    (a normalised point, or None).
    """

    def __init__(self, message, count=0, earliest=None):
        super().__init__(message)
        self.count = count
        self.earliest = earliest


def parse_time(value, what='time'):
    """Parse an ISO 8601 string (or datetime) into an aware UTC datetime.

    Raises ValueError naming ``what`` and showing the accepted format.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    text = '' if value is None else str(value)
    match = _TIME_RE.match(text)
    if not match:
        raise ValueError("%s '%s' is not a valid date/time: %s." % (what, text, _TIME_HELP))
    try:
        year, month, day = (int(part) for part in match.group('date').split('-'))
        frac = (match.group('frac') or '')[:6].ljust(6, '0')
        result = datetime(year, month, day, int(match.group('h') or 0), int(match.group('m') or 0),
                          int(match.group('s') or 0), int(frac), tzinfo=timezone.utc)
        tz = match.group('tz')
        if tz and tz not in ('Z', 'z'):
            sign = 1 if tz[0] == '+' else -1
            digits = tz[1:].replace(':', '')
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            result = result - sign * offset
    except (ValueError, OverflowError) as exc:
        raise ValueError("%s '%s' is not a valid date/time (%s): %s." % (what, text, exc, _TIME_HELP)) from None
    return result


def parse_service_time(value):
    """Parse a time sent by the service; None for null, empty or the 0001-01-01 'not set' value."""
    if not value or str(value).startswith(_ZERO_TIME_PREFIX):
        return None
    try:
        return parse_time(value, 'service time')
    except ValueError:
        return None


def format_time(dt):
    """Render an aware datetime as ISO 8601 UTC with a Z suffix (microsecond precision when needed)."""
    dt = dt.astimezone(timezone.utc)
    if dt.microsecond:
        return dt.strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    return dt.strftime('%Y-%m-%dT%H:%M:%SZ')


def format_filter_time(dt):
    """The time format the az CLI sends in the recovery point $filter: seven fractional digits, UTC."""
    return dt.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f0Z')


def build_time_filter(start=None, end=None):
    """Server-side OData ``$filter`` for a time window, exactly as the az CLI builds it (None when unbounded)."""
    parts = []
    if start is not None:
        parts.append("startDate eq '%s'" % format_filter_time(start))
    if end is not None:
        parts.append("endDate eq '%s'" % format_filter_time(end))
    return ' and '.join(parts) or None


def canonical_datastore(value):
    """Canonical spelling of a datastore type (case-insensitive), unknown values unchanged."""
    if value is None:
        return None
    return _KNOWN_STORES.get(str(value).lower(), value)


def normalize_recovery_point(raw):
    """Turn an AzureBackupRecoveryPointResource into a flat snake_case dict."""
    raw = raw or {}
    props = raw.get('properties') or {}
    details = []
    datastores = []
    for item in props.get('recoveryPointDataStoresDetails') or []:
        item = item or {}
        store_type = canonical_datastore(item.get('type'))
        details.append({
            'id': item.get('id'),
            'type': store_type,
            'state': item.get('state'),
            'visible': item.get('visible'),
            'creation_time': item.get('creationTime'),
            'expiry_time': item.get('expiryTime'),
            'rehydration_status': item.get('rehydrationStatus'),
            'rehydration_expiry_time': item.get('rehydrationExpiryTime'),
        })
        if store_type and store_type not in datastores:
            datastores.append(store_type)
    return {
        'id': raw.get('id'),
        'name': raw.get('name'),
        'recovery_point_id': props.get('recoveryPointId') or raw.get('name'),
        'recovery_point_time': props.get('recoveryPointTime'),
        'recovery_point_type': props.get('recoveryPointType'),
        'recovery_point_state': props.get('recoveryPointState'),
        'friendly_name': props.get('friendlyName'),
        'policy_name': props.get('policyName'),
        'policy_version': props.get('policyVersion'),
        'retention_tag_name': props.get('retentionTagName'),
        'retention_tag_version': props.get('retentionTagVersion'),
        'expiry_time': props.get('expiryTime'),
        'datastores': datastores,
        'datastore_details': details,
        'in_vault_store': VAULT_STORE in datastores,
        'archive_only': datastores == [ARCHIVE_STORE],
    }


def point_time(point):
    """The parsed recovery point time of a normalised point (None when missing or unreadable)."""
    return parse_service_time(point.get('recovery_point_time'))


def iter_filtered(points, datastore=None, start=None, end=None):
    """Normalise raw points lazily and keep those in ``datastore`` and inside [start, end].

    The time window is also sent to the server as ``$filter``; applying it here as well keeps the
    result right when a service (or an emulator) ignores the filter.
    """
    wanted = canonical_datastore(datastore) if datastore else None
    for raw in points:
        point = normalize_recovery_point(raw)
        if wanted and wanted not in point['datastores']:
            continue
        if start is not None or end is not None:
            when = point_time(point)
            if when is None or (start is not None and when < start) or (end is not None and when > end):
                continue
        yield point


def _describe(point):
    return "'%s' (%s)" % (point.get('recovery_point_id'), point.get('recovery_point_time'))


def select_recovery_point(points_iter, mode, before=None):
    """Pick the latest or earliest normalised point from an iterator, optionally at or before ``before``.

    Streams: only the current best candidate and the earliest point seen are kept, whatever the
    number of points or pages. Raises RecoveryPointNotFound when nothing qualifies; with ``before``
    the message names the earliest point available so that the user can pick a valid time.
    """
    if mode not in ('latest', 'earliest'):
        raise ValueError("select must be 'latest' or 'earliest', not %r" % (mode,))
    best = best_time = None
    earliest = earliest_time = None
    count = 0
    for point in points_iter:
        when = point_time(point)
        if when is None:
            continue
        count += 1
        if earliest_time is None or when < earliest_time:
            earliest, earliest_time = point, when
        if before is not None and when > before:
            continue
        if best_time is None or (when > best_time if mode == 'latest' else when < best_time):
            best, best_time = point, when
    if best is not None:
        return best
    if count == 0:
        raise RecoveryPointNotFound('No recovery point found.', 0, None)
    raise RecoveryPointNotFound(
        'No recovery point at or before %s; the earliest available is %s. Give a later time in before '
        '(or leave it out).' % (format_time(before), _describe(earliest)), count, earliest)

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""The retry rules ArmClient and the cloud metadata read share: what is worth another try and how long to wait."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    is_connection_refused, is_tls_error,
)

try:
    import requests
except ImportError:  # reported to the user by _arm_client / _auth (missing_required_lib)
    requests = None

# Throttling and the server errors a later attempt can get past.
RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
# A 429 means "not processed, come back later": ArmClient retries it (every verb, POST included) for up to this many
# seconds from the request's first attempt, not a number of times (a throttling storm can outlast any small count).
THROTTLE_BUDGET = 300
# The shortest wait after a 429, whatever Retry-After says (a Retry-After of 0 must not become a busy loop).
THROTTLE_MIN_WAIT = 1.0


def parse_retry_after(headers, now=None):
    """Seconds the server asked us to wait (Retry-After seconds or HTTP-date, retry-after-ms), or None."""
    for name, scale in (('retry-after-ms', 0.001), ('x-ms-retry-after-ms', 0.001), ('Retry-After', 1)):
        value = (headers.get(name) or '').strip()
        if not value:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            pass
        try:
            moment = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            continue
        return max(0.0, moment - (time.time() if now is None else now))
    return None


def retry_delay(retry, cap, rand, headers=None):
    """Seconds to wait before retry number `retry` (1, 2, ...): the server's Retry-After when `headers` give one,
    else jittered exponential backoff (between half and all of 1, 2, 4 ... s; the jitter spreads out clients that
    were throttled together); never more than `cap`. `rand` is random.random (a fixed value in tests)."""
    wait = parse_retry_after(headers) if headers is not None else None
    if wait is None:
        ceiling = min(cap, 2 ** (retry - 1))
        wait = ceiling / 2 + rand() * ceiling / 2
    return min(wait, cap)


def throttle_delay(retry, cap, rand, headers=None):
    """Seconds to wait before retry number `retry` of a throttled (HTTP 429) request: the server's Retry-After (at
    least THROTTLE_MIN_WAIT) times 1 + rand(), i.e. up to as much again at random, so that clients throttled
    together do not come back together; without Retry-After the jittered backoff of retry_delay. Never more than
    `cap`."""
    wait = parse_retry_after(headers) if headers is not None else None
    if wait is None:
        return retry_delay(retry, cap, rand)
    return min(max(wait, THROTTLE_MIN_WAIT) * (1 + rand()), cap)


def is_network_error(exc):
    """True for a connection-level requests failure (refused, reset, timed out, the name not resolved).

    TLS verification failures and programming errors (invalid URL, ...) are not: they do not heal by retrying.
    """
    return (isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout))
            and not is_tls_error(exc))


def is_transient_network_error(exc):
    """True for a network error that may heal within the seconds a retry waits (reset, timed out).

    A refused connection is not: nothing listens at that host and port (a wrong URL or port, a service that is
    down), and retrying it for half a minute only made a typo in cloud_environment take that long to report.
    ArmClient still retries one refused by a host that has answered before (a restart); see its _may_resend.
    """
    return is_network_error(exc) and not is_connection_refused(exc)

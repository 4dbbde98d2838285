# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The retry rules ArmClient and the cloud metadata read share (one implementation)."""

from __future__ import annotations

import random

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _arm_client, _auth, _lro, _retry


@pytest.mark.parametrize('headers, expected', [
    ({'Retry-After': '12'}, 12.0),
    ({'Retry-After': '1.5'}, 1.5),
    ({'Retry-After': 'Thu, 01 Jan 2026 00:00:30 GMT'}, 30.0),
    ({'Retry-After': 'Thu, 01 Jan 2026 00:00:00 GMT'}, 0.0),
    ({'retry-after-ms': '250', 'Retry-After': '9'}, 0.25),
    ({'Retry-After': 'soon'}, None),
    ({}, None),
])
def test_parse_retry_after(headers, expected):
    assert _retry.parse_retry_after(headers, now=1767225600.0) == expected  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize('retry, rand, expected', [
    (1, 0.5, 0.75), (2, 0.5, 1.5), (3, 0.0, 2.0), (3, 1.0, 4.0), (5, 1.0, 10.0), (6, 0.5, 7.5), (10, 1.0, 10.0),
])
def test_retry_delay_backoff_is_jittered_exponential_and_capped(retry, rand, expected):
    assert _retry.retry_delay(retry, 10, lambda: rand) == expected


@pytest.mark.parametrize('headers, expected', [({'Retry-After': '7'}, 7.0), ({'Retry-After': '3600'}, 20),
                                               ({}, 0.75), ({'Retry-After': 'soon'}, 0.75)])
def test_retry_delay_prefers_retry_after_up_to_the_cap(headers, expected):
    assert _retry.retry_delay(1, 20, lambda: 0.5, headers=headers) == expected


@pytest.mark.parametrize('headers, retry, rand, cap, expected', [
    ({'Retry-After': '1'}, 1, 0.0, 60, 1.0),         # Retry-After ...
    ({'Retry-After': '1'}, 1, 0.5, 60, 1.5),         # ... plus up to as much again at random
    ({'Retry-After': '1'}, 9, 0.99, 60, 1.99),       # the retry number does not matter with a Retry-After
    ({'Retry-After': '10'}, 1, 0.5, 60, 15.0),
    ({'Retry-After': '40'}, 1, 0.9, 60, 60),         # capped
    ({'Retry-After': '3600'}, 1, 0.0, 20, 20),
    ({'Retry-After': '0'}, 1, 0.5, 60, 1.5),         # at least THROTTLE_MIN_WAIT: never a busy loop
    ({'retry-after-ms': '200'}, 1, 0.0, 60, 1.0),
    ({}, 1, 0.5, 60, 0.75),                          # no Retry-After: the jittered backoff of retry_delay
    ({}, 3, 1.0, 60, 4.0),
    ({'Retry-After': 'soon'}, 8, 1.0, 60, 60),
    (None, 2, 0.5, 60, 1.5),
])
def test_throttle_delay_is_retry_after_plus_jitter(headers, retry, rand, cap, expected):
    assert _retry.throttle_delay(retry, cap, lambda: rand, headers=headers) == pytest.approx(expected)


def test_throttle_jitter_spreads_clients_between_retry_after_and_twice_that():
    rand = random.Random(20250101).random  # seeded: the same draws every run
    waits = [_retry.throttle_delay(1, 60, rand, headers={'Retry-After': '4'}) for dummy in range(1000)]
    assert all(4.0 <= wait < 8.0 for wait in waits)
    assert min(waits) < 4.2 and max(waits) > 7.8  # spread over the whole interval, not in lockstep
    assert len(set(waits)) > 990


REFUSED = requests.exceptions.ConnectionError(MaxRetryError(None, '/x', NewConnectionError(
    None, '[Errno 111] Connection refused')))


@pytest.mark.parametrize('exc, expected', [
    (REFUSED, False),  # nothing listens there: a retry within seconds does not change that (issue 15, item 5)
    (requests.exceptions.ConnectionError('Connection aborted.', 'RemoteDisconnected'), True),
    (requests.exceptions.ReadTimeout('Read timed out.'), True),
    (requests.exceptions.ConnectTimeout('connect timeout=10'), True),
    (requests.exceptions.SSLError('[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed'), False),
    (requests.exceptions.InvalidURL('bad'), False),
    (ValueError('x'), False),
])
def test_transient_network_errors(exc, expected):
    assert _retry.is_transient_network_error(exc) is expected
    assert _retry.is_network_error(exc) is (expected or exc is REFUSED)


def test_one_implementation():
    """ArmClient, the LRO poller and the metadata read use these helpers, not copies of them."""
    assert _arm_client.retry_delay is _retry.retry_delay and _auth.retry_delay is _retry.retry_delay
    assert _arm_client.throttle_delay is _retry.throttle_delay and _arm_client.THROTTLE_BUDGET == 300
    assert _arm_client.RETRY_STATUSES is _retry.RETRY_STATUSES is _auth.RETRY_STATUSES
    assert _lro.parse_retry_after is _retry.parse_retry_after
    assert _arm_client.parse_retry_after is _retry.parse_retry_after

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""429 and 5xx on the token endpoint: the sign-in is retried as the same answer of Azure Resource Manager is (a 5xx
up to six times, a 429 on the throttling budget or the task's wait_timeout), every retry warned, and a failure that
lasts says what it is (an outage, throttling), not "check the credentials". azure-identity's own retries are off
(retry_total=0): they multiplied ours (4 token requests per attempt, ~85 s for a lasting 5xx), so each attempt of ours
is one token request.
"""

from __future__ import annotations

import re

TOKEN = r'/oauth2/v2\.0/token$'
VAULT = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG'}
PER_SIGN_IN = 1  # token requests per sign-in attempt of ours: no azure-core retries under them
MAX_RETRIES = 6  # ArmClient's, as for ARM's 5xx


def _points(femu, play):
    signed_in = femu.request_counts().get('POST aad.token', 0)
    params = dict(VAULT, backup_instance_name=femu.backup_instance('empdb11')['name'], select='latest')
    result, record = play.module('pg_recovery_point_info', params)
    return result, record, femu.request_counts().get('POST aad.token', 0) - signed_in


def test_a_5xx_burst_is_ridden_out(femu, play):
    femu.fault('status', TOKEN, method='POST', count=PER_SIGN_IN + 2, status=500)
    result, record, requests = _points(femu, play)
    assert record['status'] == 'ok', result.tail()
    assert re.search(r'could not get an access token: the token endpoint answered HTTP 500; retrying in \d+\.\ds '
                     r'\(retry 1 of 6\)', result.output), result.tail()
    assert requests == PER_SIGN_IN + 3  # three attempts failed, the fourth got through


def test_a_5xx_that_lasts_fails_as_an_outage_after_bounded_retries(femu, play):
    femu.fault('status', TOKEN, method='POST', status=503, retry_after=1)
    result, record, requests = _points(femu, play)
    assert record['status'] == 'failed', result.tail()
    error, msg = record['result']['error'], record['result']['msg']
    assert error['code'] == 'AuthorityUnavailable' and error['status'] == 503
    assert re.match(r'Could not get an access token for \S+ at https://127\.0\.0\.1:\d+/[^/]+/oauth2/v2\.0/token: '
                    r'AuthorityUnavailable: the token endpoint answered HTTP 503 \(after 7 attempts\)\.', msg), msg
    assert 'The service failed or was unavailable' in msg and 'auth_source' not in msg
    assert requests == PER_SIGN_IN * (MAX_RETRIES + 1)
    assert len(re.findall(r'the token endpoint answered HTTP 503; retrying', result.output)) == MAX_RETRIES


def test_a_429_burst_is_waited_out(femu, play):
    femu.fault('status', TOKEN, method='POST', count=PER_SIGN_IN + 2, status=429, retry_after=1)
    result, record, requests = _points(femu, play)
    assert record['status'] == 'ok', result.tail()
    assert 'could not get an access token: the token endpoint answered HTTP 429; retrying' in result.output
    assert requests == PER_SIGN_IN + 3


def test_a_429_that_lasts_gives_up_at_the_tasks_wait_timeout(femu, play, unique_name):
    """pg_restore's wait_timeout bounds the waits of a 429, as for ARM's: the task fails as throttled, having sent
    no restore."""
    # before the fault: module_target() reads the latest point with a token of the test's own
    params = dict(femu.module_target(unique_name('tok429')), wait=True, wait_timeout=10)
    femu.fault('status', TOKEN, method='POST', status=429, retry_after=1)
    result, record = play.module('pg_restore', params)
    assert record['status'] == 'failed', result.tail()
    error, msg = record['result']['error'], record['result']['msg']
    assert error['code'] == 'TooManyRequests' and error['status'] == 429
    assert 'the service is throttling requests (HTTP 429' in msg and "the task's wait_timeout" in msg, msg
    assert 'The request was not processed.' in msg and 'auth_source' not in msg
    assert femu.counters().get('restores_requested', 0) == 0

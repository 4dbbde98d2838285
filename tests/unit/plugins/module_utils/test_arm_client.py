# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ArmClient: tokens, retries (never a blind POST re-send), errors, paging."""

from __future__ import annotations

import json
import random
import re
import socket
import ssl
import threading
import time
import weakref
from http.client import RemoteDisconnected
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from responses import matchers
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _arm_client, _auth
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._lro import Deadline
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    OUTCOME_UNKNOWN, DataProtectionError,
)

from ansible_collections.azure_backup.dataprotection.tests.unit.conftest import (
    ARM, SENTINEL_SECRET, SENTINEL_TOKEN, SUBSCRIPTION, TEST_CLOUD, FakeClock, FakeCredential,
)

VAULT = (f'/subscriptions/{SUBSCRIPTION}/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/'
         'backupVaults/TestBkpVault')
BI = VAULT + '/backupInstances/testpostgresql-empdb11-957d23b1'
API = {'api-version': '2024-04-01'}
THROTTLED = {'error': {'code': 'TooManyRequests', 'message': 'The request is being throttled.'}}
INTERNAL = {'error': {'code': 'InternalServerError', 'message': 'Encountered internal server error.'}}
IDS = {'x-ms-request-id': 'req-1', 'x-ms-correlation-request-id': 'corr-1'}


def refused():
    """What requests raises when nothing listens: the request never left this host."""
    reason = NewConnectionError(None, 'Failed to establish a new connection: [Errno 111] Connection refused')
    return requests.exceptions.ConnectionError(MaxRetryError(None, '/x', reason))


def dropped():
    """What requests raises when the server closes the connection after the request was sent."""
    return requests.exceptions.ConnectionError(ProtocolError('Connection aborted.', RemoteDisconnected(
        'Remote end closed connection without response')))


def read_timeout():
    return requests.exceptions.ReadTimeout("HTTPSConnectionPool(host='h', port=443): Read timed out. (read timeout=60)")


# ---------------------------------------------------------------- requests as sent

def test_token_user_agent_and_api_version(rsps, make_client):
    rsps.get(ARM + VAULT, json={'name': 'TestBkpVault'}, match=[matchers.query_param_matcher(API)])
    client = make_client()
    assert client.json_or_raise(client.get(VAULT), 'Get vault') == {'name': 'TestBkpVault'}
    sent = rsps.calls[0].request
    assert sent.headers['Authorization'] == f'Bearer {SENTINEL_TOKEN}-1'
    assert re.fullmatch(r'azure_backup\.dataprotection/\d+\.\d+\.\d+ ansible/\S+', sent.headers['User-Agent'])
    assert client.credential.scopes == [TEST_CLOUD.arm_scope]
    assert client.request_count == 1


class ShortLivedTokens(FakeCredential):
    """Tokens that expire `lifetime` seconds after they are issued."""

    def __init__(self, lifetime, **kwargs):
        super().__init__(**kwargs)
        self.lifetime = lifetime

    def get_token(self, *scopes, **kwargs):
        token = super().get_token(*scopes, **kwargs)
        return token._replace(expires_on=int(time.time()) + self.lifetime)


@pytest.mark.parametrize('lifetime, tokens', [
    (3600, ['-1', '-1', '-1']),   # held: one sign-in (one read of MSAL's cache) for every request
    (200, ['-1', '-2', '-3']),    # within the 300 s margin of its expiry: asked for anew each time
])
def test_a_token_is_held_until_near_its_expiry(rsps, make_client, lifetime, tokens):
    for dummy in tokens:
        rsps.get(ARM + VAULT, json={})
    client = make_client(credential=ShortLivedTokens(lifetime))
    for dummy in tokens:
        client.get(VAULT)
    assert [c.request.headers['Authorization'][-2:] for c in rsps.calls] == tokens


def test_existing_api_version_is_kept_and_scope_can_change(rsps, make_client):
    url = 'https://vault.example.test/keyvaults/kv/secrets/pg?api-version=7.4'
    rsps.get(url, json={}, match=[matchers.query_param_matcher({'api-version': '7.4'})])
    rsps.put(ARM + BI, json={}, match=[matchers.query_param_matcher({'api-version': '2021-07-01'})])
    client = make_client()
    client.get(url, scope=TEST_CLOUD.keyvault_scope)
    client.put(BI, {'a': 1}, params={'api-version': '2021-07-01'})
    assert client.credential.scopes == [TEST_CLOUD.keyvault_scope, TEST_CLOUD.arm_scope]
    assert json.loads(rsps.calls[1].request.body) == {'a': 1}


def test_api_version_option(rsps, make_client):
    rsps.get(ARM + VAULT, json={}, match=[matchers.query_param_matcher({'api-version': '2021-07-01'})])
    make_client(api_version='2021-07-01').get(VAULT)


def test_ratelimit_headers_are_kept_for_debugging(rsps, make_client):
    rsps.get(ARM + VAULT, json={}, headers={'x-ms-ratelimit-remaining-subscription-reads': '11999'})
    client = make_client()
    client.get(VAULT)
    assert client.ratelimit_remaining == {'x-ms-ratelimit-remaining-subscription-reads': '11999'}


@pytest.mark.parametrize('url', ['backupVaults/x', 'http://insecure.example.test/x'])
def test_invalid_urls(make_client, url):
    with pytest.raises(DataProtectionError, match='InvalidUrl'):
        make_client().get(url)


# ---------------------------------------------------------------- retries

def test_429_retry_after_honoured(rsps, make_client):
    rsps.get(ARM + VAULT, status=429, json=THROTTLED, headers={'Retry-After': '7'})
    rsps.get(ARM + VAULT, json={'ok': True})
    client = make_client()
    assert client.get(VAULT).json() == {'ok': True}
    assert client.slept == [10.5]  # Retry-After 7 plus jitter: 7 * (1 + random()), random() = 0.5
    assert client.request_count == 2
    assert client.warnings == [f'GET {ARM}{VAULT}: HTTP 429; retrying in 10.5s (retry 1; throttled requests are '
                               'retried for up to 300s)']


def test_retry_after_is_capped(rsps, make_client):
    rsps.get(ARM + VAULT, status=429, headers={'Retry-After': '3600'})
    rsps.get(ARM + VAULT, json={})
    client = make_client(max_retry_after=20)
    client.get(VAULT)
    assert client.slept == [20]


def test_5xx_on_get_retried_with_jittered_backoff(rsps, make_client):
    rsps.get(ARM + VAULT, status=503, json=INTERNAL)
    rsps.get(ARM + VAULT, status=500, json=INTERNAL)
    rsps.get(ARM + VAULT, status=502)
    rsps.get(ARM + VAULT, json={'ok': 1})
    client = make_client()
    assert client.get(VAULT).json() == {'ok': 1}
    assert client.slept == [0.75, 1.5, 3.0]  # ceilings 1, 2, 4 s with random() = 0.5
    assert client.request_count == 4 and len(client.warnings) == 3


def test_retries_are_bounded(rsps, make_client):
    for dummy in range(3):
        rsps.get(ARM + VAULT, status=500, json=INTERNAL, headers=IDS)
    client = make_client(max_retries=2)
    response = client.get(VAULT)
    assert response.status_code == 500 and client.request_count == 3
    with pytest.raises(DataProtectionError) as info:
        client.json_or_raise(response, 'Get vault')
    assert info.value.code == 'InternalServerError' and info.value.request_id == 'req-1'


def test_put_and_delete_are_retried(rsps, make_client):
    rsps.put(ARM + BI, status=503)
    rsps.put(ARM + BI, json={})
    rsps.delete(ARM + BI, body=read_timeout())
    rsps.delete(ARM + BI, status=204)
    client = make_client()
    assert client.put(BI, {}).status_code == 200
    assert client.delete(BI).status_code == 204
    assert client.request_count == 4


def test_connection_errors_on_get_retried_then_reported(rsps, make_client):
    for dummy in range(3):
        rsps.get(ARM + VAULT, body=dropped())
    client = make_client(max_retries=2)
    with pytest.raises(DataProtectionError) as info:
        client.get(VAULT)
    assert info.value.code == 'ConnectionFailed'
    assert str(info.value).startswith(f'GET {ARM}{VAULT}: ConnectionFailed: the connection was closed before an answer '
                                      'arrived (after 3 attempts).')
    assert 'HTTPS_PROXY' in str(info.value)


@pytest.mark.parametrize('method', ['get', 'post'])
def test_refused_on_first_contact_fails_at_once(rsps, make_client, method):
    """Nothing listens at that host and port (a wrong URL, a service that is down): retrying only delays the error
    (issue 15: 92 s). The message names the URL; nothing was sent, so a POST is not an unknown outcome."""
    getattr(rsps, method)(ARM + BI + '/restore', body=refused())
    client = make_client()
    with pytest.raises(DataProtectionError) as info:
        client.get(BI + '/restore') if method == 'get' else client.post(BI + '/restore', {})
    err = info.value
    assert client.request_count == 1 and client.slept == [] and client.warnings == []
    assert err.code == 'ConnectionFailed' and not err.outcome_unknown
    assert str(err) == (f'{method.upper()} {ARM}{BI}/restore: ConnectionFailed: Connection refused. Recommended '
                        'action: Nothing accepted the connection at that address: check its host and port '
                        '(cloud_environment, AZURE_CLOUD_ENVIRONMENT), that the service runs there, and that no '
                        'firewall or proxy (HTTPS_PROXY) rejects the connection.')


@pytest.mark.parametrize('method', ['get', 'post'])
def test_refused_by_a_host_that_answered_before_is_retried(rsps, make_client, method):
    """The service restarts while a task waits on it (bug F1): the host answered this client before, so a refused
    connection is a restart to ride out. Refused means never sent: the restore POST goes again too."""
    rsps.get(ARM + VAULT, json={})
    getattr(rsps, method)(ARM + BI + '/restore', body=refused())
    getattr(rsps, method)(ARM + BI + '/restore', body=refused())
    getattr(rsps, method)(ARM + BI + '/restore', status=202)
    client = make_client()
    client.get(VAULT)
    call = client.get(BI + '/restore') if method == 'get' else client.post(BI + '/restore', {})
    assert call.status_code == 202 and client.request_count == 4 and client.slept == [0.75, 1.5]
    assert client.warnings[0] == (f'{method.upper()} {ARM}{BI}/restore: Connection refused; retrying in 0.8s '
                                  '(retry 1 of 6)')


def test_tls_errors_are_not_retried(rsps, make_client):
    rsps.get(ARM + VAULT, body=requests.exceptions.SSLError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain"))
    client = make_client()
    with pytest.raises(DataProtectionError) as info:
        client.get(VAULT)
    assert info.value.code == 'TLSVerificationFailed' and client.request_count == 1
    assert 'REQUESTS_CA_BUNDLE=path/to/ca.pem' in str(info.value)


# ---------------------------------------------------------------- POST: never a blind re-send

def test_post_5xx_is_not_resent(rsps, make_client):
    rsps.post(ARM + BI + '/restore', status=500, json=INTERNAL, headers=IDS)
    client = make_client()
    with pytest.raises(DataProtectionError) as info:
        client.post(BI + '/restore', {'objectType': 'AzureBackupRecoveryPointBasedRestoreRequest'})
    err = info.value
    assert err.code == OUTCOME_UNKNOWN and err.outcome_unknown
    assert err.status == 500 and err.request_id == 'req-1' and err.correlation_id == 'corr-1'
    assert 'may or may not have been processed' in err.message and 'InternalServerError' in err.message
    assert client.request_count == 1 and client.slept == []


@pytest.mark.parametrize('failure', [read_timeout, dropped])
def test_post_failure_after_sending_is_not_resent(rsps, make_client, failure):
    rsps.post(ARM + BI + '/restore', body=failure())
    client = make_client()
    with pytest.raises(DataProtectionError) as info:
        client.post(BI + '/restore', {})
    assert info.value.code == OUTCOME_UNKNOWN and client.request_count == 1
    assert 'dataprotection_job_info' in str(info.value)


def test_post_429_is_resent(rsps, make_client):
    rsps.post(ARM + BI + '/restore', status=429, json=THROTTLED, headers={'Retry-After': '2'})
    rsps.post(ARM + BI + '/restore', status=202, headers={'Retry-After': '10'})
    client = make_client()
    assert client.post(BI + '/restore', {}).status_code == 202
    assert client.slept == [3.0] and client.request_count == 2


def test_post_connect_timeout_is_resent(rsps, make_client):
    rsps.post(ARM + BI + '/restore', body=requests.exceptions.ConnectTimeout('connect timeout=10'))
    rsps.post(ARM + BI + '/restore', status=202)
    client = make_client()
    assert client.post(BI + '/restore', {}).status_code == 202
    assert client.request_count == 2 and len(client.slept) == 1


def test_post_4xx_is_returned_for_the_caller(rsps, make_client):
    rsps.post(ARM + BI + '/validateRestore', status=400, json={'error': {'code': 'UserErrorDBNotFound', 'message': 'x'}})
    client = make_client()
    response = client.post(BI + '/validateRestore', {})
    assert response.status_code == 400 and client.request_count == 1


def test_idempotent_post_is_retried_like_a_get(rsps, make_client):
    """validateRestore has no side effect: a 5xx or a lost answer is only a reason to ask again (bug F3)."""
    url = ARM + BI + '/validateRestore'
    rsps.post(url, status=503, json=INTERNAL)
    rsps.post(url, body=dropped())
    rsps.post(url, body=read_timeout())
    rsps.post(url, status=202, headers={'Retry-After': '1'})
    client = make_client()
    assert client.post(BI + '/validateRestore', {'restoreRequestObject': {}}, idempotent=True).status_code == 202
    assert client.request_count == 4 and client.slept == [0.75, 1.5, 3.0]
    assert [json.loads(c.request.body) for c in rsps.calls] == [{'restoreRequestObject': {}}] * 4


def test_idempotent_post_that_keeps_failing_is_not_an_unknown_outcome(rsps, make_client):
    url = ARM + BI + '/validateRestore'
    for dummy in range(3):
        rsps.post(url, body=dropped())
    client = make_client(max_retries=2)
    with pytest.raises(DataProtectionError) as info:
        client.post(BI + '/validateRestore', {}, idempotent=True)
    assert info.value.code == 'ConnectionFailed' and not info.value.outcome_unknown
    assert 'after 3 attempts' in str(info.value)


# ---------------------------------------------------------------- throttling (429): a time budget, not a count (B1)

def on_fake_clock(client):
    """The client's clock moves only when it sleeps (the budget is measured on it)."""
    clock = FakeClock()
    client.clock, client.sleep = clock, clock.sleep
    return clock


THROTTLE_CASES = {
    # name: (method, Retry-After, ArmClient kwargs, deadline seconds, attempts, sleeps, limit named in the error)
    'get, budget': ('get', '1', {'throttle_budget': 10}, None, 7, [1.5] * 6, 'retry budget of 10s'),
    'restore post, budget': ('post', '1', {'throttle_budget': 10}, None, 7, [1.5] * 6, 'retry budget of 10s'),
    'put, budget': ('put', '1', {'throttle_budget': 10}, None, 7, [1.5] * 6, 'retry budget of 10s'),
    'no Retry-After: jittered backoff': ('get', None, {'throttle_budget': 10}, None, 4, [0.75, 1.5, 3.0],
                                         'retry budget of 10s'),
    'Retry-After 0 is not a busy loop': ('get', '0', {'throttle_budget': 5}, None, 4, [1.5] * 3, 'budget of 5s'),
    'long Retry-After capped': ('get', '3600', {'max_retry_after': 20, 'throttle_budget': 50}, None, 3, [20, 20],
                                'budget of 50s'),
    "caller's deadline first": ('post', '1', {}, 5, 4, [1.5] * 3, "the task's wait_timeout"),
    'max_retries does not limit 429s': ('get', '1', {'max_retries': 2, 'throttle_budget': 6}, None, 5, [1.5] * 4,
                                        'budget of 6s'),
}


@pytest.mark.parametrize('method, after, kwargs, deadline, attempts, sleeps, limit', THROTTLE_CASES.values(),
                         ids=THROTTLE_CASES.keys())
# pylint: disable-next=too-many-arguments
def test_429_retried_until_the_budget_then_a_clear_error(rsps, make_client, method, after, kwargs, deadline, attempts,
                                                         sleeps, limit):
    rsps.add(method.upper(), ARM + BI + '/restore', status=429, json=THROTTLED,
             headers=dict(IDS, **({'Retry-After': after} if after is not None else {})))
    client = make_client(**kwargs)
    clock = on_fake_clock(client)
    if deadline is not None:
        client.deadline = Deadline(deadline, clock=clock, sleep=clock.sleep)
    with pytest.raises(DataProtectionError) as info:
        client.get(BI + '/restore') if method == 'get' else getattr(client, method)(BI + '/restore', {})
    err = info.value
    assert client.request_count == attempts and clock.sleeps == sleeps and len(client.warnings) == len(sleeps)
    assert err.code == 'TooManyRequests' and err.status == 429 and err.is_retryable and not err.outcome_unknown
    assert err.request_id == 'req-1' and err.details[0]['message'] == 'The request is being throttled.'
    text = str(err)
    assert text.startswith(f'{method.upper()} {ARM}{BI}/restore: TooManyRequests: the service is throttling requests '
                           '(HTTP 429, TooManyRequests: The request is being throttled) and still was after '
                           f'{attempts - 1} retries in {sum(sleeps):.0f}s; gave up')
    assert limit in text and 'The request was not processed.' in text
    assert 'run fewer tasks against the subscription at the same time' in text and 'run the task again' in text


def test_a_long_throttling_storm_warns_every_10th_retry_after_the_6th(rsps, make_client):
    rsps.get(ARM + VAULT, status=429, headers={'Retry-After': '1'})
    client = make_client()
    clock = on_fake_clock(client)
    with pytest.raises(DataProtectionError, match='after 200 retries in 300s; gave up, as another retry would pass '
                       'the throttling retry budget of 300s'):
        client.get(VAULT)
    assert client.request_count == 201 and sum(clock.sleeps) == 300  # 200 waits of 1.5 s: 300 s, the default budget
    assert [int(re.search(r'retry (\d+);', w).group(1)) for w in client.warnings] == [1, 2, 3, 4, 5, 6] + list(
        range(10, 201, 10))


def test_restore_post_is_resent_through_a_throttling_storm(rsps, make_client):
    """A 429 was not processed: the (non-idempotent) restore POST is sent again, as often as the budget allows."""
    url = ARM + BI + '/restore'
    for dummy in range(12):
        rsps.post(url, status=429, json=THROTTLED, headers={'Retry-After': '1'})
    rsps.post(url, status=202, headers={'Azure-AsyncOperation': ARM + '/operationStatus/op1'})
    client = make_client()
    on_fake_clock(client)
    assert client.post(BI + '/restore', {'objectType': 'x'}).status_code == 202
    assert client.request_count == 13 and len(client.warnings) == 7  # retries 1-6 and 10
    assert [json.loads(c.request.body) for c in rsps.calls] == [{'objectType': 'x'}] * 13


def test_client_jitter_uses_its_random(rsps, make_client):
    for dummy in range(5):
        rsps.get(ARM + VAULT, status=429, headers={'Retry-After': '2'})
    rsps.get(ARM + VAULT, json={})
    client = make_client()
    client.random = random.Random(7).random
    client.get(VAULT)
    assert len(client.slept) == 5 and all(2.0 <= wait < 4.0 for wait in client.slept)
    assert len(set(client.slept)) == 5


@pytest.mark.parametrize('verb, statuses, max_retries, attempts, outcome', [
    ('get', [503] * 7, 6, 7, 503),                  # 5xx: six retries, then the answer is returned
    ('get', [503] * 3, 2, 3, 503),
    ('get', [429] * 8 + [503] * 6 + [200], 6, 15, 200),  # 429s do not use up the 5xx retries
    ('put', [502] * 6 + [200], 6, 7, 200),
    ('post', [429] * 3 + [500], 6, 4, OUTCOME_UNKNOWN),  # a 5xx on the restore POST is still never re-sent
])
# pylint: disable-next=too-many-arguments
def test_5xx_count_limit_is_unchanged(rsps, make_client, verb, statuses, max_retries, attempts, outcome):
    for status in statuses:
        rsps.add(verb.upper(), ARM + BI, status=status, json=INTERNAL if status >= 500 else {},
                 headers={'Retry-After': '1'} if status == 429 else {})
    client = make_client(max_retries=max_retries)
    on_fake_clock(client)
    call = {'get': lambda: client.get(BI), 'put': lambda: client.put(BI, {}), 'post': lambda: client.post(BI, {})}[verb]
    if outcome == OUTCOME_UNKNOWN:
        with pytest.raises(DataProtectionError) as info:
            call()
        assert info.value.code == OUTCOME_UNKNOWN
    else:
        assert call().status_code == outcome
    assert client.request_count == attempts


# ---------------------------------------------------------------- the token authority unreachable

AUTHORITY_RESET = "HTTPSConnectionPool(host='login.example.test', port=443): Connection reset by peer"
AUTHORITY_REFUSED = ("HTTPSConnectionPool(host='login.example.test', port=8443): Max retries exceeded with url: "
                     "/t1/v2.0/.well-known/openid-configuration (Caused by NewConnectionError('<obj>: Failed to "
                     "establish a new connection: [Errno 111] Connection refused'))")


class FlakyAuthority(FakeCredential):
    """A credential whose authority cannot be reached for the first `failures` token requests (what azure-identity
    raises then: a ClientAuthenticationError caused by the transport's ServiceRequestError)."""

    def __init__(self, failures, why=AUTHORITY_RESET, **kwargs):
        super().__init__(**kwargs)
        self.failures, self.why = failures, why

    def get_token(self, *scopes, **kwargs):
        if self.failures:
            self.failures -= 1
            self.scopes.append(scopes[0])
            cause = ServiceRequestError(self.why)
            raise ClientAuthenticationError('Authentication failed: ' + str(cause)) from cause
        return super().get_token(*scopes, **kwargs)


@pytest.mark.parametrize('method', ['get', 'post'])
def test_unreachable_token_authority_is_retried_for_every_verb(rsps, make_client, method):
    """Nothing was sent to ARM yet, so even a POST is safe to try again (bug F1)."""
    getattr(rsps, method)(ARM + BI + '/restore', status=202)
    client = make_client(credential=FlakyAuthority(2))
    call = client.get(BI + '/restore') if method == 'get' else client.post(BI + '/restore', {})
    assert call.status_code == 202
    assert client.request_count == 1 and client.slept == [0.75, 1.5]
    assert client.warnings[0] == (f'{method.upper()} {ARM}{BI}/restore: could not get an access token: the '
                                  'connection was closed before an answer arrived; retrying in 0.8s (retry 1 of 6)')


def test_unreachable_token_authority_that_stays_down(rsps, make_client):  # pylint: disable=unused-argument
    client = make_client(credential=FlakyAuthority(10), max_retries=2)
    with pytest.raises(DataProtectionError) as info:
        client.get(VAULT)
    assert info.value.code == 'AuthorityUnreachable' and client.request_count == 0
    assert str(info.value).startswith(f'Could not get an access token for {TEST_CLOUD.arm_scope}: '
                                      'AuthorityUnreachable: the connection was closed before an answer arrived '
                                      '(https://login.example.test, after 3 attempts).')
    assert len(client.slept) == 2


def test_token_authority_refusing_on_first_contact_fails_at_once(rsps, make_client):  # pylint: disable=unused-argument
    """One sign-in (azure-identity's own retries inside it), no retry of ours; the message names the URL refused."""
    client = make_client(credential=FlakyAuthority(10, why=AUTHORITY_REFUSED))
    with pytest.raises(DataProtectionError) as info:
        client.get(VAULT)
    assert client.credential.scopes == [TEST_CLOUD.arm_scope] and client.slept == [] and client.request_count == 0
    assert str(info.value).startswith(
        f'Could not get an access token for {TEST_CLOUD.arm_scope}: AuthorityUnreachable: Connection refused '
        '(https://login.example.test:8443/t1/v2.0/.well-known/openid-configuration). Recommended action: Nothing '
        'accepted the connection at that address')
    assert 'HTTPS_PROXY/NO_PROXY' not in str(info.value)  # the generic network advice gave way to the refused one


def test_token_authority_refusing_after_the_host_answered_is_retried(rsps, make_client):
    """The emulator, Azure Stack Hub: ARM and the authority on one host that answered before, then restarts."""
    rsps.get(ARM + VAULT, json={})
    rsps.get(ARM + VAULT, json={})
    client = make_client(credential=FlakyAuthority(0, why=AUTHORITY_REFUSED))
    client.cloud = TEST_CLOUD._replace(authority=ARM)
    client.get(VAULT)
    client._tokens.clear()  # pylint: disable=protected-access  # the held token has expired: a new sign-in
    client.credential.failures = 2
    assert client.get(VAULT).status_code == 200 and client.slept == [0.75, 1.5]


def closed_port():
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class CountingCredential:
    """Counts the sign-ins ArmClient asks of a real credential."""

    def __init__(self, credential):
        self.credential, self.calls = credential, 0

    def get_token(self, *scopes, **kwargs):
        self.calls += 1
        return self.credential.get_token(*scopes, **kwargs)


def test_real_sign_in_stack_against_a_closed_port_is_tried_once():
    """azure-identity (its own transport retries included) and ArmClient on one real session, against a local port
    that refuses: one sign-in, an error naming the URL (before: 7 sign-ins and 84-92 s)."""
    base = f'https://127.0.0.1:{closed_port()}'
    cloud = TEST_CLOUD._replace(resource_manager=base, authority=base)
    session = _arm_client.new_session()
    credential = CountingCredential(_auth.build_credential(
        {'auth_source': 'env', 'client_id': 'app1', 'secret': SENTINEL_SECRET, 'tenant': 't1'}, cloud, environ={},
        session=session))
    client = _arm_client.ArmClient(credential, cloud, SUBSCRIPTION, session=session, warn=pytest.fail)
    with pytest.raises(DataProtectionError) as info:
        client.get(VAULT)
    assert credential.calls == 1 and client.request_count == 0
    assert info.value.code == 'AuthorityUnreachable'
    assert f'Connection refused ({base}/t1/v2.0/.well-known/openid-configuration).' in str(info.value)
    assert SENTINEL_SECRET not in str(info.value)


# ---------------------------------------------------------------- the token endpoint answers 429 or 5xx

TOKEN_URL = 'https://login.example.test/t1/oauth2/v2.0/token'


class TokenEndpointCredential(FakeCredential):
    """A credential that asks the (mocked) token endpoint through the client's session, as azure-identity does,
    and fails as azure-identity fails on a 429 or 5xx: no status, no Retry-After in its error."""

    def __init__(self, session, **kwargs):
        super().__init__(**kwargs)
        self.session = session

    def get_token(self, *scopes, **kwargs):
        response = self.session.post(TOKEN_URL, data={'grant_type': 'client_credentials'})
        if response.status_code >= 500:
            raise ClientAuthenticationError(f'Authentication failed: HTTP Error: {response.status_code}')
        if response.status_code >= 400:
            raise ClientAuthenticationError('Authentication failed: ' + response.json()['error_description'])
        return super().get_token(*scopes, **kwargs)


@pytest.fixture
def token_client(make_client):
    """make_client() on a new_session() whose sign-ins go to TOKEN_URL."""
    def factory(**kwargs):
        session = _arm_client.new_session()
        return make_client(credential=TokenEndpointCredential(session), session=session, **kwargs)
    return factory


def test_token_endpoint_5xx_is_retried_past_msals_cache_of_it(rsps, token_client):
    """MSAL answers the same token request from its cache for 5 s after a 5xx (Retry-After when given): a retry
    waits that long at least, else it would not reach the endpoint."""
    # azure-identity's error for any 5xx says 'HTTP Error: 500', whatever the body
    rsps.post(TOKEN_URL, status=500, json={'error': 'server_error', 'error_description': 'AADSTS50000: oops'})
    rsps.post(TOKEN_URL, status=503, headers={'Retry-After': '8'})
    rsps.post(TOKEN_URL, json={})
    rsps.get(ARM + VAULT, json={'ok': 1})
    client = token_client()
    assert client.get(VAULT).json() == {'ok': 1}
    assert client.slept == [5.0, 8.0] and client.request_count == 1
    assert client.warnings == [
        f'GET {ARM}{VAULT}: could not get an access token: the token endpoint answered HTTP 500; retrying in 5.0s '
        '(retry 1 of 6)',
        f'GET {ARM}{VAULT}: could not get an access token: the token endpoint answered HTTP 503; retrying in 8.0s '
        '(retry 2 of 6)']


def test_token_endpoint_5xx_that_lasts_fails_as_an_outage(rsps, token_client):
    for dummy in range(3):
        rsps.post(TOKEN_URL, status=502)
    client = token_client(max_retries=2)
    with pytest.raises(DataProtectionError) as info:
        client.get(VAULT)
    err = info.value
    assert err.code == 'AuthorityUnavailable' and err.status == 502 and client.request_count == 0
    assert str(err) == (f'Could not get an access token for {TEST_CLOUD.arm_scope} at {TOKEN_URL}: '
                        'AuthorityUnavailable: the token endpoint answered HTTP 502 (after 3 attempts). Recommended '
                        'action: The service failed or was unavailable, also on the retries this task already made: '
                        'check the Azure status of the region, run the task again later, and give the request ids to '
                        'Azure support if it persists. (HTTP 502)')


def test_token_endpoint_429_is_retried_on_the_throttle_budget(rsps, token_client):
    for dummy in range(4):
        rsps.post(TOKEN_URL, status=429, headers={'Retry-After': '2'},
                  json={'error': 'temporarily_unavailable', 'error_description': 'AADSTS50196: throttled'})
    client = token_client(throttle_budget=10)
    clock = on_fake_clock(client)
    with pytest.raises(DataProtectionError) as info:
        client.get(VAULT)
    err = info.value
    assert clock.sleeps == [3.0, 3.0, 3.0] and client.request_count == 0  # Retry-After 2 and jitter, within 10 s
    assert client.warnings[0] == (f'GET {ARM}{VAULT}: could not get an access token: the token endpoint answered '
                                  'HTTP 429; retrying in 3.0s (retry 1; throttled requests are retried for up to 10s)')
    assert err.code == 'TooManyRequests' and err.status == 429 and err.is_retryable
    assert str(err).startswith(f'Could not get an access token for {TEST_CLOUD.arm_scope} at {TOKEN_URL}: '
                               'TooManyRequests: the service is throttling requests (HTTP 429, TooManyRequests: '
                               'AADSTS50196: throttled) and still was after 3 retries in 9s; gave up, as another retry '
                               'would pass the throttling retry budget of 10s. The request was not processed.')
    assert 'run the task again' in str(err) and 'auth_source' not in str(err)


def test_token_endpoint_4xx_is_not_retried(rsps, token_client):
    rsps.post(TOKEN_URL, status=401, json={'error': 'invalid_client',
                                           'error_description': 'AADSTS7000215: Invalid client secret provided.'})
    client = token_client()
    with pytest.raises(DataProtectionError) as info:
        client.get(VAULT)
    assert info.value.code == 'AADSTS7000215' and client.slept == []


def test_token_answers_are_recorded_for_token_endpoints_only(rsps):
    session = _arm_client.new_session()
    rsps.post(TOKEN_URL, status=503, headers={'Retry-After': '4'})
    rsps.get(ARM + VAULT, status=500)
    session.post(TOKEN_URL)
    session.get(ARM + VAULT)
    answer = session.token_answer
    assert (answer.status, answer.url, answer.msal_window()) == (503, TOKEN_URL, 4.0) and answer.failed_transiently


def test_wrong_secret_is_not_retried(rsps, make_client):  # pylint: disable=unused-argument
    client = make_client(credential=FakeCredential(error=ClientAuthenticationError(
        'Authentication failed: AADSTS7000215: Invalid client secret provided.')))
    with pytest.raises(DataProtectionError) as info:
        client.get(VAULT)
    assert info.value.code == 'AADSTS7000215' and client.slept == [] and client.credential.scopes == [TEST_CLOUD.arm_scope]


# ---------------------------------------------------------------- 401

def test_401_gets_one_new_token(rsps, make_client):
    rsps.get(ARM + VAULT, status=401, json={'error': {'code': 'ExpiredAuthenticationToken', 'message': 'expired'}})
    rsps.get(ARM + VAULT, json={'ok': 1})
    client = make_client()
    assert client.get(VAULT).json() == {'ok': 1}
    assert [c.request.headers['Authorization'][-2:] for c in rsps.calls] == ['-1', '-2']
    # the second token is asked for with a claims challenge, so that a cached token is not handed out again
    first, second = client.credential.claims
    assert first is None and json.loads(second)['access_token']['nbf']['essential'] is True


def test_a_credential_without_claims_support_is_asked_plainly(rsps, make_client):
    class PlainCredential(FakeCredential):
        def get_token(self, *scopes, **kwargs):  # pylint: disable=arguments-differ
            if kwargs:
                raise TypeError('unexpected keyword argument')
            return super().get_token(*scopes)

    rsps.get(ARM + VAULT, status=401, json={'error': {'code': 'InvalidAuthenticationToken', 'message': 'bad'}})
    rsps.get(ARM + VAULT, json={'ok': 1})
    client = make_client(credential=PlainCredential())
    assert client.get(VAULT).json() == {'ok': 1}


def test_401_twice_fails_clearly(rsps, make_client):
    for dummy in range(2):
        rsps.post(ARM + BI + '/restore', status=401,
                  json={'error': {'code': 'InvalidAuthenticationToken', 'message': 'The access token is invalid.'}})
    client = make_client()
    response = client.post(BI + '/restore', {})
    with pytest.raises(DataProtectionError) as info:
        client.json_or_raise(response, 'Trigger restore')
    assert info.value.code == 'InvalidAuthenticationToken' and client.request_count == 2
    assert 'Check the credentials' in str(info.value)


# ---------------------------------------------------------------- json_or_raise

@pytest.mark.parametrize('kwargs, expected', [({'status': 204}, {}), ({'status': 200, 'body': ''}, {})])
def test_json_or_raise_empty(rsps, make_client, kwargs, expected):
    rsps.get(ARM + VAULT, **kwargs)
    client = make_client()
    assert client.json_or_raise(client.get(VAULT), 'Get vault') == expected


def test_json_or_raise_not_json(rsps, make_client):
    rsps.get(ARM + VAULT, body='<html>', headers=IDS)
    client = make_client()
    with pytest.raises(DataProtectionError, match='Get vault: InvalidResponse: .*not JSON.*req-1'):
        client.json_or_raise(client.get(VAULT), 'Get vault')


# ---------------------------------------------------------------- paging

def page_url(number):
    return f'{ARM}{BI}/recoveryPoints?api-version=2024-04-01&$skipToken=page{number}'


def test_paging_follows_next_link_verbatim_and_lazily(rsps, make_client):
    rsps.get(ARM + BI + '/recoveryPoints', json={'value': [{'n': 1}, {'n': 2}], 'nextLink': page_url(2)},
             match=[matchers.query_param_matcher({'api-version': '2024-04-01', '$filter': "startDate eq 'x'"})])
    rsps.get(page_url(2), json={'value': [], 'nextLink': page_url(3)},
             match=[matchers.query_param_matcher({'api-version': '2024-04-01', '$skipToken': 'page2'})])
    rsps.get(page_url(3), json={'value': [{'n': 3}]},
             match=[matchers.query_param_matcher({'api-version': '2024-04-01', '$skipToken': 'page3'})])
    client = make_client()
    items = client.iter_pages(BI + '/recoveryPoints', params={'$filter': "startDate eq 'x'"})
    assert next(items) == {'n': 1} and client.request_count == 1  # nothing fetched ahead
    assert list(items) == [{'n': 2}, {'n': 3}]
    assert client.request_count == 3


def test_paging_holds_one_page_at_a_time(rsps, make_client, monkeypatch):
    pages = 100

    def answer(request):
        number = int(re.search(r'page(\d+)', request.url).group(1)) if 'skipToken' in request.url else 1
        body = {'value': [{'page': number, 'i': i} for i in range(3)]}
        if number < pages:
            body['nextLink'] = page_url(number + 1)
        return 200, {}, json.dumps(body)

    rsps.add_callback('GET', re.compile(re.escape(ARM + BI + '/recoveryPoints') + '.*'), callback=answer)
    client = make_client()

    class Page(dict):
        """A page that can be watched with a weak reference."""

    alive = []
    original = client.json_or_raise

    def watched(response, what):
        assert all(ref() is None for ref in alive)  # the previous page is released before the next is read
        page = Page(original(response, what))
        page['value'] = PageItems(page['value'])
        alive.append(weakref.ref(page['value']))
        return page

    class PageItems(list):
        pass

    monkeypatch.setattr(client, 'json_or_raise', watched)
    count = 0
    for item in client.iter_pages(BI + '/recoveryPoints'):
        count += 1  # CPython frees a page list as soon as nothing references it: no gc.collect() needed
        assert sum(1 for ref in alive if ref() is not None) <= 1
        assert len(alive) == item['page']  # pages are fetched as the items are consumed, not ahead
    assert count == 3 * pages and client.request_count == pages


def test_paging_stops_on_a_repeated_next_link(rsps, make_client):
    rsps.get(page_url(1), json={'value': [{'n': 1}], 'nextLink': page_url(1)})
    with pytest.raises(DataProtectionError, match='same nextLink'):
        list(make_client().iter_pages(page_url(1)))


def test_paging_error_raises(rsps, make_client):
    rsps.get(ARM + VAULT + '/backupJobs', status=404, json={'error': {'code': 'ResourceNotFound', 'message': 'gone'}})
    with pytest.raises(DataProtectionError, match=r'List https://management.example.test/subscriptions/.*ResourceNotFound'):
        list(make_client().iter_pages(VAULT + '/backupJobs'))


# ---------------------------------------------------------------- nothing secret leaks

def test_no_token_or_query_in_any_warning_or_error(rsps, make_client):
    secret_query = ARM + VAULT + '?api-version=2024-04-01&sig=' + SENTINEL_TOKEN
    rsps.get(secret_query, status=429, headers={'Retry-After': '1'})
    rsps.get(secret_query, status=401)
    rsps.get(secret_query, status=503)
    rsps.get(secret_query, body=refused())
    rsps.get(secret_query, body=read_timeout())
    rsps.post(secret_query, body=dropped())
    client = make_client(max_retries=3, credential=FakeCredential(token=SENTINEL_TOKEN))
    texts = []
    for call in (lambda: client.get(secret_query), lambda: client.post(secret_query, {})):
        with pytest.raises(DataProtectionError) as info:
            call()
        texts += [str(info.value), repr(info.value.as_dict()), repr(info.value.fail_kwargs())]
    texts += client.warnings
    assert len(client.warnings) == 5  # 429, 401, then three retries of 503/refused/timeout (a 429 is not counted)
    for text in texts:
        assert SENTINEL_TOKEN not in text and 'sig=' not in text and 'Bearer' not in text


def test_user_agent_version_matches_the_collection():
    root = Path(__file__).resolve().parents[4]
    if (root / 'galaxy.yml').is_file():
        version = yaml.safe_load((root / 'galaxy.yml').read_text(encoding='utf-8'))['version']
    elif (root / 'MANIFEST.json').is_file():  # an installed collection
        version = json.loads((root / 'MANIFEST.json').read_text(encoding='utf-8'))['collection_info']['version']
    else:
        pytest.skip('no galaxy.yml or MANIFEST.json next to the tests')
    assert _arm_client.COLLECTION_VERSION == version, 'update COLLECTION_VERSION in _arm_client.py'


# ---------------------------------------------------------------- one TLS context per CA bundle (real TLS server)

class _Hello(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b'{"ok": true}'
        if self.path == '/authorization':
            body = json.dumps({'authorization': self.headers.get('Authorization')}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def tls_server(tmp_path_factory):
    trustme = pytest.importorskip('trustme')
    ca, other_ca = trustme.CA(), trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert('127.0.0.1').configure_cert(context)
    server = ThreadingHTTPServer(('127.0.0.1', 0), _Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    folder = tmp_path_factory.mktemp('ca')
    ca.cert_pem.write_to_path(str(folder / 'ca.pem'))
    other_ca.cert_pem.write_to_path(str(folder / 'other.pem'))
    yield f'https://127.0.0.1:{server.server_address[1]}/', str(folder / 'ca.pem'), str(folder / 'other.pem')
    server.shutdown()
    server.server_close()


def test_sessions_share_one_tls_context_per_ca_bundle(tls_server, monkeypatch):
    url, ca_file, _other = tls_server
    built = []
    real = _arm_client.create_urllib3_context
    monkeypatch.setattr(_arm_client, 'create_urllib3_context', lambda: built.append(1) or real())
    monkeypatch.setattr(_arm_client, '_SSL_CONTEXTS', {})
    for _task in range(3):  # three tasks' sessions, each with a new connection
        assert _arm_client.new_session().get(url, verify=ca_file, timeout=10).json() == {'ok': True}
    assert len(built) == 1
    assert list(_arm_client._SSL_CONTEXTS) == [ca_file]


def test_shared_context_still_verifies_the_server(tls_server, monkeypatch):
    url, _ca_file, other_ca = tls_server
    monkeypatch.setattr(_arm_client, '_SSL_CONTEXTS', {})
    with pytest.raises(requests.exceptions.SSLError, match='CERTIFICATE_VERIFY_FAILED'):
        _arm_client.new_session().get(url, verify=other_ca, timeout=10)
    # and the public bundle (verify=True) does not trust the test CA either
    with pytest.raises(requests.exceptions.SSLError, match='CERTIFICATE_VERIFY_FAILED'):
        _arm_client.new_session().get(url, verify=True, timeout=10)


def test_verification_off_and_directories_keep_requests_own_handling(tls_server, tmp_path):
    url, _ca_file, _other = tls_server
    adapter = _arm_client.SharedContextAdapter()
    request = requests.Request('GET', url).prepare()
    for verify in (False, str(tmp_path)):
        _host, pool = adapter.build_connection_pool_key_attributes(request, verify)
        assert 'ssl_context' not in pool
    assert _arm_client.new_session().get(url, verify=False, timeout=10).json() == {'ok': True}


# ---------------------------------------------------------------- proxy and CA bundle variables, read once per host

def test_the_environment_is_read_once_per_host_and_session(tls_server, monkeypatch):
    url, ca_file, _other = tls_server
    reads = []
    real = requests.sessions.get_environ_proxies
    monkeypatch.setattr(requests.sessions, 'get_environ_proxies', lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    session = _arm_client.new_session()
    for path in ('a', 'b', 'c'):
        assert session.get(url + path, verify=ca_file, timeout=10).json() == {'ok': True}
    assert len(reads) == 1
    _arm_client.new_session().get(url, verify=ca_file, timeout=10)  # a new session (a new task) reads it again
    assert len(reads) == 2


@pytest.mark.parametrize('no_proxy, reaches_server', [('', False), ('127.0.0.1', True)])
def test_proxy_variables_still_apply(tls_server, monkeypatch, no_proxy, reaches_server):
    url, ca_file, _other = tls_server
    for name in ('HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('HTTPS_PROXY', 'http://127.0.0.1:9')  # nothing listens: a request through it fails
    monkeypatch.setenv('NO_PROXY', no_proxy)
    session = _arm_client.new_session()
    for _request in range(2):  # the cached answer is the same answer
        if reaches_server:
            assert session.get(url, verify=ca_file, timeout=10).json() == {'ok': True}
        else:
            with pytest.raises(requests.exceptions.ProxyError):
                session.get(url, verify=ca_file, timeout=10)


def test_the_ca_bundle_variable_still_applies(tls_server, monkeypatch):
    url, ca_file, _other = tls_server
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', ca_file)
    session = _arm_client.new_session()
    assert session.get(url, timeout=10).json() == {'ok': True}
    assert session.get(url, timeout=10).json() == {'ok': True}


def test_a_netrc_entry_never_replaces_the_bearer_token(tls_server, monkeypatch, tmp_path):
    url, ca_file, _other = tls_server
    netrc = tmp_path / '.netrc'
    netrc.write_text('machine 127.0.0.1 login someone password not-for-azure\n')
    netrc.chmod(0o600)
    monkeypatch.setenv('NETRC', str(netrc))
    answer = _arm_client.new_session().get(url + 'authorization', verify=ca_file, timeout=10,
                                           headers={'Authorization': 'Bearer the-token'})
    assert answer.json() == {'authorization': 'Bearer the-token'}
    # what a plain requests.Session does with that file: the reason for the session's own auth
    plain = requests.Session().get(url + 'authorization', verify=ca_file, timeout=10,
                                   headers={'Authorization': 'Bearer the-token'})
    assert plain.json()['authorization'].startswith('Basic ')

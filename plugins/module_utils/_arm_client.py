# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""ArmClient: one requests.Session with bearer tokens, retries that never re-send a write blindly, and paging."""

from __future__ import annotations

import random
import time
import traceback
from urllib.parse import parse_qs, urlsplit

from ansible.module_utils.ansible_release import __version__ as ANSIBLE_VERSION

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._auth import (
    DEFAULT_API_VERSION, fresh_token_claims, get_access_token,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._cache import oidc_adapter_class
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    AUTHORITY_UNREACHABLE, NETWORK_HINT, OUTCOME_UNKNOWN, TLS_HINT, DataProtectionError, describe_network_error,
    error_from_response, is_tls_error, response_ids,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._retry import (
    RETRY_STATUSES, THROTTLE_BUDGET, is_transient_network_error, retry_delay, throttle_delay,
)

try:
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
    from urllib3.response import HTTPResponse
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

COLLECTION_VERSION = '1.0.0'  # keep in step with galaxy.yml (shown in the User-Agent only)
USER_AGENT = f'azure_backup.dataprotection/{COLLECTION_VERSION} ansible/{ANSIBLE_VERSION}'
CONNECT_TIMEOUT = 10
# A throttling storm can mean 200 retries of one request: a warning for each of the first few, then every 10th.
_THROTTLE_WARN_FIRST, _THROTTLE_WARN_EVERY = 6, 10
_RATELIMIT_PREFIX = 'x-ms-ratelimit-remaining-'
_OUTCOME_ACTION = ('Check the state of the resource before sending the request again: re-running the task does '
                   'this (it looks for a job it started), or list the jobs with '
                   'azure_backup.dataprotection.dataprotection_job_info.')
_THROTTLED_ACTION = ('Azure limits the requests of each subscription and identity (Azure Resource Manager, Key '
                     'Vault): run fewer tasks against the subscription at the same time (fewer forks, or serial or '
                     'throttle on the restore tasks) or spread them out, then run the task again. The throttled '
                     'request was not processed, so running the task again is safe.')


def display_url(url):
    """scheme://host/path: what messages show of a URL (query strings can carry tokens)."""
    parts = urlsplit(url)
    return f'{parts.scheme}://{parts.netloc}{parts.path}'


def _connection_not_made(exc):
    """True when requests raised before the request left this host (nothing reached the server)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError) or not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, 'reason', inner)
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def new_session(cache=None):
    """The task's requests.Session: ARM, the cloud metadata and (through azure-identity's transport) the authority.

    With a _cache.DocumentCache, the authority's OpenID configuration is answered from it after the first read.
    """
    session = requests.Session()
    session.headers.update({'User-Agent': USER_AGENT, 'Accept': 'application/json'})
    if cache is not None:
        adapter = oidc_adapter_class(requests.adapters.HTTPAdapter, HTTPResponse)
        session.mount('https://', adapter(cache))
    return session


class ArmClient:
    """Azure Resource Manager over one requests.Session (see docs/dev/architecture.md for the contract)."""

    # pylint: disable-next=too-many-arguments
    def __init__(self, credential, cloud, subscription_id, api_version=DEFAULT_API_VERSION, verify=True,
                 max_retries=6, max_retry_after=60, request_timeout=60, warn=None, throttle_budget=THROTTLE_BUDGET,
                 session=None):
        self.credential = credential
        self.cloud = cloud
        self.subscription_id = subscription_id
        self.api_version = api_version
        self.verify = verify
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.throttle_budget = throttle_budget
        self.deadline = None  # the caller's _lro.Deadline, when it has one: a 429 is never waited out past it
        self.request_timeout = request_timeout
        self.warn = warn or (lambda message: None)
        self.request_count = 0
        self.ratelimit_remaining = {}  # last x-ms-ratelimit-remaining-* values seen, for debugging
        self.sleep = time.sleep  # replaced by tests
        self.clock = time.monotonic
        self.random = random.random
        self.session = session or new_session()

    # ------------------------------------------------------------ verbs

    def get(self, path_or_url, params=None, scope=None):
        return self._request('GET', path_or_url, params=params, scope=scope)

    def put(self, path_or_url, body, params=None, scope=None):
        return self._request('PUT', path_or_url, params=params, body=body, scope=scope)

    def delete(self, path_or_url, params=None, scope=None):
        return self._request('DELETE', path_or_url, params=params, scope=scope)

    # pylint: disable-next=too-many-arguments
    def post(self, path_or_url, body, params=None, scope=None, idempotent=False):
        """POST, re-sent only on 429 or when the connection was never made; see RequestOutcomeUnknown.

        `idempotent=True` is for POSTs without side effects (validateRestore): retried like a GET.
        """
        return self._request('POST', path_or_url, params=params, body=body, scope=scope, idempotent=idempotent)

    def iter_pages(self, path_or_url, params=None):
        """Yield the `value` items of every page, following nextLink verbatim; one page is held at a time."""
        url, query = path_or_url, params
        while url:
            page = self.json_or_raise(self.get(url, params=query), f'List {display_url(self.url(url))}')
            items, next_link = page.get('value') or [], page.get('nextLink')
            page = None  # drop the page before yielding: only its items stay referenced
            if next_link and next_link == url:
                raise DataProtectionError(f'List {display_url(self.url(url))}', 'the service returned the same '
                                          'nextLink again.', code='InvalidResponse')
            url, query = next_link, None
            items.reverse()
            while items:
                yield items.pop()  # popped: a consumed item is not kept alive by the page's list
            items = None

    def json_or_raise(self, response, what):
        """The JSON body of a 2xx response ({} when empty); a DataProtectionError for anything else."""
        if not 200 <= response.status_code < 300:
            raise error_from_response(what, response)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise DataProtectionError(what, 'the service answered with a body that is not JSON.',
                                      code='InvalidResponse', status=response.status_code,
                                      **response_ids(response)) from exc

    def url(self, path_or_url):
        """An absolute URL: paths starting with '/' are joined to the cloud's resource manager."""
        if path_or_url.startswith('/'):
            return self.cloud.resource_manager.rstrip('/') + path_or_url
        if path_or_url.lower().startswith('https://'):
            return path_or_url
        raise DataProtectionError('Invalid request URL', f"'{display_url(path_or_url)}' is neither an ARM path "
                                  "starting with '/' nor an https URL.", code='InvalidUrl')

    # ------------------------------------------------------------ the loop

    def _request(self, method, path_or_url, params=None, body=None, scope=None, idempotent=True):
        url = self.url(path_or_url)
        query = self._query(url, params)
        retries, throttled, token_refreshed, started = 0, 0, False, self.clock()
        while True:
            response, exc = self._attempt(method, url, query, body, scope, fresh_token=token_refreshed)
            if exc is not None:
                if retries < self.max_retries and self._may_resend(exc, idempotent):
                    retries += 1
                    self._pause(method, url, retries, self._reason(exc))
                    continue
                raise self._network_error(method, url, exc, idempotent, retries)
            if response.status_code == 401 and not token_refreshed:
                token_refreshed = True  # a token revoked or expired early: one fresh try, then the 401 is final
                self.warn(f'{method} {display_url(url)}: HTTP 401, getting a new token and trying once more')
                continue
            if response.status_code == 429:  # "not processed, come back later": safe for every verb, POST too
                throttled += 1
                self._throttle_pause(method, url, response, throttled, started)
                continue
            if response.status_code in RETRY_STATUSES and idempotent:
                if retries < self.max_retries:
                    retries += 1
                    self._pause(method, url, retries, f'HTTP {response.status_code}', response)
                    continue
            elif response.status_code in RETRY_STATUSES:
                raise self._outcome_unknown(method, url, response)
            return response

    # pylint: disable-next=too-many-arguments
    def _attempt(self, method, url, query, body, scope, fresh_token=False):
        try:
            # After a 401 the cached token is not good: ask the authority for one issued now.
            token = get_access_token(self.credential, scope or self.cloud.arm_scope,
                                     claims=fresh_token_claims() if fresh_token else None)
        except DataProtectionError as err:
            if err.code == AUTHORITY_UNREACHABLE:
                return None, err  # nothing was sent yet: retried like a connection that was never made
            raise
        self.request_count += 1
        try:
            response = self.session.request(
                method, url, params=query, json=body, headers={'Authorization': 'Bearer ' + token},
                timeout=(min(CONNECT_TIMEOUT, self.request_timeout), self.request_timeout),
                verify=self.verify)  # per request: a session-level verify loses to REQUESTS_CA_BUNDLE
        except requests.exceptions.RequestException as exc:
            return None, exc
        self.ratelimit_remaining.update(
            (k.lower(), v) for k, v in response.headers.items() if k.lower().startswith(_RATELIMIT_PREFIX))
        return response, None

    def _query(self, url, params):
        query = dict(params or {})
        if 'api-version' not in query and 'api-version' not in parse_qs(urlsplit(url).query):
            query['api-version'] = self.api_version
        return query

    @staticmethod
    def _may_resend(exc, idempotent):
        if isinstance(exc, DataProtectionError):
            return True  # the token authority was unreachable: the request itself was never sent
        if not is_transient_network_error(exc):
            return False  # a TLS or programming error does not heal by retrying
        return idempotent or _connection_not_made(exc)

    @staticmethod
    def _reason(exc):
        if isinstance(exc, DataProtectionError):
            return 'could not get an access token: ' + exc.message.rstrip('.')
        return describe_network_error(exc)

    def _pause(self, method, url, retries, reason, response=None):
        wait = retry_delay(retries, self.max_retry_after, self.random,
                           headers=response.headers if response is not None else None)
        self.warn(f'{method} {display_url(url)}: {reason}; retrying in {wait:.1f}s '
                  f'(retry {retries} of {self.max_retries})')
        self.sleep(wait)

    def _throttle_pause(self, method, url, response, throttled, started):
        """Wait before retry `throttled` of a 429 (Retry-After plus jitter), or raise when that retry would start
        after the throttle budget (from the request's first attempt) or the caller's deadline."""
        wait = throttle_delay(throttled, self.max_retry_after, self.random, headers=response.headers)
        elapsed = self.clock() - started
        if elapsed + wait > self.throttle_budget:
            raise self._throttled(method, url, response, throttled - 1, elapsed,
                                  f'the throttling retry budget of {self.throttle_budget}s')
        if self.deadline is not None and wait > self.deadline.remaining():
            raise self._throttled(method, url, response, throttled - 1, elapsed, "the task's wait_timeout")
        if throttled <= _THROTTLE_WARN_FIRST or throttled % _THROTTLE_WARN_EVERY == 0:
            self.warn(f'{method} {display_url(url)}: HTTP 429; retrying in {wait:.1f}s (retry {throttled}; '
                      f'throttled requests are retried for up to {self.throttle_budget}s)')
        self.sleep(wait)

    # ------------------------------------------------------------ errors

    def _network_error(self, method, url, exc, idempotent, retries):
        what = f'{method} {display_url(url)}'
        attempts = f' (after {retries + 1} attempts)' if retries else ''
        if isinstance(exc, DataProtectionError):  # the token authority stayed unreachable
            exc.message = exc.message.rstrip('.') + attempts + '.'
            return exc
        reason = describe_network_error(exc) + attempts
        if is_tls_error(exc):
            return DataProtectionError(what, reason + '.', code='TLSVerificationFailed',
                                       recommended_actions=[TLS_HINT])
        if not idempotent and not _connection_not_made(exc):
            return DataProtectionError(what, reason + '; the request may or may not have been processed.',
                                       code=OUTCOME_UNKNOWN, recommended_actions=[_OUTCOME_ACTION])
        if isinstance(exc, requests.exceptions.Timeout):
            return DataProtectionError(what, reason + '.', code='RequestTimeout', recommended_actions=[
                f'The service did not answer within {self.request_timeout}s; retry later.'])
        return DataProtectionError(what, reason + '.', code='ConnectionFailed', recommended_actions=[NETWORK_HINT])

    @staticmethod
    def _throttled(method, url, response, retries, elapsed, limit):
        cause = error_from_response(f'{method} {display_url(url)}', response)
        return DataProtectionError(
            cause.what, f'the service is throttling requests (HTTP 429, {cause.code}: {cause.message.rstrip(".")}) '
            f'and still was after {retries} retries in {elapsed:.0f}s; gave up, as another retry would pass {limit}. '
            'The request was not processed.', code='TooManyRequests', status=429, request_id=cause.request_id,
            correlation_id=cause.correlation_id, is_retryable=True, recommended_actions=[_THROTTLED_ACTION],
            details=[{'code': cause.code, 'message': cause.message, 'target': cause.target}])

    @staticmethod
    def _outcome_unknown(method, url, response):
        cause = error_from_response(f'{method} {display_url(url)}', response)
        return DataProtectionError(
            cause.what, f'the service answered HTTP {response.status_code} ({cause.code}: {cause.message}); '
            'the request may or may not have been processed.', code=OUTCOME_UNKNOWN, status=response.status_code,
            request_id=cause.request_id, correlation_id=cause.correlation_id,
            recommended_actions=[_OUTCOME_ACTION], details=[{'code': cause.code, 'message': cause.message,
                                                             'target': cause.target}])

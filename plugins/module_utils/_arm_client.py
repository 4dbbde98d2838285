# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""ArmClient: one requests.Session with bearer tokens, retries that never re-send a write blindly, and paging."""

from __future__ import annotations

import os
import random
import re
import time
import traceback
from urllib.parse import parse_qs, urlsplit

from ansible.module_utils.ansible_release import __version__ as ANSIBLE_VERSION

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._auth import (
    DEFAULT_API_VERSION, access_token, fresh_token_claims,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._cache import oidc_adapter_class
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    AUTHORITY_UNAVAILABLE, AUTHORITY_UNREACHABLE, NETWORK_HINT, OUTCOME_UNKNOWN, REFUSED_HINT, TLS_HINT,
    DataProtectionError, describe_network_error, error_from_response, is_connection_refused, is_tls_error,
    network_error_url, response_ids, status_hint,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._retry import (
    RETRY_STATUSES, THROTTLE_BUDGET, is_network_error, parse_retry_after, retry_delay, throttle_delay,
)

try:
    import requests
    from requests.utils import DEFAULT_CA_BUNDLE_PATH
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
    from urllib3.response import HTTPResponse
    from urllib3.util.ssl_ import create_urllib3_context
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


# MSAL answers a token request that got a 429 or 5xx from its own cache, without sending it, for the Retry-After
# seconds, else 5 (msal.throttled_http_client): a retry sooner would not reach the token endpoint.
_MSAL_THROTTLE_SECONDS = 5.0
# Where azure-identity asks for tokens: AAD v2 and v1, managed identity (IMDS, App Service).
_TOKEN_PATHS = ('/oauth2/v2.0/token', '/oauth2/token', '/msi/token')


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


def _netloc(url):
    return urlsplit(url).netloc.lower()


class TokenEndpointAnswer:
    """The last answer of a token endpoint that went through the session (a response hook).

    azure-identity's error for a 429 or 5xx of the token endpoint has neither the status nor Retry-After (its text
    is 'HTTP Error: 500', or the error_description of the body): ArmClient reads them here, to retry such a sign-in
    as it retries a 429 or 5xx of ARM, and to say what happened.
    """

    def __init__(self):
        self.status, self.url, self.headers = None, None, {}

    def clear(self):
        self.status, self.url, self.headers = None, None, {}

    def __call__(self, response, *args, **kwargs):
        if urlsplit(response.url).path.lower().endswith(_TOKEN_PATHS):
            self.status, self.url = response.status_code, display_url(response.url)
            self.headers = {k: v for k, v in response.headers.items() if 'retry-after' in k.lower()}
        return response

    @property
    def failed_transiently(self):
        return self.status in RETRY_STATUSES

    def msal_window(self):
        """Seconds MSAL answers the same token request from its cache (see _MSAL_THROTTLE_SECONDS)."""
        wait = parse_retry_after(self.headers)
        return _MSAL_THROTTLE_SECONDS if wait is None else wait


# ---------------------------------------------------------------- one TLS context per CA bundle

# requests builds a new SSLContext for every connection and loads the CA bundle into it again: a few milliseconds
# and 1.5-3.5 MB in each worker. One context per bundle is kept instead. The first is made when this file is
# imported, which for the controller's main process is when the strategy loads the action plugin, before it forks
# a worker per task: the workers share its pages instead of each building its own.
_SSL_CONTEXTS = {}


def _ca_file(verify):
    """The CA bundle file that `verify` (requests' value, REQUESTS_CA_BUNDLE already applied) names, else None."""
    if verify is True:
        return DEFAULT_CA_BUNDLE_PATH
    if isinstance(verify, str) and os.path.isfile(verify):
        return verify
    return None  # verification off, or a directory of certificates: requests' own handling


def shared_ssl_context(ca_file):
    context = _SSL_CONTEXTS.get(ca_file)
    if context is None:
        context = create_urllib3_context()
        context.load_verify_locations(cafile=ca_file)
        _SSL_CONTEXTS[ca_file] = context
    return context


def _prepare_default_context(environ=None):
    env = os.environ if environ is None else environ
    try:
        shared_ssl_context(_ca_file(env.get('REQUESTS_CA_BUNDLE') or env.get('CURL_CA_BUNDLE') or True))
    except (OSError, ValueError, TypeError):
        pass  # a bad bundle fails the first request instead, with requests' message


if HAS_REQUESTS:
    class SharedContextAdapter(requests.adapters.HTTPAdapter):
        """requests' HTTPAdapter with the process's SSLContext for the request's CA bundle (see above)."""

        def _context(self, verify, cert):
            ca_file = _ca_file(verify) if cert is None else None
            return shared_ssl_context(ca_file) if ca_file else None

        def build_connection_pool_key_attributes(self, request, verify, cert=None):
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
            context = self._context(verify, cert) if host_params.get('scheme') == 'https' else None
            if context is not None:
                pool_kwargs.pop('ca_certs', None)
                pool_kwargs['ssl_context'] = context
            return host_params, pool_kwargs

        def cert_verify(self, conn, url, verify, cert):
            super().cert_verify(conn, url, verify, cert)
            # The bundle is in the pool's context already: urllib3 would load it into that context again.
            # Only when the pool has it (requests before 2.32 never calls the method above).
            context = getattr(conn, 'conn_kw', {}).get('ssl_context')
            if context is not None and context is self._context(verify, cert):
                conn.ca_certs = None

    _prepare_default_context()

    def _headers_as_given(request):
        return request

    class _OnceSession(requests.Session):
        """A requests.Session that reads the proxy and CA bundle variables once per host, not once per request.

        requests looks through the whole environment twice for every request (proxies, then no_proxy), about 1.5 ms
        each: a tenth of a task's CPU. A task's session sends its 20-odd requests to two or three hosts with one
        environment, so the first answer for a host stands for the session's life.
        """

        def __init__(self):
            super().__init__()
            self._environment_settings = {}
            # The bearer token is in each request's headers. Without an auth of its own, requests looks up ~/.netrc
            # for every request, and an entry there for the host would replace the token with a basic login.
            self.auth = _headers_as_given

        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            parts = urlsplit(url)
            try:
                key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
                settings = self._environment_settings.get(key)
            except TypeError:  # an unhashable argument: no cache
                return super().merge_environment_settings(url, proxies, stream, verify, cert)
            if settings is None:
                settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
                self._environment_settings[key] = settings
            return dict(settings)


def new_session(cache=None):
    """The task's requests.Session: ARM, the cloud metadata and (through azure-identity's transport) the authority.

    With a _cache.DocumentCache, the authority's OpenID configuration is answered from it after the first read.
    `session.token_answer` (a TokenEndpointAnswer) keeps the token endpoint's last answer.
    """
    session = _OnceSession()
    session.headers.update({'User-Agent': USER_AGENT, 'Accept': 'application/json'})
    if cache is not None:
        session.mount('https://', oidc_adapter_class(SharedContextAdapter, HTTPResponse)(cache))
    else:
        session.mount('https://', SharedContextAdapter())
    session.token_answer = TokenEndpointAnswer()
    session.hooks['response'].append(session.token_answer)
    return session


TOKEN_REUSE_MARGIN = 300  # seconds before expiry when a held token is asked for anew (azure-core's margin)


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
        # None for a session that new_session() did not make: a 429 or 5xx of the token endpoint is then not retried
        self.token_answer = getattr(self.session, 'token_answer', None)
        self.answered = set()  # hosts that answered this client: a refused connection from one is a restart
        self._tokens = {}  # scope -> AccessToken, reused until TOKEN_REUSE_MARGIN before it expires

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
            if exc is not None and sign_in_status(exc) == 429:  # the token endpoint throttles: as a 429 of ARM
                throttled += 1
                self._throttle_pause(method, url, self.token_answer.headers, throttled, started, exc,
                                     at_least=self.token_answer.msal_window(),
                                     reason='could not get an access token: the token endpoint answered HTTP 429')
                continue
            if exc is not None:
                if retries < self.max_retries and self._may_resend(exc, url, idempotent):
                    retries += 1
                    self._pause(method, url, retries, self._reason(exc), at_least=self._sign_in_retry_floor(exc))
                    continue
                raise self._network_error(method, url, exc, idempotent, retries)
            if response.status_code == 401 and not token_refreshed:
                token_refreshed = True  # a token revoked or expired early: one fresh try, then the 401 is final
                self.warn(f'{method} {display_url(url)}: HTTP 401, getting a new token and trying once more')
                continue
            if response.status_code == 429:  # "not processed, come back later": safe for every verb, POST too
                throttled += 1
                self._throttle_pause(method, url, response.headers, throttled, started,
                                     error_from_response(f'{method} {display_url(url)}', response))
                continue
            if response.status_code in RETRY_STATUSES and idempotent:
                if retries < self.max_retries:
                    retries += 1
                    self._pause(method, url, retries, f'HTTP {response.status_code}', response.headers)
                    continue
            elif response.status_code in RETRY_STATUSES:
                raise self._outcome_unknown(method, url, response)
            return response

    # pylint: disable-next=too-many-arguments
    def _attempt(self, method, url, query, body, scope, fresh_token=False):
        # After a 401 the cached token is not good: ask the authority for one issued now.
        token, err = self._token(scope or self.cloud.arm_scope, fresh_token_claims() if fresh_token else None)
        if err is not None:
            return None, err
        self.request_count += 1
        try:
            response = self.session.request(
                method, url, params=query, json=body, headers={'Authorization': 'Bearer ' + token},
                timeout=(min(CONNECT_TIMEOUT, self.request_timeout), self.request_timeout),
                verify=self.verify)  # per request: a session-level verify loses to REQUESTS_CA_BUNDLE
        except requests.exceptions.RequestException as exc:
            return None, exc
        self.answered.add(_netloc(url))
        self.ratelimit_remaining.update(
            (k.lower(), v) for k, v in response.headers.items() if k.lower().startswith(_RATELIMIT_PREFIX))
        return response, None

    def _token(self, scope, claims):
        """(token, None), or (None, error) for a sign-in worth another try: nothing was sent to ARM yet."""
        held = self._tokens.get(scope)
        # Each get_token reads MSAL's persistent cache (a file) and searches it: hold the token, as azure-core's
        # BearerTokenCredentialPolicy does, so that a poll costs one request and no cache read.
        if claims is None and held is not None and held.expires_on - time.time() > TOKEN_REUSE_MARGIN:
            return held.token, None
        if self.token_answer is not None:
            self.token_answer.clear()  # only the answers of this sign-in count
        try:
            self._tokens[scope] = access_token(self.credential, scope, claims=claims)
            return self._tokens[scope].token, None
        except DataProtectionError as err:
            if err.code == AUTHORITY_UNREACHABLE:
                return None, err  # the authority could not be reached: retried like a connection never made
            if self.token_answer is not None and self.token_answer.failed_transiently:
                return None, self._token_endpoint_error(err)
            raise

    def _token_endpoint_error(self, err):
        """The sign-in failed because the token endpoint answered 429 or 5xx, which azure-identity's error does not
        say (and the advice for it is to check the credentials): say it, with the advice for a 429 or 5xx of ARM."""
        status, what = self.token_answer.status, f'{err.what} at {self.token_answer.url}'
        said = _authority_said(err)
        if status == 429:
            return DataProtectionError(what, said or 'no details', code='TooManyRequests', status=429)
        return DataProtectionError(what, f'the token endpoint answered HTTP {status}' + (f' ({said})' if said else ''),
                                   code=AUTHORITY_UNAVAILABLE, status=status, recommended_actions=status_hint(status))

    def _sign_in_retry_floor(self, exc):
        """A retry of a sign-in that got a 5xx waits out MSAL's cache of that answer, or it would not be sent."""
        return self.token_answer.msal_window() if sign_in_status(exc) else 0.0

    def _query(self, url, params):
        query = dict(params or {})
        if 'api-version' not in query and 'api-version' not in parse_qs(urlsplit(url).query):
            query['api-version'] = self.api_version
        return query

    def _may_resend(self, exc, url, idempotent):
        """Whether a failed attempt is worth another. A refused connection is only when that host answered this client
        before (a restart): on first contact nothing listens there, and retrying would only delay the error."""
        if isinstance(exc, DataProtectionError):  # the sign-in failed: the request itself was never sent
            return not is_connection_refused(exc) or _netloc(self.cloud.authority) in self.answered
        if not is_network_error(exc):
            return False  # a TLS or programming error does not heal by retrying
        if is_connection_refused(exc):
            return _netloc(url) in self.answered  # never sent: even a POST may go again
        return idempotent or _connection_not_made(exc)

    @staticmethod
    def _reason(exc):
        if isinstance(exc, DataProtectionError):
            return 'could not get an access token: ' + exc.message.rstrip('.')
        return describe_network_error(exc)

    # pylint: disable-next=too-many-arguments
    def _pause(self, method, url, retries, reason, headers=None, at_least=0.0):
        wait = max(retry_delay(retries, self.max_retry_after, self.random, headers=headers), at_least)
        self.warn(f'{method} {display_url(url)}: {reason}; retrying in {wait:.1f}s '
                  f'(retry {retries} of {self.max_retries})')
        self.sleep(wait)

    # pylint: disable-next=too-many-arguments
    def _throttle_pause(self, method, url, headers, throttled, started, cause, at_least=0.0, reason='HTTP 429'):
        """Wait before retry `throttled` of a 429 (Retry-After plus jitter), or raise when that retry would start
        after the throttle budget (from the request's first attempt) or the caller's deadline. `cause`: the 429 as a
        DataProtectionError (ARM's answer, or the token endpoint's)."""
        wait = max(throttle_delay(throttled, self.max_retry_after, self.random, headers=headers), at_least)
        elapsed = self.clock() - started
        if elapsed + wait > self.throttle_budget:
            raise self._throttled(cause, throttled - 1, elapsed,
                                  f'the throttling retry budget of {self.throttle_budget}s')
        if self.deadline is not None and wait > self.deadline.remaining():
            raise self._throttled(cause, throttled - 1, elapsed, "the task's wait_timeout")
        if throttled <= _THROTTLE_WARN_FIRST or throttled % _THROTTLE_WARN_EVERY == 0:
            self.warn(f'{method} {display_url(url)}: {reason}; retrying in {wait:.1f}s (retry {throttled}; '
                      f'throttled requests are retried for up to {self.throttle_budget}s)')
        self.sleep(wait)

    # ------------------------------------------------------------ errors

    def _network_error(self, method, url, exc, idempotent, retries):
        if isinstance(exc, DataProtectionError):  # the sign-in kept failing
            return self._sign_in_error(exc, retries)
        what = f'{method} {display_url(url)}'
        attempts = f' (after {retries + 1} attempts)' if retries else ''
        reason = describe_network_error(exc) + attempts
        if is_connection_refused(exc):
            return DataProtectionError(what, reason + '.', code='ConnectionFailed', recommended_actions=[REFUSED_HINT])
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

    def _sign_in_error(self, err, retries):
        """A sign-in that kept failing, with the attempts made; unreachable, with the URL it could not reach
        (azure-identity's error names the scope it asked a token for, not where it asked)."""
        notes = [f'after {retries + 1} attempts'] if retries else []
        if err.code == AUTHORITY_UNREACHABLE:
            notes.insert(0, network_error_url(err) or self.cloud.authority)
            if is_connection_refused(err):
                err.recommended_actions = [REFUSED_HINT if a == NETWORK_HINT else a for a in err.recommended_actions]
        if notes:
            err.message = f'{err.message.rstrip(".")} ({", ".join(notes)}).'
        return err

    @staticmethod
    def _throttled(cause, retries, elapsed, limit):
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


def _authority_said(err):
    """What the authority said in a failed sign-in (its AADSTS code first), or None when azure-identity only gives
    the status ('HTTP Error: 500', its text for any 5xx)."""
    if re.fullmatch(r'HTTP Error: \d+\.?', err.message):
        return None
    text = err.message.rstrip('.')
    return f'{err.code}: {text}' if str(err.code).startswith('AADSTS') else text


def sign_in_status(exc):
    """The HTTP status of a sign-in that failed on a 429 or 5xx of the token endpoint, else None."""
    return exc.status if isinstance(exc, DataProtectionError) else None

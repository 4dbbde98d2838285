# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""DataProtectionError: the one error type of the collection, and its parsers for ARM error payloads."""

from __future__ import annotations

import re

# Codes the transport and the pollers set themselves (the service's own codes come from the payload).
OUTCOME_UNKNOWN = 'RequestOutcomeUnknown'
OPERATION_TIMED_OUT = 'OperationTimedOut'
JOB_WAIT_TIMED_OUT = 'JobWaitTimedOut'
# The token authority could not be reached (nothing was sent to the service): retried like a connection reset.
AUTHORITY_UNREACHABLE = 'AuthorityUnreachable'
# The token endpoint answered 5xx (nothing was sent to the service): retried like a 5xx of a GET.
AUTHORITY_UNAVAILABLE = 'AuthorityUnavailable'

# Never suggest turning verification off: trusting the right CA is the fix.
TLS_HINT = ('The server certificate is not trusted. If a private CA issued it (Azure Stack Hub, a TLS-inspecting '
            'proxy, the local emulator), trust that CA: set REQUESTS_CA_BUNDLE=path/to/ca.pem in the environment '
            'of the task (for AWX/AAP: in the execution environment image, the Extra Environment Variables setting, '
            'or a credential type that injects it).')
NETWORK_HINT = ('Check that the endpoint is reachable from the host that runs the task (DNS, proxy settings '
                'HTTPS_PROXY/NO_PROXY, firewall) and retry.')
REFUSED_HINT = ('Nothing accepted the connection at that address: check its host and port (cloud_environment, '
                'AZURE_CLOUD_ENVIRONMENT), that the service runs there, and that no firewall or proxy (HTTPS_PROXY) '
                'rejects the connection.')

# A hint for when the service gives no recommended action: what a user can change for each HTTP status.
_STATUS_HINTS = {
    400: 'Check the module options against the documentation; the service rejected the request as sent.',
    401: 'Check the credentials (auth_source, client_id, secret, tenant) and that cloud_environment names the '
         'cloud they belong to.',
    403: 'Grant the identity a role that allows this action on the resource (for example Backup Operator or '
         'Backup Contributor on the vault), then retry; new role assignments can take minutes to apply.',
    404: 'Check subscription_id, resource_group and the resource names; the resource was not found.',
    409: 'Another operation is in progress or the resource is in a conflicting state; retry later.',
}
_BODY_EXCERPT = 500
_FIELDS = ('what', 'code', 'message', 'status', 'request_id', 'correlation_id', 'recommended_actions',
           'is_retryable', 'is_user_error', 'details', 'job_id', 'operation_id', 'target')


class DataProtectionError(Exception):
    """An error the user can act on: what failed, the service's code and message, and what to do."""

    # pylint: disable-next=too-many-arguments
    def __init__(self, what, message, code=None, status=None, request_id=None, correlation_id=None,
                 recommended_actions=None, is_retryable=None, is_user_error=None, details=None,
                 job_id=None, operation_id=None, target=None):
        super().__init__(what, message)
        self.what = what
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.correlation_id = correlation_id
        self.recommended_actions = _as_list(recommended_actions)
        self.is_retryable = is_retryable
        self.is_user_error = is_user_error
        self.details = details or []
        self.job_id = job_id
        self.operation_id = operation_id
        self.target = target

    @property
    def outcome_unknown(self):
        """True when a write may or may not have reached the service: re-check state before sending it again."""
        return self.code == OUTCOME_UNKNOWN

    def __str__(self):
        text = f'{self.what}: {self.code}: {self.message}' if self.code else f'{self.what}: {self.message}'
        if self.recommended_actions:
            text += ' Recommended action: ' + ' '.join(_sentence(a) for a in self.recommended_actions)
        ids = _id_suffix(self)
        return f'{text} ({ids})' if ids else text

    def as_dict(self):
        """Structured error for a module result (`error`): snake_case keys, always all of them."""
        return {name: getattr(self, name) for name in _FIELDS}

    def fail_kwargs(self):
        """Keyword arguments for module.fail_json(): the message, and the same error structured under `error`
        (its request ids, job and operation ids included), as every module documents it."""
        return {'msg': str(self), 'error': self.as_dict()}


def error_from_response(what, response, **extra):
    """DataProtectionError from a non-2xx requests.Response (CloudError body, UserFacingError parsed)."""
    ids = response_ids(response)
    payload = _json_or_none(response)
    if isinstance(payload, dict) and isinstance(payload.get('error'), dict):
        return error_from_payload(what, payload['error'], status=response.status_code, **ids, **extra)
    if isinstance(payload, dict) and payload.get('code'):
        return error_from_payload(what, payload, status=response.status_code, **ids, **extra)
    return DataProtectionError(
        what, _plain_message(response), code=_status_code_name(response), status=response.status_code,
        recommended_actions=status_hint(response.status_code), **ids, **extra)


def error_from_payload(what, error, status=None, **extra):
    """DataProtectionError from an ARM `error` object (CloudError.error, or a failed operation's `error`)."""
    error = error if isinstance(error, dict) else {}
    facing = _user_facing_info(error)
    actions = _as_list(facing.get('recommendedAction')) or status_hint(status)
    details = [_detail(d) for d in error.get('details') or [] if isinstance(d, dict)]
    inner = facing.get('innerError') or {}
    if isinstance(inner, dict) and inner.get('code'):
        details.append({'code': inner['code'], 'message': _inner_message(inner), 'target': None})
    return DataProtectionError(
        what, facing.get('message') or error.get('message') or 'no message was given',
        code=facing.get('code') or error.get('code'), status=status, recommended_actions=actions,
        is_retryable=facing.get('isRetryable'), is_user_error=facing.get('isUserError'), details=details,
        target=facing.get('target') or error.get('target'), **extra)


def error_from_user_facing(what, info, **extra):
    """DataProtectionError from a bare UserFacingError (a job's `errorDetails[]` entry)."""
    return error_from_payload(what, {'additionalInfo': [{'type': 'UserFacingError', 'info': info or {}}]}, **extra)


def response_ids(response):
    """The ARM request ids of a response, for errors and support tickets."""
    headers = getattr(response, 'headers', None) or {}
    return {'request_id': headers.get('x-ms-request-id'),
            'correlation_id': headers.get('x-ms-correlation-request-id')}


def _user_facing_info(error):
    for item in error.get('additionalInfo') or []:
        if isinstance(item, dict) and str(item.get('type', '')).lower() == 'userfacingerror':
            if isinstance(item.get('info'), dict):
                return item['info']
    return {}


def _detail(detail):
    return {'code': detail.get('code'), 'message': detail.get('message'), 'target': detail.get('target')}


def _inner_message(inner):
    info = inner.get('additionalInfo') or {}
    return info.get('DetailedNonLocalisedMessage') if isinstance(info, dict) else None


def _as_list(value):
    if value is None or value == '':
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v not in (None, '')]
    return [str(value)]


def _sentence(text):
    text = text.strip()
    return text if text.endswith(('.', '!', '?')) else text + '.'


def _id_suffix(err):
    parts = []
    if err.status is not None:
        parts.append(f'HTTP {err.status}')
    if err.request_id:
        parts.append(f'x-ms-request-id: {err.request_id}')
    if err.correlation_id:
        parts.append(f'x-ms-correlation-request-id: {err.correlation_id}')
    return ', '.join(parts)


_SERVER_ERROR_HINT = ('The service failed or was unavailable, also on the retries this task already made: check the '
                      'Azure status of the region, run the task again later, and give the request ids to Azure '
                      'support if it persists.')


def status_hint(status):
    """The advice for an HTTP status when the service gives none (a list: recommended_actions)."""
    hint = _STATUS_HINTS.get(status) or (_SERVER_ERROR_HINT if status and status >= 500 else None)
    return [hint] if hint else []


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:  # requests' JSONDecodeError subclasses ValueError
        return None


def _status_code_name(response):
    reason = (getattr(response, 'reason', None) or '').replace(' ', '')
    return reason or f'HTTP{response.status_code}'


def _plain_message(response):
    text = ' '.join((getattr(response, 'text', '') or '').split())
    if not text:
        return f'the service answered HTTP {response.status_code} with no details'
    if len(text) > _BODY_EXCERPT:
        text = text[:_BODY_EXCERPT] + '...'
    return 'the service answered: ' + text


def is_tls_error(text):
    text = str(text)
    return 'CERTIFICATE_VERIFY_FAILED' in text or 'certificate verify failed' in text.lower()


# (pattern, summary) tried in order on the text of a requests/urllib3/azure-core exception.
_NETWORK_REASONS = (
    (r'certificate verify failed: ([^(\'"\])]+)', 'TLS certificate verification failed: {0}'),
    (r'CERTIFICATE_VERIFY_FAILED', 'TLS certificate verification failed'),
    (r'Read timed out', 'no answer within the request timeout (read timed out)'),
    (r'(?:ConnectTimeout|Connection to \S+ timed out|connect timeout)', 'the connection timed out'),
    (r'(?:Name or service not known|nodename nor servname|getaddrinfo failed|NameResolutionError|'
     r'Temporary failure in name resolution)', 'the host name could not be resolved'),
    (r'\[Errno -?\d+\] ([^\'")\]]+)', '{0}'),
    (r'(?:RemoteDisconnected|Connection aborted|Connection reset|ProtocolError)',
     'the connection was closed before an answer arrived'),
)


def describe_network_error(exc):
    """A short human reason for a connection-level exception (no object reprs, no URLs with queries)."""
    text = str(exc)
    for pattern, summary in _NETWORK_REASONS:
        match = re.search(pattern, text)
        if match:
            return summary.format(*(g.strip() for g in match.groups()))
    text = re.sub(r'\?[^\s\'"()]*', '', ' '.join(text.split()))  # query strings can carry tokens
    return text[:200] or type(exc).__name__


# A refused connection, in the words of Linux/macOS (strerror), Windows (WSAECONNREFUSED) and errno names.
_REFUSED = re.compile(r'Connection refused|actively refused|ECONNREFUSED')
# urllib3's account of a failed request: "HTTPSConnectionPool(host='h', port=1): Max retries exceeded with url: /p"
_POOL_URL = re.compile(r"\b(HTTPS?)Connection(?:Pool)?\(host='([^']+)', port=(\d+)\)"
                       r"(?:: Max retries exceeded with url: ([^\s?]*))?")
_DEFAULT_PORTS = {'https': '443', 'http': '80'}


def exception_chain(exc):
    """`exc` and every exception behind it: causes, contexts, and what requests, urllib3 and azure-core wrap
    (args, MaxRetryError.reason, AzureError.inner_exception); each once."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([current.__cause__, current.__context__, getattr(current, 'reason', None),
                     getattr(current, 'inner_exception', None)] + list(current.args))


def is_connection_refused(exc):
    """True when a connection was refused (nothing listens at that host and port), wherever in `exc`'s chain."""
    return any(isinstance(e, ConnectionRefusedError) or _REFUSED.search(str(e)) for e in exception_chain(exc))


def network_error_url(exc):
    """scheme://host[:port]/path of the request a connection-level exception failed on (no query), or None."""
    for error in exception_chain(exc):
        match = _POOL_URL.search(str(error))
        if match:
            scheme, host, port, path = match.group(1).lower(), match.group(2), match.group(3), match.group(4) or ''
            netloc = host if _DEFAULT_PORTS.get(scheme) == port else f'{host}:{port}'
            return f'{scheme}://{netloc}{path}'
    return None

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DataProtectionError rendering and the CloudError / UserFacingError parsers."""

from __future__ import annotations

import json
import socket
from http.client import RemoteDisconnected

import pytest
import requests
from azure.core.exceptions import ServiceRequestError

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _errors
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError

# A validateRestore failure as the service sends it (reference §3: CloudError + UserFacingError additionalInfo).
CLOUD_ERROR = {'error': {
    'code': 'UserErrorMSIMissingPermissions',
    'message': 'Azure Backup Service uses Managed Service Identity (MSI) to access the target server.',
    'target': '',
    'details': [{'code': 'InnerDetail', 'message': 'Reader is missing on targetossserver', 'target': 'server'}],
    'additionalInfo': [
        {'type': 'SomethingElse', 'info': {'code': 'ignored'}},
        {'type': 'UserFacingError', 'info': {
            'message': 'Azure Backup Service uses Managed Service Identity (MSI) to access the target server.',
            'recommendedAction': ['Grant the backup vault MSI Reader access on the target server',
                                  'Then retry the operation.'],
            'code': 'UserErrorMSIMissingPermissions', 'target': '', 'isRetryable': False, 'isUserError': True,
            'properties': {'ActivityId': '0c1d0a4e-0f2f-4b1a-9a4b-5f9d5e2c1a11'},
            'innerError': {'code': 'CloudInternalError',
                           'additionalInfo': {'DetailedNonLocalisedMessage': 'principal has no Reader role'}},
        }},
    ],
}}
IDS = {'x-ms-request-id': 'req-1234', 'x-ms-correlation-request-id': 'corr-5678'}


def make_response(status, body=None, headers=None, reason=None):
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.headers.update(headers or {})
    if body is not None:
        response._content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    else:
        response._content = b''
    return response


def test_str_format():
    err = DataProtectionError('Validate restore', 'it failed', code='X', status=400, request_id='r', correlation_id='c',
                              recommended_actions=['Do A', 'Do B.'])
    assert str(err) == ('Validate restore: X: it failed Recommended action: Do A. Do B. '
                        '(HTTP 400, x-ms-request-id: r, x-ms-correlation-request-id: c)')


def test_str_without_code_or_extras():
    assert str(DataProtectionError('Read vault', 'nope')) == 'Read vault: nope'


def test_cloud_error_with_user_facing_error():
    err = _errors.error_from_response('Validate restore for emprestored21', make_response(400, CLOUD_ERROR, IDS))
    assert err.code == 'UserErrorMSIMissingPermissions'
    assert err.recommended_actions == ['Grant the backup vault MSI Reader access on the target server',
                                       'Then retry the operation.']
    assert err.is_retryable is False and err.is_user_error is True
    assert err.status == 400 and err.request_id == 'req-1234' and err.correlation_id == 'corr-5678'
    assert {'code': 'InnerDetail', 'message': 'Reader is missing on targetossserver', 'target': 'server'} in err.details
    assert {'code': 'CloudInternalError', 'message': 'principal has no Reader role', 'target': None} in err.details
    text = str(err)
    assert text.startswith('Validate restore for emprestored21: UserErrorMSIMissingPermissions: Azure Backup Service')
    assert 'Recommended action: Grant the backup vault MSI Reader access on the target server.' in text
    assert 'x-ms-request-id: req-1234' in text and 'x-ms-correlation-request-id: corr-5678' in text


def test_as_dict_and_fail_kwargs():
    err = _errors.error_from_response('Trigger restore', make_response(409, CLOUD_ERROR, IDS), job_id='j1')
    as_dict = err.as_dict()
    assert set(as_dict) == {'what', 'code', 'message', 'status', 'request_id', 'correlation_id',
                            'recommended_actions', 'is_retryable', 'is_user_error', 'details', 'job_id',
                            'operation_id', 'target'}
    assert as_dict['code'] == 'UserErrorMSIMissingPermissions'
    kwargs = err.fail_kwargs()
    assert kwargs == {'msg': str(err), 'error': as_dict}  # the ids live in `error`, as every module documents it
    assert as_dict['job_id'] == 'j1' and as_dict['status'] == 409 and as_dict['request_id'] == 'req-1234'
    json.dumps(kwargs)  # a module result must be JSON-serialisable


@pytest.mark.parametrize('status, body, code, in_message, hint', [
    (404, {'error': {'code': 'ResourceNotFound', 'message': "The Resource 'x' was not found."}},
     'ResourceNotFound', "The Resource 'x' was not found.", 'Check subscription_id, resource_group'),
    (403, {'error': {'code': 'AuthorizationFailed', 'message': 'no access'}}, 'AuthorizationFailed', 'no access',
     'Grant the identity a role'),
    (502, '<html>\n<body>Bad   Gateway</body></html>', 'BadGateway', '<html> <body>Bad Gateway</body></html>',
     'also on the retries this task already made'),
    (500, None, 'InternalServerError', 'answered HTTP 500 with no details', 'give the request ids to Azure support'),
    (400, {'code': 'InvalidThing', 'message': 'top-level error shape'}, 'InvalidThing', 'top-level error shape',
     'Check the module options'),
])
def test_error_shapes(status, body, code, in_message, hint):
    reason = {502: 'Bad Gateway', 500: 'Internal Server Error'}.get(status)
    err = _errors.error_from_response('Do it', make_response(status, body, reason=reason))
    assert err.code == code
    assert in_message in err.message
    if hint:
        assert hint in ' '.join(err.recommended_actions)


def test_long_plain_bodies_are_cut():
    err = _errors.error_from_response('Do it', make_response(500, 'x' * 5000, reason='Internal Server Error'))
    assert len(err.message) < 600 and err.message.endswith('...')


def test_job_error_details_user_facing():
    info = CLOUD_ERROR['error']['additionalInfo'][1]['info']
    err = _errors.error_from_user_facing('Restore job 1', info, job_id='1')
    assert err.code == 'UserErrorMSIMissingPermissions' and err.job_id == '1'
    assert err.recommended_actions[0].startswith('Grant the backup vault MSI')


def test_outcome_unknown_flag():
    assert DataProtectionError('x', 'y', code=_errors.OUTCOME_UNKNOWN).outcome_unknown
    assert not DataProtectionError('x', 'y', code='Other').outcome_unknown


@pytest.mark.parametrize('text, expected', [
    ("HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /x?sig=abc (Caused by "
     "NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new "
     "connection: [Errno 111] Connection refused'))", 'Connection refused'),
    ("HTTPSConnectionPool(host='h', port=443): Max retries exceeded with url: / (Caused by SSLError("
     "SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed "
     "certificate in certificate chain (_ssl.c:1006)')))",
     'TLS certificate verification failed: self-signed certificate in certificate chain'),
    ("HTTPSConnectionPool(host='h', port=443): Read timed out. (read timeout=60)",
     'no answer within the request timeout (read timed out)'),
    ("('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))",
     'the connection was closed before an answer arrived'),
    ("HTTPSConnectionPool(host='nope.invalid', port=443): Max retries exceeded (Caused by NameResolutionError("
     "\"<urllib3.connection.HTTPSConnection object>: Failed to resolve 'nope.invalid' ([Errno -2] Name or service "
     "not known)\"))", 'the host name could not be resolved'),
])
def test_describe_network_error(text, expected):
    assert _errors.describe_network_error(Exception(text)) == expected


def _real_refusal():
    """What requests raises for a closed local port (urllib3's chain: the OS's ConnectionRefusedError inside)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    try:
        requests.get(f'https://127.0.0.1:{port}/x?token=SECRET', timeout=5)
    except requests.exceptions.ConnectionError as exc:
        return port, exc
    raise AssertionError('the closed port answered')


def test_connection_refused_is_found_anywhere_in_the_chain():
    port, exc = _real_refusal()
    assert _errors.is_connection_refused(exc)
    wrapped = ServiceRequestError(exc, error=exc)  # azure-core's wrapping: the cause is its inner_exception
    try:
        raise DataProtectionError('Could not get an access token', 'Connection refused.') from wrapped
    except DataProtectionError as err:
        assert _errors.is_connection_refused(err)
    assert _errors.network_error_url(exc) == f'https://127.0.0.1:{port}/x'  # the query (a token?) is dropped


@pytest.mark.parametrize('exc', [
    requests.exceptions.ConnectionError('Connection aborted.', RemoteDisconnected('closed')),
    requests.exceptions.ConnectTimeout("HTTPSConnectionPool(host='h', port=443): Connect timeout"),
    ValueError('x'),
])
def test_other_failures_are_not_refusals(exc):
    assert not _errors.is_connection_refused(exc)


@pytest.mark.parametrize('text, url', [
    ("HTTPSConnectionPool(host='login.example.test', port=443): Max retries exceeded with url: /t/oauth2/v2.0/token",
     'https://login.example.test/t/oauth2/v2.0/token'),
    ("HTTPSConnection(host='127.0.0.1', port=8443): Failed to establish a new connection", 'https://127.0.0.1:8443'),
    ('no URL here', None),
])
def test_network_error_url(text, url):
    assert _errors.network_error_url(Exception(text)) == url


def test_describe_network_error_fallback_drops_query_strings():
    text = _errors.describe_network_error(Exception("Odd failure for url: /x?sig=SECRET&a=b (more)"))
    assert 'SECRET' not in text and text == 'Odd failure for url: /x (more)'


def test_tls_hint_never_suggests_switching_validation_off():
    assert 'REQUESTS_CA_BUNDLE=path/to/ca.pem' in _errors.TLS_HINT
    assert 'ignore' not in _errors.TLS_HINT and 'cert_validation_mode' not in _errors.TLS_HINT

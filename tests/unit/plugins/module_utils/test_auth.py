# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Clouds (names and metadata URLs), credential selection per auth_source, token errors."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.identity import CredentialUnavailableError

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _auth
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError

from ansible_collections.azure_backup.dataprotection.tests.unit.conftest import SENTINEL_SECRET, FakeClock, FakeCredential

STACK = 'https://management.local.azurestack.external'
PUBLIC_LIST = [  # what https://management.azure.com/metadata/endpoints?api-version=2022-09-01 answers (abridged)
    {'name': 'AzureCloud', 'resourceManager': 'https://management.azure.com/',
     'authentication': {'loginEndpoint': 'https://login.microsoftonline.com',
                        'audiences': ['https://management.core.windows.net/', 'https://management.azure.com/']},
     'suffixes': {'keyVaultDns': 'vault.azure.net', 'storage': 'core.windows.net'}},
    {'name': 'AzureChinaCloud', 'resourceManager': 'https://management.chinacloudapi.cn/',
     'authentication': {'loginEndpoint': 'https://login.chinacloudapi.cn',
                        'audiences': ['https://management.core.chinacloudapi.cn/']},
     'suffixes': {'keyVaultDns': 'vault.azure.cn', 'storage': 'core.chinacloudapi.cn'}},
]
STACK_OBJECT = {  # an Azure Stack Hub style single object
    'name': 'AzureStack-User', 'resourceManager': STACK + '/',
    'authentication': {'loginEndpoint': 'https://adfs.local.azurestack.external/adfs/',
                       'audiences': ['https://management.adfs.azurestack.local/1234']},
    'suffixes': {'keyVaultDns': '.vault.local.azurestack.external', 'storage': 'local.azurestack.external'},
}


def metadata_url(base):
    return base + '/metadata/endpoints?api-version=2022-09-01'


# ---------------------------------------------------------------- clouds

@pytest.mark.parametrize('name, manager, kv_scope', [
    ('AzureCloud', 'https://management.azure.com', 'https://vault.azure.net/.default'),
    ('azureusgovernment', 'https://management.usgovcloudapi.net', 'https://vault.usgovcloudapi.net/.default'),
    ('AzureChinaCloud', 'https://management.chinacloudapi.cn', 'https://vault.azure.cn/.default'),
    (None, 'https://management.azure.com', 'https://vault.azure.net/.default'),
])
def test_known_clouds(name, manager, kv_scope):
    cloud = _auth.get_cloud(name)
    assert cloud.resource_manager == manager and cloud.keyvault_scope == kv_scope
    assert not _auth.is_custom_authority(cloud)


@pytest.mark.parametrize('value', ['AzureGermany', 'http://127.0.0.1:8443'])
def test_unknown_cloud_names(value):
    with pytest.raises(DataProtectionError) as info:
        _auth.get_cloud(value)
    assert info.value.code == 'InvalidCloudEnvironment'
    assert 'AzureCloud, AzureUSGovernment, AzureChinaCloud' in str(info.value)


@responses.activate
def test_metadata_list_picks_the_matching_cloud():
    responses.get(metadata_url('https://management.chinacloudapi.cn'), json=PUBLIC_LIST)
    cloud = _auth.get_cloud('https://management.chinacloudapi.cn/')
    assert cloud.name == 'AzureChinaCloud'
    assert cloud.resource_manager == 'https://management.chinacloudapi.cn'
    assert cloud.arm_scope == 'https://management.core.chinacloudapi.cn/.default'  # no '//' from the trailing slash
    assert cloud.keyvault_scope == 'https://vault.azure.cn/.default'


@responses.activate
def test_metadata_list_without_match_takes_the_first():
    responses.get(metadata_url('https://arm.example.test'), json=PUBLIC_LIST)
    assert _auth.get_cloud('https://arm.example.test').name == 'AzureCloud'


@responses.activate
def test_metadata_object_custom_cloud():
    responses.get(metadata_url(STACK), json=STACK_OBJECT)
    cloud = _auth.get_cloud(STACK)
    assert cloud == _auth.Cloud(
        'AzureStack-User', STACK, 'https://adfs.local.azurestack.external/adfs',
        'https://management.adfs.azurestack.local/1234/.default',
        'https://vault.local.azurestack.external/.default', 'https://storage.azure.com/.default',
        'vault.local.azurestack.external', 'local.azurestack.external')
    assert _auth.is_custom_authority(cloud)


@responses.activate
@pytest.mark.parametrize('form', ['plain', 'file-url', 'list-of-one'])
def test_metadata_file_custom_cloud_makes_no_request(tmp_path, form):
    path = tmp_path / 'cloud.json'
    path.write_text(json.dumps([STACK_OBJECT] if form == 'list-of-one' else STACK_OBJECT))
    cloud = _auth.get_cloud(('file://' if form == 'file-url' else '') + str(path))
    assert cloud == _auth.cloud_from_metadata(STACK, STACK_OBJECT)
    assert not responses.calls  # responses refuses any request it was not told of: none was made


@pytest.mark.parametrize('content, reason', [
    (None, 'No such file'),
    ('{not json', 'Expecting property name'),
    (json.dumps(PUBLIC_LIST), 'clouds; keep the one to use'),
    (json.dumps({'name': 'x'}), 'no resourceManager'),
])
def test_metadata_file_errors_say_what_to_fix(tmp_path, content, reason):
    path = tmp_path / 'cloud.json'
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataProtectionError, match=reason) as info:
        _auth.get_cloud(str(path))
    assert info.value.code == 'InvalidCloudMetadata'


def test_metadata_keyvault_resource_wins_over_the_suffix():
    document = dict(STACK_OBJECT, keyVaultResourceId='https://vault.custom.test')
    assert _auth.cloud_from_metadata(STACK, document).keyvault_scope == 'https://vault.custom.test/.default'


def test_metadata_without_endpoints_is_rejected():
    with pytest.raises(DataProtectionError, match='no resourceManager or authentication.loginEndpoint'):
        _auth.cloud_from_metadata(STACK, {'name': 'x'})


def refused():
    return requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded (Caused by NewConnectionError("
        "'<obj>: Failed to establish a new connection: [Errno 111] Connection refused'))")


@pytest.fixture
def no_sleep(monkeypatch):
    """The metadata read's clock, sleep and jitter: a FakeClock (moves only when slept on) and random() = 0.5."""
    clock = FakeClock()
    monkeypatch.setattr(_auth, '_clock', clock)
    monkeypatch.setattr(_auth, '_sleep', clock.sleep)
    monkeypatch.setattr(_auth, '_random', lambda: 0.5)
    return clock


@responses.activate
@pytest.mark.parametrize('reply, reason', [
    ({'status': 404, 'body': 'not here'}, 'the endpoint answered HTTP 404.'),
    ({'status': 200, 'body': '<html>'}, 'the answer is not JSON.'),
])
def test_unreadable_metadata_says_what_to_check(no_sleep, reply, reason):
    responses.get(metadata_url('https://127.0.0.1:1'), **reply)
    with pytest.raises(DataProtectionError) as info:
        _auth.get_cloud('https://127.0.0.1:1')
    text = str(info.value)
    assert text.startswith(f"Could not read cloud metadata from {metadata_url('https://127.0.0.1:1')}: "
                           f'CloudMetadataUnavailable: {reason}')
    assert 'Check cloud_environment' in text and 'HTTPS_PROXY' not in text
    assert len(responses.calls) == 1 and no_sleep.sleeps == []  # a wrong URL is not retried


@responses.activate
def test_metadata_outage_is_retried_with_backoff_and_a_warning_each_time(no_sleep):
    """A service blip (timeout, reset, 503, 429) while a module starts: the metadata read rides it out (bug F1)."""
    url = metadata_url(STACK)
    responses.get(url, body=requests.exceptions.ConnectTimeout('Connection to 127.0.0.1 timed out.'))
    responses.get(url, body=requests.exceptions.ConnectionError('Connection aborted.', 'RemoteDisconnected'))
    responses.get(url, status=503, headers={'Retry-After': '3'})
    responses.get(url, status=429, headers={'Retry-After': '3600'})
    responses.get(url, body=requests.exceptions.ReadTimeout('Read timed out. (read timeout=30)'))
    responses.get(url, json=STACK_OBJECT)
    warned = []
    cloud = _auth.get_cloud(STACK, warn=warned.append)
    assert cloud.resource_manager == STACK and len(responses.calls) == 6
    assert no_sleep.sleeps == [0.75, 1.5, 3.0, 10, 7.5]  # backoff 1, 2 (jittered); Retry-After 3; 3600 capped to 10
    assert warned[0] == (f'GET {STACK}/metadata/endpoints: the connection timed out; retrying in 0.8s (retry 1; the '
                         'cloud metadata read is retried for up to 30s)')
    assert [w.split(': ', 1)[1].split(';')[0] for w in warned] == [
        'the connection timed out', 'the connection was closed before an answer arrived', 'HTTP 503', 'HTTP 429',
        'no answer within the request timeout (read timed out)']


@responses.activate
def test_metadata_retries_are_bounded_in_time(no_sleep):
    """A host that does not answer fails after about 30 s, not at once, and not much later."""
    responses.get(metadata_url('https://127.0.0.1:1'), body=requests.exceptions.ConnectTimeout('connect timeout=10'))
    warned = []
    with pytest.raises(DataProtectionError) as info:
        _auth.get_cloud('https://127.0.0.1:1', warn=warned.append)
    attempts = len(responses.calls)
    assert no_sleep.sleeps == [0.75, 1.5, 3.0, 6.0, 7.5, 7.5]  # the next wait (7.5 s) would end after 30 s
    assert sum(no_sleep.sleeps) <= _auth.METADATA_RETRY_SECONDS and attempts == 7 and len(warned) == 6
    err = info.value
    assert err.code == 'CloudMetadataUnavailable'
    assert str(err).startswith(f"Could not read cloud metadata from {metadata_url('https://127.0.0.1:1')}: "
                               'CloudMetadataUnavailable: the connection timed out (after 7 attempts).')
    assert 'Check cloud_environment' in str(err) and 'HTTPS_PROXY' in str(err)  # a wrong URL or an outage


@responses.activate
def test_metadata_refused_fails_at_once(no_sleep):
    """Nothing listens there (a wrong port in cloud_environment): retrying only delayed the error (issue 15)."""
    responses.get(metadata_url('https://127.0.0.1:1'), body=refused())
    with pytest.raises(DataProtectionError) as info:
        _auth.get_cloud('https://127.0.0.1:1', warn=pytest.fail)
    assert len(responses.calls) == 1 and no_sleep.sleeps == []
    assert str(info.value).startswith(f"Could not read cloud metadata from {metadata_url('https://127.0.0.1:1')}: "
                                      'CloudMetadataUnavailable: Connection refused. Recommended action: Check '
                                      'cloud_environment')


@responses.activate
def test_metadata_5xx_that_lasts_fails_with_the_status(no_sleep):
    responses.get(metadata_url(STACK), status=502)
    with pytest.raises(DataProtectionError) as info:
        _auth.get_cloud(STACK)  # no warn callback: retried all the same
    assert info.value.status == 502 and 'answered HTTP 502 (after 7 attempts).' in str(info.value)
    assert len(no_sleep.sleeps) == 6


@responses.activate
def test_metadata_tls_error_is_not_retried(no_sleep):
    responses.get(metadata_url(STACK), body=requests.exceptions.SSLError(
        '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain'))
    warned = []
    with pytest.raises(DataProtectionError) as info:
        _auth.get_cloud(STACK, warn=warned.append)
    assert info.value.code == 'TLSVerificationFailed' and len(responses.calls) == 1
    assert no_sleep.sleeps == [] and warned == []
    assert 'REQUESTS_CA_BUNDLE=path/to/ca.pem' in str(info.value) and 'ignore' not in str(info.value)


def test_metadata_read_against_a_closed_port_is_not_retried(monkeypatch):
    """The real transport (no mock): a closed local port is refused and reported at once."""
    clock = FakeClock()
    monkeypatch.setattr(_auth, '_clock', clock)
    monkeypatch.setattr(_auth, '_sleep', clock.sleep)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    warned = []
    with pytest.raises(DataProtectionError, match=r'CloudMetadataUnavailable: Connection refused\. '):
        _auth.get_cloud(f'https://127.0.0.1:{port}', warn=warned.append)
    assert warned == [] and clock.sleeps == []


# ---------------------------------------------------------------- credentials

CLASSES = ('ClientSecretCredential', 'CertificateCredential', 'UsernamePasswordCredential',
           'WorkloadIdentityCredential', 'ManagedIdentityCredential', 'AzureCliCredential', 'DefaultAzureCredential')
CUSTOM = _auth.Cloud('Emulator', 'https://127.0.0.1:8443', 'https://127.0.0.1:8443', 'https://127.0.0.1:8443/.default',
                     None, 'https://storage.azure.com/.default', None, None)


@pytest.fixture
def identity(mocker):
    """The azure.identity credential classes, patched: each returns a tag with its name."""
    for name in CLASSES:
        mocker.patch.object(_auth.azure_identity, name, side_effect=lambda *a, _n=name, **k: _n)
    return _auth.azure_identity


@pytest.fixture
def home(tmp_path):
    """An empty HOME (no ~/.azure/credentials, no CLI profile) as the only environment."""
    return {'HOME': str(tmp_path)}


def build(params, env, cloud=None):
    return _auth.build_credential(params, cloud or _auth.KNOWN_CLOUDS['azurecloud'], environ=env)


SP = {'client_id': 'app1', 'secret': SENTINEL_SECRET, 'tenant': 't1'}


@pytest.mark.parametrize('params, extra_env, expected', [
    (SP, {}, 'ClientSecretCredential'),
    ({}, {'AZURE_CLIENT_ID': 'app1', 'AZURE_SECRET': 'x', 'AZURE_TENANT': 't1'}, 'ClientSecretCredential'),
    ({}, {'AZURE_CLIENT_ID': 'app1', 'AZURE_CLIENT_SECRET': 'x', 'AZURE_TENANT_ID': 't1'}, 'ClientSecretCredential'),
    ({'client_id': 'app1', 'tenant': 't1', 'x509_certificate_path': '/c.pem'}, {}, 'CertificateCredential'),
    ({'ad_user': 'u@example.test', 'password': 'pw'}, {}, 'UsernamePasswordCredential'),
    ({}, {'AZURE_FEDERATED_TOKEN_FILE': '/t', 'AZURE_CLIENT_ID': 'app1', 'AZURE_TENANT_ID': 't1'},
     'WorkloadIdentityCredential'),
    ({}, {'IDENTITY_ENDPOINT': 'http://localhost:42/msi/token', 'IDENTITY_HEADER': 'h'}, 'ManagedIdentityCredential'),
    ({}, {'MSI_ENDPOINT': 'http://localhost:42/msi/token'}, 'ManagedIdentityCredential'),
    ({}, {}, 'DefaultAzureCredential'),  # IMDS probe, then the Azure CLI
    ({'auth_source': 'cli'}, {'AZURE_CLIENT_ID': 'a', 'AZURE_SECRET': 'b', 'AZURE_TENANT': 'c'}, 'AzureCliCredential'),
    ({'auth_source': 'msi'}, {}, 'ManagedIdentityCredential'),
    ({}, {'ANSIBLE_AZURE_AUTH_SOURCE': 'msi', 'AZURE_CLIENT_ID': 'mi'}, 'ManagedIdentityCredential'),
    ({'auth_source': 'env'}, {'AZURE_CLIENT_ID': 'a', 'AZURE_SECRET': 'b', 'AZURE_TENANT': 'c'},
     'ClientSecretCredential'),
])
def test_credential_selection(identity, home, params, extra_env, expected):
    assert build(dict(params), dict(home, **extra_env)) == expected


def test_auto_order_prefers_the_secret_over_the_rest(identity, home):
    params = dict(SP, x509_certificate_path='/c.pem', ad_user='u', password='p')
    env = dict(home, AZURE_FEDERATED_TOKEN_FILE='/t', IDENTITY_ENDPOINT='http://x')
    assert build(params, env) == 'ClientSecretCredential'


def test_service_principal_kwargs_public_cloud(identity, home):
    build(SP, home)
    identity.ClientSecretCredential.assert_called_once_with('t1', 'app1', SENTINEL_SECRET,
                                                            authority='https://login.microsoftonline.com')


def test_custom_authority_disables_instance_discovery(identity, home):
    build(SP, home, CUSTOM)
    identity.ClientSecretCredential.assert_called_once_with('t1', 'app1', SENTINEL_SECRET,
                                                            authority='https://127.0.0.1:8443',
                                                            disable_instance_discovery=True)


def test_cert_validation_ignore_only_when_asked(identity, home):
    build(dict(SP, cert_validation_mode='ignore', disable_instance_discovery=True), home)
    identity.ClientSecretCredential.assert_called_once_with(
        't1', 'app1', SENTINEL_SECRET, authority='https://login.microsoftonline.com', connection_verify=False,
        disable_instance_discovery=True)


def test_user_assigned_managed_identity(identity, home):
    build({'auth_source': 'msi', 'client_id': 'mi-client'}, home)
    identity.ManagedIdentityCredential.assert_called_once_with(client_id='mi-client')


def test_ambient_chain_is_managed_identity_then_cli(identity, home):
    build({}, home, CUSTOM)
    kwargs = identity.DefaultAzureCredential.call_args.kwargs
    excluded = {k for k, v in kwargs.items() if k.startswith('exclude_') and v}
    assert 'exclude_managed_identity_credential' not in excluded and 'exclude_cli_credential' not in excluded
    assert {'exclude_environment_credential', 'exclude_shared_token_cache_credential',
            'exclude_interactive_browser_credential'} <= excluded
    assert kwargs['disable_instance_discovery'] is True and kwargs['authority'] == 'https://127.0.0.1:8443'


def test_username_password_defaults(identity, home):
    build({'ad_user': 'u@example.test', 'password': 'pw'}, home)
    identity.UsernamePasswordCredential.assert_called_once_with(
        _auth.CLI_CLIENT_ID, 'u@example.test', 'pw', tenant_id='organizations',
        authority='https://login.microsoftonline.com')


def test_workload_identity_kwargs(identity, home):
    build({}, dict(home, AZURE_FEDERATED_TOKEN_FILE='/var/run/token', AZURE_CLIENT_ID='app', AZURE_TENANT_ID='t'))
    identity.WorkloadIdentityCredential.assert_called_once_with(
        tenant_id='t', client_id='app', token_file_path='/var/run/token', authority='https://login.microsoftonline.com')


@pytest.mark.parametrize('params, message', [
    ({'secret': SENTINEL_SECRET}, 'secret is set but client_id (or AZURE_CLIENT_ID), tenant (or AZURE_TENANT) is not'),
    ({'secret': SENTINEL_SECRET, 'client_id': 'a'}, 'secret is set but tenant (or AZURE_TENANT) is not'),
    ({'password': SENTINEL_SECRET}, 'password is set but ad_user (or AZURE_AD_USER) is not'),
])
def test_incomplete_credentials(identity, home, params, message):
    with pytest.raises(DataProtectionError) as info:
        build(params, home)
    assert message in str(info.value) and SENTINEL_SECRET not in str(info.value)


def test_env_source_without_credentials(identity, home):
    with pytest.raises(DataProtectionError, match='MissingCredentials'):
        build({'auth_source': 'env'}, home)


def test_constructor_errors_become_data_protection_errors(mocker, home):
    mocker.patch.object(_auth.azure_identity, 'CertificateCredential', side_effect=FileNotFoundError(2, 'No such file'))
    with pytest.raises(DataProtectionError, match='InvalidCredentialOptions'):
        build({'client_id': 'a', 'tenant': 't', 'x509_certificate_path': '/missing.pem'}, home)


# ---------------------------------------------------------------- files

CREDENTIALS = f"""[default]
subscription_id = 11111111-2222-3333-4444-555555555555
client_id = file-app
secret = {SENTINEL_SECRET}%with-percent
tenant = file-tenant

[other]
ad_user = someone@example.test
password = pw
"""


def write_home(tmp_path, credentials=None, profile=None):
    azure = tmp_path / '.azure'
    azure.mkdir()
    if credentials:
        (azure / 'credentials').write_text(credentials, encoding='utf-8')
    if profile:
        (azure / 'azureProfile.json').write_text(json.dumps(profile), encoding='utf-8-sig')  # the CLI writes a BOM
    return {'HOME': str(tmp_path)}


def test_credential_file_default_profile(identity, tmp_path):
    env = write_home(tmp_path, CREDENTIALS)
    resolved = _auth.resolve_auth_params({'auth_source': 'credential_file'}, env)
    assert resolved['secret'] == SENTINEL_SECRET + '%with-percent' and resolved['client_id'] == 'file-app'
    assert resolved['subscription_id'] == '11111111-2222-3333-4444-555555555555'
    assert build({'auth_source': 'credential_file'}, env) == 'ClientSecretCredential'


def test_credential_file_named_profile(identity, tmp_path):
    env = write_home(tmp_path, CREDENTIALS)
    assert build({'profile': 'other'}, env) == 'UsernamePasswordCredential'


def test_auto_reads_the_file_only_without_explicit_credentials(identity, tmp_path):
    env = write_home(tmp_path, CREDENTIALS)
    assert _auth.resolve_auth_params({}, env)['client_id'] == 'file-app'
    assert _auth.resolve_auth_params({'client_id': 'mine'}, env)['client_id'] == 'mine'


def test_credential_file_missing_profile(tmp_path):
    env = write_home(tmp_path, CREDENTIALS)
    with pytest.raises(DataProtectionError, match=r'has no \[nope\] profile \(profiles found: default, other\)'):
        _auth.resolve_auth_params({'auth_source': 'credential_file', 'profile': 'nope'}, env)


def test_cli_default_subscription(tmp_path):
    env = write_home(tmp_path, profile={'subscriptions': [{'id': 'a', 'isDefault': False},
                                                          {'id': 'b', 'isDefault': True}]})
    assert _auth.resolve_auth_params({'auth_source': 'cli'}, env)['subscription_id'] == 'b'
    assert _auth.resolve_auth_params({'auth_source': 'msi'}, env)['subscription_id'] is None
    assert _auth.resolve_auth_params({'auth_source': 'cli', 'subscription_id': 'x'}, env)['subscription_id'] == 'x'


# ---------------------------------------------------------------- tokens

AADSTS_MESSAGE = ('Authentication failed: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent '
                  "in the request is the client secret value, not the client secret ID, for a secret added to app "
                  "'app1'.\r\nTrace ID: 0b2f\r\nCorrelation ID: 77aa\r\nTimestamp: 2025-01-01 00:00:00Z")


def unreachable_authority():
    """What azure-identity raises when the authority refuses the connection: a ClientAuthenticationError without a
    response, caused by the transport's ServiceRequestError (azure-identity 1.2x)."""
    cause = ServiceRequestError("HTTPSConnection(host='127.0.0.1', port=1): Failed to establish a new connection: "
                                '[Errno 111] Connection refused')
    try:
        try:
            raise cause
        except ServiceRequestError as exc:
            raise ClientAuthenticationError('Authentication failed: ' + str(exc)) from exc
    except ClientAuthenticationError as wrapped:
        return wrapped


@pytest.mark.parametrize('error, code, phrase', [
    (ClientAuthenticationError(AADSTS_MESSAGE), 'AADSTS7000215', 'not its id'),
    (CredentialUnavailableError('Please run az login to set up an account'), 'CredentialUnavailable', 'az login'),
    (ServiceRequestError('[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate'),
     'TLSVerificationFailed', 'REQUESTS_CA_BUNDLE=path/to/ca.pem'),
    (ServiceRequestError('[Errno 111] Connection refused'), 'AuthorityUnreachable', 'cloud_environment'),
    (unreachable_authority(), 'AuthorityUnreachable', 'HTTPS_PROXY'),
    (ClientAuthenticationError('Authentication failed: something else'), 'AuthenticationFailed', 'auth_source'),
])
def test_token_errors(error, code, phrase):
    with pytest.raises(DataProtectionError) as info:
        _auth.get_access_token(FakeCredential(error=error), 'https://management.azure.com/.default')
    assert info.value.code == code
    text = str(info.value)
    assert text.startswith('Could not get an access token for https://management.azure.com/.default: ' + code)
    assert phrase in text
    assert 'Trace ID' not in text and 'ignore' not in text and text.count(code) == 1


class _NothingConfigured(_auth.azure_identity.DefaultAzureCredential):
    """What auth_source auto builds when nothing is configured, failing as it does on a host with no managed
    identity and no az login (without probing IMDS, which is not a loopback address)."""

    def __init__(self):  # pylint: disable=super-init-not-called
        pass

    def get_token(self, *scopes, **kwargs):
        raise ClientAuthenticationError('DefaultAzureCredential failed to retrieve a token from the included '
                                        'credentials.\nAttempted credentials:\n\tManagedIdentityCredential: '
                                        'ManagedIdentityCredential authentication unavailable, no response from the '
                                        'IMDS endpoint.\n\tAzureCliCredential: Azure CLI not found on path')


def test_nothing_configured_says_what_to_configure():
    with pytest.raises(DataProtectionError) as info:
        _auth.get_access_token(_NothingConfigured(), 'https://management.azure.com/.default')
    assert info.value.code == 'NoCredentialsFound'
    assert 'AZURE_CLIENT_ID' in str(info.value) and 'az login' in str(info.value)


def test_unreachable_authority_from_the_installed_azure_identity():
    """The real ClientSecretCredential against a closed local port: AuthorityUnreachable, which ArmClient retries."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        base = 'https://127.0.0.1:%d' % probe.getsockname()[1]
    credential = _auth.azure_identity.ClientSecretCredential(
        't1', 'app1', SENTINEL_SECRET, authority=base, disable_instance_discovery=True, retry_total=0)
    with pytest.raises(DataProtectionError) as info:
        _auth.get_access_token(credential, base + '/.default')
    assert info.value.code == 'AuthorityUnreachable' and 'Connection refused' in str(info.value)
    assert SENTINEL_SECRET not in str(info.value)


# ---------------------------------------------------------------- a real authority over TLS

class _Authority(BaseHTTPRequestHandler):
    """Metadata + the two AAD calls MSAL makes (toolchain §4), on 127.0.0.1 over TLS."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        base = self.server.base
        if self.path.startswith('/metadata/endpoints'):
            return self._reply(200, {'name': 'Emulator', 'resourceManager': base + '/', 'authentication': {
                'loginEndpoint': base, 'audiences': [base + '/']}, 'suffixes': {'keyVaultDns': 'vault.emulator.test'}})
        tenant = self.path.split('/')[1]
        return self._reply(200, {'token_endpoint': f'{base}/{tenant}/oauth2/v2.0/token',
                                 'authorization_endpoint': f'{base}/{tenant}/oauth2/v2.0/authorize',
                                 'issuer': f'{base}/{tenant}/v2.0'})

    def do_POST(self):  # noqa: N802
        form = parse_qs(self.rfile.read(int(self.headers['Content-Length'])).decode())
        if form.get('client_secret') == ['right-secret']:
            return self._reply(200, {'token_type': 'Bearer', 'expires_in': 3599, 'ext_expires_in': 3599,
                                     'access_token': 'live-token-' + form['scope'][0]})
        return self._reply(401, {'error': 'invalid_client', 'error_codes': [7000215], 'error_description':
                                 'AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nTimestamp: now'})


@pytest.fixture(scope='module')
def authority(tmp_path_factory):
    trustme = pytest.importorskip('trustme')
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert('127.0.0.1').configure_cert(context)
    server = ThreadingHTTPServer(('127.0.0.1', 0), _Authority)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.base = f'https://127.0.0.1:{server.server_address[1]}'
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ca_file = tmp_path_factory.mktemp('ca') / 'ca.pem'
    ca.cert_pem.write_to_path(str(ca_file))
    yield server.base, str(ca_file)
    server.shutdown()
    server.server_close()


def test_live_authority_trusted_through_requests_ca_bundle(authority, monkeypatch, tmp_path):
    base, ca_file = authority
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', ca_file)
    cloud = _auth.get_cloud(base)
    assert cloud.arm_scope == base + '/.default' and _auth.is_custom_authority(cloud)
    credential = _auth.build_credential({'client_id': 'app1', 'secret': 'right-secret', 'tenant': 't1'}, cloud,
                                        environ={'HOME': str(tmp_path)})
    assert _auth.get_access_token(credential, cloud.arm_scope) == 'live-token-' + cloud.arm_scope


def test_live_authority_wrong_secret(authority, monkeypatch, tmp_path):
    base, ca_file = authority
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', ca_file)
    cloud = _auth.get_cloud(base)
    credential = _auth.build_credential({'client_id': 'app1', 'secret': SENTINEL_SECRET, 'tenant': 't1'}, cloud,
                                        environ={'HOME': str(tmp_path)})
    with pytest.raises(DataProtectionError) as info:
        _auth.get_access_token(credential, cloud.arm_scope)
    assert info.value.code == 'AADSTS7000215'
    assert str(info.value).count('AADSTS7000215') == 1 and 'Invalid client secret provided.' in str(info.value)
    assert SENTINEL_SECRET not in str(info.value) and SENTINEL_SECRET not in repr(info.value.as_dict())


def test_live_authority_untrusted_ca(authority, monkeypatch):
    base, _ca_file = authority
    monkeypatch.delenv('REQUESTS_CA_BUNDLE', raising=False)
    monkeypatch.delenv('CURL_CA_BUNDLE', raising=False)
    with pytest.raises(DataProtectionError) as info:
        _auth.get_cloud(base)
    text = str(info.value)
    assert info.value.code == 'TLSVerificationFailed'
    assert 'REQUESTS_CA_BUNDLE=path/to/ca.pem' in text and 'ignore' not in text
    assert urlsplit(base).netloc in text


@pytest.mark.parametrize('cloud', [_auth.KNOWN_CLOUDS['azurecloud'], CUSTOM], ids=['public', 'custom'])
@pytest.mark.parametrize('params, extra_env, expected', [
    (SP, {}, 'ClientSecretCredential'),
    ({'ad_user': 'u', 'password': 'p'}, {}, 'UsernamePasswordCredential'),
    ({}, {'AZURE_FEDERATED_TOKEN_FILE': '/t', 'AZURE_CLIENT_ID': 'a', 'AZURE_TENANT_ID': 't'},
     'WorkloadIdentityCredential'),
    ({'cert_validation_mode': 'ignore'}, {'IDENTITY_ENDPOINT': 'http://x', 'IDENTITY_HEADER': 'h'},
     'ManagedIdentityCredential'),
    ({'cert_validation_mode': 'ignore', 'client_id': 'mi'}, {}, 'DefaultAzureCredential'),
    ({'auth_source': 'cli'}, {}, 'AzureCliCredential'),
])
def test_the_installed_azure_identity_accepts_our_arguments(home, cloud, params, extra_env, expected):
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no deprecation noise reaches the user either
        assert type(build(dict(params), dict(home, **extra_env), cloud)).__name__ == expected

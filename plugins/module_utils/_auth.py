# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""Cloud endpoints (a cloud name or an ARM metadata URL) and the azure-identity credential for the auth options."""

from __future__ import annotations

import configparser
import json
import os
import random
import re
import time
import traceback
import warnings
from collections import namedtuple
from urllib.parse import urlsplit

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _cache
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    AUTHORITY_UNREACHABLE, NETWORK_HINT, TLS_HINT, DataProtectionError, describe_network_error, is_tls_error,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._retry import (
    RETRY_STATUSES, is_transient_network_error, retry_delay,
)

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

try:
    from azure import identity as azure_identity
    from azure.core.exceptions import AzureError, ClientAuthenticationError, ServiceRequestError, ServiceResponseError
    from azure.core.pipeline.transport import RequestsTransport
    HAS_AZURE_IDENTITY = True
    AZURE_IDENTITY_IMPORT_ERROR = None
except ImportError:
    HAS_AZURE_IDENTITY = False
    AZURE_IDENTITY_IMPORT_ERROR = traceback.format_exc()

try:
    # What a sign-in and the first request import on first use (the persistent token cache, azure-core's requests
    # response), imported here instead: in the controller this module loads before Ansible forks the task workers,
    # which then share these pages rather than each importing a private copy (~3 MB a worker, measured).
    import msal_extensions  # noqa: F401  pylint: disable=unused-import
    from azure.core.rest import _requests_basic  # noqa: F401  pylint: disable=unused-import
except ImportError:
    pass  # an older azure-core or no persistent cache support: imported on first use, as before

DEFAULT_API_VERSION = '2024-04-01'
AUTH_SOURCES = ['auto', 'cli', 'credential_file', 'env', 'msi']
# The option names of azure.azcollection first (AWX injects those), then azure-identity's own names.
ENV_VARS = {
    'auth_source': ['ANSIBLE_AZURE_AUTH_SOURCE'],
    'profile': ['AZURE_PROFILE'],
    'subscription_id': ['AZURE_SUBSCRIPTION_ID'],
    'client_id': ['AZURE_CLIENT_ID'],
    'secret': ['AZURE_SECRET', 'AZURE_CLIENT_SECRET'],
    'tenant': ['AZURE_TENANT', 'AZURE_TENANT_ID'],
    'ad_user': ['AZURE_AD_USER'],  # not AZURE_USERNAME: azure-identity's shared token cache uses it alone
    'password': ['AZURE_PASSWORD'],
    'cloud_environment': ['AZURE_CLOUD_ENVIRONMENT'],
    'cert_validation_mode': ['AZURE_CERT_VALIDATION_MODE'],
    'disable_instance_discovery': ['AZURE_DISABLE_INSTANCE_DISCOVERY'],
    'x509_certificate_path': ['AZURE_X509_CERTIFICATE_PATH', 'AZURE_CLIENT_CERTIFICATE_PATH'],
    'token_cache': ['AZURE_BACKUP_TOKEN_CACHE'],
    'cache_dir': ['AZURE_BACKUP_CACHE_DIR'],
}


def _opt(name, **spec):
    return dict(spec, fallback=(env_fallback, ENV_VARS[name]))


AUTH_ARGSPEC = {
    'auth_source': _opt('auth_source', type='str', choices=AUTH_SOURCES, default='auto'),
    'profile': _opt('profile', type='str'),
    'subscription_id': _opt('subscription_id', type='str', no_log=False),
    'client_id': _opt('client_id', type='str', no_log=False),
    'secret': _opt('secret', type='str', no_log=True),
    'tenant': _opt('tenant', type='str', no_log=False),
    'ad_user': _opt('ad_user', type='str'),
    'password': _opt('password', type='str', no_log=True),
    'cloud_environment': _opt('cloud_environment', type='str', default='AzureCloud'),
    'cert_validation_mode': _opt('cert_validation_mode', type='str', choices=['validate', 'ignore'],
                                 default='validate'),
    'disable_instance_discovery': _opt('disable_instance_discovery', type='bool', default=False),
    'x509_certificate_path': _opt('x509_certificate_path', type='path', no_log=False),
    'token_cache': _opt('token_cache', type='bool', default=True),
    'cache_dir': _opt('cache_dir', type='path'),
    'api_version': {'type': 'str', 'default': DEFAULT_API_VERSION},
}

Cloud = namedtuple('Cloud', ['name', 'resource_manager', 'authority', 'arm_scope', 'keyvault_scope',
                             'storage_scope', 'keyvault_dns', 'storage_suffix'])

# Azure Storage uses one AAD audience in every cloud.
STORAGE_SCOPE = 'https://storage.azure.com/.default'
KNOWN_CLOUDS = {
    'azurecloud': Cloud('AzureCloud', 'https://management.azure.com', 'https://login.microsoftonline.com',
                        'https://management.azure.com/.default', 'https://vault.azure.net/.default',
                        STORAGE_SCOPE, 'vault.azure.net', 'core.windows.net'),
    'azureusgovernment': Cloud('AzureUSGovernment', 'https://management.usgovcloudapi.net',
                               'https://login.microsoftonline.us', 'https://management.usgovcloudapi.net/.default',
                               'https://vault.usgovcloudapi.net/.default', STORAGE_SCOPE,
                               'vault.usgovcloudapi.net', 'core.usgovcloudapi.net'),
    'azurechinacloud': Cloud('AzureChinaCloud', 'https://management.chinacloudapi.cn', 'https://login.chinacloudapi.cn',
                             'https://management.chinacloudapi.cn/.default', 'https://vault.azure.cn/.default',
                             STORAGE_SCOPE, 'vault.azure.cn', 'core.chinacloudapi.cn'),
}
_KNOWN_AUTHORITY_HOSTS = {'login.microsoftonline.com', 'login.microsoftonline.us', 'login.chinacloudapi.cn',
                          'login.partner.microsoftonline.cn'}
METADATA_API_VERSION = '2022-09-01'
METADATA_CONNECT_TIMEOUT = 10
METADATA_TIMEOUT = 30
# The metadata read is retried (connection errors, 429, 5xx) like ArmClient's GETs, but only while the next retry
# would start within this many seconds of the first attempt: a short outage is ridden out, a wrong URL still fails
# fast. One wait is at most METADATA_MAX_RETRY_AFTER seconds (Retry-After included).
METADATA_RETRY_SECONDS = 30
METADATA_MAX_RETRY_AFTER = 10
_CLOUD_HINT = ('Check cloud_environment (or AZURE_CLOUD_ENVIRONMENT): it is AzureCloud, AzureUSGovernment, '
               'AzureChinaCloud, the https URL of an Azure Resource Manager endpoint that serves '
               '/metadata/endpoints, or the absolute path of a JSON file holding that document for one cloud.')
# The Azure CLI's public client id: azure.azcollection's default for ad_user/password sign-in.
CLI_CLIENT_ID = '04b07795-8ddb-461a-bbee-02f9e1bf7b46'
_CREDENTIAL_KEYS = ('subscription_id', 'client_id', 'secret', 'tenant', 'ad_user', 'password',
                    'cloud_environment', 'cert_validation_mode', 'x509_certificate_path')
# DefaultAzureCredential reduced to managed identity (with its fast IMDS probe) then the Azure CLI.
_MI_THEN_CLI = {'exclude_environment_credential': True, 'exclude_workload_identity_credential': True,
                'exclude_shared_token_cache_credential': True, 'exclude_visual_studio_code_credential': True,
                'exclude_developer_cli_credential': True, 'exclude_powershell_credential': True,
                'exclude_interactive_browser_credential': True, 'exclude_broker_credential': True}


# ---------------------------------------------------------------- clouds

def get_cloud(cloud_environment, verify=True, session=None, warn=None, cache=None):
    """Cloud for a known cloud name or an https ARM endpoint (its /metadata/endpoints document is read).

    `warn(message)`, when given, is called before each retry of the metadata read; `cache`, a
    _cache.DocumentCache, keeps the document for the next tasks (a document that does not describe a cloud is not
    kept).
    """
    value = (cloud_environment or 'AzureCloud').strip()
    known = KNOWN_CLOUDS.get(value.lower())
    if known:
        return known
    if value.lower().startswith('https://'):
        base = value.rstrip('/')
        document = cache.get('metadata', base) if cache is not None else None
        if document is not None:
            return cloud_from_metadata(base, document)
        document = _read_metadata(base, verify, session, warn)
        cloud = cloud_from_metadata(base, document)
        if cache is not None:
            cache.put('metadata', base, document)
        return cloud
    if value.startswith(('/', '~', 'file://')):
        return _cloud_from_file(value)
    raise DataProtectionError('Invalid cloud_environment',
                              f"'{value}' is neither a known cloud name, an https URL nor the path of a file",
                              code='InvalidCloudEnvironment', recommended_actions=[_CLOUD_HINT])


def _cloud_from_file(value):
    """Cloud from a file holding a /metadata/endpoints document (one cloud): no request, as for a named cloud."""
    path = os.path.expanduser(value[len('file://'):] if value.startswith('file://') else value)
    try:
        with open(path, encoding='utf-8') as handle:
            document = json.load(handle)
    except (OSError, ValueError) as exc:
        raise DataProtectionError(f'Could not read the cloud metadata file {path}', str(exc),
                                  code='InvalidCloudMetadata', recommended_actions=[_CLOUD_HINT]) from None
    entries = document if isinstance(document, list) else [document]
    if len(entries) != 1 or not isinstance(entries[0], dict):
        raise DataProtectionError(f'Could not use the cloud metadata file {path}',
                                  f'it holds {len(entries)} clouds; keep the one to use.',
                                  code='InvalidCloudMetadata', recommended_actions=[_CLOUD_HINT])
    return cloud_from_metadata(str(entries[0].get('resourceManager') or path), entries[0])


# Replaced by tests.
_clock = time.monotonic
_sleep = time.sleep
_random = random.random


def _read_metadata(base, verify, session, warn=None):
    url = f'{base}/metadata/endpoints?api-version={METADATA_API_VERSION}'
    what = f'Could not read cloud metadata from {url}'
    started, retries = _clock(), 0
    while True:
        response, exc = _get_metadata(url, verify, session)
        if exc is not None:
            transient, reason = is_transient_network_error(exc), describe_network_error(exc)
        else:
            transient, reason = response.status_code in RETRY_STATUSES, f'HTTP {response.status_code}'
        if not transient:
            break
        wait = retry_delay(retries + 1, METADATA_MAX_RETRY_AFTER, _random,
                           headers=response.headers if response is not None else None)
        if _clock() - started + wait > METADATA_RETRY_SECONDS:
            break
        retries += 1
        if warn is not None:
            warn(f'GET {base}/metadata/endpoints: {reason}; retrying in {wait:.1f}s (retry {retries}; the cloud '
                 f'metadata read is retried for up to {METADATA_RETRY_SECONDS}s)')
        _sleep(wait)
    attempts = f' (after {retries + 1} attempts)' if retries else ''
    # What to check: the URL, and for an outage (a transient failure that outlasted the retries) the network too.
    hints = [_CLOUD_HINT, NETWORK_HINT] if transient else [_CLOUD_HINT]
    if exc is not None:
        tls = is_tls_error(exc)
        raise DataProtectionError(what, describe_network_error(exc) + attempts + '.',
                                  code='TLSVerificationFailed' if tls else 'CloudMetadataUnavailable',
                                  recommended_actions=[TLS_HINT] if tls else hints) from exc
    if response.status_code != 200:
        raise DataProtectionError(what, f'the endpoint answered HTTP {response.status_code}{attempts}.',
                                  code='CloudMetadataUnavailable', status=response.status_code,
                                  recommended_actions=hints)
    try:
        return response.json()
    except ValueError as exc:
        raise DataProtectionError(what, 'the answer is not JSON.', code='CloudMetadataUnavailable',
                                  recommended_actions=[_CLOUD_HINT]) from exc


def _get_metadata(url, verify, session):
    try:
        return (session or requests).get(url, verify=verify, timeout=(METADATA_CONNECT_TIMEOUT, METADATA_TIMEOUT),
                                         headers={'Accept': 'application/json'}), None
    except requests.exceptions.RequestException as exc:
        return None, exc


def cloud_from_metadata(base, document):
    """Cloud from a metadata document: a list of clouds (the one whose resourceManager is `base`) or one object."""
    entries = [e for e in (document if isinstance(document, list) else [document]) if isinstance(e, dict)]
    entry = next((e for e in entries if _same_url(e.get('resourceManager'), base)), entries[0] if entries else {})
    authentication = entry.get('authentication') or {}
    resource_manager = (entry.get('resourceManager') or '').rstrip('/')
    authority = (authentication.get('loginEndpoint') or '').rstrip('/')
    if not resource_manager or not authority:
        raise DataProtectionError(f'Could not use the cloud metadata of {base}',
                                  'it has no resourceManager or authentication.loginEndpoint.',
                                  code='InvalidCloudMetadata', recommended_actions=[_CLOUD_HINT])
    audiences = authentication.get('audiences') or [resource_manager]
    suffixes = entry.get('suffixes') or {}
    keyvault_dns = (suffixes.get('keyVaultDns') or '').lstrip('.') or None
    return Cloud(
        name=entry.get('name') or urlsplit(base).netloc, resource_manager=resource_manager, authority=authority,
        arm_scope=to_scope(audiences[0]),
        keyvault_scope=to_scope(entry.get('keyVaultResourceId') or entry.get('keyVault')
                                or (f'https://{keyvault_dns}' if keyvault_dns else None)),
        storage_scope=STORAGE_SCOPE, keyvault_dns=keyvault_dns,
        storage_suffix=(suffixes.get('storage') or '').lstrip('.') or None)


def to_scope(resource):
    """AAD v2 scope of a v1 resource/audience: 'https://x/' and 'https://x' both give 'https://x/.default'."""
    return resource.rstrip('/') + '/.default' if resource else None


def _same_url(left, right):
    return bool(left) and left.rstrip('/').lower() == right.rstrip('/').lower()


def is_custom_authority(cloud):
    """True for an authority MSAL cannot validate by instance discovery (Azure Stack, the emulator)."""
    return urlsplit(cloud.authority).netloc.lower() not in _KNOWN_AUTHORITY_HOSTS


# ---------------------------------------------------------------- parameters

def resolve_auth_params(params, environ=None):
    """The auth options with environment fallbacks, ~/.azure/credentials and the CLI's default subscription applied.

    Safe to call twice. Lookups pass their options here; modules already got the env fallbacks from the argspec.
    """
    env = os.environ if environ is None else environ
    resolved = dict(params)
    for name, variables in ENV_VARS.items():
        if resolved.get(name) in (None, ''):
            resolved[name] = next((env[v] for v in variables if env.get(v)), None)
    resolved['auth_source'] = resolved.get('auth_source') or 'auto'
    if _wants_credential_file(resolved, env):
        resolved.update(read_credential_file(resolved.get('profile'), env))
    if not resolved.get('subscription_id') and resolved['auth_source'] in ('auto', 'cli'):
        resolved['subscription_id'] = cli_default_subscription(env)
    return resolved


def _wants_credential_file(params, env):
    if params['auth_source'] == 'credential_file' or (params['auth_source'] == 'auto' and params.get('profile')):
        return True
    has_explicit = any(params.get(k) for k in ('client_id', 'secret', 'ad_user', 'password'))
    return params['auth_source'] == 'auto' and not has_explicit and os.path.isfile(_credentials_path(env))


def _credentials_path(env):
    return os.path.join(env.get('HOME') or os.path.expanduser('~'), '.azure', 'credentials')


def read_credential_file(profile, environ=None):
    """The options of one profile ([default] unless `profile`) of ~/.azure/credentials (an ini file)."""
    env = os.environ if environ is None else environ
    path, section = _credentials_path(env), profile or 'default'
    parser = configparser.ConfigParser(interpolation=None)  # secrets may contain '%'
    try:
        found = parser.read(path, encoding='utf-8')
    except configparser.Error as exc:
        raise DataProtectionError('Could not read Azure credentials', f'{path} is not a valid ini file: {exc}',
                                  code='InvalidCredentialFile') from exc
    if not found or not parser.has_section(section):
        sections = ', '.join(parser.sections()) or 'none'
        raise DataProtectionError(
            'Could not read Azure credentials', f'{path} has no [{section}] profile (profiles found: {sections}).',
            code='InvalidCredentialFile',
            recommended_actions=['Create the profile in that file, set profile to an existing one, or choose '
                                 'another auth_source.'])
    return {key: value for key, value in parser.items(section) if key in _CREDENTIAL_KEYS and value}


def cli_default_subscription(environ=None):
    """The Azure CLI's default subscription id (azureProfile.json), or None."""
    env = os.environ if environ is None else environ
    folder = env.get('AZURE_CONFIG_DIR') or os.path.join(env.get('HOME') or os.path.expanduser('~'), '.azure')
    try:
        with open(os.path.join(folder, 'azureProfile.json'), encoding='utf-8-sig') as handle:
            profile = json.load(handle)
    except (OSError, ValueError):
        return None
    subscriptions = profile.get('subscriptions') if isinstance(profile, dict) else None
    return next((s.get('id') for s in subscriptions or [] if isinstance(s, dict) and s.get('isDefault')), None)


# ---------------------------------------------------------------- credentials

# ---------------------------------------------------------------- the cache shared by the tasks of a run

def cache_folder(params, warn=None, environ=None):
    """The folder of the token and metadata cache (see _cache), or None when it is off or cannot be used safely."""
    if not boolean(params.get('token_cache', True), strict=False):
        return None
    folder = params.get('cache_dir') or _cache.default_folder(environ)
    why = _cache.prepare_folder(folder)
    if why is None:
        return folder
    if warn is not None:
        warn(f'The token cache folder {folder} is not used: {why}. Every task signs in anew; set cache_dir '
             '(AZURE_BACKUP_CACHE_DIR) to a folder of your own, or token_cache false to silence this.')
    return None


def document_cache(folder):
    return _cache.DocumentCache(folder) if folder else None


# ---------------------------------------------------------------- credentials

def build_credential(params, cloud, environ=None, session=None, cache_dir=None):
    """An azure-identity credential for the auth options (see AUTH_SOURCES and the `auto` order in the docs).

    `session`: the requests.Session that azure-identity sends its requests through (the ARM client's: one pool of
    connections, and the OpenID configuration served from the cache). `cache_dir`: the folder of the persistent
    token cache (cache_folder()), for the credentials that support one.
    """
    env = os.environ if environ is None else environ
    resolved = resolve_auth_params(params, env)
    source = resolved['auth_source']
    _check_partial_credentials(resolved)
    shared = _shared_kwargs(session, cache_dir)
    try:
        if source == 'cli':
            return azure_identity.AzureCliCredential()
        if source == 'msi':
            return azure_identity.ManagedIdentityCredential(client_id=resolved.get('client_id'),
                                                            **_verify_kwargs(resolved), **shared['transport'])
        credential = _explicit_credential(resolved, cloud, env, shared)
        if credential is None and source in ('env', 'credential_file'):
            raise DataProtectionError(
                f'Could not set up Azure credentials for auth_source {source}',
                'no service principal (client_id, secret, tenant), certificate (client_id, tenant, '
                'x509_certificate_path), user (ad_user, password) or workload identity (AZURE_FEDERATED_TOKEN_FILE, '
                'client_id, tenant) is configured.', code='MissingCredentials')
        return credential or _ambient_credential(resolved, cloud, env, shared)
    except (ValueError, OSError) as exc:  # azure-identity validates ids and reads certificate files eagerly
        raise DataProtectionError('Could not set up Azure credentials', str(exc), code='InvalidCredentialOptions',
                                  recommended_actions=['Check client_id, tenant and x509_certificate_path.']) from exc


def _check_partial_credentials(params):
    pairs = (('secret', ('client_id', 'tenant')), ('x509_certificate_path', ('client_id', 'tenant')),
             ('password', ('ad_user',)), ('ad_user', ('password',)))
    for option, needed in pairs:
        missing = [n for n in needed if params.get(option) and not params.get(n)]
        if missing and params['auth_source'] in ('auto', 'env', 'credential_file'):
            names = ', '.join(f'{n} (or {ENV_VARS[n][0]})' for n in missing)
            raise DataProtectionError('Could not set up Azure credentials', f'{option} is set but {names} is not.',
                                      code='IncompleteCredentials',
                                      recommended_actions=[f'Set {names}, or unset {option}.'])


def _verify_kwargs(params):
    # Only turn verification off when asked; otherwise requests honours REQUESTS_CA_BUNDLE by itself.
    return {'connection_verify': False} if params.get('cert_validation_mode') == 'ignore' else {}


def _identity_kwargs(params, cloud):
    kwargs = dict(_verify_kwargs(params), authority=cloud.authority)
    if params.get('disable_instance_discovery') or is_custom_authority(cloud):
        kwargs['disable_instance_discovery'] = True
    return kwargs


def _shared_kwargs(session, cache_dir):
    """{'transport': kwargs every credential takes, 'cache': kwargs of those with a persistent token cache}."""
    # azure-core waits 300 s for a connection or an answer by default; a sign-in must not hang a task that long.
    transport = {'transport': RequestsTransport(session=session, session_owner=False, connection_timeout=10,
                                                read_timeout=60)} if session else {}
    cache = {}
    if cache_dir:
        # azure-identity joins the name to ~/.IdentityService; an absolute name puts the cache in our folder.
        cache = {'cache_persistence_options': azure_identity.TokenCachePersistenceOptions(
            name=os.path.join(cache_dir, _cache.TOKEN_CACHE_NAME), allow_unencrypted_storage=True)}
    return {'transport': transport, 'cache': cache}


def _skip_user_realm_discovery(authority):
    """MSAL sends the user realm discovery before a password sign-in to https://<host>/common/userrealm/..., without
    the authority's port: for an authority on another port (a private cloud, the emulator) it reaches port 443 and
    fails before the password is sent. Tell MSAL what it concludes itself from a 404 there: no user realm endpoint."""
    parts = urlsplit(authority if '://' in authority else 'https://' + authority)
    if parts.port in (None, 443) or not parts.hostname:
        return
    try:
        from msal.authority import Authority  # pylint: disable=import-outside-toplevel
        Authority._domains_without_user_realm_discovery.add(parts.hostname)  # pylint: disable=protected-access
    except (ImportError, AttributeError):  # an MSAL without that attribute: it may not need it
        pass


def _explicit_credential(params, cloud, env, shared):
    """Service principal, certificate, user or workload identity, in that order; None when none is configured."""
    kwargs = dict(_identity_kwargs(params, cloud), **shared['transport'], **shared['cache'])
    if shared['transport']:
        kwargs['retry_total'] = 0  # our session and ArmClient retry; azure-core's own retries would multiply them
    client_id, tenant = params.get('client_id'), params.get('tenant')
    if client_id and tenant and params.get('secret'):
        return azure_identity.ClientSecretCredential(tenant, client_id, params['secret'], **kwargs)
    if client_id and tenant and params.get('x509_certificate_path'):
        return azure_identity.CertificateCredential(tenant, client_id,
                                                    certificate_path=params['x509_certificate_path'], **kwargs)
    if params.get('ad_user') and params.get('password'):
        _skip_user_realm_discovery(cloud.authority)
        with warnings.catch_warnings():  # deprecated upstream (no MFA), still what ad_user/password mean
            warnings.simplefilter('ignore', DeprecationWarning)
            return azure_identity.UsernamePasswordCredential(client_id or CLI_CLIENT_ID, params['ad_user'],
                                                             params['password'], tenant_id=tenant or 'organizations',
                                                             **kwargs)
    token_file = env.get('AZURE_FEDERATED_TOKEN_FILE')
    if token_file and client_id and tenant:
        return azure_identity.WorkloadIdentityCredential(tenant_id=tenant, client_id=client_id,
                                                         token_file_path=token_file, **kwargs)
    return None


def _ambient_credential(params, cloud, env, shared):
    """auto, nothing configured: managed identity (endpoint from the environment, else IMDS), then the Azure CLI."""
    if env.get('IDENTITY_ENDPOINT') or env.get('MSI_ENDPOINT'):
        return azure_identity.ManagedIdentityCredential(client_id=params.get('client_id'), **_verify_kwargs(params),
                                                        **shared['transport'])
    return azure_identity.DefaultAzureCredential(managed_identity_client_id=params.get('client_id'),
                                                 **_MI_THEN_CLI, **_identity_kwargs(params, cloud))


# ---------------------------------------------------------------- tokens

_AADSTS = re.compile(r'\b(AADSTS\d+)\b')
_AAD_ACTIONS = {
    'AADSTS7000215': 'Check secret (AZURE_SECRET): give the client secret value, not its id.',
    'AADSTS7000222': 'The client secret expired: create a new one and update secret (AZURE_SECRET).',
    'AADSTS700016': 'Check client_id and tenant: the application was not found in that tenant.',
    'AADSTS90002': 'Check tenant: no such tenant in this cloud (check cloud_environment too).',
    'AADSTS50126': 'Check ad_user and password.',
}
_GENERIC_AUTH_ACTION = ('Check auth_source and its options (client_id, secret, tenant or the AZURE_* environment '
                        'variables; az login for auth_source cli) and that cloud_environment names the right cloud.')
_NO_CREDENTIALS_ACTION = ('No credential is configured and this host has neither a managed identity nor an Azure CLI '
                          'login: give client_id, secret and tenant (or AZURE_CLIENT_ID, AZURE_SECRET, AZURE_TENANT), '
                          'or run az login and set auth_source cli, or run where a managed identity is assigned '
                          '(auth_source msi).')


def fresh_token_claims():
    """A claims challenge asking for a token issued from now on: MSAL then skips its cache (a token it cached was
    refused with a 401) and the authority issues a new one, as for a continuous access evaluation challenge."""
    return json.dumps({'access_token': {'nbf': {'essential': True, 'value': str(int(time.time()))}}})


def get_access_token(credential, scope, claims=None):
    """The bearer token (text) for `scope`; see access_token."""
    return access_token(credential, scope, claims=claims).token


def access_token(credential, scope, claims=None):
    """The AccessToken (token, expires_on) for `scope` (`claims`: a claims challenge, see fresh_token_claims);
    azure-identity errors become a DataProtectionError without secrets."""
    try:
        if claims is not None:
            try:
                return credential.get_token(scope, claims=claims)
            except TypeError:  # a credential that takes no claims: its own refresh is all there is
                pass
        return credential.get_token(scope)
    except ClientAuthenticationError as exc:  # also raised when the authority could not be reached
        # auto with nothing configured tried the ambient sources (managed identity, then the CLI): say so
        ambient = azure_identity is not None and isinstance(credential, azure_identity.DefaultAzureCredential)
        raise auth_error(exc, scope, network=_network_cause(exc), ambient=ambient) from exc
    except AzureError as exc:  # the authority could not be reached
        raise auth_error(exc, scope, network=True) from exc


def _network_cause(exc):
    """True when azure-identity failed because the authority could not be reached (refused, reset, timed out):
    azure-identity wraps the transport's ServiceRequestError/ServiceResponseError in a ClientAuthenticationError
    without a response."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            return True
        if isinstance(exc, requests.exceptions.RequestException):
            return is_transient_network_error(exc)
        exc = exc.__cause__ or exc.__context__
    return False


def auth_error(exc, scope, network=False, ambient=False):
    text = getattr(exc, 'message', None) or str(exc)
    what = f'Could not get an access token for {scope}'
    if is_tls_error(text):
        return DataProtectionError(what, describe_network_error(text) + '.', code='TLSVerificationFailed',
                                   recommended_actions=[TLS_HINT])
    if network:
        return DataProtectionError(what, describe_network_error(text) + '.', code=AUTHORITY_UNREACHABLE,
                                   recommended_actions=[NETWORK_HINT, _CLOUD_HINT])
    match = _AADSTS.search(text)
    if match:
        code = match.group(1)
    elif ambient:
        return DataProtectionError(what, _first_lines(text), code='NoCredentialsFound',
                                   recommended_actions=[_NO_CREDENTIALS_ACTION])
    else:
        code = 'CredentialUnavailable' if isinstance(exc, azure_identity.CredentialUnavailableError) else 'AuthenticationFailed'
    message = re.sub(rf'^(?:Authentication failed:\s*)?(?:{code}:\s*)?', '', _first_lines(text))  # no echo of the code
    return DataProtectionError(what, message, code=code,
                               recommended_actions=[_AAD_ACTIONS.get(code, _GENERIC_AUTH_ACTION)])


def _first_lines(text, limit=600):
    # AAD appends trace/correlation ids and timestamps on later lines: keep the explanation only.
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    kept = ' '.join(line for line in lines if not line.startswith(('Trace ID', 'Correlation ID', 'Timestamp')))
    return kept[:limit]

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The keyvault_secret lookup: terms, versions, AWX environment variables, errors without secrets."""

from __future__ import annotations

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleLookupError

from ansible_collections.azure_backup.dataprotection.plugins.lookup import keyvault_secret
from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _auth

from ansible_collections.azure_backup.dataprotection.tests.unit.conftest import (
    SENTINEL_SECRET, SENTINEL_TOKEN, TEST_CLOUD, FakeCredential,
)

VAULT = 'https://kv1.vault.example.test'
VERSION = '0a1b2c3d4e5f60718293a4b5c6d7e8f9'


@pytest.fixture(autouse=True)
def fake_azure(monkeypatch):
    """TEST_CLOUD, a FakeCredential, the auth params the lookup resolved, and a clean environment."""
    seen = {'credential': FakeCredential()}

    def build_credential(params, cloud, environ=None, session=None, cache_dir=None):  # pylint: disable=unused-argument
        seen['params'] = params
        return seen['credential']

    monkeypatch.setattr(_auth, 'get_cloud', lambda *a, **k: TEST_CLOUD)
    monkeypatch.setattr(_auth, 'build_credential', build_credential)
    for variables in _auth.ENV_VARS.values():
        for name in variables:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('HOME', '/nonexistent-home-for-tests')
    return seen


@pytest.fixture
def lookup():
    """The plugin with its documented options registered, as the plugin loader does."""
    options = yaml.safe_load(keyvault_secret.DOCUMENTATION)['options']
    plugin = keyvault_secret.LookupModule()
    plugin._load_name = 'azure_backup.dataprotection.keyvault_secret'
    C.config.initialize_plugin_configuration_definitions('lookup', plugin._load_name, options)
    return plugin


def bundle(name, value, version=VERSION):
    return {'value': value, 'id': f'{VAULT}/secrets/{name}/{version}', 'attributes': {'enabled': True}}


def test_secret_uri_term(rsps, lookup, fake_azure):
    rsps.get(f'{VAULT}/secrets/pg-password?api-version=7.4', json=bundle('pg-password', SENTINEL_SECRET))
    assert lookup.run([f'{VAULT}/secrets/pg-password'], {}) == [SENTINEL_SECRET]
    assert fake_azure['credential'].scopes == [TEST_CLOUD.keyvault_scope]


def test_names_with_vault_uri_and_a_version(rsps, lookup):
    rsps.get(f'{VAULT}/secrets/pg-user?api-version=7.4', json=bundle('pg-user', 'pgadmin'))
    rsps.get(f'{VAULT}/secrets/pg-password/{VERSION}?api-version=7.4', json=bundle('pg-password', SENTINEL_SECRET))
    values = lookup.run(['pg-user', f'pg-password/{VERSION}'], {}, vault_uri=VAULT + '/')
    assert values == ['pgadmin', SENTINEL_SECRET]


def test_path_style_vault_uri(rsps, lookup):
    base = 'https://127.0.0.1:8443/keyvaults/targetosskv'
    rsps.get(f'{base}/secrets/conn?api-version=7.4', json={'value': SENTINEL_SECRET, 'id': f'{base}/secrets/conn/v1'})
    assert lookup.run(['conn'], {}, vault_uri=base + '/') == [SENTINEL_SECRET]


def test_awx_environment_variables_are_used(rsps, lookup, fake_azure, monkeypatch):
    monkeypatch.setenv('AZURE_CLIENT_ID', 'app-id')
    monkeypatch.setenv('AZURE_SECRET', 'awx-secret')
    monkeypatch.setenv('AZURE_CLIENT_SECRET', 'identity-secret')
    monkeypatch.setenv('AZURE_TENANT', 'tenant-1')
    monkeypatch.setenv('AZURE_CLOUD_ENVIRONMENT', 'https://127.0.0.1:8443')
    rsps.get(f'{VAULT}/secrets/x?api-version=7.4', json=bundle('x', 'v'))
    lookup.run([f'{VAULT}/secrets/x'], {})
    params = fake_azure['params']
    assert (params['client_id'], params['secret'], params['tenant']) == ('app-id', 'awx-secret', 'tenant-1')
    assert params['cloud_environment'] == 'https://127.0.0.1:8443'


def test_direct_options_beat_the_environment(rsps, lookup, fake_azure, monkeypatch):
    monkeypatch.setenv('AZURE_CLIENT_ID', 'from-env')
    rsps.get(f'{VAULT}/secrets/x?api-version=7.4', json=bundle('x', 'v'))
    lookup.run([f'{VAULT}/secrets/x'], {}, client_id='direct', secret='s', tenant='t')
    assert fake_azure['params']['client_id'] == 'direct'


def test_missing_secret_is_an_error(rsps, lookup):
    rsps.get(f'{VAULT}/secrets/nope?api-version=7.4', status=404,
             json={'error': {'code': 'SecretNotFound', 'message': 'A secret with (name/id) nope was not found'}})
    with pytest.raises(AnsibleLookupError, match='nope was not found in the key vault'):
        lookup.run([f'{VAULT}/secrets/nope'], {})


def test_forbidden_gives_advice_and_no_secret_or_token(rsps, lookup):
    rsps.get(f'{VAULT}/secrets/x?api-version=7.4', status=403, json={'error': {
        'code': 'Forbidden', 'message': 'Caller is not authorized', 'innererror': {'code': 'ForbiddenByRbac'}}})
    with pytest.raises(AnsibleLookupError) as info:
        lookup.run([f'{VAULT}/secrets/x'], {}, secret=SENTINEL_SECRET, client_id='a', tenant='t')
    text = str(info.value)
    assert 'Key Vault Secrets User' in text and 'Forbidden' in text
    assert SENTINEL_SECRET not in text and SENTINEL_TOKEN not in text


def test_plain_name_needs_vault_uri(lookup):
    with pytest.raises(AnsibleLookupError, match='vault_uri'):
        lookup.run(['pg-password'], {})


def test_invalid_uri(lookup):
    with pytest.raises(AnsibleLookupError, match='not an https URL'):
        lookup.run(['x'], {}, vault_uri='http://kv.vault.azure.net')


def test_no_terms(lookup):
    assert lookup.run([], {}) == []


def test_metadata_retries_warn_through_the_display(rsps, lookup, monkeypatch):
    """The cloud metadata read warns before each retry (bug F1): the lookup gives it the display's warning."""
    seen = {}

    def get_cloud(cloud_environment, verify=True, session=None, warn=None, cache=None):  # pylint: disable=unused-argument
        seen['warn'] = warn
        return TEST_CLOUD

    monkeypatch.setattr(_auth, 'get_cloud', get_cloud)
    rsps.get(f'{VAULT}/secrets/x?api-version=7.4', json=bundle('x', 'v'))
    lookup.run([f'{VAULT}/secrets/x'], {})
    assert seen['warn'] == keyvault_secret.display.warning

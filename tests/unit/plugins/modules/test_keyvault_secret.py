# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keyvault_secret: idempotence, check mode never writes, diff without the value, 403 advice, no leaks."""

from __future__ import annotations

import json

import pytest
from responses import matchers

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _auth, _keyvault
from ansible_collections.azure_backup.dataprotection.plugins.modules import keyvault_secret

from ansible_collections.azure_backup.dataprotection.tests.unit.conftest import (
    SENTINEL_SECRET, SENTINEL_TOKEN, TEST_CLOUD, FakeCredential, run_main,
)

VAULT = 'https://kv1.vault.example.test'
SECRET_URL = VAULT + '/secrets/restore-conn'
API = {'api-version': '7.4'}
VERSION1 = '0a1b2c3d4e5f60718293a4b5c6d7e8f9'
VERSION2 = 'ffeeddccbbaa99887766554433221100'
CONNECTION = {'host': 'targetossserver.postgres.database.azure.com', 'user': 'pgadmin@targetossserver',
              'password': SENTINEL_SECRET}
CONN_STRING = ('Server=targetossserver.postgres.database.azure.com;Database=postgres;Port=5432;'
               f'User Id=pgadmin@targetossserver;Password={SENTINEL_SECRET};Ssl Mode=Require;')


@pytest.fixture(autouse=True)
def fake_azure(monkeypatch, exit_fail):  # pylint: disable=unused-argument
    """No real cloud or credential: TEST_CLOUD and a FakeCredential that records the scopes."""
    credential = FakeCredential()
    monkeypatch.setattr(_auth, 'get_cloud', lambda *a, **k: TEST_CLOUD)
    monkeypatch.setattr(_auth, 'build_credential', lambda *a, **k: credential)
    for variables in _auth.ENV_VARS.values():
        for name in variables:
            monkeypatch.delenv(name, raising=False)
    return credential


def bundle(value, version=VERSION1, content_type=None, tags=None):
    data = {'value': value, 'id': f'{SECRET_URL}/{version}',
            'attributes': {'enabled': True, 'created': 1738317600, 'updated': 1738317600, 'recoveryLevel': 'Recoverable'}}
    if content_type:
        data['contentType'] = content_type
    if tags:
        data['tags'] = tags
    return data


def run(args, check_mode=False, diff=False):
    return run_main(keyvault_secret.main, args, check_mode=check_mode, diff=diff)


def assert_no_leak(result):
    text = json.dumps(result, default=str)
    assert SENTINEL_SECRET not in text and SENTINEL_TOKEN not in text


def methods(rsps):
    return [call.request.method for call in rsps.calls]


# ---------------------------------------------------------------- pure helpers

def test_connection_string_is_the_ado_net_form():
    assert _keyvault.build_connection_string(dict(CONNECTION, port=5432, database='postgres',
                                                  ssl_mode='Require')) == CONN_STRING


@pytest.mark.parametrize('value, quoted', [
    ('plain', 'plain'),
    ('has;semicolon', '"has;semicolon"'),
    ('say "hi"', "'say \"hi\"'"),
    ('both\'and"', '"both\'and"""'),
    (' lead', '" lead"'),
    ('a=b', '"a=b"'),
    ('', '""'),
])
def test_connection_values_are_quoted_when_needed(value, quoted):
    assert _keyvault.quote_connection_value(value) == quoted


def test_keyvault_scope_falls_back_to_the_vault_host():
    cloud = TEST_CLOUD._replace(keyvault_scope=None)
    assert keyvault_secret.keyvault_scope(cloud, 'https://x.vault.usgovcloudapi.net') == \
        'https://vault.usgovcloudapi.net/.default'
    assert keyvault_secret.keyvault_scope(cloud, 'https://127.0.0.1:8443/keyvaults/kv') == 'https://vault.azure.net/.default'


# ---------------------------------------------------------------- present

def test_creates_a_missing_secret_from_connection(rsps, fake_azure):
    rsps.get(SECRET_URL, match=[matchers.query_param_matcher(API)], status=404,
             json={'error': {'code': 'SecretNotFound', 'message': 'A secret with (name/id) restore-conn was not found'}})
    put = rsps.put(SECRET_URL, match=[matchers.query_param_matcher(API),
                                      matchers.json_params_matcher({'value': CONN_STRING, 'contentType': 'conn'})],
                   json=bundle(CONN_STRING, content_type='conn'))
    result, failed = run({'vault_uri': VAULT + '/', 'name': 'restore-conn', 'connection': CONNECTION,
                          'content_type': 'conn'}, diff=True)
    assert not failed and result['changed'] and result['value_changed'] and put.call_count == 1
    assert result['secret']['version'] == VERSION1 and result['secret']['uri'] == SECRET_URL
    assert result['secret']['updated'] == '2025-01-31T10:00:00Z' and result['secret']['enabled'] is True
    assert result['diff']['before'] == {} and result['diff']['after']['value'] == '<hidden: changed>'
    assert fake_azure.scopes and set(fake_azure.scopes) == {TEST_CLOUD.keyvault_scope}
    assert 'value' not in result['secret']
    assert_no_leak(result)


def test_same_value_is_unchanged(rsps):
    rsps.get(SECRET_URL, json=bundle(CONN_STRING))
    result, failed = run({'secret_uri': SECRET_URL, 'connection': CONNECTION}, diff=True)
    assert not failed and not result['changed'] and methods(rsps) == ['GET']
    assert result['diff']['before'] == result['diff']['after']
    assert result['secret']['version'] == VERSION1
    assert_no_leak(result)


def test_different_value_writes_a_new_version_and_keeps_metadata(rsps):
    rsps.get(SECRET_URL, json=bundle('old-' + SENTINEL_SECRET, content_type='conn', tags={'a': 'b'}))
    rsps.put(SECRET_URL, match=[matchers.json_params_matcher({'value': SENTINEL_SECRET, 'contentType': 'conn',
                                                              'tags': {'a': 'b'}})],
             json=bundle(SENTINEL_SECRET, version=VERSION2, content_type='conn', tags={'a': 'b'}))
    result, failed = run({'secret_uri': SECRET_URL, 'value': SENTINEL_SECRET}, diff=True)
    assert not failed and result['changed'] and result['value_changed']
    assert result['diff']['before']['value'] == '<hidden>' and result['diff']['after']['value'] == '<hidden: changed>'
    assert result['diff']['before']['version'] == VERSION1 and result['diff']['after']['version'] == VERSION2
    assert_no_leak(result)


def test_metadata_only_change(rsps):
    rsps.get(SECRET_URL, json=bundle(SENTINEL_SECRET))
    rsps.put(SECRET_URL, json=bundle(SENTINEL_SECRET, version=VERSION2, tags={'purpose': 'restore'}))
    result, failed = run({'secret_uri': SECRET_URL, 'value': SENTINEL_SECRET, 'tags': {'purpose': 'restore'}}, diff=True)
    assert not failed and result['changed'] and not result['value_changed']
    assert result['diff']['after']['value'] == '<hidden>' and result['diff']['after']['tags'] == {'purpose': 'restore'}
    assert_no_leak(result)


@pytest.mark.parametrize('current', [None, 'other-value'])
def test_check_mode_never_writes(rsps, current):
    if current is None:
        rsps.get(SECRET_URL, status=404, json={'error': {'code': 'SecretNotFound', 'message': 'not found'}})
    else:
        rsps.get(SECRET_URL, json=bundle(current))
    result, failed = run({'secret_uri': SECRET_URL, 'value': SENTINEL_SECRET}, check_mode=True, diff=True)
    assert not failed and result['changed'] and methods(rsps) == ['GET']
    assert result['diff']['after']['version'] == '<new version>'
    assert_no_leak(result)


def test_check_mode_unchanged(rsps):
    rsps.get(SECRET_URL, json=bundle(SENTINEL_SECRET))
    result, failed = run({'secret_uri': SECRET_URL, 'value': SENTINEL_SECRET}, check_mode=True)
    assert not failed and not result['changed'] and 'diff' not in result


def test_version_in_secret_uri_is_refused(rsps):
    result, failed = run({'secret_uri': f'{SECRET_URL}/{VERSION1}', 'value': SENTINEL_SECRET})
    assert failed and 'version' in result['msg'] and not rsps.calls
    assert_no_leak(result)


def test_value_or_connection_required():
    result, failed = run({'secret_uri': SECRET_URL})
    assert failed and 'value' in result['msg'] and 'connection' in result['msg']


# ---------------------------------------------------------------- absent

def test_absent_deletes_then_is_idempotent(rsps):
    rsps.get(SECRET_URL, json=bundle(SENTINEL_SECRET))
    rsps.delete(SECRET_URL, json={'recoveryId': VAULT + '/deletedsecrets/restore-conn'})
    result, failed = run({'secret_uri': SECRET_URL, 'state': 'absent'}, diff=True)
    assert not failed and result['changed'] and result['secret'] == {} and result['diff']['after'] == {}
    assert_no_leak(result)
    rsps.reset()
    rsps.get(SECRET_URL, status=404, json={'error': {'code': 'SecretNotFound', 'message': 'not found'}})
    result, failed = run({'secret_uri': SECRET_URL, 'state': 'absent'})
    assert not failed and not result['changed']


def test_absent_check_mode_does_not_delete(rsps):
    rsps.get(SECRET_URL, json=bundle(SENTINEL_SECRET))
    result, failed = run({'secret_uri': SECRET_URL, 'state': 'absent'}, check_mode=True)
    assert not failed and result['changed'] and methods(rsps) == ['GET']


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize('inner, expected', [
    ('ForbiddenByRbac', "Key Vault Secrets User"),
    ('AccessDenied', 'access policy'),
    ('ForbiddenByFirewall', 'firewall'),
    (None, 'access policy'),
])
def test_forbidden_read_says_what_to_grant(rsps, inner, expected):
    error = {'code': 'Forbidden', 'message': 'Caller is not authorized to perform action on resource.'}
    if inner:
        error['innererror'] = {'code': inner}
    rsps.get(SECRET_URL, status=403, json={'error': error})
    result, failed = run({'secret_uri': SECRET_URL, 'value': SENTINEL_SECRET})
    assert failed and result['error']['code'] == 'Forbidden' and result['error']['status'] == 403
    assert expected in result['msg']
    assert_no_leak(result)


def test_forbidden_write_asks_for_the_officer_role(rsps):
    rsps.get(SECRET_URL, status=404, json={'error': {'code': 'SecretNotFound', 'message': 'not found'}})
    rsps.put(SECRET_URL, status=403, json={'error': {'code': 'Forbidden', 'message': 'no set permission',
                                                     'innererror': {'code': 'ForbiddenByRbac'}}})
    result, failed = run({'secret_uri': SECRET_URL, 'connection': CONNECTION})
    assert failed and 'Key Vault Secrets Officer' in result['msg']
    assert_no_leak(result)


def test_soft_deleted_secret_conflict_is_explained(rsps):
    rsps.get(SECRET_URL, status=404, json={'error': {'code': 'SecretNotFound', 'message': 'not found'}})
    rsps.put(SECRET_URL, status=409, json={'error': {
        'code': 'Conflict', 'message': 'Secret restore-conn is currently in a deleted but recoverable state',
        'innererror': {'code': 'ObjectIsDeletedButRecoverable'}}})
    result, failed = run({'secret_uri': SECRET_URL, 'value': SENTINEL_SECRET})
    assert failed and 'recover' in result['msg'] and 'purge' in result['msg']
    assert_no_leak(result)


def test_server_error_body_never_carries_the_value(rsps):
    rsps.get(SECRET_URL, status=404, json={'error': {'code': 'SecretNotFound', 'message': 'not found'}})
    rsps.put(SECRET_URL, status=400, json={'error': {'code': 'BadParameter', 'message': 'The request is invalid'}})
    result, failed = run({'secret_uri': SECRET_URL, 'connection': CONNECTION})
    assert failed and 'BadParameter' in result['msg']
    assert_no_leak(result)


def test_connection_string_is_registered_as_no_log(rsps, monkeypatch):
    seen = {}
    original = keyvault_secret.DataProtectionModule.exit_json

    def capture(module, **kwargs):
        seen['no_log'] = set(module.no_log_values)
        return original(module, **kwargs)

    monkeypatch.setattr(keyvault_secret.DataProtectionModule, 'exit_json', capture)
    rsps.get(SECRET_URL, json=bundle(CONN_STRING))
    run({'secret_uri': SECRET_URL, 'connection': CONNECTION})
    assert CONN_STRING in seen['no_log'] and SENTINEL_SECRET in seen['no_log']

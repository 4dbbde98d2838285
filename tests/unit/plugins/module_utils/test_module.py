# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DataProtectionModule: argspec merge, env fallbacks, lazy cloud/credential/client, failures; the auth fragment."""

from __future__ import annotations

import yaml

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.doc_fragments.auth import ModuleDocFragment
from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _auth, _module
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._arm_client import ArmClient
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._lro import Deadline

from ansible_collections.azure_backup.dataprotection.tests.unit.conftest import (
    SENTINEL_SECRET, SUBSCRIPTION, TEST_CLOUD, AnsibleExitJson, AnsibleFailJson, FakeCredential, module_args,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No AZURE_* variables from the machine running the tests, and an empty HOME."""
    for variables in _auth.ENV_VARS.values():
        for name in variables:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))


def make_module(args=None, **kwargs):
    with module_args(dict(args or {})):
        return _module.DataProtectionModule(argument_spec={'vault_name': {'type': 'str'}}, **kwargs)


def test_argspec_is_merged_with_defaults():
    module = make_module({'vault_name': 'TestBkpVault'})
    assert module.params['vault_name'] == 'TestBkpVault'
    assert module.params['auth_source'] == 'auto' and module.params['cloud_environment'] == 'AzureCloud'
    assert module.params['api_version'] == '2024-04-01' and module.params['cert_validation_mode'] == 'validate'


def test_env_fallbacks_beat_defaults(monkeypatch):
    monkeypatch.setenv('ANSIBLE_AZURE_AUTH_SOURCE', 'env')
    monkeypatch.setenv('AZURE_CLOUD_ENVIRONMENT', 'AzureChinaCloud')
    monkeypatch.setenv('AZURE_CLIENT_SECRET', SENTINEL_SECRET)  # azure-identity's name
    monkeypatch.setenv('AZURE_TENANT_ID', 't1')
    monkeypatch.setenv('AZURE_DISABLE_INSTANCE_DISCOVERY', 'true')
    module = make_module()
    assert module.params['auth_source'] == 'env' and module.params['cloud_environment'] == 'AzureChinaCloud'
    assert module.params['secret'] == SENTINEL_SECRET and module.params['tenant'] == 't1'
    assert module.params['disable_instance_discovery'] is True
    assert SENTINEL_SECRET in module.no_log_values


def test_azcollection_names_win_over_azure_identity_names(monkeypatch):
    monkeypatch.setenv('AZURE_SECRET', 'from-azcollection')
    monkeypatch.setenv('AZURE_CLIENT_SECRET', 'from-identity')
    assert make_module().params['secret'] == 'from-azcollection'


def test_secret_from_the_credential_file_is_masked(tmp_path):
    (tmp_path / '.azure').mkdir()
    (tmp_path / '.azure' / 'credentials').write_text(
        f'[default]\nsubscription_id={SUBSCRIPTION}\nclient_id=a\nsecret={SENTINEL_SECRET}\ntenant=t\n')
    module = make_module({'auth_source': 'credential_file'})
    assert SENTINEL_SECRET not in module.no_log_values
    assert module.auth_params['secret'] == SENTINEL_SECRET and module.subscription_id == SUBSCRIPTION
    assert SENTINEL_SECRET in module.no_log_values


@pytest.mark.parametrize('flag, library', [('HAS_AZURE_IDENTITY', 'azure-identity')])
def test_missing_library_fails(monkeypatch, exit_fail, flag, library):
    monkeypatch.setattr(_auth, flag, False)
    monkeypatch.setattr(_auth, 'AZURE_IDENTITY_IMPORT_ERROR', 'Traceback: ImportError')
    with pytest.raises(AnsibleFailJson) as info:
        make_module()
    assert library in info.value.result['msg'] and info.value.result['exception'] == 'Traceback: ImportError'


def test_missing_requests_fails(monkeypatch, exit_fail):
    monkeypatch.setattr(_module._arm_client, 'HAS_REQUESTS', False)
    with pytest.raises(AnsibleFailJson, match='requests'):
        make_module()


def test_nothing_is_built_until_used(mocker):
    get_cloud = mocker.patch.object(_auth, 'get_cloud', return_value=TEST_CLOUD)
    build_credential = mocker.patch.object(_auth, 'build_credential', return_value=FakeCredential())
    module = make_module({'subscription_id': SUBSCRIPTION, 'api_version': '2021-07-01',
                          'cert_validation_mode': 'ignore', 'cloud_environment': 'https://127.0.0.1:8443'})
    assert not get_cloud.called and not build_credential.called
    client = module.client
    assert module.client is client and isinstance(client, ArmClient)
    get_cloud.assert_called_once_with('https://127.0.0.1:8443', False, session=module.session, warn=module.warn,
                                      cache=mocker.ANY)  # metadata retries warn
    assert build_credential.call_count == 1 and build_credential.call_args.args[1] is TEST_CLOUD
    assert client.api_version == '2021-07-01' and client.verify is False and client.subscription_id == SUBSCRIPTION
    assert client.warn == module.warn


def test_missing_subscription(mocker):
    mocker.patch.object(_auth, 'get_cloud', return_value=TEST_CLOUD)
    mocker.patch.object(_auth, 'build_credential', return_value=FakeCredential())
    module = make_module()
    with pytest.raises(DataProtectionError, match='MissingSubscription: .*AZURE_SUBSCRIPTION_ID'):
        module.client  # pylint: disable=pointless-statement


def test_fail_from_error(exit_fail):
    module = make_module()
    err = DataProtectionError('Trigger restore', 'it failed', code='X', job_id='j', operation_id='o')
    with pytest.raises(AnsibleFailJson) as info:
        module.fail_from_error(err, request={'objectType': 'x'})
    result = info.value.result
    assert result['msg'] == 'Trigger restore: X: it failed' and result['error']['code'] == 'X'
    assert result['error']['job_id'] == 'j' and result['error']['operation_id'] == 'o' and result['request'] == {'objectType': 'x'}
    assert 'job_id' not in result  # ids are under `error`; a module adds a top-level job_id itself where it documents one


def _raise(exc):
    def run(_module):
        raise exc
    return run


@pytest.mark.parametrize('run, failed, expected', [
    (lambda _module: {'changed': True, 'msg': 'done'}, False, {'changed': True, 'msg': 'done'}),
    (_raise(ValueError('Invalid x: give y')), True, {'changed': False, 'msg': 'Invalid x: give y'}),
    (_raise(DataProtectionError('Get x', 'gone', code='ResourceNotFound')), True,
     {'changed': False, 'msg': 'Get x: ResourceNotFound: gone'}),
])
def test_exit_with(exit_fail, run, failed, expected):
    with pytest.raises(AnsibleExitJson) as info:
        make_module().exit_with(run)
    assert isinstance(info.value, AnsibleFailJson) is failed
    assert {key: info.value.result[key] for key in expected} == expected


def test_deadline_helper():
    deadline = make_module().deadline(30)
    assert isinstance(deadline, Deadline) and 29 < deadline.remaining() <= 30


# ---------------------------------------------------------------- the doc fragment matches the argspec

def test_auth_fragment_documents_the_argspec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)['options']
    assert set(documented) == set(_auth.AUTH_ARGSPEC)
    for name, spec in _auth.AUTH_ARGSPEC.items():
        doc = documented[name]
        assert doc['type'] == spec['type'], name
        assert doc.get('default') == spec.get('default'), name
        assert doc.get('choices') == spec.get('choices'), name
        for variable in _auth.ENV_VARS.get(name, []):
            assert f'E({variable})' in ' '.join(doc['description']), (name, variable)


def test_secrets_are_no_log_and_ids_are_not():
    no_log = {name for name, spec in _auth.AUTH_ARGSPEC.items() if spec.get('no_log')}
    assert no_log == {'secret', 'password'}
    for name in ('client_id', 'tenant', 'subscription_id', 'x509_certificate_path'):
        assert _auth.AUTH_ARGSPEC[name]['no_log'] is False

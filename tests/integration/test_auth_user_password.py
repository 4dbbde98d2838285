# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A user's sign-in, AZURE_AD_USER / AZURE_PASSWORD (what AWX injects for a user credential), against the emulator's
password grant: a module works with them alone (no service principal in the environment), and a wrong password fails
with AAD's AADSTS50126 and the advice to check them, the password nowhere in the -vvvv output.

The emulator's demo user has the automation principal's access (world demo.yml); env.json names it
(DPEMULATOR_AD_USER, DPEMULATOR_AD_PASSWORD). Each run gets a token cache folder of its own, so that no token of an
earlier run stands in for the password. The emulator's authority is not on port 443: these runs also prove that the
modules tell MSAL to skip its port-less user realm discovery there (_auth._skip_user_realm_discovery).
"""

from __future__ import annotations

import json

import pytest

VAULT = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG'}


def user_env(emulator, cache_dir, password=None, tenant=True):
    """The environment of an AWX job with a user credential: the user and password, no service principal."""
    env = {'AZURE_AD_USER': emulator.env['DPEMULATOR_AD_USER'],
           'AZURE_PASSWORD': password or emulator.env['DPEMULATOR_AD_PASSWORD'],
           'AZURE_CLIENT_ID': None, 'AZURE_SECRET': None, 'AZURE_BACKUP_CACHE_DIR': str(cache_dir)}
    if not tenant:
        env['AZURE_TENANT'] = None  # the user's tenant is found through 'organizations'
    return env


def latest_point(emulator):
    return dict(VAULT, backup_instance_name=emulator.backup_instance('empdb11')['name'], select='latest')


@pytest.mark.parametrize('tenant', [True, False], ids=['tenant', 'organizations'])
def test_a_module_runs_as_the_user(emulator, run_module, tmp_path, tenant):
    signed_in = emulator.request_counts().get('POST aad.token', 0)
    result, record = run_module('pg_recovery_point_info', latest_point(emulator),
                                env=user_env(emulator, tmp_path / 'cache', tenant=tenant))
    assert record['status'] == 'ok', result.tail()
    assert record['result']['recovery_point']['recovery_point_id']
    assert emulator.request_counts().get('POST aad.token', 0) > signed_in
    assert emulator.env['DPEMULATOR_AD_PASSWORD'] not in result.output


def test_a_wrong_password_fails_with_aadsts50126_and_is_never_shown(emulator, run_module, tmp_path):
    wrong = 'Wrong-Pw-for-the-user-7Hq2'
    result, record = run_module('pg_recovery_point_info', latest_point(emulator), verbosity=4,
                                env=user_env(emulator, tmp_path / 'cache', password=wrong))
    assert record['status'] == 'failed', result.tail()
    error = record['result']['error']
    assert error['code'] == 'AADSTS50126'
    assert record['result']['msg'].startswith('Could not get an access token for ')
    assert 'invalid username or password' in record['result']['msg']
    assert 'Recommended action: Check ad_user and password.' in record['result']['msg']
    assert 'retrying' not in result.output  # a refused password is not a reason to ask again
    everything = result.output + json.dumps(result.results)
    for secret in (wrong, emulator.env['DPEMULATOR_AD_PASSWORD']):
        assert secret not in everything

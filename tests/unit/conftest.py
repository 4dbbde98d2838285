# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared unit-test set-up.

1. Makes `ansible_collections.azure_backup.dataprotection` importable from a plain clone: when the repository is
   not already inside an `ansible_collections/azure_backup/dataprotection` tree (as ansible-test arranges), a
   temporary tree with a symlink to the repository is created for the session and put first on sys.path.
2. Fakes other tests can reuse: FakeCredential, FakeClock, TEST_CLOUD, the `make_client` / `rsps` fixtures
   (an ArmClient over the `responses` mock, with sleeps recorded instead of slept), `module_args` (module
   parameters for an AnsibleModule built in the block) and AnsibleExitJson / AnsibleFailJson with the
   `exit_fail` fixture (exit_json / fail_json raise them instead of exiting).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections import namedtuple
from pathlib import Path

import pytest
from ansible.module_utils import basic

NAMESPACE, NAME = 'azure_backup', 'dataprotection'


def _collection_root_on_path():
    repo = Path(__file__).absolute().parents[2]
    if repo.name == NAME and repo.parent.name == NAMESPACE and repo.parent.parent.name == 'ansible_collections':
        root = repo.parents[2]  # already in a collection tree (ansible-test, or a cd into the symlink tree)
    else:
        root = Path(tempfile.mkdtemp(prefix='dp-unit-'))
        atexit.register(shutil.rmtree, root, True)  # rmtree removes the symlink, never the repository
        (root / 'ansible_collections' / NAMESPACE).mkdir(parents=True)
        os.symlink(repo.resolve(), root / 'ansible_collections' / NAMESPACE / NAME)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


_collection_root_on_path()
# Tests import the fakes below by the name ansible-test gives this file; plain pytest calls it `conftest`.
sys.modules.setdefault(f'ansible_collections.{NAMESPACE}.{NAME}.tests.unit.conftest', sys.modules[__name__])

# pylint: disable=wrong-import-position
import responses  # noqa: E402

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._arm_client import ArmClient  # noqa: E402
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._auth import Cloud  # noqa: E402
from ansible_collections.azure_backup.dataprotection.tests.return_contract import (  # noqa: E402
    assert_matches_return_doc, parse_return_doc,
)

SUBSCRIPTION = '11111111-2222-3333-4444-555555555555'
ARM = 'https://management.example.test'
TEST_CLOUD = Cloud('TestCloud', ARM, 'https://login.example.test', ARM + '/.default', 'https://vault.example.test/.default',
                   'https://storage.azure.com/.default', 'vault.example.test', 'core.example.test')
# Tests assert these never show up in an error, a warning or a result.
SENTINEL_SECRET = 'S3cr3t-sentinel-value-do-not-leak'
SENTINEL_TOKEN = 'eyJ0eXAi.token-sentinel-do-not-leak'

AccessToken = namedtuple('AccessToken', ['token', 'expires_on'])


class FakeCredential:
    """A TokenCredential that hands out numbered sentinel tokens and records the scopes asked for."""

    def __init__(self, token=SENTINEL_TOKEN, error=None):
        self.token = token
        self.error = error
        self.scopes = []
        self.claims = []

    def get_token(self, *scopes, claims=None, **_kwargs):
        self.scopes.append(scopes[0])
        self.claims.append(claims)
        if self.error is not None:
            raise self.error
        return AccessToken(f'{self.token}-{len(self.scopes)}', 4102444800)


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self, now=1000.0):
        self.now = now
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def rsps():
    """The `responses` mock, active for the test; every registered response must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def make_client():
    """make_client(**ArmClient kwargs) -> ArmClient on TEST_CLOUD with a FakeCredential; sleeps are recorded in
    client.slept, warnings in client.warnings, and the jitter is fixed (random() = 0.5)."""
    def factory(credential=None, **kwargs):
        warnings = []
        kwargs.setdefault('warn', warnings.append)
        client = ArmClient(credential or FakeCredential(), TEST_CLOUD, SUBSCRIPTION, **kwargs)
        client.warnings = warnings
        client.slept = []
        client.sleep = client.slept.append
        client.random = lambda: 0.5
        return client
    return factory


@contextlib.contextmanager
def module_args(args):
    """Module parameters for AnsibleModule instances created inside the block (ansible-core 2.17+)."""
    try:
        from ansible.module_utils.testing import patch_module_args  # ansible-core >= 2.19
    except ImportError:
        patch_module_args = None
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    old = getattr(basic, '_ANSIBLE_ARGS', None)
    basic._ANSIBLE_ARGS = json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode()
    try:
        yield
    finally:
        basic._ANSIBLE_ARGS = old


def run_main(main, args, check_mode=False, diff=False):
    """(result, failed) of a module's main() run with `args`; needs the `exit_fail` fixture."""
    args = dict(args)
    if check_mode:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with module_args(args):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as info:
            main()
    return info.value.result, isinstance(info.value, AnsibleFailJson)


class AnsibleExitJson(Exception):
    """exit_json was called: .result holds its keyword arguments."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


class AnsibleFailJson(AnsibleExitJson):
    """fail_json was called: .result holds its keyword arguments."""


def _check_against_return_doc(result, failed):
    """Checks a module's result against the RETURN block of the module that is exiting (the innermost caller
    whose globals hold RETURN): the documented return values are a contract (tests/return_contract.py)."""
    frame = sys._getframe(2)  # pylint: disable=protected-access
    while frame is not None and not ('RETURN' in frame.f_globals and 'DOCUMENTATION' in frame.f_globals):
        frame = frame.f_back
    if frame is not None:
        assert_matches_return_doc(result, parse_return_doc(frame.f_globals['RETURN']),
                                  module=frame.f_globals['__name__'], failed=failed)


@pytest.fixture
def exit_fail(monkeypatch):
    """exit_json / fail_json raise AnsibleExitJson / AnsibleFailJson instead of printing and exiting, after
    checking the result against the module's RETURN documentation."""
    def exit_json(_module, **kwargs):
        _check_against_return_doc(kwargs, failed=False)
        raise AnsibleExitJson(kwargs)

    def fail_json(_module, **kwargs):
        _check_against_return_doc(kwargs, failed=True)
        raise AnsibleFailJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)


@pytest.fixture(autouse=True)
def _private_cache_home(tmp_path, monkeypatch):
    """The token and metadata cache of every unit test goes to its own temporary folder, never ~/.cache."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg-cache'))

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cache shared by the tasks of a run: its folder's safety, documents, the OpenID configuration, the token cache."""

from __future__ import annotations

import json
import os
import stat

import pytest
import requests
import responses

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _arm_client, _auth, _cache

AUTHORITY = 'https://login.example.test'
OIDC = AUTHORITY + '/tenant-x/v2.0/.well-known/openid-configuration'
DOCUMENT = {'token_endpoint': AUTHORITY + '/tenant-x/oauth2/v2.0/token', 'issuer': AUTHORITY + '/tenant-x/v2.0'}


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_folder_is_created_private(tmp_path):
    folder = tmp_path / 'a' / 'cache'
    assert _cache.prepare_folder(str(folder)) is None
    assert mode(folder) == 0o700


@pytest.mark.parametrize('bits, why', [(0o770, 'other users can write'), (0o707, 'other users can write')])
def test_a_folder_others_can_write_is_refused(tmp_path, bits, why):
    folder = tmp_path / 'shared'
    folder.mkdir()
    folder.chmod(bits)
    assert why in _cache.prepare_folder(str(folder))


def test_a_file_is_not_a_folder(tmp_path):
    path = tmp_path / 'file'
    path.write_text('x')
    assert _cache.prepare_folder(str(path)) is not None


def test_cache_folder_off_default_and_warning(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert _auth.cache_folder({'token_cache': False}) is None
    assert _auth.cache_folder({'token_cache': 'false'}) is None  # a lookup's option from the environment
    assert _auth.cache_folder({}) == str(tmp_path / 'azure_backup.dataprotection')
    bad = tmp_path / 'open'
    bad.mkdir()
    bad.chmod(0o777)
    assert _auth.cache_folder({'cache_dir': str(bad)}, warn=warnings.append) is None
    assert 'is not used: other users can write to it' in warnings[0] and 'token_cache false' in warnings[0]


def test_documents_expire_and_are_written_private(tmp_path):
    now = [1000.0]
    cache = _cache.DocumentCache(str(tmp_path), ttl=60, clock=lambda: now[0])
    assert cache.get('metadata', 'https://x') is None
    cache.put('metadata', 'https://x', {'a': 1})
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and mode(files[0]) == 0o600
    now[0] = os.stat(files[0]).st_mtime + 30
    assert cache.get('metadata', 'https://x') == {'a': 1}
    assert cache.get('metadata', 'https://y') is None
    now[0] += 60
    assert cache.get('metadata', 'https://x') is None  # older than the TTL


def test_a_damaged_document_is_a_miss(tmp_path):
    cache = _cache.DocumentCache(str(tmp_path))
    cache.put('oidc', OIDC, DOCUMENT)
    next(tmp_path.iterdir()).write_text('{not json')
    assert cache.get('oidc', OIDC) is None


@responses.activate
def test_openid_configuration_is_read_once_then_served_from_the_cache(tmp_path):
    responses.get(OIDC, json=DOCUMENT)
    responses.get(AUTHORITY + '/other', json={'not': 'cached'})
    cache = _cache.DocumentCache(str(tmp_path))
    for dummy in range(3):
        session = _arm_client.new_session(cache)  # a new task: a new session, the same folder
        answer = session.get(OIDC)
        assert answer.status_code == 200 and answer.json() == DOCUMENT
        assert answer.headers['Content-Type'].startswith('application/json')
        session.get(AUTHORITY + '/other')
    assert [c.request.url for c in responses.calls].count(OIDC) == 1
    assert [c.request.url for c in responses.calls].count(AUTHORITY + '/other') == 3


@responses.activate
def test_a_failed_openid_read_is_not_cached(tmp_path):
    responses.get(OIDC, status=503)
    responses.get(OIDC, json=DOCUMENT)
    session = _arm_client.new_session(_cache.DocumentCache(str(tmp_path)))
    assert session.get(OIDC).status_code == 503
    assert session.get(OIDC).json() == DOCUMENT
    assert session.get(OIDC).json() == DOCUMENT
    assert len(responses.calls) == 2


@responses.activate
def test_cloud_metadata_is_read_once(tmp_path):
    base = 'https://arm.example.test'
    responses.get(base + '/metadata/endpoints', json={
        'name': 'Stack', 'resourceManager': base,
        'authentication': {'loginEndpoint': AUTHORITY, 'audiences': [base]}})
    cache = _cache.DocumentCache(str(tmp_path))
    first = _auth.get_cloud(base, cache=cache, session=requests.Session())
    second = _auth.get_cloud(base, cache=cache, session=requests.Session())
    assert first == second and first.authority == AUTHORITY
    assert len(responses.calls) == 1


def test_the_token_cache_file_lands_in_the_folder_with_mode_0600(tmp_path):
    """azure-identity puts its persistent cache where we say (an absolute name), as a 0600 file."""
    folder = tmp_path / 'cache'
    assert _cache.prepare_folder(str(folder)) is None
    kwargs = _auth._shared_kwargs(None, str(folder))['cache']  # pylint: disable=protected-access
    options = kwargs['cache_persistence_options']
    from azure.identity._persistent_cache import _load_persistent_cache  # pylint: disable=import-outside-toplevel
    persisted = _load_persistent_cache(options)
    persisted.add({'scope': ['https://x/.default'], 'client_id': 'c', 'token_endpoint': AUTHORITY + '/t/token',
                   'response': {'access_token': 'not-a-real-token', 'expires_in': 3600, 'token_type': 'Bearer'}})
    written = folder / (_cache.TOKEN_CACHE_NAME + '.nocae')
    assert written.exists() and mode(written) == 0o600
    assert json.loads(written.read_text())['AccessToken']

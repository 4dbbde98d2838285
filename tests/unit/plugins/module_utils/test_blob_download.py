# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_blob_download: finding the restored files, and the resumable, checked download (over a fake container client;
the real one against Azurite is in tests/integration/test_flexible_server.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError, HttpResponseError, ResourceModifiedError, ServiceResponseError,
)

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _blob_download as bd
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError

DATA = bytes(range(256)) * 40000      # ~10 MiB: three 4 MiB chunks


@pytest.mark.parametrize('destination, expected', [
    ('https://acct.blob.core.windows.net/restored/flex1', ('https://acct.blob.core.windows.net/restored', 'flex1')),
    ('https://127.0.0.1:1/acct/restored/flex1/', ('https://127.0.0.1:1/acct/restored', 'flex1')),
    ('https://127.0.0.1:1/blob/acct/restored/p', ('https://127.0.0.1:1/blob/acct/restored', 'p')),
])
def test_split_destination(destination, expected):
    assert bd.split_destination(destination) == expected


@pytest.mark.parametrize('destination', ['', '/subscriptions/x/databases/y', 'http://acct/c/p', 'https://acct/c'])
def test_split_destination_refuses_what_is_not_files(destination):
    with pytest.raises(ValueError, match='restore as files'):
        bd.split_destination(destination)


@pytest.mark.parametrize('names, databases, server_files', [
    (['p_orders.sql', 'p_inventory.sql', 'p_roles.sql', 'p_schema.sql', 'p_tablespace.sql'],
     {'orders': 'p_orders.sql', 'inventory': 'p_inventory.sql'},
     {'roles': 'p_roles.sql', 'schema': 'p_schema.sql', 'tablespace': 'p_tablespace.sql'}),
    (['p.dump'], {'': 'p.dump'}, {}),
    (['p_my_db.sql', 'p2_other.sql', 'p_x.txt'], {'my_db': 'p_my_db.sql'}, {}),
    ([], {}, {}),
])
def test_classify(names, databases, server_files):
    assert bd.classify(names, 'p') == {'databases': databases, 'server_files': server_files}


@pytest.mark.parametrize('value, expected', [
    (bytearray(hashlib.md5(b'x').digest()), hashlib.md5(b'x').hexdigest()),
    (base64.b64encode(hashlib.md5(b'x').digest()).decode(), hashlib.md5(b'x').hexdigest()),
    (None, None), (b'', None),
])
def test_md5_hex(value, expected):
    assert bd.md5_hex(value) == expected


def _http_error(status, code):
    err = HttpResponseError(message='%s: the service said no' % code)
    err.error_code = code

    class _Resp:
        status_code = status
    err.response = _Resp()
    err.status_code = status
    return err


@pytest.mark.parametrize('exc, code, says', [
    (_http_error(403, 'AuthorizationPermissionMismatch'), 'AuthorizationPermissionMismatch', 'Storage Blob Data Reader'),
    (_http_error(403, 'AuthorizationFailure'), 'AuthorizationFailure', 'Storage Blob Data Reader'),
    (_http_error(404, 'ContainerNotFound'), 'ContainerNotFound', 'does not exist'),
    (_http_error(404, 'BlobNotFound'), 'BlobNotFound', 'restore as files again'),
    (ClientAuthenticationError(message='AADSTS7000215: Invalid client secret'), 'AuthenticationFailed', 'credentials'),
    (ServiceResponseError(message='Connection reset by peer'), 'StorageUnreachable', 'network rules'),
    (_http_error(500, 'InternalError'), 'InternalError', 'the service said no'),
])
def test_blob_error_says_what_to_do(exc, code, says):
    err = bd.blob_error(exc, 'Could not list', 'https://acct.blob.core.windows.net/c')
    assert err.code == code
    assert says in str(err)


def _jwt(claims):
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip('=')
    return 'eyJhbGciOiJIUzI1NiJ9.%s.sig' % body


@pytest.mark.parametrize('url, principal, says', [
    ('https://acct.blob.core.windows.net/files', 'object id 1234 (application 99)',
     "to the identity that runs Ansible (object id 1234 (application 99)) on the storage account 'acct' or its "
     "container 'files'"),
    ('https://127.0.0.1:10000/targetossstorage/restored-files', None,
     "to the identity that runs Ansible on the storage account 'targetossstorage' or its container 'restored-files'"),
])
def test_a_refused_read_says_which_role_to_whom_on_what(url, principal, says):
    err = bd.blob_error(_http_error(403, 'AuthorizationPermissionMismatch'), 'Could not list', url, principal)
    assert "Assign 'Storage Blob Data Reader'" in str(err) and says in str(err)


@pytest.mark.parametrize('token, expected', [
    (_jwt({'oid': 'o-1', 'appid': 'a-1'}), 'object id o-1 (application a-1)'),
    (_jwt({'oid': 'o-2', 'upn': 'ops@example.test', 'appid': 'a-1'}), 'object id o-2 (user ops@example.test)'),
    (_jwt({'oid': 'o-3'}), 'object id o-3'),
    (_jwt({'appid': 'no-oid'}), None), (_jwt(['not', 'a', 'dict']), None), ('opaque-token', None), (None, None),
])
def test_token_principal(token, expected):
    assert bd.token_principal(token) == expected


def test_importing_the_module_does_not_import_azure_storage():
    """azure-storage-blob (~0.16 s, aiohttp with it) is imported when a container is first read, not with the
    module: a play that names pg_restore_files_to_server but skips it does not pay for it in the controller."""
    code = ('import sys; '
            'from ansible_collections.azure_backup.dataprotection.plugins.modules import pg_restore_files_to_server; '
            'from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _blob_download as bd; '
            'print(sorted(m for m in sys.modules if m.startswith(("azure.storage", "aiohttp")))); '
            'assert bd.sdk_import_error() is None; '
            'print("azure.storage.blob" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))).stdout.split('\n')
    assert out[0] == '[]', out
    assert out[1] == 'True', out


class FakeStream:
    def __init__(self, data, break_after=None):
        self.data, self.break_after = data, break_after

    def chunks(self):
        for i, start in enumerate(range(0, len(self.data), bd.CHUNK)):
            if self.break_after is not None and i >= self.break_after:
                raise ServiceResponseError(message='connection reset')
            yield self.data[start:start + bd.CHUNK]


class FakeContainer:
    """download_blob(name, offset, length, etag, match_condition): the bytes of DATA in that range; `breaks` lists,
    per call, after how many chunks the connection drops (None: never)."""

    def __init__(self, data=DATA, breaks=(), modified=False):
        self.data, self.breaks, self.modified = data, list(breaks), modified
        self.calls = []

    def download_blob(self, name, offset, length, etag, match_condition, max_concurrency):
        self.calls.append((offset, length, etag))
        if self.modified:
            raise ResourceModifiedError(message='ConditionNotMet')
        brk = self.breaks.pop(0) if self.breaks else None
        return FakeStream(self.data[offset:offset + length], brk)


def _blob(data=DATA, md5=True, etag='"0x1"'):
    return {'name': 'p_orders.sql', 'size': len(data), 'etag': etag,
            'md5': hashlib.md5(data).hexdigest() if md5 else None}


def _files(container):
    return bd.RestoredFiles('https://acct.blob.core.windows.net/c', credential=None, client=container)


@pytest.mark.parametrize('breaks, part_bytes, resumed_from, calls', [
    ([], 0, 0, 1),                       # one read
    ([1], 0, 0, 2),                      # dropped after one chunk: the second read starts at 4 MiB
    ([1, 1], 0, 0, 3),
    ([], 5000000, 5000000, 1),           # a .part of the same ETag: only the rest is read
])
def test_download_reads_each_byte_once(tmp_path, breaks, part_bytes, resumed_from, calls):
    dest = str(tmp_path / 'archive.dump')
    if part_bytes:
        (tmp_path / 'archive.dump.part').write_bytes(DATA[:part_bytes])
        (tmp_path / 'archive.dump.etag').write_text('0x1')       # a listing's ETag has no quotes
    container = FakeContainer(breaks=breaks)
    fed = []
    got = _files(container).download(_blob(), dest, sink=fed.append)
    assert open(dest, 'rb').read() == DATA
    assert b''.join(fed) == DATA            # a load fed as it arrives sees every byte once, in order
    assert got['resumed_from'] == resumed_from and got['bytes'] == len(DATA) - resumed_from
    assert len(container.calls) == calls
    offsets = [c[0] for c in container.calls]
    assert offsets == sorted(offsets) and offsets[0] == part_bytes
    assert all(c[2] == '"0x1"' for c in container.calls)        # always the same blob version
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert not os.path.exists(dest + '.part')


def test_a_part_of_another_blob_version_is_started_afresh(tmp_path):
    dest = str(tmp_path / 'archive.dump')
    (tmp_path / 'archive.dump.part').write_bytes(b'stale bytes of an older version')
    (tmp_path / 'archive.dump.etag').write_text('"0xOLD"')
    container = FakeContainer()
    got = _files(container).download(_blob(), dest)
    assert got['resumed_from'] == 0 and container.calls[0][0] == 0
    assert open(dest, 'rb').read() == DATA


def test_a_finished_download_is_not_read_again(tmp_path):
    dest = str(tmp_path / 'archive.dump')
    container = FakeContainer()
    _files(container).download(_blob(), dest)
    fed = []
    again = _files(container).download(_blob(), dest, sink=fed.append)
    assert again == {'bytes': 0, 'resumed_from': len(DATA), 'attempts': 0} and len(container.calls) == 1
    assert b''.join(fed) == DATA            # fed from the file on disk


@pytest.mark.parametrize('blob, container, code', [
    (dict(_blob(), md5=hashlib.md5(b'other').hexdigest()), FakeContainer(), 'BlobMd5Mismatch'),
    (dict(_blob(), size=len(DATA) + 10), FakeContainer(), 'BlobLengthMismatch'),
    (_blob(), FakeContainer(modified=True), 'BlobModified'),
    (_blob(), FakeContainer(breaks=[0] * bd.ATTEMPTS), 'StorageUnreachable'),
])
def test_a_bad_download_fails_and_leaves_no_file_to_trust(tmp_path, blob, container, code):
    dest = str(tmp_path / 'archive.dump')
    with pytest.raises(DataProtectionError) as info:
        _files(container).download(blob, dest)
    assert info.value.code == code
    assert not os.path.exists(dest)


def test_without_an_md5_the_length_is_still_checked(tmp_path):
    dest = str(tmp_path / 'archive.dump')
    got = _files(FakeContainer()).download(_blob(md5=False), dest)
    assert got['bytes'] == len(DATA)

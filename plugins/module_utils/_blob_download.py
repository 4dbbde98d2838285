# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""The files a restore as files wrote: find them in their container, download them (streamed, resumable, checked).

azure-storage-blob does the HTTP (imported here only, guarded, and only when a container is first read: it takes
~0.16 s and brings aiohttp, which a play that names the module but skips it should not pay). A download goes to ``<dest>.part`` in 4 MiB chunks;
the blob's ETag is kept beside it (``<dest>.etag``), so a download broken off (a dropped connection, or the process
killed) continues from the bytes already there with a ranged read of the same blob version. Length and Content-MD5
(when the blob has one) are checked before ``<dest>`` appears.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from urllib.parse import urlsplit

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError

try:
    from azure.core import MatchConditions
    from azure.core.exceptions import (
        AzureError, ClientAuthenticationError, HttpResponseError, ResourceModifiedError, ResourceNotFoundError,
    )
    CORE_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - the module reports it with missing_required_lib
    CORE_IMPORT_ERROR = exc
    MatchConditions = None

    class AzureError(Exception):
        """Stand-ins, so that the except clauses below stay valid without the SDK."""

    class HttpResponseError(AzureError):
        pass

    class ResourceNotFoundError(HttpResponseError):
        pass

    class ResourceModifiedError(HttpResponseError):
        pass

    class ClientAuthenticationError(HttpResponseError):
        pass

_SDK = {}


def sdk_import_error():
    """None when azure-storage-blob (and azure-core) can be imported, else the ImportError."""
    if CORE_IMPORT_ERROR is not None:
        return CORE_IMPORT_ERROR
    try:
        _container_client_class()
    except ImportError as exc:
        return exc
    return None


def _container_client_class():
    if 'ContainerClient' not in _SDK:
        from azure.storage.blob import ContainerClient  # pylint: disable=import-outside-toplevel
        _SDK['ContainerClient'] = ContainerClient
    return _SDK['ContainerClient']


def token_principal(token):
    """Who a bearer token is for, as a role assignment names it ('object id X (application Y)'); None when the token
    is not a JWT. Its claims are only read, to name the identity in a message, never trusted."""
    try:
        body = token.split('.')[1]
        claims = json.loads(base64.urlsafe_b64decode(body + '=' * (-len(body) % 4)))
    except (AttributeError, IndexError, ValueError, TypeError):
        return None
    oid = claims.get('oid') if isinstance(claims, dict) else None
    if not oid:
        return None
    name = claims.get('upn') or claims.get('appid')
    return f"object id {oid}" + (f" ({'user' if claims.get('upn') else 'application'} {name})" if name else '')


def account_and_container(container_url):
    """(storage account, container) of a container URL: https://<account>.blob.<suffix>/<container>, or path
    style https://<host>/<account>/<container> (Azurite, the emulator)."""
    parts = urlsplit(container_url)
    segs = [s for s in parts.path.split('/') if s]
    host = (parts.hostname or '').lower()
    if '.blob.' in host:
        return host.split('.', 1)[0], (segs[0] if segs else '')
    return (segs[0] if segs else host), (segs[1] if len(segs) > 1 else '')


CHUNK = 4 * 1024 * 1024
ATTEMPTS = 5
# The server-wide files of a flexible server's restore as files (Microsoft: roles.sql, tablespace.sql, schema.sql),
# each '<prefix>_<name>.sql' next to the '<prefix>_<database>.sql' archives.
SERVER_FILES = ('roles', 'tablespace', 'schema')


def reader_action(container_url, principal=None):
    """What to grant, to whom, on what, when reading the files is refused."""
    account, container = account_and_container(container_url)
    who = f'the identity that runs Ansible ({principal})' if principal else 'the identity that runs Ansible'
    return (f"Assign 'Storage Blob Data Reader' (or 'Storage Blob Data Contributor', to delete the files afterwards) "
            f"to {who} on the storage account '{account}' or its container '{container}': Owner and Contributor do "
            "not include reading blob data.")


def split_destination(destination):
    """(container_url, prefix) of a restore job's recoveryDestination ('<container url>/<prefix>')."""
    parts = urlsplit(str(destination or '').strip())
    segs = [s for s in parts.path.split('/') if s]
    if parts.scheme.lower() != 'https' or len(segs) < 2:
        raise ValueError(f"the job's recovery destination '{destination}' is not '<container url>/<file prefix>': "
                         "is it a restore as files?")
    head = '/'.join(segs[:-1])
    return f'{parts.scheme.lower()}://{parts.netloc}/{head}', segs[-1]


def database_blob(prefix, database):
    return f'{prefix}_{database}.sql'


def classify(names, prefix):
    """{'databases': {db: blob}, 'server_files': {kind: blob}} of the blob names under `prefix`.

    A flexible server's files are '<prefix>_<database>.sql' and '<prefix>_<roles|tablespace|schema>.sql'; a single
    server's file is '<prefix>.dump' (its database has no name in it: key '')."""
    databases, server_files = {}, {}
    for name in names:
        if name == f'{prefix}.dump':
            databases[''] = name
            continue
        match = re.fullmatch(re.escape(prefix) + r'_(.+)\.sql', name)
        if not match:
            continue
        what = match.group(1)
        if what in SERVER_FILES:
            server_files[what] = name
        else:
            databases[what] = name
    return {'databases': databases, 'server_files': server_files}


def md5_hex(value):
    """Content-MD5 as the SDK gives it (bytes/bytearray) -> hex; None when there is none."""
    if not value:
        return None
    if isinstance(value, str):
        try:
            value = base64.b64decode(value)
        except (binascii.Error, ValueError):
            return None
    return binascii.hexlify(bytes(value)).decode()


def blob_error(exc, what, container_url, principal=None):
    """DataProtectionError for an azure-storage-blob / azure-identity failure, saying what to change (`principal`:
    token_principal of the storage token, to name whom to grant a role)."""
    code = getattr(exc, 'error_code', None)
    status = getattr(getattr(exc, 'response', None), 'status_code', None) or getattr(exc, 'status_code', None)
    text = str(getattr(exc, 'message', None) or exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    if isinstance(exc, ClientAuthenticationError) and status is None:
        return DataProtectionError(what, text, code='AuthenticationFailed', recommended_actions=[
            'Check the credentials (client_id, secret, tenant) of the identity that runs Ansible.'])
    if code in ('AuthorizationPermissionMismatch', 'AuthorizationFailure') or status == 403:
        return DataProtectionError(what, text, code=code or 'AuthorizationPermissionMismatch', status=status,
                                   recommended_actions=[reader_action(container_url, principal)])
    if code == 'ContainerNotFound' or (status == 404 and code is None):
        return DataProtectionError(what, f'the container {container_url} does not exist.', code='ContainerNotFound',
                                   status=status, recommended_actions=[
                                       'Give the container the restore as files wrote to (the job\'s recovery '
                                       'destination), or run the restore as files again.'])
    if code == 'BlobNotFound':
        return DataProtectionError(what, 'the file is gone from the container (deleted after the restore?).',
                                   code='BlobNotFound', status=status, recommended_actions=[
                                       'Run the restore as files again, then load its files.'])
    if status is None:
        return DataProtectionError(what, text, code='StorageUnreachable', recommended_actions=[
            f'The runner must reach {container_url} over HTTPS (443): check DNS, proxy, firewall and the storage '
            "account's network rules (public access or a private endpoint the runner can use)."])
    return DataProtectionError(what, text, code=code or f'HTTP{status}', status=status)


class RestoredFiles:
    """The files under one prefix of one container, read with an azure-identity credential."""

    def __init__(self, container_url, credential, client=None, principal=None):
        self.container_url = container_url.rstrip('/')
        self.principal = principal
        self.client = client or _container_client_class().from_container_url(
            self.container_url, credential=credential, max_single_get_size=CHUNK, max_chunk_get_size=CHUNK)

    def _error(self, exc, what):
        return blob_error(exc, what, self.container_url, self.principal)

    def list(self, prefix):
        """[{name, size, etag, md5}] of the blobs whose names start with `prefix`."""
        try:
            return [{'name': b.name, 'size': b.size, 'etag': b.etag,
                     'md5': md5_hex(getattr(b.content_settings, 'content_md5', None))}
                    for b in self.client.list_blobs(name_starts_with=prefix)]
        except AzureError as exc:
            raise self._error(exc, f'Could not list the restored files in {self.container_url}') from exc

    def delete(self, name):
        try:
            self.client.delete_blob(name)
            return True
        except ResourceNotFoundError:
            return False
        except AzureError as exc:
            raise self._error(exc, f'Could not delete {name} from {self.container_url}') from exc

    # pylint: disable-next=too-many-arguments
    def download(self, blob, dest, attempts=ATTEMPTS, progress=None, sink=None):
        """Download `blob` ({name, size, etag, md5}) to `dest`; resume a '.part' of the same ETag.

        `sink`, when given, receives every byte of the file in order (those of an earlier attempt first), as it
        arrives: a load can read the archive while it downloads. The length and MD5 are checked only at the end, so
        whatever `sink` feeds must not be trusted before this returns.
        Returns {'bytes': downloaded now, 'resumed_from': bytes already there, 'attempts': n}."""
        part, tag_file = dest + '.part', dest + '.etag'
        same = _etag(_read(tag_file)) == _etag(blob['etag'])   # listings and properties quote it differently
        if os.path.exists(dest) and same and os.path.getsize(dest) == blob['size']:
            if sink:
                with open(dest, 'rb') as fh:
                    for chunk in iter(lambda: fh.read(CHUNK), b''):
                        sink(chunk)
            return {'bytes': 0, 'resumed_from': blob['size'], 'attempts': 0}
        if not same or not os.path.exists(part):
            _write_private(part, b'')
            _write_private(tag_file, blob['etag'].encode())
        os.chmod(part, 0o600)
        digest = hashlib.md5()
        with open(part, 'rb') as fh:   # the bytes from an earlier attempt count towards the MD5
            for chunk in iter(lambda: fh.read(CHUNK), b''):
                digest.update(chunk)
                if sink:
                    sink(chunk)
        resumed_from = offset = os.path.getsize(part)
        tried = 0
        while offset < blob['size']:
            tried += 1
            try:
                stream = self.client.download_blob(blob['name'], offset=offset, length=blob['size'] - offset,
                                                   etag=blob['etag'], match_condition=MatchConditions.IfNotModified,
                                                   max_concurrency=1)
                before = offset
                with open(part, 'ab') as fh:
                    for chunk in stream.chunks():
                        fh.write(chunk)
                        digest.update(chunk)
                        offset += len(chunk)
                        if sink:
                            sink(chunk)
                        if progress:
                            progress(offset, blob['size'])
                if offset == before:    # the blob ends before its listed length: checked below, never a loop
                    break
            except ResourceModifiedError as exc:
                os.unlink(part)
                raise DataProtectionError(f"Could not download {blob['name']}", 'the file changed while it was being '
                                          'downloaded.', code='BlobModified', recommended_actions=[
                                              'Run the task again: it starts that file afresh.']) from exc
            except (HttpResponseError, ResourceNotFoundError, ClientAuthenticationError) as exc:
                raise self._error(exc, f"Could not download {blob['name']}") from exc
            except AzureError as exc:   # a broken connection: go on from what arrived
                offset = os.path.getsize(part)
                if tried >= attempts:
                    raise self._error(exc, f"Could not download {blob['name']} ({offset} of {blob['size']} bytes "
                                      f"after {tried} attempts)") from exc
        size = os.path.getsize(part)
        if size != blob['size']:
            os.unlink(part)
            raise DataProtectionError(f"Could not download {blob['name']}", f'got {size} bytes, the blob has '
                                      f"{blob['size']}.", code='BlobLengthMismatch',
                                      recommended_actions=['Run the task again.'])
        if blob.get('md5') and digest.hexdigest() != blob['md5']:
            os.unlink(part)
            raise DataProtectionError(f"Could not download {blob['name']}", 'the MD5 of the downloaded bytes '
                                      f"({digest.hexdigest()}) is not the blob's Content-MD5 ({blob['md5']}).",
                                      code='BlobMd5Mismatch', recommended_actions=['Run the task again.'])
        os.replace(part, dest)
        return {'bytes': size - resumed_from, 'resumed_from': resumed_from, 'attempts': tried}


def _etag(value):
    return (value or '').strip().strip('"')


def _read(path):
    try:
        with open(path, 'rb') as fh:
            return fh.read().decode()
    except OSError:
        return None


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as fh:
        fh.write(data)

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""The cache folder shared by every task of a playbook run: sign-in once, cloud metadata read once.

Three things live there, all written by the user that runs Ansible, in a folder of mode 0700:

- ``msal_token_cache.nocae`` (and ``.cae``): azure-identity's persistent token cache (MSAL's, through
  msal-extensions: the platform's keyring where there is one, else a file of mode 0600). It holds access and refresh
  tokens, never a client secret or a password.
- ``metadata-<hash>.json``: an ARM ``/metadata/endpoints`` document of a custom cloud.
- ``oidc-<hash>.json``: an authority's OpenID configuration, which MSAL reads in every new process before it even
  looks at its token cache.

The documents hold no secret; they are kept for METADATA_TTL seconds. A folder that another user could write to is
never used (a warning says why) and the task signs in as if there were no cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tempfile
import time

DEFAULT_FOLDER_NAME = 'azure_backup.dataprotection'
TOKEN_CACHE_NAME = 'msal_token_cache'
METADATA_TTL = 12 * 3600
# The documents the OIDC adapter serves from the cache: MSAL's tenant discovery, nothing else.
OIDC_SUFFIX = '/.well-known/openid-configuration'


def default_folder(environ=None):
    """$XDG_CACHE_HOME/azure_backup.dataprotection, else ~/.cache/azure_backup.dataprotection."""
    env = os.environ if environ is None else environ
    base = env.get('XDG_CACHE_HOME') or os.path.join(env.get('HOME') or os.path.expanduser('~'), '.cache')
    return os.path.join(base, DEFAULT_FOLDER_NAME)


def prepare_folder(path):
    """Create `path` (mode 0700) or check an existing one; returns None when it is usable, else why not."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.stat(path)
    except OSError as exc:
        return f'it could not be created ({exc.strerror})'
    if not stat.S_ISDIR(info.st_mode):
        return 'it is not a directory'
    if hasattr(os, 'geteuid') and info.st_uid != os.geteuid():
        return 'it belongs to another user'
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return 'other users can write to it (chmod 700 it)'
    return None


class DocumentCache:
    """JSON documents by URL in the cache folder; every failure to read or write is a miss, never an error."""

    def __init__(self, folder, ttl=METADATA_TTL, clock=time.time):
        self.folder = folder
        self.ttl = ttl
        self.clock = clock

    def _path(self, kind, url):
        digest = hashlib.sha256(url.encode('utf-8')).hexdigest()[:32]
        return os.path.join(self.folder, f'{kind}-{digest}.json')

    def get(self, kind, url):
        path = self._path(kind, url)
        try:
            if self.clock() - os.stat(path).st_mtime > self.ttl:
                return None
            with open(path, encoding='utf-8') as handle:
                entry = json.load(handle)
        except (OSError, ValueError):
            return None
        return entry.get('document') if isinstance(entry, dict) and entry.get('url') == url else None

    def put(self, kind, url, document):
        """Written to a temporary file (0600) and renamed: concurrent tasks never read half a document."""
        try:
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix='.tmp-')
            with os.fdopen(handle, 'w', encoding='utf-8') as out:
                json.dump({'url': url, 'document': document}, out)
            os.replace(temporary, self._path(kind, url))
        except OSError:
            pass


def oidc_adapter_class(http_adapter, raw_response_class):
    """An HTTPAdapter for requests that answers GETs of an OpenID configuration from a DocumentCache.

    Built from requests' HTTPAdapter and urllib3's HTTPResponse passed in, so that this file does not import them
    (they are guarded in _arm_client). Only a 200 answer is kept; any other request goes to the network unchanged.
    """

    class OidcCachingAdapter(http_adapter):
        def __init__(self, cache, **kwargs):
            super().__init__(**kwargs)
            self.cache = cache

        def send(self, request, *args, **kwargs):  # pylint: disable=signature-differs
            url = request.url or ''
            if request.method != 'GET' or not url.split('?', 1)[0].endswith(OIDC_SUFFIX):
                return super().send(request, *args, **kwargs)
            document = self.cache.get('oidc', url)
            if document is not None:
                body = json.dumps(document).encode('utf-8')
                raw = raw_response_class(body=io.BytesIO(body), status=200, preload_content=False, headers={
                    'Content-Type': 'application/json; charset=utf-8', 'Content-Length': str(len(body))})
                return self.build_response(request, raw)
            response = super().send(request, *args, **kwargs)
            if response.status_code == 200:
                try:
                    self.cache.put('oidc', url, response.json())
                except ValueError:
                    pass
            return response

    return OidcCachingAdapter

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""The blob data plane calls a drill needs (list under a prefix, delete), over an ArmClient of their own.

The blob service wants an x-ms-version header on every call: it goes on the session of a client used for blobs
only, so that ARM calls of the same task keep their headers. Retries, throttling and errors are the ArmClient's.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import quote

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _arm_client
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError, error_from_response

BLOB_API_VERSION = '2021-08-06'


def blob_client(module):
    """An ArmClient for the blob data plane, with the task's credential and cloud."""
    session = _arm_client.new_session()
    session.headers['x-ms-version'] = BLOB_API_VERSION
    return _arm_client.ArmClient(module.credential, module.cloud, None, verify=module.verify, warn=module.warn,
                                 session=session)


def list_blobs(client, container_url, prefix):
    """Names and sizes of the blobs under `prefix`, every page (NextMarker)."""
    found, marker = [], None
    while True:
        params = {'restype': 'container', 'comp': 'list', 'prefix': prefix}
        if marker:
            params['marker'] = marker
        response = client.get(container_url.rstrip('/'), params=params, scope=client.cloud.storage_scope)
        if not 200 <= response.status_code < 300:
            raise error_from_response(f'List the blobs of {container_url} under {prefix}', response)
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise DataProtectionError(f'List the blobs of {container_url}', 'the answer is not XML.',
                                      code='InvalidResponse', status=response.status_code) from exc
        for blob in root.iter('Blob'):
            size = blob.findtext('Properties/Content-Length') or '0'
            found.append({'name': blob.findtext('Name'), 'size': int(size) if size.isdigit() else 0})
        marker = root.findtext('NextMarker')
        if not marker:
            return found


def delete_blob(client, container_url, name):
    """True when deleted, False when it was already gone."""
    url = f"{container_url.rstrip('/')}/{quote(name, safe='/')}"
    response = client.delete(url, scope=client.cloud.storage_scope)
    if response.status_code == 404:
        return False
    if not 200 <= response.status_code < 300:
        raise error_from_response(f'Delete the blob {name} of {container_url}', response)
    return True

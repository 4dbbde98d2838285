# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""Adapter from a controller plugin's options (get_option) onto module_utils/_auth and _arm_client.

The plugin documents the auth options with the same names and environment variables as the modules
(see AUTH_PLUGIN_OPTIONS_DOC), so that AWX's Azure credential (AZURE_CLIENT_ID, AZURE_SECRET, AZURE_TENANT, ...)
works for lookups exactly as it does for modules.
"""

from __future__ import annotations

from ansible.errors import AnsibleLookupError

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _arm_client, _auth
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import missing_libraries

AUTH_OPTION_NAMES = ('auth_source', 'profile', 'subscription_id', 'client_id', 'secret', 'tenant', 'ad_user',
                     'password', 'cloud_environment', 'cert_validation_mode', 'disable_instance_discovery',
                     'x509_certificate_path', 'token_cache', 'cache_dir')
SECRET_OPTION_NAMES = ('secret', 'password')


def auth_params(plugin):
    """The auth options the plugin was given (direct, then the environment variables its docs declare)."""
    return {name: plugin.get_option(name) for name in AUTH_OPTION_NAMES if plugin.has_option(name)}


def require_libraries():
    for present, library, error in missing_libraries():
        if not present:
            raise AnsibleLookupError(f'The {library} Python library is required on the controller '
                                     f'(pip install {library}): {(error or "").strip().splitlines()[-1:]}')


def build_client(plugin, warn=None):
    """(ArmClient, cloud) for the plugin's auth options; raises DataProtectionError like the modules do."""
    require_libraries()
    params = _auth.resolve_auth_params(auth_params(plugin))
    verify = params.get('cert_validation_mode') != 'ignore'
    cache_dir = _auth.cache_folder(params, warn=warn)
    cache = _auth.document_cache(cache_dir)
    session = _arm_client.new_session(cache)
    cloud = _auth.get_cloud(params.get('cloud_environment'), verify, session=session, warn=warn, cache=cache)
    credential = _auth.build_credential(params, cloud, session=session, cache_dir=cache_dir)
    client = _arm_client.ArmClient(credential, cloud, params.get('subscription_id'), verify=verify, warn=warn,
                                   session=session)
    return client, cloud

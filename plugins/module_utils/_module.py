# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""DataProtectionModule: a thin AnsibleModule that adds the auth options and builds cloud, credential and client lazily."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _arm_client, _auth
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._lro import Deadline

_SECRET_OPTIONS = ('secret', 'password')


class DataProtectionModule(AnsibleModule):
    """AnsibleModule + AUTH_ARGSPEC. Nothing talks to Azure until `cloud`, `credential` or `client` is used;
    those raise DataProtectionError, which the module turns into a failure with fail_from_error()."""

    def __init__(self, argument_spec=None, **kwargs):
        spec = dict(_auth.AUTH_ARGSPEC)
        spec.update(argument_spec or {})
        super().__init__(argument_spec=spec, **kwargs)
        self._lazy = {}
        self._require_libraries()

    def _require_libraries(self):
        for present, library, error in ((_arm_client.HAS_REQUESTS, 'requests', _arm_client.REQUESTS_IMPORT_ERROR),
                                        (_auth.HAS_AZURE_IDENTITY, 'azure-identity', _auth.AZURE_IDENTITY_IMPORT_ERROR)):
            if not present:
                self.fail_json(msg=missing_required_lib(library), exception=error)

    def _once(self, name, factory):
        if name not in self._lazy:
            self._lazy[name] = factory()
        return self._lazy[name]

    @property
    def auth_params(self):
        """The auth options after ~/.azure/credentials and CLI defaults; secrets found there are masked."""
        return self._once('auth_params', self._resolve_auth_params)

    def _resolve_auth_params(self):
        resolved = _auth.resolve_auth_params(self.params)
        self.no_log_values.update(str(resolved[k]) for k in _SECRET_OPTIONS if resolved.get(k))
        return resolved

    @property
    def verify(self):
        return self.auth_params.get('cert_validation_mode') != 'ignore'

    @property
    def cloud(self):
        return self._once('cloud', lambda: _auth.get_cloud(self.auth_params.get('cloud_environment'), self.verify,
                                                           warn=self.warn))

    @property
    def credential(self):
        return self._once('credential', lambda: _auth.build_credential(self.auth_params, self.cloud))

    @property
    def subscription_id(self):
        subscription = self.auth_params.get('subscription_id')
        if not subscription:
            raise DataProtectionError('Missing subscription', 'no subscription id is configured.',
                                      code='MissingSubscription', recommended_actions=[
                                          'Set subscription_id or AZURE_SUBSCRIPTION_ID (or a default subscription '
                                          'with az account set for auth_source cli).'])
        return subscription

    @property
    def client(self):
        return self._once('client', lambda: _arm_client.ArmClient(
            self.credential, self.cloud, self.subscription_id, api_version=self.params.get('api_version')
            or _auth.DEFAULT_API_VERSION, verify=self.verify, warn=self.warn))

    def fail_from_error(self, err, **result):
        """fail_json with the error's message and structured fields (plus any partial `result`)."""
        self.fail_json(**dict(result, **err.fail_kwargs()))

    def exit_with(self, run):
        """exit_json with the result of run(module). Bad input (ValueError) and errors of the service
        (DataProtectionError) fail the task with nothing changed; a `run` that may fail after changing
        something reports that itself (fail_from_error with changed=True)."""
        try:
            result = run(self)
        except ValueError as exc:
            self.fail_json(msg=str(exc), changed=False)
        except DataProtectionError as err:
            self.fail_from_error(err, changed=False)
        self.exit_json(**result)

    @staticmethod
    def deadline(seconds):
        return Deadline(seconds)

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""DataProtectionModule: a thin AnsibleModule that adds the auth options; AzureParts: cloud, credential, client."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _arm_client, _auth, _cross_region
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._lro import Deadline

_SECRET_OPTIONS = ('secret', 'password')


class AzureParts:
    """The Azure side of a task, built lazily and once: auth options, cloud, credential, ARM client.

    Shared by DataProtectionModule (a module process) and the controller runner of the action plugins
    (plugin_utils/_controller.py). The host class provides params, warn(), no_log_values, fail_json() and
    exit_json(). Nothing talks to Azure until `cloud`, `credential` or `client` is used; those raise
    DataProtectionError, which exit_with() turns into a failure.
    """

    def _once(self, name, factory):
        lazy = self.__dict__.setdefault('_lazy', {})
        if name not in lazy:
            lazy[name] = factory()
        return lazy[name]

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
    def cache_dir(self):
        """The folder of the token and metadata cache shared by the tasks of a run (None: no cache)."""
        return self._once('cache_dir', lambda: _auth.cache_folder(self.auth_params, warn=self.warn))

    @property
    def session(self):
        """One requests.Session for the task: the metadata read, the sign-in and ARM share its connections."""
        return self._once('session', lambda: _arm_client.new_session(_auth.document_cache(self.cache_dir)))

    @property
    def cloud(self):
        return self._once('cloud', lambda: _auth.get_cloud(self.auth_params.get('cloud_environment'), self.verify,
                                                           session=self.session, warn=self.warn,
                                                           cache=_auth.document_cache(self.cache_dir)))

    @property
    def credential(self):
        return self._once('credential', lambda: _auth.build_credential(self.auth_params, self.cloud,
                                                                       session=self.session,
                                                                       cache_dir=self.cache_dir))

    @property
    def subscription_id(self):
        subscription = self.auth_params.get('subscription_id')
        if not subscription:
            raise DataProtectionError('Missing subscription', 'no subscription id is configured.',
                                      code='MissingSubscription', recommended_actions=[
                                          'In AWX/AAP attach a "Microsoft Azure Resource Manager" credential to the '
                                          'job template; elsewhere set subscription_id or AZURE_SUBSCRIPTION_ID (with '
                                          'AZURE_CLIENT_ID, AZURE_SECRET and AZURE_TENANT for a service principal), '
                                          'or a default subscription with az account set (auth_source auto or cli).'])
        return subscription

    @property
    def client(self):
        return self._once('client', lambda: _arm_client.ArmClient(
            self.credential, self.cloud, self.subscription_id, api_version=self.params.get('api_version')
            or _auth.DEFAULT_API_VERSION, verify=self.verify, warn=self.warn, session=self.session))

    def fail_from_error(self, err, **result):
        """fail_json with the error's message and structured fields (plus any partial `result`)."""
        err = _cross_region.with_outage_hint(err, self.params)  # a region that is down: name use_secondary_region
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

    def progress(self, message):
        """A progress line while the task runs. Only the controller runner can show one live; a module process
        has no channel to the output until it ends, so there it is dropped."""

    @staticmethod
    def deadline(seconds):
        return Deadline(seconds)


class DataProtectionModule(AzureParts, AnsibleModule):
    """AnsibleModule + AUTH_ARGSPEC + AzureParts."""

    def __init__(self, argument_spec=None, **kwargs):
        spec = dict(_auth.AUTH_ARGSPEC)
        spec.update(argument_spec or {})
        super().__init__(argument_spec=spec, **kwargs)
        self._require_libraries()

    def _require_libraries(self):
        for present, library, error in missing_libraries():
            if not present:
                self.fail_json(msg=missing_required_lib(library), exception=error)


def missing_libraries():
    """(present, library, import traceback) of each library every task needs."""
    return ((_arm_client.HAS_REQUESTS, 'requests', _arm_client.REQUESTS_IMPORT_ERROR),
            (_auth.HAS_AZURE_IDENTITY, 'azure-identity', _auth.AZURE_IDENTITY_IMPORT_ERROR))

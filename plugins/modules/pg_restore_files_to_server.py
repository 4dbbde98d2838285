#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_restore_files_to_server
short_description: Load the files of a restore as files into a new database of a PostgreSQL flexible server
version_added: 1.1.0
description:
  - The second half of restoring an Azure Database for PostgreSQL flexible server backup. Azure Backup restores a
    flexible server only B(as files) into a blob container (M(azure_backup.dataprotection.pg_restore) with
    O(azure_backup.dataprotection.pg_restore#module:target_container_url)); this module takes those files to a running
    database.
  - Finds the files the restore job wrote (from the job's recovery destination, or from O(container_url) and
    O(file_prefix)). Azure Backup writes a C(<prefix>_<database>.sql) per database (a C(pg_dump) custom-format archive)
    and C(<prefix>_roles.sql), C(<prefix>_tablespace.sql), C(<prefix>_schema.sql) for the whole server; the module
    reports the server-wide files it found and loads the archive of O(source_database). It does not run
    C(roles.sql), whose C(ALTER ROLE ... PASSWORD) lines would reset the password and attributes of a role of the same
    name that already exists on the target (see the user guide's flexible server chapter); apply the lines you want
    yourself before the load.
  - Downloads that archive with azure-storage-blob into a private folder (mode 0700) in 4 MiB chunks (memory does not
    grow with the file), with the credential of the other modules. A broken download continues where it stopped (a
    ranged read of the same blob version, also after the task was killed); the length and the blob's Content-MD5 are
    checked. With O(jobs=1) C(pg_restore) reads the archive while it downloads (the file is still written, for a
    resume); the new database is marked finished only after the whole file passed the length and MD5 check, and is
    dropped when it does not.
  - Creates O(target_database) on the target server and loads it with C(pg_restore --exit-on-error) over TLS
    (O(ssl_mode) V(verify-full) by default). The password goes into a pgpass file (mode 0600) that is removed
    afterwards, never on a command line or into a process environment.
  - Then counts the rows of every table (exactly) and checks that every table of the archive is there; removes the
    downloaded file; with O(delete_blobs) also the archive blob.
  - Idempotent. The new database carries a marker (its C(COMMENT ON DATABASE)) naming the file it was loaded from and
    whether the load finished. A second run after success changes nothing and downloads nothing. A run after an
    interrupted load (the task killed, C(pg_restore) failed) drops that half-loaded database and loads it again, so
    nothing is loaded twice. A database of that name that this module did not load is never touched, unless
    O(overwrite=true).
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
options:
  job_id:
    description:
      - The restore as files job (GUID or ARM id), as returned by M(azure_backup.dataprotection.pg_restore). Its
        recovery destination names the container and the file prefix. The job must have completed.
      - Use with O(vault_name) and O(resource_group). Mutually exclusive with O(container_url).
    type: str
  vault_name:
    description:
      - The Backup vault of O(job_id).
    type: str
  resource_group:
    description:
      - Resource group of O(vault_name).
    type: str
  container_url:
    description:
      - The blob container the restore as files wrote to, C(https://<account>.blob.core.windows.net/<container>).
      - Use with O(file_prefix), instead of O(job_id).
    type: str
  file_prefix:
    description:
      - The file prefix the restore as files was given.
    type: str
  source_database:
    description:
      - Which database of the restored server to load (the C(<database>) of C(<prefix>_<database>.sql)).
      - Required when the files hold more than one database.
    type: str
  target_database:
    description:
      - Name of the new database on the target server. Defaults to O(source_database).
    type: str
  host:
    description:
      - The target server's host name, for example C(targetserver.postgres.database.azure.com) (or the address of its
        private endpoint). The runner must reach it on O(port).
    type: str
    required: true
  port:
    description:
      - The target server's port.
    type: int
    default: 5432
  login_user:
    description:
      - A login of the target server with C(CREATEDB) (on a flexible server, the administrator or a member of
        C(azure_pg_admin)). Read from the secret when O(login_secret_uri) holds a connection string.
    type: str
  login_password:
    description:
      - Password of O(login_user). Mutually exclusive with O(login_secret_uri).
    type: str
  login_secret_uri:
    description:
      - A Key Vault secret, C(https://<vault>.vault.azure.net/secrets/<name>), holding the ADO.NET connection string of
        the target server (C(User Id) and C(Password) are used) or the password alone.
      - The identity that runs Ansible needs C(Key Vault Secrets User) (or a C(get) access policy) on the key vault.
    type: str
  ssl_mode:
    description:
      - libpq C(sslmode) of every connection. V(verify-full) checks the server certificate against O(ssl_root_cert)
        and its name against O(host).
    type: str
    choices: [verify-full, verify-ca, require]
    default: verify-full
  ssl_root_cert:
    description:
      - CA certificate file (PEM) that signed the server's certificate; for Azure, the DigiCert Global Root G2 and
        Microsoft RSA Root Certificate Authority 2017 bundle. Without it libpq reads C(~/.postgresql/root.crt).
    type: path
  jobs:
    description:
      - Parallel jobs of C(pg_restore) (C(--jobs)). More than 1 loads tables and builds indexes in parallel;
        about the target's vCores is a good value. More than 1 also waits for the whole download before the load
        starts (C(pg_restore --jobs) needs a file it can seek in); V(1) loads while it downloads.
    type: int
    default: 1
  no_owner:
    description:
      - Give C(--no-owner) to C(pg_restore), so that every object belongs to O(login_user). Turn it off only when the
        source's roles exist on the target (from C(roles.sql)); otherwise C(ALTER ... OWNER TO) fails.
    type: bool
    default: true
  role:
    description:
      - Run the load as this role (C(pg_restore --role)); O(login_user) must be a member. The role then owns what the
        load creates.
    type: str
  no_privileges:
    description:
      - Give C(--no-privileges) to C(pg_restore) (no C(GRANT)/C(REVOKE) of the source's roles, which usually do not
        exist on another server).
    type: bool
    default: true
  overwrite:
    description:
      - Drop an existing O(target_database) that this module did not load, then load. B(Destroys that database.)
        Without it such a database fails the task and is left as it is.
    type: bool
    default: false
  download_dir:
    description:
      - Folder under which the private working folder (mode 0700) is made, named after the file and the target so that
        a re-run finds a broken download. Needs room for the archive. Defaults to the system's temporary folder.
    type: path
  delete_blobs:
    description:
      - After a successful load, delete the loaded archive blob from the container (the server-wide files stay, for
        other databases). Needs C(Storage Blob Data Contributor).
    type: bool
    default: false
  pg_bin_dir:
    description:
      - Folder of C(psql) and C(pg_restore); by default they are looked up on PATH. Their major version must be that
        of the backed-up server or newer.
    type: path
extends_documentation_fragment:
  - azure_backup.dataprotection.auth
  - azure_backup.dataprotection.attributes
  - azure_backup.dataprotection.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details:
      - Reads the job, lists the files and looks at the target database; says what it would download and load. Writes
        nothing (a pgpass file exists while the target is read).
  diff_mode:
    support: none
requirements:
  - azure-storage-blob >= 12.19
  - the PostgreSQL client tools C(psql) and C(pg_restore) on the host that runs the task
notes:
  - "Permissions of the identity that runs Ansible: C(Storage Blob Data Reader) on the storage account or container
    (Contributor with O(delete_blobs)); with O(job_id), C(Reader) on the Backup vault; with O(login_secret_uri),
    C(Key Vault Secrets User). On the server, a login with C(CREATEDB)."
  - "Network: the runner must reach the storage account (HTTPS, 443) and the server (O(port)); with a private
    endpoint or firewall rules, allow the runner's address."
  - Timing is mostly download (the runner's bandwidth to the storage account) and C(pg_restore) (the server's vCores
    and IOPS; use O(jobs)). The user guide's flexible server chapter has figures.
seealso:
  - module: azure_backup.dataprotection.pg_restore
  - module: azure_backup.dataprotection.dataprotection_job_info
  - name: Restore Azure PostgreSQL-Flexible server as Files
    description: Microsoft's description of the files and the manual steps this module performs.
    link: https://learn.microsoft.com/azure/backup/restore-azure-database-postgresql-flex
'''

EXAMPLES = r'''
- name: Load database inventory from a finished restore as files into a new database of another flexible server
  azure_backup.dataprotection.pg_restore_files_to_server:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    job_id: "{{ restore.job_id }}"
    source_database: inventory
    target_database: inventory_restored
    host: targetflexserver.postgres.database.azure.com
    login_secret_uri: https://targetkv.vault.azure.net/secrets/targetflexserver-conn
    ssl_root_cert: /etc/ssl/azure-postgres-roots.pem
    jobs: 4
  register: loaded

- name: Show the row counts
  ansible.builtin.debug:
    var: loaded.tables

- name: From a container and prefix, with a password from the vault of the play
  azure_backup.dataprotection.pg_restore_files_to_server:
    container_url: https://targetossstorage.blob.core.windows.net/restored-files
    file_prefix: flex-20250131
    source_database: orders
    host: targetflexserver.postgres.database.azure.com
    login_user: flexadmin
    login_password: "{{ flex_admin_password }}"
    delete_blobs: true
'''

RETURN = r'''
loaded:
  description: Whether this run loaded the database (false when it was already there, and in check mode).
  returned: always
  type: bool
  sample: true
database:
  description: The target database.
  returned: always
  type: dict
  contains:
    host: {description: The server., type: str, sample: targetflexserver.postgres.database.azure.com}
    port: {description: Its port., type: int, sample: 5432}
    name: {description: The database., type: str, sample: inventory_restored}
    state:
      description: V(absent), V(complete) (loaded by this module), V(interrupted) (a load of this module that did not
        finish; dropped and loaded again) or V(foreign) (not loaded by this module), before the task.
      type: str
      sample: absent
files:
  description: The restored files that were found.
  returned: when they were listed
  type: dict
  contains:
    container_url: {description: The container., type: str, sample: https://acct.blob.core.windows.net/restored}
    prefix: {description: The file prefix., type: str, sample: flex-20250131}
    archive: {description: The blob that was (or would be) loaded., type: str, sample: flex-20250131_inventory.sql}
    size: {description: Its size in bytes., type: int, sample: 1048576}
    md5:
      description: Its Content-MD5 (hex), when the blob has one.
      type: str
      sample: 9e107d9d372bb6826bd81d3542a419d6
    databases: {description: Every database with an archive under the prefix., type: list, elements: str,
                sample: [inventory, orders]}
    server_files:
      description: The server-wide files under the prefix (roles, tablespace, schema), by kind. They are not loaded.
      type: dict
      sample: {roles: flex-20250131_roles.sql}
download:
  description: The download of this run.
  returned: when a file was downloaded
  type: dict
  contains:
    bytes: {description: Bytes downloaded by this run., type: int, sample: 1048576}
    resumed_from:
      description: Bytes that an earlier, broken download had already fetched.
      type: int
      sample: 0
    attempts: {description: Ranged reads needed., type: int, sample: 1}
tables:
  description: Exact row count of every table of the database (C(schema.table)), after the load.
  returned: when the database is there (not in check mode before a load)
  type: dict
  sample: {public.items: 200, public.orders: 100}
rows_total:
  description: Sum of RV(tables).
  returned: with RV(tables)
  type: int
  sample: 300
blobs_deleted:
  description: Blobs deleted with O(delete_blobs).
  returned: always
  type: list
  elements: str
  sample: []
work_dir:
  description: The private working folder; removed after a successful load, kept after a failure for the re-run.
  returned: always
  type: str
  sample: /tmp/azure-backup-load-5b0f6c1e2d3a4b5c6d7e
msg:
  description: What the task did, or would do in check mode.
  returned: always
  type: str
  sample: Loaded flex-20250131_inventory.sql into inventory_restored on targetflexserver (2 tables, 300 rows).
error:
  description:
    - The error, structured (same keys as RV(azure_backup.dataprotection.pg_restore_validate#module:error)), when the
      task failed because of Azure or of the target server.
  returned: on failure
  type: dict
  sample:
    what: Could not list the restored files in https://acct.blob.core.windows.net/restored
    code: AuthorizationPermissionMismatch
    message: This request is not authorized to perform this operation using this permission.
    recommended_actions: ["Assign 'Storage Blob Data Reader' ... to the identity that runs Ansible ..."]
    status: 403
'''

import concurrent.futures
import hashlib
import os
import shutil
import tempfile

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _arm_client
from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _blob_download as blobs
from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _pg_load as pgload
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._auth import get_access_token
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    DataProtectionError, error_from_response,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import (
    job_guid, parse_container_url, parse_secret_uri, vault_id,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._jobs import normalize_job
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._keyvault import SecretStore, keyvault_scope
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import DataProtectionModule

ARGSPEC = {
    'job_id': {'type': 'str'},
    'vault_name': {'type': 'str'},
    'resource_group': {'type': 'str'},
    'container_url': {'type': 'str'},
    'file_prefix': {'type': 'str'},
    'source_database': {'type': 'str'},
    'target_database': {'type': 'str'},
    'host': {'type': 'str', 'required': True},
    'port': {'type': 'int', 'default': 5432},
    'login_user': {'type': 'str'},
    'login_password': {'type': 'str', 'no_log': True},
    'login_secret_uri': {'type': 'str', 'no_log': False},  # an address, not a secret
    'ssl_mode': {'type': 'str', 'choices': ['verify-full', 'verify-ca', 'require'], 'default': 'verify-full'},
    'ssl_root_cert': {'type': 'path'},
    'jobs': {'type': 'int', 'default': 1},
    'no_owner': {'type': 'bool', 'default': True},
    'role': {'type': 'str'},
    'no_privileges': {'type': 'bool', 'default': True},
    'overwrite': {'type': 'bool', 'default': False},
    'download_dir': {'type': 'path'},
    'delete_blobs': {'type': 'bool', 'default': False},
    'pg_bin_dir': {'type': 'path'},
}
CONSTRAINTS = {
    'mutually_exclusive': [('job_id', 'container_url'), ('login_password', 'login_secret_uri')],
    'required_one_of': [('job_id', 'container_url'), ('login_password', 'login_secret_uri')],
    'required_together': [('container_url', 'file_prefix')],
    'required_by': {'job_id': ('vault_name', 'resource_group')},
}

_PG_ACTIONS = {
    'login': 'Check login_user and the password (login_password or the secret of login_secret_uri).',
    'unreachable': 'The runner must reach host:port: check the name, the server\'s firewall rules or private '
                   'endpoint, and that the server is started.',
    'tls': 'Give ssl_root_cert the CA that signed the server\'s certificate, and host the name in that certificate.',
    'permission': 'Use a login with CREATEDB (on a flexible server, the administrator or a member of azure_pg_admin).',
    'missing_tool': 'Install the PostgreSQL client tools on the runner, or set pg_bin_dir.',
    'restore': 'The database was dropped again; fix the cause (often a missing extension or role on the target: '
               'allow the extension in azure.extensions, or keep no_owner/no_privileges on) and run the task again.',
}


def _pg_error(err, what):
    return DataProtectionError(what, err.message, code='PostgreSQL' + err.kind.title().replace('_', ''),
                               recommended_actions=[_PG_ACTIONS[err.kind]] if err.kind in _PG_ACTIONS else None)


def _source(module):
    """(container_url, prefix) from the job or from the options."""
    params = module.params
    if not params['job_id']:
        parse_container_url(params['container_url'])  # ValueError for a URL that names no container
        return params['container_url'].rstrip('/'), params['file_prefix']
    guid = job_guid(params['job_id'])
    client = module.client
    what = f'Get restore job {guid}'
    response = client.get(f"{vault_id(client.subscription_id, params['resource_group'], params['vault_name'])}"
                          f'/backupJobs/{guid}')
    if response.status_code == 404:
        raise error_from_response(what, response)
    job = normalize_job(client.json_or_raise(response, what))
    if not job['succeeded']:
        raise DataProtectionError(what, f"the job is {job['status']}, not Completed: its files are "
                                  + ('not complete yet.' if not job['is_terminal'] else 'not there.'),
                                  code='JobNotCompleted', job_id=guid, recommended_actions=[
                                      'Wait for the job (pg_restore wait: true, or dataprotection_job_info) and run '
                                      'the task again.' if not job['is_terminal'] else
                                      'Run the restore as files again and load the files of a completed job.'])
    return blobs.split_destination(job['recovery_destination'])


def _login(module):
    """(user, password) from the options or the Key Vault secret (the password is masked from here on)."""
    params = module.params
    user, password = params['login_user'], params['login_password']
    if params['login_secret_uri']:
        base, name, version = parse_secret_uri(params['login_secret_uri'])
        client = _arm_client.ArmClient(module.credential, module.cloud, module.auth_params.get('subscription_id'),
                                       verify=module.verify, warn=module.warn, session=module.session)
        bundle = SecretStore(client, base, name, keyvault_scope(module.cloud, base)).get(version)
        if bundle is None:
            raise DataProtectionError(f'Could not read secret {name} from {base}', 'the secret does not exist.',
                                      code='SecretNotFound', recommended_actions=['Check login_secret_uri.'])
        value = bundle.get('value') or ''
        module.no_log_values.add(value)
        parsed = pgload.parse_ado_connection(value)
        password = parsed['password'] if parsed else value
        user = user or (parsed or {}).get('user')
    if password:
        module.no_log_values.add(password)
    if not user:
        raise ValueError('login_user is required (the secret of login_secret_uri holds no User Id).')
    # A single-server style login 'user@server' is not a flexible server login.
    return user.split('@', 1)[0] if '@' in user and '.' not in user.split('@', 1)[1] else user, password


def _work_dir(params, key, create=True):
    """The private working folder of this file and target: made 0700; an existing one must be ours and private."""
    base = params['download_dir'] or tempfile.gettempdir()
    path = os.path.join(base, 'azure-backup-load-' + key[:20])
    if not create:
        return path
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:
        info = os.lstat(path)
        if not os.path.isdir(path) or os.path.islink(path) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise ValueError(f'{path} exists but is not a private folder of this user (mode 0700): remove it or set '
                             'download_dir.') from None
    return path


def _pick(listing, prefix, source_database, container_url):
    found = blobs.classify([b['name'] for b in listing], prefix)
    dbs = found['databases']
    if not dbs:
        raise DataProtectionError(f'Could not find the restored files in {container_url}',
                                  f"no '{prefix}_<database>.sql' (or '{prefix}.dump') under the prefix '{prefix}': "
                                  'the files were deleted, or the prefix is not the one of the restore.',
                                  code='RestoredFilesNotFound', recommended_actions=[
                                      'Check file_prefix / job_id, or run the restore as files again.'])
    if source_database is None:
        if len(dbs) > 1:
            raise ValueError(f"the files hold databases {', '.join(sorted(dbs))}: set source_database to one of them.")
        source_database = next(iter(dbs))
    if source_database not in dbs:
        raise ValueError(f"no file of database '{source_database}' under the prefix '{prefix}' (there are: "
                         f"{', '.join(sorted(dbs)) or 'none'}): check source_database.")
    blob = next(b for b in listing if b['name'] == dbs[source_database])
    return blob, found, source_database


def _verify(target, name, expected):
    counts = target.table_counts(name)
    missing = sorted(set(expected) - set(counts))
    if missing:
        raise DataProtectionError(f'Could not verify database {name}', 'tables of the archive are missing after the '
                                  f"load: {', '.join(missing)}.", code='VerificationFailed')
    return counts


def _sign_in_to_storage(credential, scope):
    """The storage token; azure-storage-blob is imported on the way (both are needed before the first blob call)."""
    token = get_access_token(credential, scope)
    blobs.sdk_import_error()
    return token


# pylint: disable-next=too-many-locals,too-many-branches,too-many-statements
def run(module):
    params = module.params
    if params['jobs'] < 1:
        raise ValueError('jobs must be 1 or more.')
    # Sign in to storage (and import azure-storage-blob) while the job is read from ARM and the login secret from Key
    # Vault: each mostly waits on the network. Its errors are raised only after theirs, in the order of before.
    credential, scope = module.credential, module.cloud.storage_scope
    storage = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix='storage-sign-in')
    storage_token = storage.submit(_sign_in_to_storage, credential, scope)
    storage.shutdown(wait=False)
    container_url, prefix = _source(module)
    user, password = _login(module)
    target = pgload.PgTarget(params['host'], params['port'], user, password, params['ssl_mode'],
                             params['ssl_root_cert'], params['pg_bin_dir'])
    result = {'changed': False, 'loaded': False, 'blobs_deleted': [], 'work_dir': None}

    # The storage token before any blob call: a sign-in problem is reported as such, not as a storage error.
    token = storage_token.result()
    import_error = blobs.sdk_import_error()     # imported by now (with the sign-in): a dictionary look-up
    if import_error is not None:
        module.fail_json(msg=missing_required_lib('azure-storage-blob'), exception=str(import_error))
    files = blobs.RestoredFiles(container_url, credential, principal=blobs.token_principal(token))
    source_database = params['source_database']
    listing = None
    if source_database is None:
        listing = files.list(prefix)
        source_database = _pick(listing, prefix, None, container_url)[2]
    archive_name = blobs.database_blob(prefix, source_database) if source_database else f'{prefix}.dump'
    name = params['target_database'] or source_database
    if not name:
        raise ValueError('target_database is required: the files are of a single server database without a name.')
    key = hashlib.sha256(f'{container_url}/{archive_name}'.encode()).hexdigest()
    marker_source = key[:32]
    # Check mode leaves the working folder alone (a broken download in it stays for the real run): the pgpass file
    # of its reads goes to a folder of its own.
    work = _work_dir(params, hashlib.sha256(f'{key}|{params["host"]}|{params["port"]}|{name}'.encode()).hexdigest(),
                     create=not module.check_mode)
    session_dir = tempfile.mkdtemp(prefix='azure-backup-check-') if module.check_mode else work
    result['work_dir'] = work
    result['database'] = {'host': params['host'], 'port': params['port'], 'name': name}
    what = f"Load database {name} on {params['host']}"
    try:
        with target.session(session_dir):
            try:
                existing = target.database(name)
            except pgload.PgLoadError as err:
                raise _pg_error(err, f"Could not connect to {params['host']}:{params['port']}") from None
            state = 'absent'
            if existing is not None:
                marker = existing['marker'] or {}
                state = 'foreign' if marker.get('source') != marker_source else (
                    'complete' if marker.get('state') == 'complete' else 'interrupted')
            result['database']['state'] = state
            if state == 'complete':
                result['tables'] = target.table_counts(name)
                result['rows_total'] = sum(result['tables'].values())
                result['msg'] = (f'Database {name} on {params["host"]} was already loaded from {archive_name}: '
                                 'nothing to do.')
                if not module.check_mode:
                    shutil.rmtree(work, ignore_errors=True)
                return result
            if state == 'foreign' and not params['overwrite']:
                # A run killed in the instant between CREATE DATABASE and its COMMENT leaves an empty database
                # without the marker: say so when it is empty, but still never drop it unasked.
                empty = not existing['comment'] and not target.table_counts(name)
                raise DataProtectionError(what, f'a database named {name} already exists and was not loaded from '
                                          f'{archive_name} by this module' + (
                                              ' (it is empty and has no comment: an interrupted run of this module '
                                              'may have just created it).' if empty else '.'),
                                          code='DatabaseAlreadyExists',
                                          recommended_actions=['Give another target_database, or set overwrite: true '
                                                               'to drop that database first (its data is lost).'])
            listing = listing if listing is not None else files.list(prefix)
            blob, found, _db = _pick(listing, prefix, source_database, container_url)
            result['files'] = {'container_url': container_url, 'prefix': prefix, 'archive': blob['name'],
                               'size': blob['size'], 'md5': blob['md5'],
                               'databases': sorted(d for d in found['databases'] if d),
                               'server_files': found['server_files']}
            if module.check_mode:
                drop = {'interrupted': ' (after dropping the half-loaded one)',
                        'foreign': ' (after dropping the existing one: overwrite)'}.get(state, '')
                result.update(changed=True, msg=f"Would download {blob['name']} ({blob['size']} bytes) from "
                              f'{container_url} and load it into a new database {name} on {params["host"]}{drop}.')
                return result

            archive = os.path.join(work, 'archive.dump')
            last = [0]

            def show(done, total):
                if done - last[0] >= 64 * 1024 * 1024 or done == total:
                    last[0] = done
                    module.progress(f"download {blob['name']}: {done // 1048576} of {total // 1048576} MiB")

            # One job: pg_restore reads the archive while it downloads (the file is kept, for a resume after a
            # break). The database stays marked 'loading' until the whole file has passed its length and MD5 check
            # and pg_restore has succeeded; on any failure it is dropped (ours, half-loaded: a re-run starts clean).
            # Several jobs need the whole file first (pg_restore -j seeks in it).
            stream = params['jobs'] == 1
            if not stream:
                result['download'] = files.download(blob, archive, progress=show)
            try:
                if state != 'absent':
                    target.drop_database(name)
                    result['changed'] = True
                target.create_database(name, pgload.marker_text('loading', marker_source))
                result['changed'] = True
                try:
                    if stream:
                        result['download'] = target.restore_stream(
                            name, lambda write: files.download(blob, archive, progress=show, sink=write),
                            params['no_owner'], params['role'], params['no_privileges'])
                    else:
                        target.restore(name, archive, params['jobs'], params['no_owner'], params['role'],
                                       params['no_privileges'])
                except (pgload.PgLoadError, DataProtectionError):
                    target.drop_database(name)
                    raise
                expected = target.archive_tables(archive)
                target.set_marker(name, pgload.marker_text('complete', marker_source))
            except pgload.PgLoadError as err:
                raise _pg_error(err, what) from None
            result['loaded'] = True
            result['tables'] = _verify(target, name, expected)
            result['rows_total'] = sum(result['tables'].values())
        if params['delete_blobs'] and files.delete(blob['name']):
            result['blobs_deleted'].append(blob['name'])
    except DataProtectionError as err:
        module.fail_from_error(err, **result)   # with changed=true when the database was made
    finally:
        if module.check_mode:
            shutil.rmtree(session_dir, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    result['msg'] = (f"Loaded {blob['name']} into {name} on {params['host']} ({len(result['tables'])} tables, "
                     f"{result['rows_total']} rows).")
    return result


def main():
    module = DataProtectionModule(argument_spec=ARGSPEC, supports_check_mode=True, **CONSTRAINTS)
    module.exit_with(run)


if __name__ == '__main__':
    main()

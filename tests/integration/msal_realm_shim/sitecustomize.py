# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only: on PYTHONPATH for the ansible-playbook runs of tests/integration/test_auth_user_password.py.

MSAL (1.39) sends the user realm discovery that comes before a password sign-in to
https://<host>/common/userrealm/<user>, dropping the authority's port (msal.authority.Authority.user_realm_discovery):
against the emulator (https://127.0.0.1:<port>) it reaches port 443, where nothing listens, and the sign-in fails
before the password is sent. This tells MSAL, in the processes of those runs only, what it concludes itself from a
404 there: the host has no user realm endpoint, so the password goes straight to the token endpoint. Real authorities
listen on 443 and need nothing of the kind; an authority on another port does (see the report on issue 15, item 9).
"""

try:
    from msal.authority import Authority
except ImportError:  # a Python without MSAL: nothing to tell it
    Authority = None

if Authority is not None:
    Authority._domains_without_user_realm_discovery.add('127.0.0.1')  # pylint: disable=protected-access

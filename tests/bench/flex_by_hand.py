#!/usr/bin/env python3
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a user scripts by hand to load a flexible server's restored file (the bench's alternative to
pg_restore_files_to_server): azure-storage-blob's download_blob into a file, then createdb and pg_restore.

Usage: flex_by_hand.py CONTAINER_URL BLOB DEST_FILE DATABASE   (AZURE_* and PG* from the environment)
"""
import os
import subprocess
import sys

from azure.identity import ClientSecretCredential
from azure.storage.blob import ContainerClient


def main(container_url, blob, dest, database):
    cred = ClientSecretCredential(os.environ["AZURE_TENANT"], os.environ["AZURE_CLIENT_ID"], os.environ["AZURE_SECRET"],
                                  authority=os.environ["AZURE_CLOUD_ENVIRONMENT"], disable_instance_discovery=True)
    client = ContainerClient.from_container_url(container_url, credential=cred)
    with open(dest, "wb") as fh:
        client.download_blob(blob).readinto(fh)
    subprocess.run(["createdb", "-w", "-T", "template0", "--", database], check=True)
    subprocess.run(["pg_restore", "-w", "--no-owner", "--no-privileges", "--exit-on-error", "-d", database, dest],
                   check=True)
    os.unlink(dest)


if __name__ == "__main__":
    main(*sys.argv[1:5])

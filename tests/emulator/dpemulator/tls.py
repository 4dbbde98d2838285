"""The emulator's own CA and server certificate (generated once, kept in the state dir).

Clients trust DIR/ca.pem (REQUESTS_CA_BUNDLE); the same leaf certificate also serves the managed
PostgreSQL clusters so that `Ssl Mode=Require` connection strings work against them.
"""
import os

import trustme

CA_FILE = "ca.pem"
CERT_FILE = "server-cert.pem"
KEY_FILE = "server-key.pem"


def ensure_certs(state_dir):
    """Create ca.pem + server cert/key once; later starts reuse them (clients keep trusting the CA)."""
    paths = {name: os.path.join(state_dir, name) for name in (CA_FILE, CERT_FILE, KEY_FILE)}
    if all(os.path.exists(p) for p in paths.values()):
        return paths[CA_FILE], paths[CERT_FILE], paths[KEY_FILE]
    ca = trustme.CA(organization_name="dpemulator", organization_unit_name="local test CA")
    leaf = ca.issue_cert("127.0.0.1", "localhost", common_name="127.0.0.1")
    ca.cert_pem.write_to_path(paths[CA_FILE])
    with open(paths[CERT_FILE], "wb") as fh:
        for blob in leaf.cert_chain_pems:
            fh.write(blob.bytes())
    # The key is readable by root only; ClusterManager copies it into each data dir for postgres.
    fd = os.open(paths[KEY_FILE], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(leaf.private_key_pem.bytes())
    return paths[CA_FILE], paths[CERT_FILE], paths[KEY_FILE]

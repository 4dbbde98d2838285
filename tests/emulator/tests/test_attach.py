"""--pg-mode attach: the world's servers are existing PostgreSQL servers the emulator does not manage."""
import os
import shutil

import pytest
import yaml

from dpemulator import postgres as pg
from dpemulator.clusters import free_port

from dpemu_helpers import Emulator, cli, make_state_dir

SUB = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def attached_world():
    base = make_state_dir()
    os.chmod(base, 0o711)
    mgr = pg.ClusterManager(os.path.join(base, "external"))
    server = mgr.ensure("external", free_port(), "extadmin", "Ext-Admin-Pw-1")
    pg.create_sample_database(server, "salesdb", 50)
    world = {"tenant_id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "subscriptions": [{"id": SUB}],
             "principals": [{"name": "auto", "client_id": "c1", "client_secret": "s3cret-Attach",
                             "object_id": "0a0a0a0a-0000-4000-8000-000000000001"}],
             "role_assignments": [{"principal": "auto", "role": "Owner", "scope": "subscription"}],
             "vaults": [{"name": "v1", "resource_group": "rg1", "principal_id": "0a0a0a0a-0000-4000-8000-000000000002"}],
             "postgres_servers": [{"name": "extsrv", "resource_group": "rg1", "version": "12",
                                   "admin_user": "extadmin", "admin_password": "Ext-Admin-Pw-1",
                                   "attach": {"host": server.host, "port": server.port}}],
             "backup_instances": [{"vault": "v1", "server": "extsrv", "database": "salesdb", "policy": "p"}]}
    path = os.path.join(base, "world.yml")
    with open(path, "w") as fh:
        yaml.safe_dump(world, fh)
    yield path, server
    mgr.stop_all()
    shutil.rmtree(base, ignore_errors=True)


def test_attach_mode(attached_world):
    path, server = attached_world
    emu = Emulator(make_state_dir(), path, knobs=[])
    try:
        cli("start", "--state", emu.state, "--world", path, "--pg-mode", "attach")
        emu.load()
        info = emu.servers()["extsrv"]
        assert info["port"] == server.port and info["version"] == "12" and info["real_version"] >= 10
        dbs = emu.arm("GET", "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.DBforPostgreSQL/servers/"
                             "extsrv/databases" % SUB, params={"api-version": "2017-12-01"}).json()["value"]
        assert "salesdb" in [d["name"] for d in dbs]
        rp = emu.control("POST", "/backup", {"backup_instance": "extsrv/salesdb"})
        assert rp["properties"]["recoveryPointDataStoresDetails"][0]["type"] == "VaultStore"
    finally:
        emu.stop()
        shutil.rmtree(emu.state, ignore_errors=True)
    # The attached server is not ours to stop.
    assert pg.server_version(server) >= 10

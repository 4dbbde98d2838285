import datetime
def test_scratch(emulator, run_role, unique_name):
    emulator.wait_idle()
    p1 = emulator.backup('empdb11')
    p2 = emulator.backup('empdb11')
    base = {
        'postgresql_restore_vault_name': 'TestBkpVault',
        'postgresql_restore_vault_resource_group': 'testBkpVaultRG',
        'postgresql_restore_datasource_id': emulator.server_id('sourceossserver', 'sourcerg') + '/databases/empdb11',
        'postgresql_restore_target_server_id': emulator.server_id('targetossserver'),
        'postgresql_restore_target_database_name': unique_name('scr'),
        'postgresql_restore_secret_uri': emulator.kv_uri() + 'secrets/targetossserver-conn',
        'postgresql_restore_recovery_point_before': p1['properties']['recoveryPointTime'],
    }
    w = emulator.writes()
    r = run_role(base, check=True)
    print(r.rc, r.changed, r.task('Show the result')['result'])
    print('writes', w, emulator.writes())
    print(r.stdout[-3000:])

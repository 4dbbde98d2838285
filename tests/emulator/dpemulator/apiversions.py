"""api-versions each provider accepts.  Data Protection: the stable spec folders, the readme tags,
the TypeSpec versions and 2026-06-01 (what azure-mgmt-dataprotection 2.2.0 sends); reference §1."""

DATAPROTECTION = frozenset("""
2021-01-01 2021-02-01-preview 2021-06-01-preview 2021-07-01 2021-10-01-preview 2021-12-01-preview 2022-01-01
2022-02-01-preview 2022-03-01 2022-03-31-preview 2022-04-01 2022-05-01 2022-09-01-preview 2022-10-01-preview
2022-11-01-preview 2022-12-01 2023-01-01 2023-04-01-preview 2023-05-01 2023-06-01-preview 2023-08-01
2023-08-01-preview 2023-11-01 2023-12-01 2024-02-01-preview 2024-03-01 2024-04-01 2025-01-01 2025-02-01-preview
2025-07-01 2025-09-01 2026-03-01 2026-04-01-preview 2026-06-01
""".split())

AUTHORIZATION = frozenset("""
2015-06-01 2015-07-01 2017-05-01 2018-01-01-preview 2018-07-01 2018-09-01-preview 2020-03-01-preview
2020-04-01-preview 2020-08-01-preview 2020-10-01-preview 2021-03-01-preview 2022-01-01-preview 2022-04-01
2022-05-01-preview 2022-08-01-preview 2023-07-01-preview 2024-09-01-preview
""".split())

KEYVAULT = frozenset("""
2015-06-01 2016-10-01 2018-02-14 2019-09-01 2020-04-01-preview 2021-04-01-preview 2021-06-01-preview 2021-10-01
2021-11-01-preview 2022-02-01-preview 2022-07-01 2022-11-01 2023-02-01 2023-07-01 2024-04-01-preview 2024-11-01
2024-12-01-preview 2025-05-01
""".split())

KEYVAULT_DATA = frozenset("7.0 7.1 7.2 7.3 7.4 7.5 7.6 2025-07-01".split())

POSTGRES_SINGLE = frozenset("2017-12-01 2017-12-01-preview 2020-01-01 2020-01-01-privatepreview".split())

POSTGRES_FLEX = frozenset("""
2020-02-14-preview 2021-06-01 2021-06-01-preview 2022-01-20-preview 2022-03-08-preview 2022-12-01
2023-03-01-preview 2023-06-01-preview 2023-12-01-preview 2024-03-01-preview 2024-08-01 2024-11-01-preview
2025-01-01-preview 2025-06-01-preview 2025-08-01
""".split())

STORAGE = frozenset("""
2019-04-01 2019-06-01 2020-08-01-preview 2021-01-01 2021-02-01 2021-04-01 2021-06-01 2021-08-01 2021-09-01
2022-05-01 2022-09-01 2023-01-01 2023-04-01 2023-05-01 2024-01-01 2025-01-01 2025-06-01
""".split())

RESOURCES = frozenset("""
2016-06-01 2018-05-01 2019-05-01 2019-10-01 2020-01-01 2020-06-01 2021-01-01 2021-04-01 2022-01-01 2022-09-01
2022-12-01 2024-03-01 2024-07-01 2024-11-01 2025-04-01
""".split())

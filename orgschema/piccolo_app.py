"""The Piccolo app that consumers add to their ``APP_REGISTRY``.

``APP_REGISTRY = AppRegistry(apps=["orgschema.piccolo_app"])`` is enough for
``piccolo migrations forwards all`` to create the whole schema.
"""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig

from orgschema.tables import ALL_TABLES

APP_NAME = "orgschema"

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    # Absolute, so migrations are found from any working directory and from
    # an installed wheel.
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=list(ALL_TABLES),
    # The studio logs in through Piccolo Admin, which keeps its sessions in
    # Piccolo's own `piccolo_user` and `sessions` tables (see docs/studio.md);
    # listing their apps here makes registering orgschema alone migrate them.
    migration_dependencies=[
        "piccolo.apps.user.piccolo_app",
        "piccolo_api.session_auth.piccolo_app",
    ],
    commands=[],
)

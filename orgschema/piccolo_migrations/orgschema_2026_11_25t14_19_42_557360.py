from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-25T14:19:42:557360"
VERSION = "1.38.0"
DESCRIPTION = "environment_marker"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="orgschema", description=DESCRIPTION
    )

    manager.add_table(
        class_name="EnvironmentMarker",
        tablename="environment_marker",
        schema=None,
        columns=None,
    )

    manager.add_column(
        table_class_name="EnvironmentMarker",
        tablename="environment_marker",
        column_name="environment",
        db_column_name="environment",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="EnvironmentMarker",
        tablename="environment_marker",
        column_name="created_at",
        db_column_name="created_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": TimestamptzNow(),
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager

"""The Piccolo configuration orgschema falls back on when its caller has none.

``orgschema`` commands use the caller's ``piccolo_conf`` module (through
``PICCOLO_CONF`` or a ``piccolo_conf.py`` on the path) when there is one, so a
service's own app registry is honoured; otherwise they use this module: the
database from ``DATABASE_URL`` (or the embedded server) and the orgschema app.
"""

from piccolo.conf.apps import AppRegistry

from orgschema.database import create_engine

DB = create_engine()

APP_REGISTRY = AppRegistry(apps=["orgschema.piccolo_app"])

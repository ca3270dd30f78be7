"""This repository's own Piccolo configuration (development and tests).

``DATABASE_URL`` selects the database; unset, the embedded PostgreSQL server
starts on demand. Consumers write their own ``piccolo_conf.py``: see README.md.
"""

from orgschema.conf import APP_REGISTRY, DB

__all__ = ["APP_REGISTRY", "DB"]

#!/usr/bin/env python3
"""The runtime migrator for a release step: ``python scripts/migrate.py [options]``.

The same as ``orgschema migrate`` (see docs/deploy.md); exits 0 when the
database is up to date.
"""

from orgschema.cli import main

if __name__ == "__main__":
    main(["migrate", *__import__("sys").argv[1:]], prog_name="migrate.py")

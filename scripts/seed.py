#!/usr/bin/env python3
"""Seed the development database: the same as ``orgschema seed`` (see docs/seeding.md).

.venv/bin/python scripts/seed.py [--env development|test] [--users N]
"""

import sys

from orgschema.cli import main

if __name__ == "__main__":
    main(["seed", *sys.argv[1:]], prog_name="scripts/seed.py")

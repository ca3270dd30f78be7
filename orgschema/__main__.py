"""``python -m orgschema``: the same as the ``orgschema`` command."""

from orgschema.cli import main

main(prog_name="orgschema")

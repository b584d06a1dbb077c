"""`python -m adyn ...` runs the `adyn` command (see `adyn.cli`)."""

from adyn.cli import main

main()

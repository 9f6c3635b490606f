"""CLI subcommands; each module registers its commands on `georeason.cli.app`."""

from georeason.commands import geo_cmd  # noqa: F401

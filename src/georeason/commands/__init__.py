"""CLI subcommands; each module registers its commands on `georeason.cli.app`."""

from georeason.commands import data_cmd  # noqa: F401
from georeason.commands import eval_cmd  # noqa: F401
from georeason.commands import geo_cmd  # noqa: F401
from georeason.commands import locate  # noqa: F401
from georeason.commands import score  # noqa: F401
from georeason.commands import serve_cmd  # noqa: F401
from georeason.commands import synth  # noqa: F401
from georeason.commands import train  # noqa: F401

"""CLI subcommands; each module registers its commands on `georeason.cli.app`."""

from georeason.commands import (  # noqa: F401  (imported for their registration side effect)
    data_cmd,
    data_scale,
    demo,
    eval_cmd,
    geo_cmd,
    locate,
    score,
    serve_cmd,
    synth,
    train,
)

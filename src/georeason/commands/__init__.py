"""The CLI's commands: one module per command (or per group of commands), each holding them
on a ``typer.Typer`` of its own (``module.app``); :mod:`georeason.cli` adds them to the
``georeason`` app. What the commands share is :mod:`georeason.commands.common`; a
pipeline command's options come from its config dataclass
(:mod:`georeason.commands.options`)."""

"""`neocloud engines ...`: which engine manages each fabric, its drift, reconcile now.

`engines_app` is the one Typer group of every engine command. An engine's own subcommands
register into it from `cli/main.py` (for example
`engines_app.add_typer(kueue_app, name="kueue")`); commands common to every engine
(`status`, `reconcile`, `set`, `unset`, `manual`) live here.
"""

from __future__ import annotations

import typer

engines_app = typer.Typer(
    help="Engines (Slurm, Kueue): carry contracts onto the clusters, read back what ran.",
    no_args_is_help=True,
)

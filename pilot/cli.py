"""The ``pilot`` command: one entry point for every Pilothouse process and the local cluster."""

from __future__ import annotations

import typer

app = typer.Typer(help="Pilothouse: a Kubernetes-compatible orchestrator in Python.", no_args_is_help=True,
                  add_completion=False)



@app.callback()
def _root() -> None:
    """Pilothouse: a Kubernetes-compatible orchestrator in Python."""


_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command("kvstore", context_settings=_PASSTHROUGH, add_help_option=False)
def kvstore(ctx: typer.Context) -> None:
    """Run one member of the Raft-replicated store (etcd v3 JSON API). `pilot kvstore --help` for flags."""
    from kvstore.member import main

    main(list(ctx.args))


@app.command("apiserver", context_settings=_PASSTHROUGH, add_help_option=False)
def apiserver(ctx: typer.Context) -> None:
    """Serve the Kubernetes API over the store. `pilot apiserver --help` for flags."""
    from apiserver.app import main

    main(list(ctx.args))


if __name__ == "__main__":  # pragma: no cover
    app()

"""The ``pilot`` command: one entry point for every Pilothouse process and the local cluster."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Pilothouse: a Kubernetes-compatible orchestrator in Python.", no_args_is_help=True,
                  add_completion=False)
console = Console()

_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
STATE_DIR_HELP = "state directory (kubeconfig, credentials, data, logs, pids)"


@app.callback()
def _root() -> None:
    """Pilothouse: a Kubernetes-compatible orchestrator in Python."""


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


@app.command("scheduler", context_settings=_PASSTHROUGH, add_help_option=False)
def scheduler(ctx: typer.Context) -> None:
    """Assign pending pods to nodes. `pilot scheduler --help` for flags."""
    from scheduler.app import main

    main(list(ctx.args))


@app.command("kubelet", context_settings=_PASSTHROUGH, add_help_option=False)
def kubelet(ctx: typer.Context) -> None:
    """Run pods on a node (process, docker or fake runtime). `pilot kubelet --help` for flags."""
    from kubelet.app import main

    main(list(ctx.args))


@app.command("controller-manager", context_settings=_PASSTHROUGH, add_help_option=False)
def controller_manager(ctx: typer.Context) -> None:
    """Run the controllers (ReplicaSet, Deployment, GC, namespaces, nodes, ...). `pilot controller-manager --help` for flags."""
    from controllers.app import main

    main(list(ctx.args))


@app.command("proxy", context_settings=_PASSTHROUGH, add_help_option=False)
def proxy(ctx: typer.Context) -> None:
    """Service proxy of one node (ClusterIP, NodePort, LoadBalancer; TCP and UDP). `pilot proxy --help` for flags."""
    from proxy.app import main

    main(list(ctx.args))


@app.command("dns", context_settings=_PASSTHROUGH, add_help_option=False)
def dns(ctx: typer.Context) -> None:
    """Cluster DNS (<svc>.<ns>.svc.cluster.local, SRV, headless). `pilot dns --help` for flags."""
    from proxy.dns import main

    main(list(ctx.args))


@app.command("ingress", context_settings=_PASSTHROUGH, add_help_option=False)
def ingress(ctx: typer.Context) -> None:
    """Ingress controller for the IngressClass `pilot` (HTTP, HTTPS by SNI). `pilot ingress --help` for flags."""
    from proxy.ingress import main

    main(list(ctx.args))


@app.command("up")
def up(state_dir: Path = typer.Option(Path(".pilot"), help=STATE_DIR_HELP),
       detach: bool = typer.Option(False, "--detach", "-d", help="return once the cluster is ready"),
       api_port: int = typer.Option(6443, help="first API server port, 0 = any free (first `up` only)"),
       store_port: int = typer.Option(23790, help="base port of the store members, 0 = any free (first `up` only)"),
       apiservers: int = typer.Option(2, help="API server replicas (first `up` only)"),
       demo: bool = typer.Option(False, "--demo", help="also deploy a sample web app and print its URL"),
       timeout: float = typer.Option(90.0, help="seconds to wait for readiness with --detach")) -> None:
    """Start a local cluster (3 store members, API servers) as supervised processes."""
    from pilot import local

    started = time.monotonic()
    layout = local.prepare(state_dir, api_port=api_port, store_port=store_port, apiservers=apiservers)
    kubeconfig = layout.state_dir / "kubeconfig"
    progress = _StartProgress([c.name for c in layout.components()], started)
    if detach:
        with progress:
            ok = local.start_detached(layout, timeout=timeout, progress=progress)
        if not ok:
            console.print(f"[red]cluster not ready after {timeout:.0f}s[/red]; logs in {layout.state_dir / 'logs'}")
            raise typer.Exit(1)
        console.print(f"[green]Pilothouse is ready[/green] in {time.monotonic() - started:.1f}s. "
                      f"kubectl --kubeconfig {kubeconfig} get ns", highlight=False)
        if demo:
            _deploy_demo(layout)
        return

    def ready() -> None:
        progress.close()
        console.print(f"[green]Pilothouse is ready[/green] in {time.monotonic() - started:.1f}s. "
                      f"kubectl --kubeconfig {kubeconfig} get ns  (Ctrl-C stops)", highlight=False)
        if demo:
            import threading

            threading.Thread(target=_deploy_demo, args=(layout,), daemon=True).start()

    with progress:
        asyncio.run(local.supervise(layout, on_ready=ready, progress=progress))


class _StartProgress:
    """``pilot up``'s progress: one line per component going starting → healthy.

    On a terminal a live rich table (spinner while starting, the seconds it took once healthy);
    otherwise (pipes, CI, tests) one plain line per component as it becomes healthy, nothing redrawn.
    """

    def __init__(self, names: list[str], started: float) -> None:
        self.names = names
        self.started = started
        self.healthy_at: dict[str, float] = {}
        self.state: dict[str, str] = {n: "starting" for n in names}
        self.nodes_ready: float | None = None
        self._live: Any = None

    def __enter__(self) -> _StartProgress:
        if console.is_terminal:
            from rich.live import Live

            self._live = Live(self._render(), console=console, refresh_per_second=10, transient=False)
            self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.stop()
            self._live = None

    def __call__(self, rows: list[dict[str, Any]], ready: bool) -> None:
        now = time.monotonic() - self.started
        for row in rows:
            name = row["name"]
            self.state[name] = row["health"]
            if row["health"] == "ok" and name not in self.healthy_at:
                self.healthy_at[name] = now
                if self._live is None:
                    console.print(f"  {name:<22} healthy  {now:5.1f}s", highlight=False)
        if ready and self.nodes_ready is None:
            self.nodes_ready = now
            if self._live is None:
                console.print(f"  {'nodes':<22} Ready    {now:5.1f}s", highlight=False)
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table as RichTable

        table = RichTable.grid(padding=(0, 2))
        for name in self.names:
            if name in self.healthy_at:
                table.add_row(f"[green]✓[/green] {name}", "[green]healthy[/green]", f"{self.healthy_at[name]:.1f}s")
            else:
                table.add_row(Spinner("dots", text=f" {name}"), f"[yellow]{self.state.get(name, 'starting')}[/yellow]",
                              "")
        label = "[green]✓[/green] nodes" if self.nodes_ready is not None else Spinner("dots", text=" nodes")
        table.add_row(label, "[green]Ready[/green]" if self.nodes_ready is not None else "[yellow]registering[/yellow]",
                      f"{self.nodes_ready:.1f}s" if self.nodes_ready is not None else "")
        return table


def _deploy_demo(layout) -> None:  # type: ignore[no-untyped-def]
    from pilot import demo

    with console.status("deploying the demo app (Deployment ×3, Service, Ingress)…"):
        try:
            url = demo.deploy(layout)
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    console.print(f"[green]demo answers at[/green] {url}   (curl {url})")


@app.command("supervise", hidden=True)
def supervise(state_dir: Path = typer.Option(Path(".pilot"), help=STATE_DIR_HELP)) -> None:
    """Run the supervisor in the foreground (what `pilot up --detach` starts)."""
    from pilot import local

    local.main_supervise(str(state_dir))


@app.command("down")
def down(state_dir: Path = typer.Option(Path(".pilot"), help=STATE_DIR_HELP),
         purge: bool = typer.Option(False, "--purge", help="also delete the state directory (all data)")) -> None:
    """Stop everything `pilot up` started."""
    from pilot import local

    stopped = local.stop(state_dir) if state_dir.exists() else False
    console.print("stopped" if stopped else "nothing was running")
    if purge and state_dir.exists():
        shutil.rmtree(state_dir)
        console.print(f"removed {state_dir}")


@app.command("status")
def status(state_dir: Path = typer.Option(Path(".pilot"), help=STATE_DIR_HELP)) -> None:
    """One line per component: name, pid, URL, health; the store leader is marked."""
    from pilot import local

    if not (state_dir / "cluster.json").exists():
        console.print(f"no cluster in {state_dir}")
        raise typer.Exit(1)
    layout = local.prepare(state_dir)
    table = Table("component", "pid", "url", "health", "leader")
    rows = local.component_health(layout)
    for row in rows:
        color = "green" if row["health"] == "ok" else "red"
        table.add_row(row["name"], str(row["pid"] or "-"), row["url"], f"[{color}]{row['health']}[/{color}]",
                      "*" if row["leader"] else "")
    console.print(table)
    node_rows = local.nodes(layout)
    if node_rows:
        nodes_table = Table("node", "ready", "address")
        for node in node_rows:
            nodes_table.add_row(node["name"], node["ready"], node["address"])
        console.print(nodes_table)
    if any(r["health"] != "ok" for r in rows):
        raise typer.Exit(1)


@app.command("compose-init")
def compose_init(state_dir: Path = typer.Option(Path("/state"), help=STATE_DIR_HELP),
                 api_hosts: str = typer.Option("apiserver-1,apiserver-2", help="API server host names"),
                 published: str = typer.Option("127.0.0.1:6443", help="host:port where people reach the API"),
                 nodes: str = typer.Option("kubelet-1,kubelet-2", help="node names (one identity each)")) -> None:
    """Generate certificates, tokens and kubeconfigs for the docker compose topology (idempotent)."""
    from pilot import compose

    compose.init(state_dir, api_hosts=api_hosts.split(","), published=published, nodes=nodes.split(","))
    console.print(f"credentials in {state_dir}")


@app.command("chaos")
def chaos(state_dir: Path = typer.Option(Path(".pilot"), help=STATE_DIR_HELP),
          duration: float = typer.Option(60.0, help="seconds of fault injection"),
          seed: int = typer.Option(1, help="random seed (same seed, same schedule)"),
          keep_workload: bool = typer.Option(False, "--keep-workload",
                                             help="leave the chaos Deployment, Service, Ingress and ConfigMaps "
                                                  "in place (removed after the run by default)")) -> None:
    """Break the cluster under load, then check the invariants.

    A Deployment behind a Service and an Ingress serves requests, writers create and update
    ConfigMaps, watchers follow them. Faults on a bounded random schedule: kill -9, SIGSTOP,
    a store member partitioned from its peers (iptables, root only) or every component killed at
    once. One JSON line per fault (with its recovery time), then the report.
    """
    import json as _json

    from pilot import chaos as chaos_mod
    from pilot import local

    if not (state_dir / "cluster.json").exists():
        console.print(f"no cluster in {state_dir}; start one with `pilot up --detach`")
        raise typer.Exit(1)
    layout = local.prepare(state_dir)
    try:
        report = asyncio.run(chaos_mod.run(layout, duration=duration, seed=seed, keep_workload=keep_workload))
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print_json(_json.dumps(report.to_dict()))
    if not report.ok:
        raise typer.Exit(1)


@app.command("logs")
def logs(component: str, state_dir: Path = typer.Option(Path(".pilot"), help=STATE_DIR_HELP),
         follow: bool = typer.Option(False, "--follow", "-f")) -> None:
    """Print a component's log (e.g. kvstore-1, apiserver-1, supervisor)."""
    path = state_dir / "logs" / f"{component}.log"
    if not path.exists():
        console.print(f"no log for {component} in {path.parent}")
        raise typer.Exit(1)
    if follow:
        subprocess.run(["tail", "-n", "200", "-F", str(path)], check=False)
    else:
        sys.stdout.write(path.read_text(errors="replace"))


if __name__ == "__main__":  # pragma: no cover
    app()

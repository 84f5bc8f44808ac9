"""The `neocloud` command: a client of the REST API, plus the server-side commands."""

from __future__ import annotations

import typer

from neocloud.cli import meter_rollups
from neocloud.cli.agent import agent
from neocloud.cli.capacity import capacity_app, quote, quotes_app
from neocloud.cli.common import ClientSettings
from neocloud.cli.contracts import contracts_app
from neocloud.cli.engines import engines_app
from neocloud.cli.fleet import accelerators_app, deliveries_app, fleet_app, nodes_app, sites_app
from neocloud.cli.invoices import invoices_app, prices_app
from neocloud.cli.jobs import jobs_app
from neocloud.cli.kueue import kueue_app
from neocloud.cli.limits import limits
from neocloud.cli.meter import meter_app
from neocloud.cli.placement import (
    contract_allocation,
    contract_availability,
    node_fail,
    node_repair,
    placement_app,
    site_drain,
)
from neocloud.cli.plan import plan
from neocloud.cli.report import report
from neocloud.cli.server import db_app, demo, serve
from neocloud.cli.simulate import simulate
from neocloud.cli.tenants import audit_app, tenants_app, tokens_app

app = typer.Typer(
    name="neocloud",
    help="Control plane of a GPU neocloud. Client commands use --url/--token, NEOCLOUD_URL/NEOCLOUD_TOKEN or ~/.config/neocloud/config.toml.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    url: str | None = typer.Option(None, "--url", envvar="NEOCLOUD_URL", help="API base URL"),
    token: str | None = typer.Option(None, "--token", envvar="NEOCLOUD_TOKEN", help="bearer token"),
) -> None:
    ctx.obj = ClientSettings(url=url, token=token)


app.command()(serve)
app.command()(demo)
app.add_typer(db_app, name="db")
app.add_typer(fleet_app, name="fleet")
app.add_typer(sites_app, name="sites")
app.add_typer(nodes_app, name="nodes")
app.add_typer(accelerators_app, name="accelerators")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(tenants_app, name="tenants")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.command()(quote)
app.add_typer(quotes_app, name="quotes")
app.add_typer(contracts_app, name="contracts")
app.add_typer(capacity_app, name="capacity")
app.add_typer(placement_app, name="placement")
app.add_typer(jobs_app, name="jobs")
app.add_typer(meter_app, name="meter")
app.add_typer(invoices_app, name="invoices")
app.add_typer(prices_app, name="prices")
meter_app.command("rollups")(meter_rollups.rollups)
meter_app.command("close")(meter_rollups.close)
meter_app.command("rebuild")(meter_rollups.rebuild)
app.command()(agent)
nodes_app.command("fail")(node_fail)
nodes_app.command("repair")(node_repair)
contracts_app.command("allocation")(contract_allocation)
contracts_app.command("availability")(contract_availability)
sites_app.command("drain")(site_drain)
app.command()(simulate)
engines_app.add_typer(kueue_app, name="kueue")
app.add_typer(engines_app, name="engines")
app.command()(report)
app.command()(plan)
app.command()(limits)

if __name__ == "__main__":
    app()

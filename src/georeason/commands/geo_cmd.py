"""`georeason geocode`: reverse and forward geocoding from the command line."""

from __future__ import annotations

import json

import typer

from georeason.cli import app


@app.command("geocode")
def geocode(
    lat: float | None = typer.Option(None, help="Latitude in decimal degrees (reverse geocoding)."),
    lon: float | None = typer.Option(None, help="Longitude in decimal degrees (reverse geocoding)."),
    city: str | None = typer.Option(None, help="City name (forward geocoding)."),
    admin1: str | None = typer.Option(None, help="State / province name (forward geocoding)."),
    country: str | None = typer.Option(None, help="Country name, alias or ISO code (forward geocoding)."),
) -> None:
    """Coordinates -> place (--lat/--lon) or names -> place (--city/--admin1/--country), offline."""
    from georeason import geo

    if lat is not None or lon is not None:
        if lat is None or lon is None:
            raise typer.BadParameter("give both --lat and --lon")
        try:
            place = geo.reverse_geocode(lat, lon)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e
    else:
        if not (city or admin1 or country):
            raise typer.BadParameter("give --lat/--lon, or at least one of --city/--admin1/--country")
        found = geo.forward_geocode(city=city, admin1=admin1, country=country)
        if found is None:
            typer.echo("no match in the gazetteer", err=True)
            raise typer.Exit(1)
        place = found
    typer.echo(json.dumps(place.to_dict(), ensure_ascii=False))

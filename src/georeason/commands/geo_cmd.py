"""`georeason geocode`: reverse and forward geocoding from the command line."""

from __future__ import annotations

import math
from typing import Any

import typer

from georeason.commands.common import to_json

app = typer.Typer()  # its commands; georeason.cli adds them to the CLI

#: A named city farther than this from the point is flagged on stderr.
FAR_CITY_KM = 250.0


def reverse_place(lat: float, lon: float) -> dict[str, Any]:
    """The place of (lat, lon) as `georeason geocode` prints it: the gazetteer's place, whether the
    point is on land, and how far the named city is (at sea both are only the nearest ones)."""
    from georeason import geo

    geo.reverse_geocode(lat, lon)  # ValueError naming a bad value
    table = geo.reverse_geocode_batch([lat], [lon])
    place = table[0]
    assert place is not None  # validated above
    out: dict[str, Any] = {"lat": lat, "lon": lon, "on_land": bool(table.on_land[0]), **place.to_dict()}
    has_city = math.isfinite(place.city_lat) and math.isfinite(place.city_lon)
    out["city_distance_km"] = (
        round(float(geo.haversine_km(lat, lon, place.city_lat, place.city_lon)), 1) if has_city else None
    )
    return out


@app.command("geocode")
def geocode(
    lat: float | None = typer.Option(None, help="Latitude in decimal degrees (reverse geocoding)."),
    lon: float | None = typer.Option(None, help="Longitude in decimal degrees (reverse geocoding)."),
    city: str | None = typer.Option(None, help="City name (forward geocoding)."),
    admin1: str | None = typer.Option(None, help="State / province name (forward geocoding)."),
    country: str | None = typer.Option(None, help="Country name, alias or ISO code (forward geocoding)."),
) -> None:
    """Coordinates -> place (--lat/--lon) or names -> place (--city/--admin1/--country), offline, as JSON.

    Reverse geocoding also reports `on_land` and `city_distance_km`, the distance from the point to
    the named city: off the coast the country and city are only the nearest ones (a warning says so,
    as it does for a city over 250 km away), and where the gazetteer has no city (Antarctica)
    city_lat, city_lon and the distance are null.

    Examples:

    - `georeason geocode --lat 48.8566 --lon 2.3522`
    - `georeason geocode --city Biei --country Japan`
    """
    from georeason import geo

    if lat is not None or lon is not None:
        if lat is None or lon is None:
            raise typer.BadParameter("give both --lat and --lon")
        try:
            result = reverse_place(lat, lon)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e
        far = result["city_distance_km"]
        if not result["on_land"]:
            nearest = f"; the nearest place named is {result['city']}, {far:,.0f} km away" if far else ""
            typer.echo(
                f"warning: ({lat}, {lon}) is not on land: {result['country'] or 'no country'} is only the "
                f"nearest country{nearest}",
                err=True,
            )
        elif far is not None and far > FAR_CITY_KM:
            typer.echo(
                f"warning: the nearest place named, {result['city']}, is {far:,.0f} km from ({lat}, {lon})",
                err=True,
            )
    else:
        if not (city or admin1 or country):
            raise typer.BadParameter("give --lat/--lon, or at least one of --city/--admin1/--country")
        found = geo.forward_geocode(city=city, admin1=admin1, country=country)
        if found is None:
            asked = ", ".join(v for v in (city, admin1, country) if v)
            typer.echo(
                f"error: no place named {asked!r} in the gazetteer; check the spelling, or give the "
                "country (--country) or a larger city",
                err=True,
            )
            raise typer.Exit(1)
        result = found.to_dict()
    typer.echo(to_json(result))

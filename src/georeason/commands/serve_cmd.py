"""`georeason serve --model ...`: an OpenAI-compatible geolocation service.

See :mod:`georeason.serve.app` for the endpoints, the limits and what each
error status means.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from georeason.commands.common import require, require_backend

app = typer.Typer()  # its commands; georeason.cli adds them to the CLI


@app.command("serve")
def serve_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Model folder or hub id.", show_default=False)],
    backend: Annotated[str, typer.Option(help="Backend that runs the model: hf | vllm.")] = "hf",
    host: Annotated[
        str, typer.Option(help="Interface to bind (0.0.0.0 exposes it to the network).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    served_model_name: Annotated[
        str | None, typer.Option(help="Name clients use in 'model' (default: --model).")
    ] = None,
    max_concurrency: Annotated[
        int, typer.Option(help="Requests admitted at once; also the largest generation batch.")
    ] = 4,
    queue_timeout: Annotated[
        float, typer.Option(help="Seconds a request over the limit waits for a slot before 503 (0: at once).")
    ] = 30.0,
    max_request_bytes: Annotated[str, typer.Option(help="Body size limit (413 above), e.g. 20MB.")] = "20MB",
    max_pixels: Annotated[int | None, typer.Option(help="Resize images to at most this many pixels.")] = None,
    max_new_tokens_limit: Annotated[
        int, typer.Option(help="Largest max_tokens a client may ask for.")
    ] = 4096,
    max_prompt_tokens: Annotated[
        int | None,
        typer.Option(help="Largest prompt in tokens, image included (422 above; default 32768, <= context)."),
    ] = None,
    generation_timeout: Annotated[
        float, typer.Option(help="Seconds an admitted request may take before 504; its generation stops too.")
    ] = 300.0,
    max_image_pixels: Annotated[
        int | None,
        typer.Option(help="Most pixels an image may decode to (default: 4x the model's budget, >= 16M)."),
    ] = None,
    max_decodes: Annotated[int, typer.Option(help="Images decoded at once.")] = 2,
    shutdown_timeout: Annotated[
        float, typer.Option(help="Seconds in-flight requests get on SIGTERM before they are cancelled.")
    ] = 5.0,
    protocol: Annotated[
        str, typer.Option(help="Default protocol of /v1/locate (its form may name another).")
    ] = "geor",
    dtype: Annotated[str, typer.Option(help="Model dtype: auto | bfloat16 | float16 | float32.")] = "auto",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N.")] = "auto",
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve a model over HTTP: /v1/chat/completions, /v1/locate, /health.

    `POST /v1/locate` takes a multipart form: the photo in the field `image`, optional `protocol`,
    `max_tokens`, `temperature`; it answers the reasoning, the place and the coordinates as JSON.
    `GET /` is an upload page and `/docs` the API reference.

    Examples:

    - `georeason serve --model runs/demo/grpo --port 8000`, then
    - `curl -F image=@photo.jpg http://127.0.0.1:8000/v1/locate`, or
    - `georeason locate photo.jpg --backend openai --base-url http://127.0.0.1:8000/v1`
    """
    require("fastapi", "uvicorn", extra="serve")
    require_backend(backend)  # a missing extra is named before the model loads
    from georeason.infer.base import get_backend
    from georeason.serve.app import create_app, parse_size
    from georeason.serve.server import run

    try:
        limit = parse_size(max_request_bytes)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    options: dict[str, Any] = {"max_pixels": max_pixels}
    if backend == "hf":
        options.update(dtype=dtype, device=device, batch_size=max_concurrency)
    try:
        engine = get_backend(backend, model, **options)
    except ImportError:
        raise  # the CLI names the extra to install
    except Exception as e:
        typer.echo(f"error: cannot load {model!r} with the {backend} backend: {e}", err=True)
        raise typer.Exit(2) from e
    try:
        web = create_app(
            engine,
            model_name=served_model_name or model,
            max_concurrency=max_concurrency,
            max_request_bytes=limit,
            queue_timeout=queue_timeout,
            default_protocol=protocol,
            max_pixels=max_pixels,
            max_new_tokens_limit=max_new_tokens_limit,
            max_prompt_tokens=max_prompt_tokens,
            generation_timeout=generation_timeout,
            max_image_pixels=max_image_pixels,
            max_decodes=max_decodes,
            shutdown_timeout=shutdown_timeout,
        )
    except ValueError as e:
        engine.close()
        raise typer.BadParameter(str(e)) from e
    typer.echo(
        f"georeason serve: {served_model_name or model} on http://{host}:{port} (docs at /docs)", err=True
    )
    try:
        run(web, host=host, port=port, log_level=log_level, shutdown_timeout=shutdown_timeout)
    finally:
        engine.close()

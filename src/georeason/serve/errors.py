"""Every error reply of the server in one shape: the OpenAI error object.

``{"error": {"message", "type", "param", "code"}}`` whatever the status (``code`` is
the HTTP status), so the ``openai`` SDK, GLOBE's judge and the locate page read one
shape: FastAPI's validation errors, Starlette's 404/405, the handlers' own
:class:`ApiError` and an unhandled crash all pass through :func:`install_error_handlers`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("georeason.serve")

#: the error object's ``type`` per status (others: server_error >= 500, invalid_request_error below)
KINDS = {
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    503: "server_busy",
    504: "timeout",
}


def error_response(
    status: int, message: str, kind: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The OpenAI error object as a response."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


class ApiError(HTTPException):
    """An HTTP error that names the request field at fault (the error object's ``param``)."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(status, message)
        self.param = param


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems: list[str] = []
    params: list[str | None] = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        if err.get("type") == "json_invalid":
            # loc holds the character offset of the syntax error, not a field
            where = f" at character {loc[-1]}" if loc else ""
            reason = (err.get("ctx") or {}).get("error") or err.get("msg")
            problems.append(f"body is not valid JSON{where}: {reason}")
            params.append(None)
            continue
        problems.append(f"{'.'.join(loc)}: {err.get('msg')}" if loc else str(err.get("msg")))
        params.append(".".join(loc) or None)
    return error_response(
        422,
        "invalid request: " + "; ".join(problems),
        "invalid_request_error",
        params[0] if params else None,
    )


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    message = str(exc.detail)
    if status == 400:
        # Starlette / FastAPI on a body they cannot parse (bad multipart, no boundary): a
        # malformed request like any other, so the status this server uses for those.
        status, message = 422, f"invalid request: the body could not be parsed ({message})"
    return error_response(
        status,
        message,
        KINDS.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        getattr(exc, "param", None),
        headers=getattr(exc, "headers", None),
    )


async def _crash(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s", request.url.path)
    return error_response(500, f"internal error: {type(exc).__name__}", "server_error")


def install_error_handlers(app: FastAPI) -> None:
    """Answer validation errors, HTTP errors (FastAPI's and Starlette's 404/405) and crashes
    with the one error shape."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _crash)

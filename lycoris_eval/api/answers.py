"""How the API answers an error: :func:`http_error`, the one rendering of any error (its
class's status, the field it names, its message in the API's words), and
:class:`ErrorRoute`, the route class that sends every route's errors through it. A route
raises the error classes of :mod:`lycoris_eval.errors`, never a status.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from lycoris_eval.errors import LycorisEvalError, field_label, http_status, words


def http_error(exc: BaseException | None, location: str = "body", message: str | None = None) -> HTTPException:
    """The one rendering of an error in the API: its class's status (:func:`http_status`), its
    ``field`` by the API's name for it, its message in the API's words (``message``: another
    text, e.g. a failed job's). 422 in FastAPI's own shape (``loc``: ``location`` and the
    field), other statuses as a plain message; a 401 asks for HTTP Basic credentials."""
    status = http_status(exc)
    if message is None:
        message = words(exc, "api") if exc is not None else "failed"
    if status == 422:
        field = field_label(getattr(exc, "field", None), "api")
        detail: Any = [{"loc": [location, field] if field else [location], "msg": message, "type": "value_error"}]
    else:
        detail = message
    headers = {"WWW-Authenticate": "Basic"} if status == 401 else None
    return HTTPException(status_code=status, detail=detail, headers=headers)


def _location(request: Request, field: str | None) -> str:
    """Where a request gave ``field``: its path, its query (every GET) or its body."""
    if field is not None and field in request.path_params:
        return "path"
    return "query" if request.method == "GET" or (field and field in request.query_params) else "body"


class ErrorRoute(APIRoute):
    """A route whose errors (:class:`LycorisEvalError`, its own or its dependencies') are
    answered by :func:`http_error`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LycorisEvalError as exc:
                raise http_error(exc, _location(request, exc.field)) from None

        return guarded

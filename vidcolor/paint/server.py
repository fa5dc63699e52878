"""The paint page's web server: the standard library's threading HTTP server on 127.0.0.1 only, a free port, and a
random token that every request must carry (`?token=` or the `X-Vidcolor-Token` header).

Nothing a request sends is used as a path: routes are a fixed table, the page's files a fixed list, frames are
numbers checked against the film, and hint files are named from those numbers (`hintfolder`). The Host header
must name this server (no other site can reach it by a DNS name that resolves to 127.0.0.1).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import VidcolorError
from .session import PaintSession

HOST = "127.0.0.1"
TOKEN_HEADER = "X-Vidcolor-Token"
MAX_BODY = 32 << 20  # bytes: a hint PNG of a 960-px frame is well under 1 MB
STATIC = {"/static/paint.js": ("paint.js", "text/javascript; charset=utf-8"),
          "/static/paint.css": ("paint.css", "text/css; charset=utf-8")}
NUMBER = re.compile(r"\d{1,9}")


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


Reply = tuple[HTTPStatus, str, bytes]


def static_file(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class PaintServer(ThreadingHTTPServer):
    """Serves one `PaintSession` on 127.0.0.1 at a free port (or `port`)."""

    daemon_threads = True

    def __init__(self, session: PaintSession, port: int = 0, token: str | None = None):
        self.session = session
        self.token = token or secrets.token_urlsafe(24)
        super().__init__((HOST, port), PaintHandler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/?token={self.token}"


class PaintHandler(BaseHTTPRequestHandler):
    server: PaintServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the terminal shows the URL, not every request
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        try:
            body = self._body()
            url = urlsplit(self.path)
            query = parse_qs(url.query, keep_blank_values=True)
            self._check_host()
            self._check_token(query)
            route = ROUTES.get((method, url.path))
            if route is None:
                raise RequestError(HTTPStatus.NOT_FOUND, "not found")
            status, kind, data = route(self.server.session, query, body, self.server.token)
        except RequestError as exc:
            status, kind, data = exc.status, "text/plain; charset=utf-8", str(exc).encode()
        except VidcolorError as exc:
            status, kind, data = HTTPStatus.BAD_REQUEST, "text/plain; charset=utf-8", str(exc).encode()
        except Exception as exc:  # the page shows one line; the server goes on
            status, kind = HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8"
            data = f"internal error: {exc.__class__.__name__}: {exc}".encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit() or int(length) > MAX_BODY:
            self.close_connection = True
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body over {MAX_BODY >> 20} MB")
        return self.rfile.read(int(length))

    def _check_host(self) -> None:
        host = self.headers.get("Host", "")
        if host not in (f"{HOST}:{self.server.port}", f"localhost:{self.server.port}"):
            raise RequestError(HTTPStatus.FORBIDDEN, "wrong Host")

    def _check_token(self, query: dict[str, list[str]]) -> None:
        given = (query.get("token") or [""])[0] or self.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            raise RequestError(HTTPStatus.FORBIDDEN, "missing or wrong token: open the URL that `vidcolor paint` printed")


def number(query: dict[str, list[str]], name: str) -> int:
    values = query.get(name) or []
    if len(values) != 1 or not NUMBER.fullmatch(values[0]):
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{name} must be one whole number")
    return int(values[0])


def page(session: PaintSession, query: dict, body: bytes, token: str) -> Reply:
    html = static_file("index.html").decode().replace("{{TOKEN}}", token)
    return HTTPStatus.OK, "text/html; charset=utf-8", html.encode()


def film(session: PaintSession, query: dict, body: bytes, token: str) -> Reply:
    return _json(session.describe())


def thumb(session: PaintSession, query: dict, body: bytes, token: str) -> Reply:
    return HTTPStatus.OK, "image/jpeg", session.shot_thumb(number(query, "shot"))


def frame(session: PaintSession, query: dict, body: bytes, token: str) -> Reply:
    kind = (query.get("kind") or ["gray"])[0]
    draw = {"gray": session.gray_jpeg, "colour": session.colour_jpeg}.get(kind)
    if draw is None:
        raise RequestError(HTTPStatus.BAD_REQUEST, "kind must be gray or colour")
    return HTTPStatus.OK, "image/jpeg", draw(number(query, "n"))


def preview(session: PaintSession, query: dict, body: bytes, token: str) -> Reply:
    return HTTPStatus.OK, "image/jpeg", session.preview_jpeg(number(query, "n"), body)


def hint_image(session: PaintSession, query: dict, body: bytes, token: str) -> Reply:
    return HTTPStatus.OK, "image/png", session.hint_png(number(query, "n"))


def hints(session: PaintSession, query: dict, body: bytes, token: str) -> Reply:
    return _json(session.hints())


def save(session: PaintSession, query: dict, body: bytes, token: str) -> Reply:
    return _json(session.save_hint(number(query, "n"), body))


def remove(session: PaintSession, query: dict, body: bytes, token: str) -> Reply:
    return _json({"removed": session.remove_hint(number(query, "n"))})


def _json(value: Any) -> Reply:
    return HTTPStatus.OK, "application/json", json.dumps(value).encode()


def _static(name: str, kind: str) -> Callable[..., Reply]:
    return lambda session, query, body, token: (HTTPStatus.OK, kind, static_file(name))


ROUTES: dict[tuple[str, str], Callable[[PaintSession, dict, bytes, str], Reply]] = {
    ("GET", "/"): page,
    **{("GET", path): _static(name, kind) for path, (name, kind) in STATIC.items()},
    ("GET", "/api/film"): film,
    ("GET", "/api/thumb"): thumb,
    ("GET", "/api/frame"): frame,
    ("POST", "/api/preview"): preview,
    ("GET", "/api/hint"): hint_image,
    ("GET", "/api/hints"): hints,
    ("POST", "/api/hints"): save,
    ("DELETE", "/api/hints"): remove,
}

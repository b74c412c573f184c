"""A stand-in for a WebUI's HTTP API (the few routes a sweep uses), for the failure paths a
real WebUI cannot be made to take on demand: an image that fails, a WebUI that stops
answering after a number of images. Loopback only; images are made from the seed."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

CHECKPOINTS = ("ck-a", "ck-b")
ADAPTERS = ("style_x",)


class FakeWebUI:
    def __init__(self, fail_prompt: str | None = None, die_after: int | None = None, delay: float = 0.0) -> None:
        self.delay = delay  # seconds an image takes
        self.fail_prompt = fail_prompt  # txt2img answers HTTP 500 for prompts containing it
        self.die_after = die_after  # stop answering at all after this many images
        self.made = 0
        self.loaded = CHECKPOINTS[0]
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.dead = False
        self.files: dict[str, str] = {}  # checkpoint/adapter name -> a file on this machine

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if not self.dead:
            self.dead = True
            threading.Thread(target=self._close, daemon=True).start()

    def _close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def get(self, path: str) -> tuple[int, Any]:
        routes = {
            "/sdapi/v1/sd-models": [
                {"title": f"{c}.safetensors", "model_name": c, "hash": None, "filename": self.files.get(c)}
                for c in CHECKPOINTS
            ],
            "/sdapi/v1/options": {"sd_model_checkpoint": f"{self.loaded}.safetensors", "sd_lora": "None"},
            "/sdapi/v1/loras": [{"name": a, "path": self.files.get(a, f"/nowhere/{a}.safetensors")} for a in ADAPTERS],
            "/sdapi/v1/samplers": [{"name": "Euler", "aliases": []}],
            "/sdapi/v1/schedulers": [{"name": "automatic", "label": "Automatic"}],
        }
        return (200, routes[path]) if path in routes else (404, {"detail": "Not Found"})

    def txt2img(self, body: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            if self.die_after is not None and self.made >= self.die_after:
                self.stop()
                return 0, None  # the connection is dropped
            if self.fail_prompt and self.fail_prompt in body["prompt"]:
                return 500, {"error": "NansException", "detail": "A tensor with all NaNs was produced"}
            self.made += 1
        time.sleep(self.delay)
        self.loaded = body["override_settings"]["sd_model_checkpoint"].split(".")[0]
        image = Image.new("RGB", (64, 64), ((body["seed"] * 37) % 256, len(body["prompt"]) % 256, 90))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        info = {
            "sd_model_name": self.loaded,
            "infotexts": [f"{body['prompt']}\nSteps: 4, Seed: {body['seed']}, Model: {self.loaded}"],
        }
        return 200, {"images": [base64.b64encode(buffer.getvalue()).decode()], "info": json.dumps(info)}


def _handler(fake: FakeWebUI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: Any) -> None:
            if status == 0:
                self.close_connection = True
                self.connection.close()
                return
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            self._answer(*fake.get(self.path))

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._answer(*(fake.txt2img(body) if self.path == "/sdapi/v1/txt2img" else (404, {})))

    return Handler

"""Servers on 127.0.0.1 for the OpenAI-backend tests: the real llama.cpp server (our launcher,
`python -m augment.llama_server`, with the embedded GGUF) and a tiny scripted HTTP server that
answers what a test tells it to (junk, 503s, then a valid completion)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"  # the launcher serves the embedded GGUF by file name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """`python -m augment.llama_server` in a child process; `url` ends in /v1."""

    def __init__(self, key_env: str, key: str, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.key = key
        env = {**os.environ, key_env: key, "PYTHONPATH": str(ROOT)}
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "augment.llama_server", "--port", str(self.port),
             "--n-ctx", "2048", "--api-key-env", key_env],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout=180)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(f"{self.url}/models",
                                         headers={"Authorization": f"Bearer {self.key}"})
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"the llama.cpp server exited: {self.log.read()[-2000:]!r}")
            try:
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the llama.cpp server did not answer within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: the server dies without closing anything, as in a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def chat_completion(text: str, tokens: int = 5, finish: str = "stop") -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 15}}


class ScriptedServer:
    """Answers POSTs with the (status, content type, body) of `script`, one per request, the
    last one repeated; records every request body. Use as a context manager."""

    def __init__(self, script: list[tuple[int, str, bytes]]):
        self.script, self.bodies = list(script), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                status, ctype, body = outer.script[min(len(outer.bodies), len(outer.script)) - 1]
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""Client backend: chat completions from any OpenAI-compatible server (`vllm serve`, llama.cpp's
server, Ollama, a hosted endpoint), with up to `max_in_flight` requests at a time.

    vllm serve meta-llama/Meta-Llama-3-8B-Instruct --port 8000        # on the GPU node(s)
    dvc exp run -S augment.backend=openai \\
        -S augment.openai.model=meta-llama/Meta-Llama-3-8B-Instruct

Every sample is its own request (`n=1`) carrying its seed, so a completion depends only on its
cache key; the key names the backend (`openai`) and the served model, not the URL, so replicas
behind one endpoint, or another server of the same model, share the cache. The API key is read
from the environment variable *named* by `augment.openai.api_key_env`; it is sent in the
request header only and never written anywhere. The official `openai` client (imported lazily)
retries connection errors, 408, 429 and 5xx answers with exponential backoff.

Each `generate` call (one chunk) returns when all its requests are answered; the caller writes
the chunk to the generation cache before the next one. When the server fails for good, the call
raises a one-line `BackendError` saying how many completions of this run are already saved.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from urllib.parse import urlsplit

from augment.engine import (
    BackendError,
    Completion,
    GenerationRequest,
    Messages,
    Progress,
    flatten,
    unflatten,
)
from augment.params import OpenAIParams, SamplingParams

INSTALL_HINT = "pip install '.[openai]'"
NO_KEY = "unused"  # sent when api_key_env is null: servers without auth ignore it
HTTP_LOGGERS = ("httpx", "httpx2")  # the client's HTTP library logs every request at INFO


def check_base_url(url: str) -> str:
    """The URL if it is an http(s) URL with a host and no credentials, else a BackendError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendError(f"augment.openai.base_url '{url}' is not an http(s) URL with a host "
                           "(e.g. http://127.0.0.1:8000/v1)")
    if parts.username or parts.password:
        raise BackendError("augment.openai.base_url must not hold credentials: put the key in "
                           "an environment variable and name it in augment.openai.api_key_env")
    return url.rstrip("/")


def read_api_key(env_name: str | None) -> str:
    if env_name is None:
        return NO_KEY
    key = os.environ.get(env_name)
    if not key:
        raise BackendError(f"augment.openai.api_key_env names the environment variable "
                           f"'{env_name}', which is not set")
    return key


def request_kwargs(messages: Messages, seed: int, sampling: SamplingParams,
                   params: OpenAIParams) -> dict:
    """Arguments of `chat.completions.create` for one sample."""
    kwargs = {"model": params.model,
              "messages": [{"role": role, "content": content} for role, content in messages],
              "n": 1, "seed": seed, "temperature": sampling.temperature,
              "top_p": sampling.top_p, "max_tokens": sampling.max_tokens}
    if params.stop:
        kwargs["stop"] = list(params.stop)
    if sampling.top_k > 0:  # not in OpenAI's API; vLLM and llama.cpp's servers read it
        kwargs["extra_body"] = {"top_k": sampling.top_k}
    return kwargs


def parse_completion(response: object) -> Completion:
    """One `Completion` from a chat completion, or ValueError when it does not have the shape."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise ValueError(f"no choices in {_one_line(response, 120)!r}")
    message = getattr(choices[0], "message", None)
    text = getattr(message, "content", None)
    if text is not None and not isinstance(text, str):
        raise ValueError(f"message content is not text in {_one_line(response, 120)!r}")
    usage = getattr(response, "usage", None)
    n_tokens = getattr(usage, "completion_tokens", None)
    finish = "length" if getattr(choices[0], "finish_reason", None) == "length" else "stop"
    return Completion(text or "", n_tokens if isinstance(n_tokens, int) else 0, finish)


class OpenAIBackend:
    name = "openai"

    def __init__(self, params: OpenAIParams):
        try:
            import openai  # noqa: F401
        except ImportError as e:
            raise BackendError(f"augment.backend=openai needs the openai client: "
                               f"{INSTALL_HINT}") from e
        if params.max_in_flight < 1 or params.chunk_size < 1:
            raise BackendError("augment.openai.max_in_flight and chunk_size must be >= 1")
        self.params = params
        self.base_url = check_base_url(params.base_url)
        self._api_key = read_api_key(params.api_key_env)
        self.model = params.model
        self.chunk_size = params.chunk_size
        self.saved = 0  # completions returned by earlier calls (the caller has cached them)
        self._loop: asyncio.AbstractEventLoop | None = None  # one loop, so the client's
        self._client = None  # connections are reused from chunk to chunk

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingParams,
                 progress: Progress | None = None) -> list[list[Completion]]:
        flat = flatten(requests)
        self._loop = self._loop or asyncio.new_event_loop()
        completions = self._loop.run_until_complete(self._run(flat, sampling, progress))
        self.saved += len(completions)
        return unflatten(requests, completions)

    def close(self) -> None:
        if self._loop is None:
            return
        if self._client is not None:
            self._loop.run_until_complete(self._client.close())
            self._client = None
        self._loop.close()
        self._loop = None

    def _make_client(self):
        from openai import AsyncOpenAI

        for name in HTTP_LOGGERS:  # one line per request would drown the stage's log
            logging.getLogger(name).setLevel(logging.WARNING)
        return AsyncOpenAI(base_url=self.base_url, api_key=self._api_key,
                           timeout=self.params.timeout_s, max_retries=self.params.max_retries)

    async def _run(self, flat: list[tuple[Messages, int]], sampling: SamplingParams,
                   progress: Progress | None) -> list[Completion]:
        """All samples of one chunk, at most `max_in_flight` at a time; the first failure
        cancels the others and becomes a BackendError."""
        self._client = self._client or self._make_client()
        gate = asyncio.Semaphore(self.params.max_in_flight)
        results: list[Completion | None] = [None] * len(flat)

        async def one(i: int, messages: Messages, seed: int) -> None:
            async with gate:
                results[i] = await self._request(messages, seed, sampling)
            if progress:
                progress(1, results[i].n_tokens)

        tasks = [asyncio.ensure_future(one(i, m, s)) for i, (m, s) in enumerate(flat)]
        try:
            await asyncio.gather(*tasks)
        except BaseException as e:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if isinstance(e, BackendError):
                raise self._failed(e) from None
            raise
        return results  # type: ignore[return-value]

    async def _request(self, messages: Messages, seed: int, sampling: SamplingParams,
                       ) -> Completion:
        import openai

        try:
            response = await self._client.chat.completions.create(
                **request_kwargs(messages, seed, sampling, self.params))
            return parse_completion(response)
        except openai.APIStatusError as e:
            raise BackendError(self._status_message(e)) from None
        except openai.APITimeoutError:
            raise BackendError(f"no answer within {self.params.timeout_s:g} s (augment.openai."
                               f"timeout_s){self._retried}") from None
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            raise BackendError(f"cannot connect ({_one_line(cause)}){self._retried}") from None
        except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError) as e:
            raise BackendError(f"malformed answer, not a chat completion: "
                               f"{_one_line(e)}") from None

    def _status_message(self, e) -> str:
        status, detail = e.status_code, _one_line(_server_detail(e))
        if status in (401, 403) and self.params.api_key_env is None:
            return (f"the server wants an API key ({status}: {detail}); name the environment "
                    "variable holding it in augment.openai.api_key_env")
        if status in (401, 403):
            return (f"the server refused the API key ({status}: {detail}); set the environment "
                    f"variable {self.params.api_key_env} (augment.openai.api_key_env) to a "
                    "valid key")
        if status == 404:
            return (f"404 ({detail}): check augment.openai.base_url (usually ends in /v1) and "
                    f"augment.openai.model ('{self.model}')")
        if status == 429 or status >= 500:
            return f"the server kept answering {status} ({detail}){self._retried}"
        return f"the server rejected the request ({status}: {detail})"

    @property
    def _retried(self) -> str:
        n = self.params.max_retries
        return f", retried {n} time{'s' if n != 1 else ''} with backoff" if n else ""

    def _failed(self, e: BackendError) -> BackendError:
        return BackendError(
            f"augment.backend=openai: the server at {self.base_url} failed: {e}. "
            f"{self.saved} completions of this run are saved in the generation cache (a rerun "
            "generates only the missing ones)")


def _one_line(obj: object, limit: int = 200) -> str:
    text = " ".join(str(obj).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _server_detail(e) -> str:
    """The server's own words from an error answer (OpenAI: error.message; FastAPI: detail)."""
    body = e.body.get("error", e.body) if isinstance(e.body, dict) else e.body
    if isinstance(body, dict):
        for field in ("message", "detail"):
            if isinstance(body.get(field), str):
                return body[field]
    return str(body) if body else e.message

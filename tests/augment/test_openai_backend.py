"""The OpenAI-compatible server backend: against the real llama.cpp server (the embedded GGUF on
127.0.0.1, started by the test), killed mid-run and restarted; and each failure as one line."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from augment.backends import create_backend
from augment.cache import CACHE_ENV
from augment.engine import BackendError, GenerationRequest
from augment.openai_backend import (
    OpenAIBackend,
    check_base_url,
    parse_completion,
    read_api_key,
    request_kwargs,
)
from augment.params import OpenAIParams, SamplingParams
from tests.augment.fakes import ROOT, make_params, write_balanced
from tests.augment.servers import MODEL, LlamaServer, ScriptedServer, chat_completion, free_port

KEY_ENV = "AUGMENT_TEST_SERVER_KEY"
SAMPLING = SamplingParams(temperature=0.6, top_p=0.9, top_k=40, max_tokens=32)
MESSAGES = (("system", "You paraphrase sentences."),
            ("user", "Paraphrase: the film is a charming , witty romp ."))
JSON = "application/json"


def server_params(url: str, **changes) -> OpenAIParams:
    base = {"base_url": url, "model": MODEL, "api_key_env": None, "max_in_flight": 4,
            "chunk_size": 8, "timeout_s": 30.0, "max_retries": 1, "stop": ()}
    return OpenAIParams(**{**base, **changes})


# -- pure parts ------------------------------------------------------------------------------
def test_base_url_must_be_http_with_a_host_and_no_credentials():
    assert check_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    for bad in ("127.0.0.1:8000/v1", "ftp://example.org/v1", "http:///v1"):
        with pytest.raises(BackendError, match="not an http"):
            check_base_url(bad)
    with pytest.raises(BackendError, match="must not hold credentials") as e:
        check_base_url("https://user:hunter2@example.org/v1")
    assert "hunter2" not in str(e.value)


def test_the_key_comes_from_the_named_environment_variable(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(BackendError, match=KEY_ENV):
        read_api_key(KEY_ENV)
    monkeypatch.setenv(KEY_ENV, "k-123")
    assert read_api_key(KEY_ENV) == "k-123"
    assert read_api_key(None) != "k-123"


def test_request_carries_the_seed_and_the_sampling():
    kwargs = request_kwargs(MESSAGES, 42, SAMPLING, server_params("http://h/v1"))
    assert kwargs["seed"] == 42 and kwargs["n"] == 1 and kwargs["model"] == MODEL
    assert (kwargs["temperature"], kwargs["top_p"], kwargs["max_tokens"]) == (0.6, 0.9, 32)
    assert kwargs["extra_body"] == {"top_k": 40} and "stop" not in kwargs
    assert kwargs["messages"][1] == {"role": "user", "content": MESSAGES[1][1]}
    plain = request_kwargs(MESSAGES, 1, SamplingParams(0.6, 0.9, 0, 32),
                           server_params("http://h/v1", stop=("\n\n",)))
    assert "extra_body" not in plain and plain["stop"] == ["\n\n"]


def test_parse_completion_reads_text_tokens_and_finish_reason():
    from openai.types.chat import ChatCompletion

    done = parse_completion(ChatCompletion.model_validate(chat_completion("A film.", 3)))
    assert (done.text, done.n_tokens, done.finish_reason) == ("A film.", 3, "stop")
    cut = parse_completion(ChatCompletion.model_validate(chat_completion("A", 32, "length")))
    assert cut.finish_reason == "length"
    with pytest.raises(ValueError, match="no choices"):
        parse_completion("<html>busy</html>")


def test_params_yaml_selects_the_server_backend(monkeypatch):
    params = make_params(1)
    assert params.openai.api_key_env is None and params.openai.max_in_flight >= 1
    backend = create_backend(make_params(1, backend="openai"))  # no request sent yet
    assert isinstance(backend, OpenAIBackend) and backend.model == params.openai.model


def test_launcher_turns_weight_repacking_off():
    import llama_cpp.llama_cpp as lc

    from augment.llama_server import disable_weight_repacking

    original = lc.llama_model_default_params
    try:
        assert original().use_extra_bufts  # llama.cpp's default: repack (AMX crash)
        disable_weight_repacking()
        assert lc.llama_model_default_params().use_extra_bufts is False
    finally:
        lc.llama_model_default_params = original


# -- scripted server: retries and malformed answers -------------------------------------------
@pytest.mark.slow  # waits through two backoffs
def test_retries_a_busy_server_then_succeeds():
    busy = (503, JSON, b'{"error": {"message": "busy"}}')
    ok = (200, JSON, json.dumps(chat_completion("the film is witty and charming")).encode())
    with ScriptedServer([busy, busy, ok]) as server:
        backend = OpenAIBackend(server_params(server.url, max_retries=2))
        [[c]] = backend.generate([GenerationRequest(MESSAGES, (7,))], SAMPLING)
        backend.close()
    assert c.text == "the film is witty and charming" and c.n_tokens == 5
    assert len(server.bodies) == 3 and server.bodies[-1]["seed"] == 7


def test_a_server_that_stays_busy_is_one_line():
    with ScriptedServer([(503, JSON, b'{"error": {"message": "busy"}}')]) as server:
        backend = OpenAIBackend(server_params(server.url, max_retries=1))
        with pytest.raises(BackendError) as e:
            backend.generate([GenerationRequest(MESSAGES, (1, 2))], SAMPLING)
        backend.close()
    assert "kept answering 503" in str(e.value) and "\n" not in str(e.value)
    assert "0 completions of this run are saved" in str(e.value)


@pytest.mark.parametrize("ctype, body", [("text/html", b"<html>gateway</html>"),
                                         (JSON, b'{"result": "nothing like a completion"}'),
                                         (JSON, b"{not json")])
def test_a_malformed_answer_is_one_line(ctype, body):
    with ScriptedServer([(200, ctype, body)]) as server:
        backend = OpenAIBackend(server_params(server.url))
        with pytest.raises(BackendError, match="malformed answer") as e:
            backend.generate([GenerationRequest(MESSAGES, (1,))], SAMPLING)
        backend.close()
    assert "\n" not in str(e.value)


def test_a_server_that_wants_a_key_names_the_param():
    with ScriptedServer([(401, JSON, b'{"detail": "Invalid API key"}')]) as server:
        backend = OpenAIBackend(server_params(server.url, api_key_env=None))
        with pytest.raises(BackendError, match="wants an API key") as e:
            backend.generate([GenerationRequest(MESSAGES, (1,))], SAMPLING)
        backend.close()
    assert "Invalid API key" in str(e.value) and "augment.openai.api_key_env" in str(e.value)
    assert len(server.bodies) == 1  # a 401 is not retried


def test_failure_counts_the_completions_already_returned():
    ok = (200, JSON, json.dumps(chat_completion("a witty and charming film")).encode())
    with ScriptedServer([ok, ok, (400, JSON, b'{"error": {"message": "bad seed"}}')]) as server:
        backend = OpenAIBackend(server_params(server.url, max_in_flight=1))
        assert len(backend.generate([GenerationRequest(MESSAGES, (1, 2))], SAMPLING)[0]) == 2
        with pytest.raises(BackendError, match="2 completions of this run are saved") as e:
            backend.generate([GenerationRequest(MESSAGES, (3,))], SAMPLING)
        backend.close()
    assert "rejected the request (400: bad seed)" in str(e.value)


# -- the stage (python -m augment.stage) against servers on 127.0.0.1 -------------------------
def stage_dir(tmp_path: Path, url: str) -> Path:
    """A project directory: params.yaml (augment.backend=openai at `url`) and balanced data in
    which sst, para and sts each need a few paraphrases (7 in all)."""
    write_balanced(tmp_path / "data" / "balanced")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    augment = params["augment"]
    augment.update(backend="openai", ratio=1, max_rounds=1)
    augment["prompts"].update(template_file=str(ROOT / augment["prompts"]["template_file"]),
                              n_shots=2)
    augment["sampling"]["max_tokens"] = 32
    if "label_consistency" in augment["filters"]:  # its probe needs more rows than these
        augment["filters"]["label_consistency"] = False
    augment["openai"].update(base_url=url, api_key_env=KEY_ENV, max_in_flight=2, chunk_size=1,
                             timeout_s=60, max_retries=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def stage_env(tmp_path: Path, key: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), KEY_ENV: key,
            CACHE_ENV: str(tmp_path / "cache")}


def run_stage(project: Path, key: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "augment.stage"], cwd=project,
                          env=stage_env(project, key), capture_output=True, text=True,
                          timeout=600)


def error_line(result) -> str:
    """The stage failed with exactly one ERROR line and no traceback; that line."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def cached_keys(cache_dir: Path) -> list[str]:
    return [json.loads(line)["key"] for shard in sorted(cache_dir.glob("*.jsonl"))
            for line in shard.read_text().splitlines()]


@pytest.fixture(scope="module")
def server():
    """The real llama.cpp server with the embedded model; requests need its key."""
    llama = LlamaServer(KEY_ENV, key=f"sk-test-{secrets.token_hex(8)}")
    yield llama
    llama.stop()


@pytest.mark.slow
def test_stage_against_the_server_killed_mid_run_then_rerun(tmp_path):
    key = f"sk-test-{secrets.token_hex(8)}"
    first = LlamaServer(KEY_ENV, key)
    project = stage_dir(tmp_path, first.url)
    stage = subprocess.Popen([sys.executable, "-m", "augment.stage"], cwd=project,
                             env=stage_env(project, key), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while len(cached_keys(tmp_path / "cache")) < 2 and stage.poll() is None:
            assert time.monotonic() < deadline, "no completion reached the cache"
            time.sleep(0.05)
        first.kill()
        _, stderr = stage.communicate(timeout=120)
    finally:
        first.stop()
        if stage.poll() is None:
            stage.kill()
    line = error_line(subprocess.CompletedProcess(stage.args, stage.returncode, "", stderr))
    saved = cached_keys(tmp_path / "cache")
    assert "failed: cannot connect" in line and first.url in line
    assert f" {len(saved)} completions of this run are saved" in line
    assert 2 <= len(saved) < 7 and not (tmp_path / "data" / "augmented").exists()

    second = LlamaServer(KEY_ENV, key)  # another port: the URL is not part of the cache key
    try:
        stage_dir(tmp_path, second.url)
        result = run_stage(project, key)
    finally:
        second.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    after = cached_keys(tmp_path / "cache")
    summary = json.loads((tmp_path / "data" / "augmented" / "summary.json").read_text())
    assert len(after) == len(set(after)) == 7 and after[:len(saved)] == saved
    assert sum(t["generated_now"] for t in summary["tasks"].values()) == 7 - len(saved)
    assert summary["generator"] == f"openai:{MODEL}"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in written if key.encode() in p.read_bytes()]
    assert key not in result.stdout + result.stderr + stderr
    assert "HTTP Request" not in result.stderr  # no log line per request


@pytest.mark.slow
def test_wrong_key_is_one_line(tmp_path, server):
    line = error_line(run_stage(stage_dir(tmp_path, server.url), key="sk-wrong"))
    assert "refused the API key (401" in line and KEY_ENV in line
    assert "sk-wrong" not in line and server.key not in line


@pytest.mark.slow
def test_wrong_path_is_one_line(tmp_path, server):
    url = server.url.removesuffix("/v1") + "/api"
    line = error_line(run_stage(stage_dir(tmp_path, url), key=server.key))
    assert "404" in line and "augment.openai.base_url" in line


@pytest.mark.slow
def test_refused_connection_is_one_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    line = error_line(run_stage(stage_dir(tmp_path, url), key="k"))
    assert "cannot connect" in line and url in line and "0 completions" in line


@pytest.mark.slow
def test_bad_base_url_is_one_line(tmp_path):
    line = error_line(run_stage(stage_dir(tmp_path, "localhost:8000/v1"), key="k"))
    assert "augment.openai.base_url 'localhost:8000/v1' is not an http(s) URL" in line


@pytest.mark.slow
def test_malformed_answer_is_one_line(tmp_path):
    with ScriptedServer([(200, "text/html", b"<html>502 gateway</html>")]) as junk:
        line = error_line(run_stage(stage_dir(tmp_path, junk.url), key="k"))
    assert "malformed answer" in line and "gateway" in line


@pytest.mark.slow
def test_launcher_without_a_model_file_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "augment.llama_server", "--model",
                             str(tmp_path / "missing.gguf")], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith(f"no GGUF file at {tmp_path / 'missing.gguf'}")

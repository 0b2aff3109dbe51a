"""Serve a GGUF model over an OpenAI-compatible API (llama-cpp-python's server), on any x86 CPU.

    pip install '.[openai]'                        # the client and llama-cpp-python[server]
    python -m augment.llama_server --port 8000     # the embedded SmolLM2 at http://127.0.0.1:8000/v1
    MY_KEY=s3cret python -m augment.llama_server --api-key-env MY_KEY   # requests need the key
    dvc exp run -S augment.backend=openai          # the augment stage as its client

The same as `python -m llama_cpp.server --model <gguf>`, with one difference: llama.cpp's weight
repacking ("extra buffer types", e.g. for AMX) is off, as in our in-process engine, because it
crashes on Sapphire-Rapids CPUs (llama.cpp issue 20824; llama-server's `--no-repack`).
llama-cpp-python's `Llama` has no argument for it, so this launcher wraps
`llama_model_default_params`, from which `Llama` starts, before the server loads the model.
The model is served under its file name (the `model` of augment.openai in params.yaml).
The key is read from the environment variable named by --api-key-env, never from the command
line (where `ps` would show it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def disable_weight_repacking() -> None:
    """Make every model llama-cpp-python loads in this process skip the extra buffer types."""
    import llama_cpp.llama_cpp as lc

    if getattr(lc.llama_model_default_params, "no_repack", False):
        return
    default_params = lc.llama_model_default_params

    def no_repack_params():
        params = default_params()
        params.use_extra_bufts = False
        return params

    no_repack_params.no_repack = True
    lc.llama_model_default_params = no_repack_params


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="GGUF file (default: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--model-alias", default=None,
                        help="served model name (default: the GGUF file name)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--n-ctx", type=int, default=4096, help="context tokens")
    parser.add_argument("--n-threads", type=int, default=0, help="0 = all CPU cores")
    parser.add_argument("--api-key-env", default=None,
                        help="NAME of the environment variable holding the key clients must send")
    return parser.parse_args(argv)


def build_app(args: argparse.Namespace):
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    from augment.engine import BackendError, embedded_gguf_path

    path = args.model or embedded_gguf_path()
    if not path.is_file():
        raise BackendError(f"--model: no GGUF file at {path}")
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise BackendError(f"--api-key-env: the environment variable '{args.api_key_env}' "
                               "is not set")
    threads = args.n_threads or os.cpu_count() or 1
    disable_weight_repacking()
    model = ModelSettings(model=str(path), model_alias=args.model_alias or path.name,
                          n_ctx=args.n_ctx, n_threads=threads, n_threads_batch=threads,
                          verbose=False)
    server = ServerSettings(host=args.host, port=args.port, api_key=api_key)
    return create_app(server_settings=server, model_settings=[model]), model.model_alias


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s "
                        "%(message)s", datefmt="%H:%M:%S")
    # idle llama.cpp threads wait passively: the machine is often shared (see llamacpp_backend)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = parse_args(argv)
    try:
        import uvicorn

        app, alias = build_app(args)
    except ImportError as e:
        log.error("the server needs llama-cpp-python's server extra (%s): pip install "
                  "'.[openai]'", e.name)
        sys.exit(1)
    except Exception as e:  # a bad model file, a bad setting: one line, no traceback
        log.error("cannot start the server: %s", " ".join(str(e).split()))
        sys.exit(1)
    log.info("serving %s at http://%s:%d/v1 (weight repacking off%s)", alias, args.host,
             args.port, ", API key required" if args.api_key_env else "")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

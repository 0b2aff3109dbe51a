import os
import tempfile

import pytest

from tests.course_data import write_course_files

# Keep test runs single-threaded and quiet on the 2-core CI machine.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The llama.cpp engine's converted weights (augment.llamacpp.weights) go to a directory of this
# test session, not the user's model cache; child processes (dvc repro) inherit it.
os.environ.setdefault("BALANCED_MINBERT_MODEL_CACHE", tempfile.mkdtemp(prefix="minbert-models-"))


@pytest.fixture
def course_dir(tmp_path):
    """A directory with the eight course files, tiny but in the real layout."""
    return write_course_files(tmp_path / "raw")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

import pytest
import torch
import yaml

from minbert.params import from_dict
from tests.dvc_project import ROOT

TINY_WORDS = ("film movie story actor scene plot music great dull funny sad long short bright "
              "dark clever warm cold slow fast quiet loud good fine . , ' s ? ( )").split()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved multitask model on a random 2-layer BERT (hidden 32), heads from params.yaml."""
    from minbert.bert import BertConfig, BertModel
    from minbert.heads import HeadsParams
    from minbert.model import MultitaskModel

    tmp = tmp_path_factory.mktemp("tiny_model")
    vocab_dir = tmp / "backbone"
    vocab_dir.mkdir()
    (vocab_dir / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]) + "\n")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(TINY_WORDS), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    heads_yaml = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["heads"]
    model = MultitaskModel(BertModel(config), from_dict(HeadsParams, heads_yaml, "train.heads"))
    model.save(tmp / "model", backbone_dir=vocab_dir, params={}, max_length=32)
    return tmp / "model"

"""Tiny random-weight models of the real architectures, built locally for tests.

Each builder writes a complete Hugging Face folder (config, safetensors weights,
tokenizer files) with `save_pretrained`, so the code under test loads it exactly
as it loads the real model. No download, a few hundred KB each:

* `build_qwen3`: causal Qwen3 (last-token models: Qwen3-Embedding, jina-code), with
  a byte-level BPE tokenizer whose post-processor appends `<|endoftext|>` like the
  current Qwen3-Embedding tokenizer (or not, like the old snapshots).
* `build_bidir_qwen3`: a bidirectional Qwen3-style encoder with a per-token linear
  projection before pooling (the voyage-4-nano / pplx-embed graph), shipped as
  remote code so loading goes through `trust_remote_code` like the real ones.
* `build_bert`: BERT with a WordPiece tokenizer (MiniLM, CodeRankEmbed style).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from codesearch.embed.registry import REGISTRY, ModelProfile

CORPUS = [
    "def read_csv(path): return open(path).read().split(',')",
    "class Parser: def parse(self, text): return tokens",
    "function fetchUser(id) { return http.get('/users/' + id); }",
    "Instruct: Given a question about coding, retrieval code or passage that can solve user's question",
    "Query: how to read a csv file and count the nulls in each column",
    "Represent the query for retrieving supporting documents: retry with backoff",
    "Represent the document for retrieval: compute the exponential backoff delay",
    "Find the most relevant code snippet given the following query:",
    "Candidate code snippet: for i in range(10): print(i)",
    "Represent this query for searching relevant code: open a socket",
    "the quick brown fox jumps over the lazy dog while the server retries",
    "import numpy as np; x = np.zeros((3, 4)); y = x.sum(axis=0)",
    "SELECT name, count(*) FROM users GROUP BY name ORDER BY 2 DESC",
]

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _bpe_tokenizer(append_eos: bool):  # -> transformers.PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=QWEN_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    if append_eos:
        eos_id = tok.token_to_id("<|endoftext|>")
        tok.post_processor = processors.TemplateProcessing(
            single="$A:0 <|endoftext|>:0",
            pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
            special_tokens=[("<|endoftext|>", eos_id)],
        )
    # Like the real Qwen tokenizer: eos_token is <|im_end|>, the appended and pad token
    # is <|endoftext|> (two different ids; code must not confuse them).
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        model_max_length=512,
    )


def _qwen3_config_kwargs(vocab_size: int, pad_id: int) -> dict[str, object]:
    return {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": 512,
        "pad_token_id": pad_id,
        "bos_token_id": pad_id,
        "eos_token_id": pad_id,
        # Large enough that different inputs give clearly different vectors.
        "initializer_range": 0.3,
        "tie_word_embeddings": False,
    }


def build_qwen3(folder: Path, append_eos: bool = True, seed: int = 0) -> Path:
    """A causal Qwen3 (`Qwen3Model`) with Qwen-like special tokens."""
    import torch
    from transformers import Qwen3Config, Qwen3Model

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _bpe_tokenizer(append_eos)
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen3Config(**_qwen3_config_kwargs(len(tokenizer), pad_id))
    config.architectures = ["Qwen3Model"]
    torch.manual_seed(seed)
    model = Qwen3Model(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


_BIDIR_CONFIG = '''"""Tiny bidirectional Qwen3-style encoder config (test remote code)."""
from transformers import Qwen3Config


class TinyBidirConfig(Qwen3Config):
    model_type = "tiny_bidir_qwen3"

    def __init__(self, projection_dim=48, **kwargs):
        self.projection_dim = projection_dim
        super().__init__(**kwargs)
'''

_BIDIR_MODEL = '''"""Tiny bidirectional Qwen3-style encoder (test remote code).

Like voyage-4-nano / pplx-embed: Qwen3 layers with a full (non-causal)
attention mask over the real tokens, then a per-token linear projection.
"""
import torch
from torch import nn
from transformers import Qwen3Model
from transformers.modeling_outputs import BaseModelOutput

from .configuration_tiny_bidir import TinyBidirConfig


class TinyBidirModel(Qwen3Model):
    config_class = TinyBidirConfig

    def __init__(self, config):
        super().__init__(config)
        self.projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        length = input_ids.shape[1]
        keys = attention_mask[:, None, None, :].to(torch.bool).expand(-1, 1, length, length)
        dtype = self.embed_tokens.weight.dtype
        additive = torch.zeros(keys.shape, dtype=dtype).masked_fill(~keys, torch.finfo(dtype).min)
        # A dict mask skips Qwen3Model's causal-mask construction.
        out = super().forward(
            input_ids=input_ids, attention_mask={"full_attention": additive}, use_cache=False
        )
        return BaseModelOutput(last_hidden_state=self.projection(out.last_hidden_state))
'''


def build_bidir_qwen3(folder: Path, projection_dim: int = 48, seed: int = 1) -> Path:
    """Bidirectional Qwen3 encoder + projection, loadable only with trust_remote_code."""
    import torch
    from transformers import AutoConfig, AutoModel

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _bpe_tokenizer(append_eos=False)
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    (folder / "configuration_tiny_bidir.py").write_text(_BIDIR_CONFIG)
    (folder / "modeling_tiny_bidir.py").write_text(_BIDIR_MODEL)
    config = {
        **_qwen3_config_kwargs(len(tokenizer), pad_id),
        "model_type": "tiny_bidir_qwen3",
        "projection_dim": projection_dim,
        "architectures": ["TinyBidirModel"],
        "auto_map": {
            "AutoConfig": "configuration_tiny_bidir.TinyBidirConfig",
            "AutoModel": "modeling_tiny_bidir.TinyBidirModel",
        },
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    loaded = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    torch.manual_seed(seed)
    model = AutoModel.from_config(loaded, trust_remote_code=True).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_bert(folder: Path, seed: int = 2) -> Path:
    """A tiny BERT with a WordPiece tokenizer trained on the corpus."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(CORPUS * 3, vocab_size=300, show_progress=False)
    vocab_dir = folder / "_vocab"
    vocab_dir.mkdir(exist_ok=True)
    wordpiece.save_model(str(vocab_dir))
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_dir / "vocab.txt"), model_max_length=128)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        initializer_range=0.3,
    )
    torch.manual_seed(seed)
    BertModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_profile(
    base: str, folder: Path, dims: int, mrl_dims: tuple[int, ...] = ()
) -> ModelProfile:
    """The registry profile `base` (prompts, pooling, padding, EOS) pointed at a tiny model."""
    profile = REGISTRY[base]
    return dataclasses.replace(
        profile,
        name=f"tiny-{base}",
        hub_id=str(folder),
        revision=None,
        dims=dims,
        mrl_dims=mrl_dims,
        mrl_min=None,
        local_package=None,
        max_tokens_cpu=128,
    )


_BUILT: dict[str, Path] = {}


def tiny_model_dirs(factory: pytest.TempPathFactory) -> dict[str, Path]:
    """All tiny model folders, built once per test session (wrap it in a fixture)."""
    if not _BUILT:
        root = factory.mktemp("tinymodels")
        _BUILT.update(
            {
                "qwen3": build_qwen3(root / "qwen3"),
                "qwen3-old-tokenizer": build_qwen3(root / "qwen3-old", append_eos=False),
                "bidir": build_bidir_qwen3(root / "bidir"),
                "bert": build_bert(root / "bert"),
            }
        )
    return _BUILT

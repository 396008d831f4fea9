"""Build a tiny random-weight Qwen3-Reranker look-alike for tests and benchmarks.

A real `Qwen3ForCausalLM` (hidden 32, 2 layers) and a byte-level BPE tokenizer
that, like Qwen's, has `<|im_start|>`, `<|im_end|>`, `<|endoftext|>` as special
tokens, `<think>`/`</think>` as added tokens, and `yes` and `no` as single
tokens. Saved with save_pretrained, so it loads through the same code path as
the published weights.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED_TOKENS = ["<think>", "</think>"]

_CORPUS = [
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".',
    "<Instruct>: Given a question about coding, retrieval code or passage that can solve "
    "user's question\n<Query>: read a csv file and count the nulls\n<Document>: ",
    "system\nuser\nassistant\n\n",
    "yes\nno\nyes\nno\n",
    "def read_csv(path: str) -> list[dict[str, str]]:\n    with open(path) as handle:\n"
    "        return list(csv.DictReader(handle))\n",
    "class Retry:\n    def backoff(self, attempt: int) -> float:\n        return 0.5 * 2 ** attempt\n",
    "function parseArgs(argv) { return argv.slice(2).map((a) => a.trim()); }\n",
    "func (s *Server) Handle(w http.ResponseWriter, r *http.Request) error { return nil }\n",
    "the quick brown fox jumps over the lazy dog; numbers 0123456789 and symbols !@#$%^&*()",
]


def build_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    # Like Qwen's tokenizer: no EOS/BOS appended, offsets keep their spaces.
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repetition makes `yes` and `no` whole tokens, as they are in Qwen's vocabulary.
    tok.train_from_iterator(_CORPUS * 3 + ["yes no"] * 50, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        padding_side="left",
    )
    wrapped.add_tokens(ADDED_TOKENS)
    for word in ("yes", "no"):
        token_id = wrapped.convert_tokens_to_ids(word)
        assert token_id != wrapped.unk_token_id and token_id is not None, word
    wrapped.save_pretrained(folder)


def build_tiny_reranker(folder: Path, seed: int = 0) -> Path:
    """Write tokenizer + random `Qwen3ForCausalLM` into `folder` and return it."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    build_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=4096,
        # Large random weights so yes/no logits differ clearly between inputs:
        # with the usual 0.02 every score would sit at 0.5 and tests could not fail.
        initializer_range=0.5,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config).eval()
    model.save_pretrained(folder)
    return folder

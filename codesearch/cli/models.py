"""`codesearch models` and `codesearch models show NAME` (mounted by cli.py).

Imports only the registry (no torch, no transformers, no huggingface_hub), so
both commands answer in well under a second.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from codesearch.embed.registry import (
    DEFAULT_MODEL,
    REGISTRY,
    VOYAGE_API_MODELS,
    ModelProfile,
    UnknownModelError,
    local_weights,
    resolve_model,
)

models_app = typer.Typer(
    help="List the embedding models, or show exactly how one is run.",
    no_args_is_help=False,
    add_completion=False,
)

_console = Console(highlight=False)


def _dims_text(profile: ModelProfile) -> str:
    if profile.dims == 0:
        return "from model"
    if profile.mrl_min is not None:
        return f"{profile.dims} (MRL {profile.mrl_min}–{profile.dims})"
    extra = [d for d in profile.allowed_dims() if d != profile.dims]
    return f"{profile.dims} (MRL {'/'.join(map(str, extra))})" if extra else str(profile.dims)


def _availability(profile: ModelProfile) -> str:
    folder, source = local_weights(profile)
    if source == "remote":
        return "remote API"
    if folder is None:
        return "no"
    return f"yes ({source})" if source != "package" else "yes (pkg)"


@models_app.callback(invoke_without_command=True)
def list_models(ctx: typer.Context) -> None:
    """List the registry: name, size, dimensions, licence, and whether it runs here now."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table(title="Embedding models", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("params", no_wrap=True)
    table.add_column("dims", no_wrap=True)
    table.add_column("licence", no_wrap=True)
    table.add_column("local", no_wrap=True)
    for name, profile in REGISTRY.items():
        label = f"{name} *" if name == DEFAULT_MODEL else name
        dims = str(profile.dims) + (" MRL" if profile.allowed_dims() != (profile.dims,) else "")
        licence = profile.licence.split(" (")[0].split(" /")[0]  # full text in `show`
        table.add_row(label, profile.params, dims, licence, _availability(profile))
    _console.print(table)
    voyage = ", ".join(f"voyage:{m}" for m in VOYAGE_API_MODELS)
    _console.print(
        "Also: any sentence-transformers model by hub id or folder (prompts via "
        "--query-prompt/--document-prompt); openai:<name>@<base-url> for vLLM, SGLang, TEI, "
        f"Infinity, Ollama; {voyage} (VOYAGE_API_KEY)."
    )
    _console.print("* default (works offline). Details: codesearch models show NAME")


@models_app.command("show")
def show(
    name: Annotated[
        str, typer.Argument(help="Registry name, alias, hub id, folder, openai:… or voyage:…")
    ],
) -> None:
    """Print the exact strings and settings a model is run with."""
    try:
        profile = resolve_model(name)
    except UnknownModelError as err:
        typer.echo(f"error: {err}", err=True)  # one line, never wrapped
        raise typer.Exit(1) from None
    example_query = "how are retries backed off"
    rows: list[tuple[str, str]] = [
        ("name", profile.name),
        ("aliases", ", ".join(profile.aliases) or "-"),
        ("hub id", profile.hub_id),
        ("revision", profile.revision or "not pinned"),
        ("backend", profile.backend + (f" at {profile.base_url}" if profile.base_url else "")),
        ("params", profile.params or "?"),
        ("licence", profile.licence or "?"),
        ("dims", _dims_text(profile)),
        ("allowed --dim", profile.allowed_dims_text()),
        ("query prompt", repr(profile.query_prompt)),
        ("document prompt", repr(profile.document_prompt)),
        ("query as sent", repr(profile.query_prompt + example_query)),
        (
            "pooling",
            profile.pooling
            + (f", input ends with {profile.eos_token}" if profile.eos_token else ""),
        ),
        ("padding side", profile.padding_side),
        (
            "normalization",
            "unit vectors" if profile.normalize else "not normalized: cosine (we L2-normalize)",
        ),
        ("native precision", profile.native_precision),
        ("trust_remote_code", str(profile.trust_remote_code)),
        ("max tokens", f"{profile.max_tokens_cpu} on CPU, {profile.max_tokens_gpu} on GPU"),
        ("family", profile.family or "-"),
        ("model kwargs", ", ".join(f"{k}={v}" for k, v in profile.encode_kwargs) or "-"),
        ("available here", _availability(profile)),
        ("notes", profile.notes or "-"),
    ]
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    _console.print(table)

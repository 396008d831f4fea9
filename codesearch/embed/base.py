"""What every embedder is: the protocol, its errors, and the vector finishing step.

The backends (local torch, ONNX, remote APIs) import this module; it imports none
of them, so none depends on another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from codesearch.core.errors import ModelUnavailableError
from codesearch.embed.registry import ModelProfile

if TYPE_CHECKING:
    import numpy as np


class Embedder(Protocol):
    profile: ModelProfile
    dim: int
    precision: str

    @property
    def fingerprint(self) -> str: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


class ProfileMismatchError(ModelUnavailableError):
    """The loaded model contradicts its profile (prompt, EOS, dimension): refuse, don't guess."""


def finalize_vectors(vectors: Any, dim: int) -> np.ndarray:
    """float32, first `dim` columns, L2-normalized (MRL truncation then re-normalization).

    Also turns pplx-embed's unnormalized int8 output into unit vectors, so a dot
    product is its cosine.
    """
    import numpy as np

    out = np.asarray(vectors, dtype=np.float32)
    if out.ndim == 1:
        out = out[None, :]
    out = np.ascontiguousarray(out[:, :dim])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


# A fixed sample of ordinary code in a few languages: the model's tokens per character
# on it converts line lengths to model tokens. Counting a 4 KB sample of every file
# instead cost as much as parsing it (about 2 s of 6 for 900 files) and made no
# measurable difference to ranking (README, "Chunk sizes"). Never edit this text:
# the rate, and so every chunk boundary, would move.
# Also the calibration sample of the int8 ONNX model (`embed.onnx.channel_maxima`): changing
# it changes int8 vectors, so bump embed.onnx.FORMAT_VERSION with it.
REFERENCE_CODE = """\
def read_config(path: str, defaults: dict | None = None) -> dict:
    \"\"\"Load a TOML config file and merge it over the defaults.\"\"\"
    settings = dict(defaults or {})
    with open(path, "rb") as handle:
        settings.update(tomllib.load(handle))
    if settings.get("timeout", 0) < 0:
        raise ValueError(f"timeout must be positive, got {settings['timeout']}")
    return settings


class RetryPolicy:
    def __init__(self, attempts: int = 3, backoff: float = 0.5) -> None:
        self.attempts = attempts
        self.backoff = backoff

    def delays(self):
        return [self.backoff * 2 ** i for i in range(self.attempts)]


export async function fetchJson(url, { retries = 2, headers = {} } = {}) {
  for (let attempt = 0; attempt <= retries; attempt++) {
    const response = await fetch(url, { headers: { Accept: "application/json", ...headers } });
    if (response.ok) return response.json();
    if (response.status < 500) throw new HttpError(response.status, await response.text());
  }
  throw new Error(`gave up on ${url} after ${retries + 1} attempts`);
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
\tfile, header, err := r.FormFile("upload")
\tif err != nil {
\t\thttp.Error(w, "missing file", http.StatusBadRequest)
\t\treturn
\t}
\tdefer file.Close()
\tsize, err := io.Copy(s.store.Writer(header.Filename), file)
\tlog.Printf("stored %s (%d bytes)", header.Filename, size)
}

impl<T: Ord + Clone> BinaryHeap<T> {
    /// Pushes an item and restores the heap property.
    pub fn push(&mut self, item: T) {
        self.data.push(item);
        let mut child = self.data.len() - 1;
        while child > 0 {
            let parent = (child - 1) / 2;
            if self.data[child] <= self.data[parent] { break; }
            self.data.swap(child, parent);
            child = parent;
        }
    }
}
"""

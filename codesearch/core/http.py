"""A small JSON-over-HTTP client with retries, shared by remote embedders and rerankers.

Standard library only, so remote backends cost no import time.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from codesearch.core.errors import RemoteError  # noqa: F401 (re-exported)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def post_json(
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    retries: int = 4,
    backoff: float = 0.5,
) -> Any:
    """POST `payload` as JSON and return the decoded JSON answer.

    Transient failures (connection errors, 429, 5xx) are retried with
    exponential backoff; anything else raises RemoteError at once. Header
    values (API keys) never appear in error messages.
    """
    body = json.dumps(payload).encode()
    request_headers = {"Content-Type": "application/json", **(headers or {})}
    last = ""
    for attempt in range(retries + 1):
        request = urllib.request.Request(url, data=body, headers=request_headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            detail = err.read()[:200].decode("utf-8", "replace").replace("\n", " ")
            last = f"HTTP {err.code} from {url}: {detail}"
            if err.code not in RETRY_STATUS:
                raise RemoteError(last) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            last = f"cannot reach {url}: {reason}"
        except json.JSONDecodeError:
            raise RemoteError(f"{url} answered with something that is not JSON") from None
        if attempt < retries:
            time.sleep(backoff * (2**attempt))
    raise RemoteError(f"{last} (after {retries + 1} attempts)")

"""Search options as a front end received them, checked before any search runs."""

from __future__ import annotations

from dataclasses import replace

from codesearch.core.checks import check_search_options
from codesearch.core.types import SearchOptions
from codesearch.source.languages import canonical_language


def checked_options(options: SearchOptions) -> SearchOptions:
    """The options with their languages as the index names them (`py` -> `python`, each
    once); ValueError (one line) for anything a search cannot honour."""
    check_search_options(options)
    languages = tuple(dict.fromkeys(canonical_language(lang) for lang in options.languages))
    return replace(options, languages=languages)

"""Embedding weights that ship inside codesearch, one package per model (see embed/static.py)."""

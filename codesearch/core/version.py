"""The version of codesearch, recorded in every index it writes."""

VERSION = "0.1.0"

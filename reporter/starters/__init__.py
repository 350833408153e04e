"""Starter reports written by ``reporter init`` (one YAML per kind)."""

"""Adapters for agent frameworks; none is a dependency of ambit itself."""

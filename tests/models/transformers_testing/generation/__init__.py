"""Stand-ins for transformers test modules the source distribution lacks (see the package docstring)."""

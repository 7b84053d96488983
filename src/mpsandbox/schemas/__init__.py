"""Schema sources, lookup, compilation and the AJV-6 compatible validator."""

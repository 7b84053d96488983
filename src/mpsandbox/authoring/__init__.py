"""Schema authoring: materialize, lint, diff and scaffold schemas in repository layout.

A producer edits `current.yaml`, and production only ever sees the materialized `X.Y.Z.yaml`
that Wikimedia's jsonschema-tools writes from it. These modules reproduce that step and the
checks around it so that the whole loop runs locally, before review and before deployment.
Nothing here imports Textual; every face (the CLI today) calls these functions.
"""

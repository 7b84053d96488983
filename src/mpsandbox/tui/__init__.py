"""The terminal UI. The only package that imports Textual; it renders the core and sends
it intents (see DESIGN.md)."""

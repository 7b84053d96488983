"""The HTTP faces of the core: EventGate-compatible intake and the inspection API."""

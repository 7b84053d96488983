"""mpsandbox: a local EventGate-compatible intake and event inspector for the Metrics Platform."""

__version__ = "0.1.0"

"""Metric previews: ratios and funnels, defined in YAML, computed over the captured events.

Textual-free: the CLI (``mpsandbox metrics``) and the TUI's Metrics screen both call
:func:`compute_all` on a store connection and show what it returns.
"""

from mpsandbox.metrics.compute import (
    FunnelCounts,
    MetricResult,
    RatioCounts,
    StepCounts,
    compute,
    compute_all,
    compute_stored,
    group_label,
)
from mpsandbox.metrics.definitions import (
    DefinitionError,
    Definitions,
    FieldPath,
    Metric,
    default_metric_dirs,
    load_definitions,
    parse_by,
    parse_field,
    parse_metric,
)
from mpsandbox.metrics.wilson import Z95, Ratio, ratio, wilson_interval

__all__ = [
    "Z95",
    "DefinitionError",
    "Definitions",
    "FieldPath",
    "FunnelCounts",
    "Metric",
    "MetricResult",
    "Ratio",
    "RatioCounts",
    "StepCounts",
    "compute",
    "compute_all",
    "compute_stored",
    "default_metric_dirs",
    "group_label",
    "load_definitions",
    "parse_by",
    "parse_field",
    "parse_metric",
    "ratio",
    "wilson_interval",
]

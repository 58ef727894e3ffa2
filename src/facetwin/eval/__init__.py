"""Stage 4: measure a swap against its original - identity, kept attributes, stability, blending.

``evaluate(original, swapped, ...)`` returns the metrics and, given an output folder, writes
metrics.json and a self-contained report.html. docs/metrics.md defines every number.
"""

from facetwin.eval.pipeline import EvalConfig, evaluate

__all__ = ["EvalConfig", "evaluate"]

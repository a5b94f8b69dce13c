"""Gates: format detection and safetensors checks, Great Expectations suites, Rego policy."""

from weightvault.gates._expectations import (
    ValidationReport,
    provenance_record,
    validate_dataset,
    validate_metrics,
    validate_record,
)
from weightvault.gates._formats import ScanResult, scan_artifact
from weightvault.gates._policy import (
    coverage_gaps,
    evaluate,
    explain,
    policy_rules,
    run_policy_tests,
)
from weightvault.gates._tensordiff import TensorDiff, diff_safetensors

__all__ = [
    "ScanResult",
    "TensorDiff",
    "ValidationReport",
    "coverage_gaps",
    "diff_safetensors",
    "evaluate",
    "explain",
    "policy_rules",
    "provenance_record",
    "run_policy_tests",
    "scan_artifact",
    "validate_dataset",
    "validate_metrics",
    "validate_record",
]

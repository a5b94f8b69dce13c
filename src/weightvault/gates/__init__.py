"""Gates: format detection and safetensors checks, Great Expectations suites, Rego policy
(admission, and authorization of every operation)."""

from weightvault.gates._authz import (
    AUTHZ_PACKAGE,
    MATRIX_PREFIX,
    authorize,
    authz_rules,
    authz_table,
    run_authz_tests,
)
from weightvault.gates._detect import (
    DETECT_PACKAGE,
    Finding,
    detect_rules,
    detect_thresholds,
    detection_tags,
    evaluate_detection,
    run_detect_tests,
)
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
    "AUTHZ_PACKAGE",
    "DETECT_PACKAGE",
    "MATRIX_PREFIX",
    "Finding",
    "ScanResult",
    "TensorDiff",
    "ValidationReport",
    "authorize",
    "authz_rules",
    "authz_table",
    "coverage_gaps",
    "detect_rules",
    "detect_thresholds",
    "detection_tags",
    "diff_safetensors",
    "evaluate",
    "evaluate_detection",
    "explain",
    "policy_rules",
    "provenance_record",
    "run_authz_tests",
    "run_detect_tests",
    "run_policy_tests",
    "scan_artifact",
    "validate_dataset",
    "validate_metrics",
    "validate_record",
]

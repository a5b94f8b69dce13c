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
    data_docs_pages,
    provenance_record,
    validate_dataset,
    validate_metrics,
    validate_record,
)
from weightvault.gates._formats import (
    SafetensorsReport,
    ScanResult,
    TensorInfo,
    check_safetensors_bytes,
    check_safetensors_header,
    loader_hazard,
    safetensors_header_length,
    scan_artifact,
    scan_file,
)
from weightvault.gates._modelconfig import (
    ModelChecks,
    ValidationConfig,
    load_validation_config,
    run_model_checks,
)
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
    "ModelChecks",
    "SafetensorsReport",
    "ScanResult",
    "TensorDiff",
    "TensorInfo",
    "ValidationConfig",
    "ValidationReport",
    "authorize",
    "authz_rules",
    "authz_table",
    "check_safetensors_bytes",
    "check_safetensors_header",
    "coverage_gaps",
    "data_docs_pages",
    "detect_rules",
    "detect_thresholds",
    "detection_tags",
    "diff_safetensors",
    "evaluate",
    "evaluate_detection",
    "explain",
    "load_validation_config",
    "loader_hazard",
    "policy_rules",
    "provenance_record",
    "run_authz_tests",
    "run_detect_tests",
    "run_model_checks",
    "run_policy_tests",
    "safetensors_header_length",
    "scan_artifact",
    "scan_file",
    "validate_dataset",
    "validate_metrics",
    "validate_record",
]

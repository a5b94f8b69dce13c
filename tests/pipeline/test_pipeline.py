"""The reference DVC pipeline: deterministic stages, and a real `dvc repro` in a temp repo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors import safe_open

from pipeline import evaluate as evaluate_stage
from pipeline import load_params, read_dataset
from pipeline import prepare as prepare_stage
from pipeline import train as train_stage
from pipeline.evaluate import evaluate
from pipeline.prepare import PrepareParams, prepare
from pipeline.train import METADATA_KEY, TrainParams, train
from tests.conftest import REPO
from weightvault.errors import ConfigError, InvalidInputError
from weightvault.provenance import capture_provenance

ROOT = REPO
PARAMS = ROOT / "config" / "params.yaml"
VENV_BIN = Path(sys.executable).parent
OUTPUTS = [
    "data/prepared/train.csv",
    "data/prepared/test.csv",
    "model/model.safetensors",
    "model/config.json",
    "metrics.json",
]


def run_pipeline(workdir: Path) -> dict[str, bytes]:
    """Run the three stage functions with the repo's params; return every output's bytes."""
    data, model = workdir / "data" / "prepared", workdir / "model"
    prepare(data, PrepareParams.from_mapping(load_params(PARAMS, "prepare")))
    train(data, model, TrainParams.from_mapping(load_params(PARAMS, "train")))
    evaluate(data, model, workdir / "metrics.json")
    return {name: (workdir / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return run_pipeline(tmp_path_factory.mktemp("run-a"))


def test_two_runs_are_bit_for_bit_identical(outputs: dict[str, bytes], tmp_path: Path) -> None:
    again = run_pipeline(tmp_path)
    for name in OUTPUTS:
        assert again[name] == outputs[name], f"{name} differs between runs"


def test_model_learns_digits(outputs: dict[str, bytes]) -> None:
    metrics = json.loads(outputs["metrics.json"])
    assert metrics["accuracy"] > 0.9
    assert metrics["n_test"] == 449
    assert set(metrics["per_class_accuracy"]) == {str(d) for d in range(10)}


def test_prepared_csv_layout(tmp_path: Path, outputs: dict[str, bytes]) -> None:
    train_csv = outputs["data/prepared/train.csv"].decode()
    header = train_csv.splitlines()[0].split(",")
    assert header == [f"p{i}" for i in range(64)] + ["label"]
    path = tmp_path / "train.csv"
    path.write_text(train_csv)
    features, labels = read_dataset(path)
    assert features.shape == (1348, 64)
    assert labels.shape == (1348,)
    assert features.min() >= 0
    assert features.max() <= 16


def test_model_files(tmp_path: Path, outputs: dict[str, bytes]) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(outputs["model/model.safetensors"])
    with safe_open(str(path), framework="np") as handle:
        metadata = handle.metadata()
        assert sorted(handle.keys()) == ["bias", "weight"]
        assert handle.get_tensor("weight").shape == (10, 64)
        assert str(handle.get_tensor("bias").dtype) == "float32"
    assert list(metadata) == [METADATA_KEY]
    assert json.loads(metadata[METADATA_KEY])["architecture"] == "softmax_regression"
    config = json.loads(outputs["model/config.json"])
    assert config["train_params"] == load_params(PARAMS, "train")
    assert outputs["model/config.json"].endswith(b"\n")


def test_different_seed_gives_different_model(tmp_path: Path, outputs: dict[str, bytes]) -> None:
    data = tmp_path / "data"
    prepare(data, PrepareParams.from_mapping(load_params(PARAMS, "prepare")))
    values = load_params(PARAMS, "train") | {"seed": 1234}
    model = train(data, tmp_path / "model", TrainParams.from_mapping(values))
    assert model.read_bytes() != outputs["model/model.safetensors"]


@pytest.mark.parametrize(
    ("section", "values"),
    [
        ("prepare", {"seed": 1, "test_size": 1.5}),
        ("prepare", {"seed": -1, "test_size": 0.2}),
        ("train", {"seed": 1, "epochs": 0, "batch_size": 8, "learning_rate": 0.1, "l2": 0}),
        ("train", {"seed": 1, "epochs": 1, "batch_size": 8, "learning_rate": "x", "l2": 0}),
        ("train", {"seed": True, "epochs": 1, "batch_size": 8, "learning_rate": 0.1, "l2": 0}),
    ],
)
def test_bad_params_are_config_errors(section: str, values: dict[str, object]) -> None:
    factory = PrepareParams if section == "prepare" else TrainParams
    with pytest.raises(ConfigError):
        factory.from_mapping(values)


def test_stage_cli_reports_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("prepare: {seed: 1}\n")
    assert prepare_stage.main(["--params", str(params), "--out", str(tmp_path / "d")]) == 3
    expected = "prepare: error: param test_size must be a number in [0.05, 0.95], got None\n"
    assert capsys.readouterr().err == expected
    missing = tmp_path / "nowhere"
    code = train_stage.main(
        ["--params", str(PARAMS), "--data", str(missing), "--out", str(missing)]
    )
    assert code == InvalidInputError.exit_code
    args = ["--data", str(missing), "--model", str(missing), "--out", str(missing / "m.json")]
    assert evaluate_stage.main(args) == InvalidInputError.exit_code
    errors = capsys.readouterr().err.splitlines()
    assert errors[0].startswith("train: error: cannot read dataset")
    assert errors[1].startswith("evaluate: error: cannot read dataset")


def test_read_dataset_rejects_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInputError, match="header"):
        read_dataset(path)
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    path.write_text(header + "\n" + ",".join(["0"] * 64 + ["10"]) + "\n")
    with pytest.raises(InvalidInputError, match="label"):
        read_dataset(path)
    path.write_text(header + "\n" + ",".join(["0"] * 3) + "\n")
    with pytest.raises(InvalidInputError, match="ragged"):
        read_dataset(path)


def test_dvc_yaml_matches_the_stage_modules() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["prepare", "train", "evaluate"]
    produced: set[str] = set()
    for name, stage in stages.items():
        assert f"python -m pipeline.{name}" in stage["cmd"]
        for dep in stage["deps"]:  # each dep is an earlier stage's out or a file in the repo
            assert dep in produced or (ROOT / dep).is_file(), dep
        produced.update(stage.get("outs", []))
    assert stages["prepare"]["params"] == [
        {"config/params.yaml": ["prepare.seed", "prepare.test_size"]}
    ]
    train_params = stages["train"]["params"][0]["config/params.yaml"]
    assert sorted(key.split(".")[1] for key in train_params) == sorted(load_params(PARAMS, "train"))


def test_dvc_repro_in_a_temp_repo(tmp_path: Path, outputs: dict[str, bytes]) -> None:
    """`dvc repro` runs the real pipeline from a fresh git+DVC repo and writes dvc.lock."""
    repo = tmp_path / "repo"
    for relpath in ["dvc.yaml", "config/params.yaml", *_code_deps()]:
        (repo / relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relpath, repo / relpath)
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env |= {
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site-cache"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    git = [shutil.which("git") or "git", "-c", "user.name=T", "-c", "user.email=t@example.com"]
    dvc = str(VENV_BIN / "dvc")

    def run(*argv: str) -> str:
        done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run(*git, "init", "-q")
    run(dvc, "init", "-q")
    run(dvc, "repro")
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert list(lock["stages"]) == ["prepare", "train", "evaluate"]
    assert lock["stages"]["train"]["params"]["config/params.yaml"]["train.epochs"] == 40
    for name in OUTPUTS:  # a separate process gives the same bytes as in-process runs
        assert (repo / name).read_bytes() == outputs[name], f"{name} differs under dvc repro"

    assert "Data and pipelines are up to date" in run(dvc, "status")
    run(*git, "add", "-A")
    run(*git, "commit", "-q", "-m", "reference pipeline")
    prov = capture_provenance(
        repo, run_id="dvc-repro", creator="ci", lock_file=None, parent=None, allow_incomplete=True
    )
    assert prov.git_dirty is False
    assert prov.missing == ("lock_file",)  # no uv.lock in the temp repo
    assert prov.datasets is not None
    [prepared] = prov.datasets
    assert prepared.path == "data/prepared"
    assert prepared.dvc_md5 == lock["stages"]["prepare"]["outs"][0]["md5"]
    assert [f.relpath for f in prepared.files] == ["test.csv", "train.csv"]
    assert [st.name for st in prov.dvc_stages] == ["evaluate", "prepare", "train"]
    train = {st.name: st for st in prov.dvc_stages}["train"]
    assert dict(train.outs) == {o["path"]: o["md5"] for o in lock["stages"]["train"]["outs"]}
    assert train.cmd.startswith("python -m pipeline.train")
    assert train.params_sha256 is not None


def test_the_reference_lock_file_pins_the_environment_that_trains() -> None:
    """pipeline/requirements.txt (the model repo's lock file) names the versions installed here."""
    import importlib.metadata

    pins = [
        line.split("==")
        for line in (ROOT / "pipeline" / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert {name for name, _ in pins} >= {"numpy", "pyyaml", "safetensors", "threadpoolctl"}
    for name, version in pins:
        assert importlib.metadata.version(name) == version, f"{name} is pinned to {version}"


def _code_deps() -> list[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    deps = {dep for stage in stages.values() for dep in stage["deps"]}
    outs = {out for stage in stages.values() for out in stage.get("outs", [])}
    return sorted(deps - outs)

"""The command line and the environment variables, read into one Settings: here only."""

import argparse
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aml_run import REPO
from app.config import DEFAULT_MODEL_DIR
from training.gates import GATES

# The evaluate step's gates: training/gates.py's, but for those that need a model in service (the pipeline has none).
PIPELINE_GATES = tuple(gate for gate in GATES if gate.measured_with != "--served")
GITHUB_OIDC = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "AZURE_CLIENT_ID", "AZURE_TENANT_ID")


@dataclass(frozen=True)
class Settings:
    subscription_id: str | None  # AZURE_SUBSCRIPTION_ID
    resource_group: str | None  # AZURE_RESOURCE_GROUP
    workspace: str | None  # AZUREML_WORKSPACE
    data_dir: Path | None  # MNIST_DIR: the local IDX folder, uploaded when its version is missing
    data_name: str  # the data asset's name
    handwriting_dir: Path | None  # HANDWRITING_DIR: the handwriting folder, uploaded when its version is missing
    handwriting_name: str  # its data asset's name
    feedback_dir: Path | None  # FEEDBACK_DIR: the corrections folder, uploaded when its version is missing; None: none
    feedback_unreviewed: bool  # --feedback-unreviewed: its records waiting for review too, not only the accepted
    feedback_name: str  # the corrections data asset's name
    model_name: str  # the registered model's name
    model_dir: Path  # where the model files go: app/model, which the Dockerfile copies
    epochs: int | None  # None: the train step's own default (training/train.py digits)
    detector_epochs: int | None  # None: the detector step's own default (training/train.py detector)
    gates: dict[str, float]  # PIPELINE_GATES' bounds: the evaluate step's; min_accuracy, the bar for a fetched model
    git_commit: str  # GIT_COMMIT or GITHUB_SHA, else the checkout's HEAD
    reuse_latest: bool
    dry_run: bool
    github_oidc: tuple[str, str, str, str] | None = None  # request URL, request token, client id, tenant id
    github_output: Path | None = None  # GITHUB_OUTPUT: the workflow reads the model and its accuracies here


def git_head() -> str:
    """The checkout's commit, or "unknown" outside a git checkout."""
    try:
        result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def github_oidc(env: dict[str, str]) -> tuple[str, str, str, str] | None:
    """What a GitHub Actions job with `id-token: write` needs to get Azure tokens; None elsewhere."""
    values = tuple(env.get(name) for name in GITHUB_OIDC)
    return values if all(values) else None


def parse_args(argv: list[str] | None, env: dict[str, str], description: str | None = None) -> Settings:
    """All settings, from the arguments and the environment (description: what --help says first)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscription-id", default=env.get("AZURE_SUBSCRIPTION_ID"),
                        help="default: $AZURE_SUBSCRIPTION_ID")
    parser.add_argument("--resource-group", default=env.get("AZURE_RESOURCE_GROUP"),
                        help="default: $AZURE_RESOURCE_GROUP")
    parser.add_argument("--workspace", default=env.get("AZUREML_WORKSPACE"), help="default: $AZUREML_WORKSPACE")
    parser.add_argument("--data-dir", type=Path, default=env.get("MNIST_DIR") or None,
                        help="local MNIST IDX folder: its content picks the data asset version, uploaded when "
                             "missing (default: $MNIST_DIR; none: the latest data asset version)")
    parser.add_argument("--data-name", default="mnist", help="data asset name (default: mnist)")
    parser.add_argument("--handwriting-dir", type=Path, default=env.get("HANDWRITING_DIR") or None,
                        help="local handwriting folder (the real writers' digits, unipen-digits.json.gz and "
                             "pendigits-digits.json.gz, and the letters and symbols learnt as \"not a digit\", "
                             "unipen-uppercase.json.gz, unipen-lowercase.json.gz, unipen-symbols.json.gz): its five "
                             "files pick the data asset version, uploaded when missing (default: $HANDWRITING_DIR; "
                             "none: the latest data asset version)")
    parser.add_argument("--handwriting-name", default="handwriting",
                        help="the handwriting data asset's name (default: handwriting)")
    parser.add_argument("--feedback-dir", type=Path, default=env.get("FEEDBACK_DIR") or None,
                        help="the app's corrections folder: its records accepted in review (python -m "
                             "training.review) are trained on, and gated on their kept-out split; their content "
                             "picks the data asset version, uploaded when missing (default: $FEEDBACK_DIR; none: "
                             "no corrections)")
    parser.add_argument("--feedback-unreviewed", action="store_true",
                        help="the records of the corrections folder still waiting for review too (never the "
                             "rejected ones); uploaded among the accepted, counted in the data asset's tags")
    parser.add_argument("--feedback-name", default="digit-feedback",
                        help="corrections data asset name (default: digit-feedback)")
    parser.add_argument("--model-name", default="mnist-cnn", help="registered model name (default: mnist-cnn)")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR,
                        help="where to put the model files (default: app/model, which the Docker build copies)")
    parser.add_argument("--epochs", type=int,
                        help="training epochs of the digits network (default: training's own, python -m "
                             "training.train digits)")
    parser.add_argument("--detector-epochs", type=int,
                        help="training epochs of the \"not a digit\" detector (default: its own, python -m "
                             "training.train detector)")
    for gate in PIPELINE_GATES:
        parser.add_argument(f"--{gate.name.replace('_', '-')}", type=float, default=gate.default,
                            help=f"the evaluate step's gate: {gate.meaning} (default: {gate.default}, "
                                 "training/gates.py's)" + (", and the bar for a fetched model" if
                                                           gate.name == "min_accuracy" else ""))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--reuse-latest", action="store_true",
                      help="skip training: fetch the latest registered version of --model-name")
    mode.add_argument("--dry-run", action="store_true",
                      help="offline: load and validate every definition, print the pipeline YAML")
    args = parser.parse_args(argv)
    gates = {gate.name: getattr(args, gate.name) for gate in PIPELINE_GATES}
    if any(value is not None and value < 1 for value in (args.epochs, args.detector_epochs)):
        parser.error("--epochs and --detector-epochs must be >= 1")
    for name, value in gates.items():
        if not 0.0 <= value <= 1.0:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1 (a share)")
    if args.feedback_unreviewed and not args.feedback_dir:
        parser.error("--feedback-unreviewed needs a corrections folder: set FEEDBACK_DIR or pass --feedback-dir")
    workspace = {"AZURE_SUBSCRIPTION_ID": args.subscription_id, "AZURE_RESOURCE_GROUP": args.resource_group,
                 "AZUREML_WORKSPACE": args.workspace}
    missing = [name for name, value in workspace.items() if not value]
    if missing and not args.dry_run:
        parser.error(f"no workspace: set {', '.join(missing)} (or pass --subscription-id, --resource-group, "
                     "--workspace)")
    return Settings(
        subscription_id=args.subscription_id, resource_group=args.resource_group, workspace=args.workspace,
        data_dir=args.data_dir, data_name=args.data_name, handwriting_dir=args.handwriting_dir,
        handwriting_name=args.handwriting_name, feedback_dir=args.feedback_dir,
        feedback_unreviewed=args.feedback_unreviewed, feedback_name=args.feedback_name, model_name=args.model_name,
        model_dir=args.model_dir,
        epochs=args.epochs, detector_epochs=args.detector_epochs,
        gates=gates,
        git_commit=env.get("GIT_COMMIT") or env.get("GITHUB_SHA") or git_head(),
        reuse_latest=args.reuse_latest, dry_run=args.dry_run,
        github_oidc=github_oidc(env), github_output=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
    )

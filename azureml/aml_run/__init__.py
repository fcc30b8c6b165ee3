"""The Azure ML run's code, one module a job; azureml/run_pipeline.py is its command and puts the steps in order.

    settings.py     the command line and the environment variables, read into one Settings
    connection.py   reaching Azure: a fresh GitHub OIDC token per Azure token in a workflow, else
                    DefaultAzureCredential; the MLClient
    definitions.py  the azureml/*.yml files: their paths, the names the code shares with them, loading them
    workspace.py    the compute cluster and the environment, made when the workspace lacks them
    data_assets.py  the MNIST, handwriting and corrections data assets: checked locally, versioned by
                    content, uploaded
    submission.py   the pipeline job: built for this run (data, gates, environment version), submitted, awaited
    registry.py     the registered model: the new model's figures, the comparison, registration, tagging
    install.py      the registered model downloaded, checked with the app's loader, copied into app/model/
    report.py       the closing line, and GITHUB_OUTPUT for a workflow's later steps
    steps.py        StepFailed and step(): each step said as it starts, any error turned into one naming it

The package has a name of its own, not `azureml`: that is Microsoft's (azureml-core, azureml-mlflow), and
this repository's azureml/ folder is no package (no __init__.py), so neither shadows the other. It is found
because `python azureml/run_pipeline.py` puts the script's own folder, azureml/, first on sys.path.

Importing it puts the repository root on sys.path too, so that its modules import `app` and `training` as
usual: the one place that does. Every `import aml_run.<module>` runs this first.
"""

import sys
from pathlib import Path

AZUREML = Path(__file__).resolve().parent.parent  # azureml/: the YAML definitions
REPO = AZUREML.parent  # the repository root: `app`, `training`, the git checkout

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

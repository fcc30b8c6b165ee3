"""azureml/run_pipeline.py and its package aml_run, imported as running the script finds them.

`python azureml/run_pipeline.py` puts the script's folder, azureml/, first on sys.path; so does this module,
once, and then imports the script and the package by their plain names, as the script does. They are never
imported as `azureml.*`: that name is Microsoft's (see the script's docstring).
"""

import importlib
import pkgutil
import sys
import warnings
from pathlib import Path

from marshmallow.warnings import Marshmallow4Warning

AZUREML = Path(__file__).resolve().parents[2] / "azureml"
ENTRY_POINT = AZUREML / "run_pipeline.py"

if str(AZUREML) not in sys.path:
    sys.path.insert(0, str(AZUREML))

with warnings.catch_warnings():
    warnings.simplefilter("ignore", Marshmallow4Warning)  # about the SDK's own schema classes, at import
    run_pipeline = importlib.import_module("run_pipeline")
    aml_run = importlib.import_module("aml_run")
    for module in pkgutil.iter_modules(aml_run.__path__):  # each then an attribute: aml_run.data_assets, ...
        importlib.import_module(f"aml_run.{module.name}")

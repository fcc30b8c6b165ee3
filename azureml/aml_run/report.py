"""What the run tells at the end: one line for a person, and GITHUB_OUTPUT for a workflow's later steps."""

from azure.ai.ml.entities import Model

from aml_run.settings import Settings


def report(model: Model, metadata: dict, settings: Settings) -> None:
    """Say which model is installed and how good it is; with GITHUB_OUTPUT set, write model=, accuracy=,
    style_accuracy=, writer_accuracy= and refused= there."""
    style_accuracy = metadata["style_validation"]["accuracy"]
    writer_accuracy = metadata["writers_validation"]["accuracy"]
    refused = metadata["negatives_validation"]["refused"]
    print(f"model {model.name}:{model.version} (test accuracy {metadata['test_accuracy']:.4f}, style set "
          f"{style_accuracy:.4f}, writers kept out {writer_accuracy:.4f}, negatives kept out refused "
          f"{refused:.4f}) is in {settings.model_dir}: build the image to ship it")
    if settings.github_output:
        with settings.github_output.open("a") as outputs:
            outputs.write(f"model={model.name}:{model.version}\naccuracy={metadata['test_accuracy']}\n"
                          f"style_accuracy={style_accuracy}\nwriter_accuracy={writer_accuracy}\nrefused={refused}\n")

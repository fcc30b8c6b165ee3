"""What the run tells at the end: one line for a person, and GITHUB_OUTPUT for a workflow's later steps."""

from azure.ai.ml.entities import Model

from aml_run.settings import Settings


def report(model: Model, metadata: dict, settings: Settings) -> None:
    """Say which model is installed and how good it is; with GITHUB_OUTPUT set, write model=, accuracy= and
    style_accuracy= there (empty for a model trained before the style set)."""
    style_accuracy = metadata.get("style_validation", {}).get("accuracy")  # None: trained before the style set
    style = "not measured" if style_accuracy is None else f"{style_accuracy:.4f}"
    print(f"model {model.name}:{model.version} (test accuracy {metadata['test_accuracy']:.4f}, style set {style}) "
          f"is in {settings.model_dir}: build the image to ship it")
    if settings.github_output:
        with settings.github_output.open("a") as outputs:
            outputs.write(f"model={model.name}:{model.version}\naccuracy={metadata['test_accuracy']}\n"
                          f"style_accuracy={'' if style_accuracy is None else style_accuracy}\n")

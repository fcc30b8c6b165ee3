"""What the run tells at the end: one line for a person, and GITHUB_OUTPUT for a workflow's later steps."""

from azure.ai.ml.entities import Model

from aml_run.settings import Settings


def shown(figure: float | None) -> str:
    return "not measured" if figure is None else f"{figure:.4f}"


def report(model: Model, metadata: dict, settings: Settings) -> None:
    """Say which model is installed and how good it is; with GITHUB_OUTPUT set, write model=, accuracy=,
    style_accuracy=, writer_accuracy= and refused= there (empty for a model trained before the style set, the
    real writers or "not a digit")."""
    style_accuracy = metadata.get("style_validation", {}).get("accuracy")  # None: trained before the style set
    writer_accuracy = (metadata.get("writers_validation") or {}).get("accuracy")  # None: before the real writers
    refused = (metadata.get("negatives_validation") or {}).get("refused")  # None: before "not a digit"
    print(f"model {model.name}:{model.version} (test accuracy {metadata['test_accuracy']:.4f}, style set "
          f"{shown(style_accuracy)}, real writers {shown(writer_accuracy)}, negatives kept out refused "
          f"{shown(refused)}) is in {settings.model_dir}: build the image to ship it")
    if settings.github_output:
        with settings.github_output.open("a") as outputs:
            outputs.write(f"model={model.name}:{model.version}\naccuracy={metadata['test_accuracy']}\n"
                          f"style_accuracy={'' if style_accuracy is None else style_accuracy}\n"
                          f"writer_accuracy={'' if writer_accuracy is None else writer_accuracy}\n"
                          f"refused={'' if refused is None else refused}\n")

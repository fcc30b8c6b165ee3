"""The model card (app/model/README.md, after the Model Cards convention): what the model is for, what it learnt
from, how it does on each set kept out, where it fails, and how to make it again. Rendered from metadata.json
alone, so it says what that file says: training writes it after metadata.json, and

    python -m training.card app/model

rewrites it (tests/test_card.py checks the shipped card is this rendering of the shipped metadata.json).
"""

import argparse
import json
import sys
from pathlib import Path

from app.contract import METADATA_FILE

CARD_FILE = "README.md"
MNIST_CREDIT = "MNIST (LeCun, Cortes & Burges, 1998; yann.lecun.com/exdb/mnist)"
PLACES = {"local": "on a local machine", "azureml": "in an Azure ML job"}
WORST_KINDS = 6  # the negatives least often refused, named in the limitations


def percent(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def intended_use(metadata: dict, refuses: bool) -> list[str]:
    model = metadata["model"]
    lines = ["## Intended use", "",
             "Reading one handwritten digit, drawn with a mouse, a finger or a pen, or photographed, as the app "
             "prepares it (app/preprocess.py: one character fitted and centred in 28x28 pixels, as MNIST was made). "
             f"Input: {model['input']}. Output: {model['output']}."]
    if refuses:
        lines.append("It answers \"not a digit\" for a drawing that is none, such as a letter, a symbol or a shape.")
    else:
        lines.append("It is a digits network alone: it never answers \"not a digit\".")
    lines += ["", "Not for: several digits at once, digits in a photo of a page, or telling who wrote them.", ""]
    return lines


def data(metadata: dict, training: dict) -> list[str]:
    sources = metadata["data"]
    rows = [("MNIST training images", training["training_images"] - sum(
        training.get(f"{name}_images", 0) for name in ("style", "writers", "negatives", "corrections")),
        MNIST_CREDIT)]
    rows.append(("style set: fonts and stroke templates (training/styles.py)", training.get("style_images", 0),
                 "this project; the fonts' sources and licences: training/fonts/SOURCES.md"))
    if sources.get("writers"):
        rows.append(("writers' digits (the handwriting)", training["writers_images"], sources["writers"]["credit"]))
    if sources.get("negatives"):
        rows.append(("negatives: letters, symbols and generated shapes", training["negatives_images"],
                     sources["negatives"]["credit"] + "; the shapes: this project"))
    if training.get("corrections_images"):
        rows.append(("users' corrections", training["corrections_images"], "this app's users"))
    return ["## Data", "", "Trained on (each image changed at random each epoch, as people's drawings differ; "
            "training/recipe.py):", "", *table(("set", "images", "source and credit"), rows), "",
            f"{training['validation_images']} of MNIST's training images are held out for the curves and the "
            "refusal cap. Every figure below is measured on images kept out of training: MNIST's test set, whole "
            "writers, whole fonts and templates, whole kinds of negatives.", ""]


def digit_rows(metadata: dict) -> list[tuple]:
    rows = [("MNIST test", metadata["test_images"], percent(metadata["test_accuracy"], 2),
             percent(min(metadata["per_class_accuracy"].values())), percent(metadata["refused"], 2))]
    names = {"writers_validation": "writers kept out", "style_validation": "style set kept out",
             "small_styles": "small drawings", "feedback_validation": "corrections kept out"}
    for key, name in names.items():
        figures = metadata.get(key)
        if figures and figures.get("images", figures.get("records")):
            rows.append((name, figures.get("images", figures.get("records")), percent(figures["accuracy"], 2),
                         percent(figures["worst_digit_accuracy"]) if "worst_digit_accuracy" in figures else "",
                         percent(figures["refused"], 2) if "refused" in figures else ""))
    for dataset, accuracy in metadata.get("writers_validation", {}).get("per_dataset_accuracy", {}).items():
        rows.append((f"writers kept out: {dataset}", "", percent(accuracy, 2), "", ""))
    return rows


def figures(metadata: dict) -> list[str]:
    lines = ["## Figures", "", "Of model.tflite, the file the app serves. \"Refused\": answered \"not a digit\" "
             "(an error for a digit).", "",
             *table(("digits", "images", "accuracy", "worst digit", "refused"), digit_rows(metadata)), ""]
    negatives = metadata.get("negatives_validation")
    if negatives:
        rows = [(group, percent(share)) for group, share in negatives["per_group_refused"].items()]
        lines += [f"Negatives kept out: {negatives['images']} drawings, {percent(negatives['refused'])} refused.", "",
                  *table(("negatives kept out", "refused"), rows), ""]
    return lines


def limitations(metadata: dict) -> list[str]:
    lines = ["## Limitations", ""]
    negatives = metadata.get("negatives_validation")
    if negatives:
        read_as = sorted(negatives["answered_as_digit"].items(), key=lambda item: -item[1])
        lines.append("- A drawing that is no digit but is not refused is read as a digit, most often as "
                     + ", ".join(f"{digit} ({count})" for digit, count in read_as[:4] if count) + " (of the "
                     f"{sum(count for _, count in read_as)} negatives kept out that it answered).")
        worst = sorted(negatives["per_kind_refused"].items(), key=lambda item: item[1])[:WORST_KINDS]
        lines.append("- Characters written like digits are refused least: "
                     + ", ".join(f"`{kind.split(':', 1)[1]}` {percent(share, 0)}" for kind, share in worst) + ". "
                     "Some are never negatives at all (an O is a 0, an l or I is a 1: training/negatives.py).")
    else:
        lines.append("- It never says \"not a digit\": every drawing is read as some digit.")
    lines += ["- One character per picture; several, or a digit among writing, is read as one.",
              "- Learnt from Western digit shapes (MNIST, UNIPEN, UCI pen digits and fonts of school styles); "
              "other numerals are not digits to it.", ""]
    return lines


def reproduce(metadata: dict, refuses: bool) -> list[str]:
    recipe = metadata["hyperparameters"]
    digits = ("python -m training.train digits --data $MNIST_DIR --handwriting $HANDWRITING_DIR "
              "--out digits-model")
    lines = ["## How to reproduce", "", "The handwriting folder comes from "
             "`python -m training.fetch_handwriting --out $HANDWRITING_DIR`.", "", "```"]
    if refuses:
        lines += [digits, "python -m training.train detector --digits digits-model --data $MNIST_DIR "
                  f"--handwriting $HANDWRITING_DIR --out app/model --epochs {recipe['epochs']} "
                  f"--learning-rate {recipe['learning_rate']:g} --max-refused {recipe['max_refused']:g}"]
    else:
        lines.append(f"{digits} --epochs {recipe['epochs']} --learning-rate {recipe['learning_rate']:g} "
                     f"--seed {recipe['seed']}")
    training = metadata["training"]
    lines += ["```", "", f"The last step took {training['seconds'] / 60:.0f} min of fitting "
              f"({training['epochs']} epochs), {PLACES.get(metadata['trained_on']['platform'], 'elsewhere')}, with "
              + ", ".join(f"{name} {version}" for name, version in metadata["libraries"].items()) + "."]
    if training.get("started_from"):
        lines.append(f"It started from the digits network whose model.tflite has sha256 "
                     f"`{training['started_from']['sha256']}`.")
    return lines + [""]


def render(metadata: dict) -> str:
    """The card of the model metadata.json describes, as Markdown."""
    refuses = "negatives_validation" in metadata
    tflite = metadata["files"]["model.tflite"]
    header = [f"# Model card: {metadata['model']['name']}", "",
              f"model.tflite: {tflite['bytes']:,} bytes, sha256 `{tflite['sha256']}`; "
              f"{metadata['model']['parameters']:,} parameters; trained {metadata['created']}. "
              "Written from metadata.json by `python -m training.card` (training/card.py): edit that, not this.", ""]
    body = [*intended_use(metadata, refuses), *data(metadata, metadata["training"]), *figures(metadata),
            *limitations(metadata), *reproduce(metadata, refuses)]
    return "\n".join(header + body).rstrip("\n") + "\n"


def write_card(folder: Path) -> Path:
    """README.md beside metadata.json in the model folder `folder`."""
    path = Path(folder) / CARD_FILE
    path.write_text(render(json.loads((Path(folder) / METADATA_FILE).read_text())))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.card", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a model folder holding metadata.json (e.g. app/model)")
    print(f"wrote {write_card(parser.parse_args(argv).model)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

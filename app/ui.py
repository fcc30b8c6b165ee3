"""The UI: draw a digit, see the model's top 3 and the 28x28 picture it read. Also the `predict` API.

Prediction runs as the user draws, when each stroke ends (the latest one winning): seeing the answer
change stroke by stroke explains the model better than a button.

What one stroke costs the server is set by how the Sketchpad talks to it. At the end of a stroke the
browser sends its background, layer and composite images (`accept_blobs`, three requests), then fires
`change`. An event that takes the Sketchpad as an *input* makes the browser upload all three images
again each time Gradio asks for the component's value, which it does for every status update
(docs/benchmarks.md has the cost). So the UI's event takes no input: the server keeps the last
composite each session sent (Drawings, app/gradio_overrides.py) and reads that. The `predict` API, which
programs call with a Sketchpad value, is a separate event the page never fires.

The answer is a digit, or "not a digit" (a letter, a shape, a scribble: the Label's top class then, and the
message says so in words). Once either shows, "Wrong? It was…" offers the digits 0-9: one click keeps the
picture with the digit meant (app/corrections.py), read again from the same composite. Nothing is kept without that
click. The `feedback` API takes a Sketchpad value and the digit meant, for programs.

The `predict` API answers the Label's value: {"label": "7", "confidences": [...]} for a digit, {"label": "not a
digit", ...} for anything else drawn, and an empty value for nothing to read.
"""

import numpy as np

from app.contract import BRUSH_RADIUS, CANVAS_SIZE, CLASS_NAMES, DIGITS
from app.corrections import NotKept, summary
from app.gradio_overrides import gr, override_sketchpad
from app.preprocess import NothingDrawn, NothingToRead, UnreadableImage
from app.reading import Reader, nothing_to_correct

CANVAS = (CANVAS_SIZE, CANVAS_SIZE)
# Gradio keeps a client's uploads and session state this long, in the process that took them: a Service
# must keep the client on that process at least as long (kustomize/base/service.yaml).
CLIENT_STATE_SECONDS = 600
EMPTY_MESSAGE = "Draw one digit on the canvas."
WHICH_DIGIT = "If it is a digit after all, click it above (“Wrong? It was…”)."  # with corrections kept
THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])  # no web fonts
CSS = """#seen img { image-rendering: pixelated; width: 112px; height: 112px; object-fit: contain; }
#meant { align-items: center; gap: 6px; }
#meant > * { flex: 0 0 auto !important; min-width: 0 !important; }
#meant button { min-width: 2.4em; font-size: 1.1em; }"""
SELECT_BRUSH = """() => {  // the Sketchpad opens, and clears, with no tool selected: pick the brush to draw at once
  const pick = (tries) => {
    const brush = document.querySelector('button[aria-label="Brush"]');
    if (brush) brush.click(); else if (tries > 0) setTimeout(() => pick(tries - 1), 100);
  };
  pick(50);
}"""


def predict(reader: Reader, sketch, request_id: str | None = None) -> tuple[dict | None, np.ndarray | None, str]:
    """A Sketchpad value or a picture -> (the Label's value, the 28x28 picture the model saw, a message)."""
    try:
        reading = reader.read(sketch, request_id)
    except NothingToRead as reason:
        message = EMPTY_MESSAGE if isinstance(reason, NothingDrawn) else f"Nothing to read: {reason}. {EMPTY_MESSAGE}"
        return None, None, message
    except UnreadableImage as error:
        raise gr.Error(f"Could not read the image: {error}", print_exception=False) from None  # logged
    confidences = {name: float(p) for name, p in zip(CLASS_NAMES, reading.probabilities, strict=True)}
    message = "" if reading.is_digit else reading.not_a_digit_message()
    return confidences, (reading.seen[..., 0] * 255).round().astype(np.uint8), message


def correct(reader: Reader, sketch, meant, request: gr.Request | None = None) -> dict:
    """The `feedback` API: keep a Sketchpad value with the digit meant; what was kept, or a gr.Error why not."""
    client = request.client.host if request and request.client else None
    request_id = request.headers.get("x-request-id") if request else None
    try:
        correction, name = reader.correct(sketch, meant, client, request_id)
    except NothingToRead as reason:
        raise gr.Error(nothing_to_correct(reason), print_exception=False) from None
    except (NotKept, UnreadableImage, ValueError) as error:
        raise gr.Error(str(error), print_exception=False) from None
    return summary(correction, name)


def model_figures(metadata: dict) -> str:
    """What the model was trained on and how well it reads, from its metadata: people it never saw first, when
    it was measured on them (a model trained before the real writers was not), then what it says to drawings
    that are no digit (a model trained before "not a digit" says nothing of them)."""
    mnist = f"{metadata.get('test_accuracy', 0.0):.2%} of MNIST's 10,000 test digits"
    writers, negatives = metadata.get("writers_validation"), metadata.get("negatives_validation")
    if not writers:
        return f"A CNN trained on MNIST reads {mnist}."
    figures = (f"A CNN trained on MNIST and on real people's pen strokes reads {writers['accuracy']:.2%} of the "
               f"digits of {writers['writers']} writers it never saw, and {mnist}.")
    if negatives:
        figures += (f" It says \"not a digit\" to {negatives['refused']:.1%} of the letters, symbols and shapes "
                    "it was never trained on.")
    return figures


def build_ui(reader: Reader, concurrency: int) -> gr.Blocks:
    """The page and the Gradio API, reading with `reader`; `concurrency` readings at once."""
    with gr.Blocks(title="Handwritten digits", delete_cache=(CLIENT_STATE_SECONDS, CLIENT_STATE_SECONDS)) as demo:
        gr.Markdown(f"## Draw a digit\n{model_figures(reader.metadata)} It reads your digit as you draw.")
        with gr.Row():
            sketch = gr.Sketchpad(
                label="Canvas", canvas_size=CANVAS, height=560, image_mode="RGBA", sources=(),
                layers=False, transforms=(), buttons=[],  # eraser=False would hide the whole toolbar
                brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"))
            with gr.Column(min_width=240):
                label = gr.Label(num_top_classes=3, label="The model reads")
                gr.Markdown("What the model saw (28×28):")  # above the picture: a block label would cover its top
                seen_image = gr.Image(show_label=False, elem_id="seen", height=130, width=150, interactive=False,
                                      buttons=[], format="png")
                with gr.Row(visible=False, elem_id="meant") as meant_row:  # shown with an answer, if kept
                    gr.Markdown("Wrong? It was…")
                    meant_buttons = [gr.Button(digit, size="sm", min_width=0) for digit in DIGITS]
                message = gr.Markdown(EMPTY_MESSAGE)
        drawings = override_sketchpad(sketch)  # each page's last composite (app/gradio_overrides.py)

        def read_drawing(request: gr.Request):
            """The page's event: the composite its last stroke sent (none after clearing)."""
            label_value, seen, text = predict(reader, drawings.latest(request.session_hash),
                                              request.headers.get("x-request-id"))
            offer = reader.corrections.enabled and label_value is not None  # an answer, a digit or not
            if offer and text:  # "not a digit": ask which digit it is, if it is one
                text = f"{text} {WHICH_DIGIT}"
            return label_value, seen, text, gr.Row(visible=offer)

        def correct_drawing(meant: str, request: gr.Request):
            """A click on "Wrong? It was…" (after a digit or "not a digit"): keep the composite last read with the
            digit meant, say so."""
            try:
                kept = correct(reader, drawings.latest(request.session_hash), meant, request)
            except gr.Error as error:
                return error.message, gr.Row(visible=True)
            return kept["message"], gr.Row(visible=False)  # until the next answer: one correction a reading

        def clear(request: gr.Request):
            drawings.forget(request.session_hash)
            return None, None, EMPTY_MESSAGE, gr.Row(visible=False)

        def page_closed(request: gr.Request):
            drawings.forget(request.session_hash)

        def predict_api(value, request: gr.Request):  # Gradio passes the request; the API does not show it
            return predict(reader, value, request.headers.get("x-request-id") if request else None)[0]

        def feedback_api(value, meant, request: gr.Request):
            return correct(reader, value, meant, request)

        answer = [label, seen_image, message, meant_row]
        sketch.change(read_drawing, inputs=None, outputs=answer, trigger_mode="always_last",
                      concurrency_limit=concurrency, concurrency_id="predict", show_progress="hidden",
                      api_visibility="private")
        sketch.clear(clear, inputs=None, outputs=answer, js=SELECT_BRUSH, queue=False,
                     show_progress="hidden", api_visibility="private")
        for button in meant_buttons:  # the button's value is its digit
            button.click(correct_drawing, inputs=button, outputs=[message, meant_row], concurrency_limit=concurrency,
                         concurrency_id="predict", show_progress="hidden", api_visibility="private")
        gr.Button(visible=False).click(  # programs' entry: gradio_client or HTTP with a Sketchpad value
            predict_api, inputs=sketch, outputs=label, api_name="predict", concurrency_limit=concurrency,
            concurrency_id="predict")
        gr.Button(visible=False).click(  # programs' correction: a Sketchpad value and the digit meant
            feedback_api, inputs=[sketch, gr.Number(label="digit meant", visible=False, minimum=0, maximum=9)],
            outputs=gr.JSON(label="kept", visible=False), api_name="feedback", concurrency_limit=concurrency,
            concurrency_id="predict")
        demo.load(None, js=SELECT_BRUSH)
        demo.unload(page_closed)
    return demo

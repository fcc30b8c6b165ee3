"""The baseline bench_app.py compares against: a service built like the system this project replaces.

    python -m bench.baseline_app --port 8000

FastAPI takes the canvas as a base64 PNG data URL in JSON (what an HTML canvas app sends from
`canvas.toDataURL()`), makes it 28x28 white-on-black, and calls Keras `model.predict` on the shipped
model.keras for every request. Deliberately naive: it is the yardstick, not this project's code.
"""

import argparse
import base64
import io
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from pydantic import BaseModel  # noqa: E402

model = keras.models.load_model(Path(__file__).resolve().parents[1] / "app" / "model" / "model.keras")
app = FastAPI()


class Canvas(BaseModel):
    image: str  # "data:image/png;base64,..."


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/predict")
def predict(canvas: Canvas):
    png = base64.b64decode(canvas.image.split(",", 1)[1])
    image = ImageOps.invert(Image.open(io.BytesIO(png)).convert("L")).resize((28, 28))
    x = np.asarray(image, np.float32).reshape(1, 28, 28, 1) / 255.0
    probabilities = model.predict(x, verbose=0)[0]
    return {"digit": str(int(probabilities.argmax())), "probabilities": probabilities.tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")

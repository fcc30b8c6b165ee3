"""The shipped recipe: what each of the two commands trains with, written once (metadata.json records it under
`hyperparameters`; tests/test_train.py checks the shipped model's record against it). No TensorFlow here, so
`python -m training.train --help` is quick."""

from dataclasses import dataclass, field


@dataclass
class Augmentation:
    """Random changes to each training image, like the ways people's drawings differ from MNIST's."""

    rotation_degrees: float = 10.0  # either way
    shear_degrees: float = 12.0  # slant, either way
    zoom: float = 0.1  # fraction, in or out
    aspect: float = 0.12  # width changed against height by up to this fraction, either way
    shift: float = 0.1  # fraction of the image, either way
    elastic_pixels: float = 0.6  # typical size of the smooth random displacement (Simard et al. 2003)
    elastic_smoothness: float = 3.0  # its Gaussian's sigma in pixels: larger is smoother
    thicken: float = 0.75  # at most this much of the way towards a 1-pixel-wider stroke
    thin: float = 0.5  # at most this much of the way towards a 1-pixel-thinner stroke


@dataclass
class DigitsConfig:
    """The digits network (10 outputs), trained from scratch on MNIST, the style set and the writers' digits:
    ~27 min on 2 CPU cores."""

    epochs: int = 24  # about 85,000 images an epoch
    batch_size: int = 128
    learning_rate: float = 2e-3  # peak, reached after the warm-up, then cosine decay to 0
    warmup_epochs: int = 1
    dropout: float = 0.4
    validation_images: int = 5000  # held out of MNIST's 60,000 training images for the curves and the refusal cap
    seed: int = 42
    augmentation: Augmentation = field(default_factory=Augmentation)


@dataclass
class DetectorConfig(DigitsConfig):
    """The "not a digit" detector, fine-tuned from a digits network on the same data and the negatives, then
    joined to that network, which it leaves unchanged: fewer epochs at a lower rate, ~19 min on 2 CPU cores."""

    epochs: int = 8  # about 115,000 images an epoch
    learning_rate: float = 5e-4
    max_refused: float = 0.0005  # of MNIST's held-out images, at most this share refused (training/calibrate.py):
    # MNIST test accuracy >= 99.6 %, counting a refusal as an error, leaves the digits about 6 of 10,000 to refuse

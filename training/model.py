"""The CNN and the augmentation that imitates how people draw.

The network follows the best-known single-CNN recipe for MNIST (Chris Deotte's Kaggle kernel):
two blocks of conv3-conv3-conv5/stride 2, each conv followed by batch norm, then a 4x4 conv to a
128-vector, dropout and a softmax. About 327k parameters, 1.3 MB as float32 LiteRT, ~0.15 ms per
image on one CPU core.
"""

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

from app.contract import INPUT_SHAPE, NUM_CLASSES


@dataclass
class Augmentation:
    """Random changes to each training image, like the ways people's drawings differ from MNIST's."""

    rotation_degrees: float = 10.0  # slant
    shift: float = 0.1  # fraction of the image, either way
    zoom: float = 0.1  # fraction, in or out
    thicken: float = 0.75  # at most this much of the way towards a 1-pixel-wider stroke
    thin: float = 0.5  # at most this much of the way towards a 1-pixel-thinner stroke


def conv_bn(x, filters: int, kernel: int, strides: int = 1, padding: str = "valid"):
    """Conv (no bias: batch norm brings its own) -> batch norm -> ReLU."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def build_model(dropout: float = 0.4) -> keras.Model:
    """[N, 28, 28, 1] in [0, 1] -> [N, 10] probabilities (see app/contract.py)."""
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = conv_bn(inputs, 32, 3)                        # 26x26x32
    x = conv_bn(x, 32, 3)                             # 24x24x32
    x = conv_bn(x, 32, 5, strides=2, padding="same")  # 12x12x32
    x = layers.Dropout(dropout)(x)
    x = conv_bn(x, 64, 3)                             # 10x10x64
    x = conv_bn(x, 64, 3)                             # 8x8x64
    x = conv_bn(x, 64, 5, strides=2, padding="same")  # 4x4x64
    x = layers.Dropout(dropout)(x)
    x = conv_bn(x, 128, 4)                            # 1x1x128
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def build_augmenter(settings: Augmentation, seed: int):
    """A function from a batch [B, 28, 28, 1] to a randomly changed batch, for tf.data's map."""
    geometry = keras.Sequential([
        layers.RandomRotation(settings.rotation_degrees / 360.0, fill_mode="constant", seed=seed),
        layers.RandomZoom(settings.zoom, fill_mode="constant", seed=seed + 1),
        layers.RandomTranslation(settings.shift, settings.shift, fill_mode="constant", seed=seed + 2),
    ], name="augment")

    def augment(images, labels):
        images = geometry(images, training=True)
        return stroke_width(images, settings, seed + 3), labels

    return augment


def stroke_width(images, settings: Augmentation, seed: int):
    """Blend each image part of the way towards its dilation (bolder) or erosion (finer)."""
    amount = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], -1.0, 1.0, seed=seed)
    bolder = tf.nn.max_pool2d(images, 3, 1, "SAME")
    finer = -tf.nn.max_pool2d(-images, 3, 1, "SAME")
    towards_bolder = tf.nn.relu(amount) * settings.thicken * (bolder - images)
    towards_finer = tf.nn.relu(-amount) * settings.thin * (finer - images)
    return tf.clip_by_value(images + towards_bolder + towards_finer, 0.0, 1.0)

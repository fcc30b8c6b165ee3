"""training/model.py's augmentation: one warp per image (affine and elastic), seeded per batch."""

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.data import to_model_input
from training.model import bilinear, build_augmenter, elastic_field, warp
from training.recipe import Augmentation

NONE = Augmentation(rotation_degrees=0, shear_degrees=0, zoom=0, aspect=0, shift=0, elastic_pixels=0,
                    thicken=0, thin=0)


@pytest.fixture(scope="module")
def batch(mnist_slice):
    return tf.constant(to_model_input(mnist_slice.x_train[:64])), tf.constant(mnist_slice.y_train[:64])


def seed(number):
    return tf.constant([number, 0], tf.int64)


def test_no_change_asked_is_no_change(batch):
    images, labels = build_augmenter(NONE)(batch, seed(1))
    assert np.allclose(images.numpy(), batch[0].numpy(), atol=1e-5)
    assert np.array_equal(labels.numpy(), batch[1].numpy())


def test_the_seed_alone_decides_the_changes(batch):
    augment = build_augmenter(Augmentation())
    first, again, other = (augment(batch, seed(number))[0].numpy() for number in (1, 1, 2))
    assert np.array_equal(first, again) and not np.allclose(first, other)


def test_the_elastic_field_moves_x_and_y_independently_and_smoothly():
    """Keras 3.15's keras.ops.image.elastic_transform draws both from one seed (dx == dy); this one must not."""
    field = elastic_field(256, 28, replace(NONE, elastic_pixels=1.5, elastic_smoothness=3.0), seed(3)).numpy()
    dx, dy = field[..., 0].ravel(), field[..., 1].ravel()
    assert abs(np.corrcoef(dx, dy)[0, 1]) < 0.05
    inner = field[:, 9:19, 9:19]  # away from the zero padding at the edges
    assert inner.std() == pytest.approx(1.5, rel=0.15)
    neighbours = np.corrcoef(field[:, :, :-1, 0].ravel(), field[:, :, 1:, 0].ravel())[0, 1]
    assert neighbours > 0.9


def test_each_change_alone_moves_the_ink_as_it_says(batch):
    images = batch[0]
    centre = np.arange(28) - 13.5

    def spread(pictures, axis):  # the ink's standard deviation along an axis (1: rows, 2: columns)
        weights = pictures.numpy()[..., 0].sum(axis=3 - axis)
        mean = (weights * centre).sum(1) / weights.sum(1)
        return np.sqrt((weights * (centre - mean[:, None]) ** 2).sum(1) / weights.sum(1))

    wider = warp(images, replace(NONE, aspect=0.3), seed(5))
    ratio = spread(wider, 2) / spread(images, 2)
    assert np.abs(ratio - 1).max() > 0.1 and np.abs(spread(wider, 1) / spread(images, 1) - 1).max() < 0.02
    moved = warp(images, replace(NONE, shift=0.1), seed(5)).numpy()
    assert not np.allclose(moved, images.numpy()) and moved.sum() == pytest.approx(images.numpy().sum(), rel=0.05)


def test_bilinear_reads_as_keras_map_coordinates():
    """The warp's own four-gather bilinear read gives keras.ops.image.map_coordinates' values, inside the
    image, between pixels, on its edges and outside it (0)."""
    rng = np.random.default_rng(0)
    images = rng.random((8, 28, 28)).astype(np.float32)
    y, x = (rng.uniform(-3, 31, (8, 28, 28)).astype(np.float32) for _ in range(2))
    y[:, 0, :4], x[:, 0, :4] = [0, 27, 27.5, -0.5], [27, 0, 3, 26.25]  # corners and half a pixel outside
    y[:, 1], x[:, 1] = np.round(y[:, 1]), np.round(x[:, 1])  # whole pixels
    batch_index = np.broadcast_to(np.arange(8, dtype=np.float32)[:, None, None], y.shape)
    expected = keras.ops.image.map_coordinates(images, np.stack([batch_index, y, x]), order=1)
    assert np.allclose(bilinear(tf.constant(images), tf.constant(y), tf.constant(x)), expected, atol=1e-6)

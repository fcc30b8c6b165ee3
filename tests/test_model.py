"""training/model.py's network: the fused batch norm trains as Keras' own, and the model saved is Keras' own."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from app.contract import NOT_A_DIGIT, NUM_DIGITS, check_output
from training.calibrate import refusal_margins
from training.model import FusedBatchNormalization, build_model, keep_digits, parts, plain_copy


def test_fused_batch_norm_trains_as_keras_batch_norm():
    """Same outputs, gradients and moving averages in a training step; the same inference afterwards."""
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(2.0, 3.0, (16, 6, 6, 5)).astype(np.float32))
    keras_norm, fused_norm = layers.BatchNormalization(), FusedBatchNormalization()
    keras_norm.build(inputs.shape)
    fused_norm.build(inputs.shape)
    fused_norm.set_weights([weights + 0.1 * i for i, weights in enumerate(keras_norm.get_weights())])
    keras_norm.set_weights(fused_norm.get_weights())  # gamma, beta and the moving averages away from 1 and 0
    weights = tf.constant(rng.normal(size=(16, 6, 6, 5)).astype(np.float32))  # so that no gradient is 0 by symmetry

    def step(norm):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = norm(inputs, training=True)
            loss = tf.reduce_sum(outputs * weights)
        return outputs, tape.gradient(loss, [inputs, *norm.trainable_weights])

    (keras_out, keras_grads), (fused_out, fused_grads) = step(keras_norm), step(fused_norm)
    assert np.allclose(fused_out, keras_out, atol=1e-5)
    for fused, expected in zip(fused_grads, keras_grads, strict=True):
        assert np.allclose(fused, expected, rtol=1e-4, atol=1e-4)
    for fused, expected in zip(fused_norm.get_weights(), keras_norm.get_weights(), strict=True):
        assert np.allclose(fused, expected, atol=1e-6)  # the moving averages moved alike
    assert not np.allclose(keras_norm.moving_mean.numpy(), 0.1 * 2)  # ...and did move
    assert np.allclose(fused_norm(inputs, training=False), keras_norm(inputs, training=False), atol=1e-5)


def test_plain_copy_is_the_same_network_in_keras_own_layers():
    trained = build_model(batch_norm=FusedBatchNormalization)
    images = np.random.default_rng(1).random((4, 28, 28, 1)).astype(np.float32)
    trained(images, training=True)  # a training step's forward pass moves the averages away from their start
    plain = plain_copy(trained)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in plain.layers)
    assert sum(isinstance(layer, FusedBatchNormalization) for layer in trained.layers) == 7
    assert [type(layer) for layer in plain.layers] == [type(layer) for layer in build_model().layers]
    assert not any("fused" in layer.name for layer in plain.layers)  # named as Keras names its own layers
    assert np.allclose(plain.predict(images, verbose=0), trained.predict(images, verbose=0), atol=1e-6)


@pytest.mark.parametrize("norm", [layers.BatchNormalization, FusedBatchNormalization])
def test_inference_ignores_the_batch(norm):
    """In inference each image is read alone: the moving averages, not the batch's statistics."""
    model = build_model(batch_norm=norm)
    images = np.random.default_rng(2).random((6, 28, 28, 1)).astype(np.float32)
    together = model.predict(images, verbose=0)
    alone = np.concatenate([model.predict(images[i:i + 1], verbose=0) for i in range(6)])
    assert np.allclose(together, alone, atol=1e-6)


def test_keep_digits_leaves_the_digits_to_the_digits_network():
    """P(not a digit) is the detector's; each digit's is the digits network's times the rest, so an answered
    drawing gets the digits network's digit, and a model that keeps its digits is split back into the two."""
    digits, detector = build_model(), build_model()
    digits = keras.Model(digits.inputs, layers.Dense(NUM_DIGITS, activation="softmax")(digits.layers[-2].output))
    images = np.random.default_rng(3).random((64, 28, 28, 1)).astype(np.float32)
    model = keep_digits(digits, detector)
    kernel, bias = detector.layers[-1].get_weights()
    bias[NOT_A_DIGIT] -= np.median(refusal_margins(model.predict(images, verbose=0)))  # about half refused
    detector.layers[-1].set_weights([kernel, bias])  # the layer is the model's: it moves too

    probabilities = check_output(model.predict(images, verbose=0), len(images))
    read, refused = digits.predict(images, verbose=0), detector.predict(images, verbose=0)[:, NOT_A_DIGIT]
    assert np.allclose(probabilities[:, NOT_A_DIGIT], refused, atol=1e-6)
    assert np.allclose(probabilities[:, :NUM_DIGITS], read * (1.0 - refused[:, None]), atol=1e-6)
    answered = probabilities.argmax(1) != NOT_A_DIGIT
    assert 0 < answered.sum() < len(images)
    assert (probabilities[answered].argmax(1) == read[answered].argmax(1)).all()
    assert parts(model) == (model.get_layer("digits"), model.get_layer("detector")) and parts(digits) == (None, digits)

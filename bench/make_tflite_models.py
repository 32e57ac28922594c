"""Make the small full-integer .tflite test models in tests/data/tflite/ with the TensorFlow converter.

Run once, with a Python that has TensorFlow (mcuc and its tests do not need it), e.g.:

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow
    /tmp/tfvenv/bin/python bench/make_tflite_models.py [OUTDIR]

Every model has int8 inputs and outputs, seeded random weights and a seeded random representative
dataset, so rerunning the script gives the same files for the same TensorFlow version.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "tests" / "data" / "tflite"


class Weights:
    """Seeded random variables: He-scaled conv/dense kernels, small biases."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def kernel(self, *shape: int, fan_in: int | None = None) -> tf.Variable:
        fan = fan_in if fan_in is not None else int(np.prod(shape[:-1]))
        return tf.Variable(self.rng.normal(0.0, np.sqrt(2.0 / fan), shape).astype(np.float32))

    def bias(self, n: int) -> tf.Variable:
        return tf.Variable(self.rng.normal(0.0, 0.1, n).astype(np.float32))


def conv(x: tf.Tensor, w: tf.Variable, b: tf.Variable, stride: int = 1, padding: str = "SAME") -> tf.Tensor:
    return tf.nn.conv2d(x, w, stride, padding) + b


def dwconv(x: tf.Tensor, w: tf.Variable, b: tf.Variable, stride: int = 1, padding: str = "SAME") -> tf.Tensor:
    return tf.nn.depthwise_conv2d(x, w, (1, stride, stride, 1), padding) + b


def hard_swish(x: tf.Tensor) -> tf.Tensor:
    return x * tf.nn.relu6(x + 3.0) / 6.0


def dw_residual_cnn() -> tuple[Callable, tuple[int, ...]]:
    """MobileNetV2-style: explicit PAD + stride-2 conv, ReLU6, inverted residual blocks, pools, MEAN, FC, softmax."""
    w = Weights(1)
    c0 = (w.kernel(3, 3, 3, 16), w.bias(16))
    e1, d1, p1 = (w.kernel(1, 1, 16, 32), w.bias(32)), (w.kernel(3, 3, 32, 1), w.bias(32)), (w.kernel(1, 1, 32, 16),
                                                                                              w.bias(16))
    d2 = (w.kernel(5, 5, 16, 2, fan_in=25), w.bias(32))
    p2 = (w.kernel(1, 1, 32, 24), w.bias(24))
    fc = (w.kernel(24, 10), w.bias(10))

    def f(x: tf.Tensor) -> tf.Tensor:
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        x = tf.nn.relu6(conv(x, *c0, stride=2, padding="VALID"))  # 16x16x16
        h = tf.nn.relu6(conv(x, *e1))
        h = tf.nn.relu6(dwconv(h, *d1))
        x = x + conv(h, *p1)  # residual ADD
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")  # 8x8
        h = tf.nn.relu(dwconv(x, *d2, stride=2))  # depth multiplier 2, 4x4x32
        x = conv(h, *p2)
        x = tf.nn.avg_pool2d(x, 3, 1, "SAME")
        x = tf.reduce_mean(x, axis=[1, 2])
        return tf.nn.softmax(tf.matmul(x, fc[0]) + fc[1])

    return f, (1, 32, 32, 3)


def mobilenet_v3_block() -> tuple[Callable, tuple[int, ...]]:
    """Hard-swish, squeeze-excite (MEAN, FC, ReLU, FC, LOGISTIC, MUL), SUB, concat, resize, tanh head."""
    w = Weights(2)
    c0 = (w.kernel(3, 3, 4, 16), w.bias(16))
    d1 = (w.kernel(3, 3, 16, 1), w.bias(16))
    se1, se2 = (w.kernel(16, 8), w.bias(8)), (w.kernel(8, 16), w.bias(16))
    c2 = (w.kernel(1, 1, 32, 8), w.bias(8))
    fc = (w.kernel(8 * 8 * 8, 6), w.bias(6))

    def f(x: tf.Tensor) -> tf.Tensor:
        x = hard_swish(conv(x, *c0, stride=2))  # 8x8x16
        h = hard_swish(dwconv(x, *d1))
        s = tf.reduce_mean(h, axis=[1, 2], keepdims=True)
        s = tf.nn.relu(tf.tensordot(s, se1[0], 1) + se1[1])
        s = tf.sigmoid(tf.tensordot(s, se2[0], 1) + se2[1])
        h = h * s
        y = tf.concat([h, x - h], axis=3)  # 8x8x32
        y = conv(y, *c2)
        small = tf.nn.avg_pool2d(y, 2, 2, "VALID")
        y = y + tf.image.resize(small, (8, 8), method="nearest")
        y = tf.reshape(y, (1, 8 * 8 * 8))
        return tf.tanh(tf.matmul(y, fc[0]) + fc[1])

    return f, (1, 16, 16, 4)


def attention() -> tuple[Callable, tuple[int, ...]]:
    """One transformer block without LayerNorm: FC on 3-D tokens, two heads, BATCH_MATMUL, softmax, GELU MLP."""
    w = Weights(3)
    t, c, heads = 16, 32, 2
    dh = c // heads
    qkv = (w.kernel(c, 3 * c), w.bias(3 * c))
    proj = (w.kernel(c, c), w.bias(c))
    m1, m2 = (w.kernel(c, 2 * c), w.bias(2 * c)), (w.kernel(2 * c, c), w.bias(c))
    cls = (w.kernel(c, 5), w.bias(5))

    def f(x: tf.Tensor) -> tf.Tensor:
        h = tf.matmul(x, qkv[0]) + qkv[1]  # [1, T, 3C]
        h = tf.reshape(h, (1, t, 3, heads, dh))
        h = tf.transpose(h, (2, 0, 3, 1, 4))  # [3, 1, H, T, dh]
        q, k, v = h[0], h[1], h[2]
        a = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * (1.0 / np.sqrt(dh)))
        o = tf.matmul(a, v)  # [1, H, T, dh]
        o = tf.reshape(tf.transpose(o, (0, 2, 1, 3)), (1, t, c))
        x = x + tf.matmul(o, proj[0]) + proj[1]
        m = tf.nn.gelu(tf.matmul(x, m1[0]) + m1[1], approximate=False)
        x = x + tf.matmul(m, m2[0]) + m2[1]
        tok = tf.gather(x, [0], axis=1)  # class token
        return tf.matmul(tf.reshape(tok, (1, c)), cls[0]) + cls[1]

    return f, (1, 16, 32)


def attention_relu() -> tuple[Callable, tuple[int, ...]]:
    """Single-head attention that TFLM runs whole: FC on 3-D tokens, BATCH_MATMUL (adj_y), softmax, ReLU MLP,
    token MEAN."""
    w = Weights(6)
    c = 24
    q_, k_, v_ = (w.kernel(c, c), w.bias(c)), (w.kernel(c, c), w.bias(c)), (w.kernel(c, c), w.bias(c))
    m1, m2 = (w.kernel(c, 2 * c), w.bias(2 * c)), (w.kernel(2 * c, c), w.bias(c))
    cls = (w.kernel(c, 4), w.bias(4))

    def f(x: tf.Tensor) -> tf.Tensor:
        q = tf.matmul(x, q_[0]) + q_[1]
        k = tf.matmul(x, k_[0]) + k_[1]
        v = tf.matmul(x, v_[0]) + v_[1]
        a = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / np.sqrt(c))
        x = x + tf.matmul(a, v)
        x = x + tf.matmul(tf.nn.relu(tf.matmul(x, m1[0]) + m1[1]), m2[0]) + m2[1]
        return tf.matmul(tf.reduce_mean(x, axis=1), cls[0]) + cls[1]

    return f, (1, 12, 24)


def layernorm_mlp() -> tuple[Callable, tuple[int, ...]]:
    """LayerNorm as the converter writes it in int8 (MEAN, SQUARED_DIFFERENCE, RSQRT, SUB, MUL, ADD), then an MLP."""
    w = Weights(8)
    c = 16
    gamma = tf.constant(np.random.default_rng(9).uniform(0.5, 1.5, c).astype(np.float32))
    beta = tf.constant(np.random.default_rng(10).normal(0.0, 0.1, c).astype(np.float32))
    m1, m2 = (w.kernel(c, 2 * c), w.bias(2 * c)), (w.kernel(2 * c, c), w.bias(c))

    def f(x: tf.Tensor) -> tf.Tensor:
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.math.squared_difference(x, mean), axis=-1, keepdims=True)
        h = (x - mean) * tf.math.rsqrt(var + 1e-3) * gamma + beta
        h = tf.matmul(tf.nn.relu(tf.matmul(h, m1[0]) + m1[1]), m2[0]) + m2[1]
        return tf.reduce_mean(x + h, axis=1)

    return f, (1, 8, 16)


def detection_heads() -> tuple[Callable, tuple[int, ...]]:
    """A backbone with two outputs (box regression and class logits), strided slices and a per-tensor FC."""
    w = Weights(4)
    c0, c1 = (w.kernel(3, 3, 3, 8), w.bias(8)), (w.kernel(3, 3, 8, 16), w.bias(16))
    box, cls = (w.kernel(1, 1, 16, 4), w.bias(4)), (w.kernel(1, 1, 16, 3), w.bias(3))

    def f(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.nn.relu(conv(x, *c0, stride=2))
        x = tf.nn.relu(conv(x, *c1, stride=2))  # 6x6x16
        b = tf.reshape(conv(x, *box), (1, 36, 4))
        s = tf.sigmoid(conv(x[:, 1:5, :, :], *cls))  # strided slice
        return b, s

    return f, (1, 24, 24, 3)


def tiny_cnn() -> tuple[Callable, tuple[int, ...]]:
    """Dilated-free 1-channel CNN with VALID padding, MUL by a constant, and a per-channel FC output."""
    w = Weights(5)
    c0 = (w.kernel(5, 5, 1, 6), w.bias(6))
    c1 = (w.kernel(3, 3, 6, 12), w.bias(12))
    fc = (w.kernel(12 * 2 * 2, 10), w.bias(10))
    scale = tf.constant(np.linspace(0.5, 1.5, 12).astype(np.float32))

    def f(x: tf.Tensor) -> tf.Tensor:
        x = tf.nn.relu(conv(x, *c0, padding="VALID"))  # 24x24
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")  # 12
        x = conv(x, *c1, padding="VALID") * scale  # 10x10x12
        x = tf.nn.avg_pool2d(x, 4, 4, "VALID")  # 2x2x12
        return tf.matmul(tf.reshape(x, (1, 48)), fc[0]) + fc[1]

    return f, (1, 28, 28, 1)


def leaky_relu_net() -> tuple[Callable, tuple[int, ...]]:
    """A convolution and LEAKY_RELU (alpha 0.1); tests/test_tflite.py also rewrites its opcode into an op mcuc does
    not read, for the unsupported-op error."""
    w = Weights(7)
    c0 = (w.kernel(3, 3, 3, 4), w.bias(4))

    def f(x: tf.Tensor) -> tf.Tensor:
        return tf.nn.leaky_relu(conv(x, *c0), alpha=0.1)

    return f, (1, 8, 8, 3)


MODELS: dict[str, Callable[[], tuple[Callable, tuple[int, ...]]]] = {
    "dw_residual_cnn": dw_residual_cnn,
    "mobilenet_v3_block": mobilenet_v3_block,
    "attention": attention,
    "attention_relu": attention_relu,
    "layernorm_mlp": layernorm_mlp,
    "detection_heads": detection_heads,
    "tiny_cnn": tiny_cnn,
}


FLOAT_IO_MODELS: dict[str, Callable[[], tuple[Callable, tuple[int, ...]]]] = {
    "float_io_tiny_cnn": tiny_cnn,  # int8 inside, float32 input and output behind QUANTIZE/DEQUANTIZE
}

# Last, so that every model keeps its seed (100 + its position): a LEAKY_RELU model and the float model of the
# float-model error.
EXTRA_MODELS: dict[str, Callable[[], tuple[Callable, tuple[int, ...]]]] = {
    "leaky_relu": leaky_relu_net,
    "float_tiny_cnn": tiny_cnn,  # converted without quantization
}


def convert(fn: Callable, shape: tuple[int, ...], seed: int, quantize: bool = True, int8_io: bool = True) -> bytes:
    """Full-integer conversion (int8 weights and activations; int8 or float32 inputs and outputs), or plain
    float32."""
    module = tf.Module()
    module.f = tf.function(fn, input_signature=[tf.TensorSpec(shape, tf.float32)])
    concrete = module.f.get_concrete_function()
    if not quantize:
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete], module).convert()
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(32):
            yield [rng.normal(0.0, 1.0, shape).astype(np.float32)]

    conv_ = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    conv_.optimizations = [tf.lite.Optimize.DEFAULT]
    conv_.representative_dataset = representative
    conv_.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        conv_.inference_input_type = tf.int8
        conv_.inference_output_type = tf.int8
    return conv_.convert()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for i, (name, make) in enumerate({**MODELS, **FLOAT_IO_MODELS, **EXTRA_MODELS}.items()):
        fn, shape = make()
        data = convert(fn, shape, seed=100 + i, quantize=not name.startswith("float_tiny"),
                       int8_io=name not in FLOAT_IO_MODELS)
        path = OUT / f"{name}.tflite"
        path.write_bytes(data)
        print(f"wrote {path} ({len(data):,} B)")


if __name__ == "__main__":
    main()

"""Malformed models found by fuzzing (tests/fuzz_harness.py), one test per class: `mcuc compile` answers each with
exit 1 and one `error:` line naming the cause, no traceback, no hang and no output directory, or compiles a model
that verifies bit-exact. Never a silent miscompile."""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from mcuc.cli import main
from mcuc.errors import MCUCError
from mcuc.frontend import tflite as tflite_frontend
from mcuc.frontend.tflite import load_tflite, schema
from mcuc.ir import QuantParams
from tests.fuzz_harness import check_compile, mixed_float_model, qdq_model
from tests.onnx_models import conv_model

TFLITE = Path(__file__).parent / "data" / "tflite"


def compile_error(model: str | Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    """`mcuc compile` must fail with exactly one error line, leave no OUTDIR and no temporary directory."""
    out = tmp_path / "out"
    before = set(tmp_path.iterdir())
    code = main(["compile", str(model), "-o", str(out), *extra])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert not out.exists() and set(tmp_path.iterdir()) == before
    return errors[0]


def load(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path))


def save(m: onnx.ModelProto, path: Path) -> Path:
    onnx.save(m, str(path))
    return path


def set_init(m: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    for t in m.graph.initializer:
        if t.name == name:
            t.CopyFrom(numpy_helper.from_array(value, name))
            return
    raise KeyError(name)


def drop_init(m: onnx.ModelProto, name: str) -> None:
    for k, t in enumerate(m.graph.initializer):
        if t.name == name:
            del m.graph.initializer[k]
            return
    raise KeyError(name)


def node(m: onnx.ModelProto, name: str) -> Any:
    return next(n for n in m.graph.node if n.name == name)


def set_attr(m: onnx.ModelProto, node_name: str, attr: str, value: Any) -> None:
    n = node(m, node_name)
    for k, a in enumerate(n.attribute):
        if a.name == attr:
            del n.attribute[k]
            break
    n.attribute.append(helper.make_attribute(attr, value))


@pytest.fixture
def qdq(tmp_path: Path) -> onnx.ModelProto:
    return load(qdq_model(tmp_path / "seed_qdq.onnx"))


@pytest.fixture
def mixed(tmp_path: Path) -> onnx.ModelProto:
    return load(mixed_float_model(tmp_path / "seed_mixed.onnx"))


# ---- ONNX ----------------------------------------------------------------------------------------------------


def test_initializer_raw_data_of_wrong_length(tmp_path, capsys):
    m = load(Path(conv_model(str(tmp_path / "seed.onnx"))))
    t = next(t for t in m.graph.initializer if t.name == "w")
    t.raw_data = t.raw_data[:-4]
    msg = compile_error(save(m, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "initializer 'w'" in msg and "bytes of raw data" in msg


@pytest.mark.parametrize("code,name", [(99, "99"), (14, "COMPLEX64"), (16, "BFLOAT16"), (8, "STRING")])
def test_initializer_of_unknown_or_unreadable_type(tmp_path, capsys, code, name):
    m = load(Path(conv_model(str(tmp_path / "seed.onnx"))))
    next(t for t in m.graph.initializer if t.name == "b").data_type = code
    msg = compile_error(save(m, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "initializer 'b'" in msg and name in msg and "does not read" in msg


@pytest.mark.parametrize("value", [0.0, math.inf, math.nan, 1e-45, -0.02])
def test_qdq_activation_scale_must_be_positive_normal(tmp_path, capsys, qdq, value):
    set_init(qdq, "sc", np.array(value, np.float32))
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "QuantizeLinear 'q_c'" in msg and "scale" in msg and "positive normal" in msg


@pytest.mark.parametrize("value", [0.0, 1e-40])
def test_qdq_weight_scale_zero_or_denormal(tmp_path, capsys, qdq, value):
    sw = numpy_helper.to_array(next(t for t in qdq.graph.initializer if t.name == "sw")).copy()
    sw[2] = value
    set_init(qdq, "sw", sw)
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "DequantizeLinear 'dq_w'" in msg and "positive normal" in msg


@pytest.mark.parametrize("value", [math.nan, math.inf, -1e-4])
def test_qdq_int32_bias_scale_nan_inf_negative(tmp_path, capsys, qdq, value):
    sb = numpy_helper.to_array(next(t for t in qdq.graph.initializer if t.name == "sb")).copy()
    sb[0] = value
    set_init(qdq, "sb", sb)
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "DequantizeLinear 'dq_b'" in msg and "positive normal" in msg


def test_dangling_tensor_name(tmp_path, capsys, qdq):
    node(qdq, "gap").input[0] = "nowhere"
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'nowhere'" in msg and "before any node produces it" in msg


def test_deleted_zero_point_initializer(tmp_path, capsys, qdq):
    drop_init(qdq, "zc")
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'q_c'" in msg and "zero point must be a constant" in msg


@pytest.mark.parametrize("dtype,value", [(np.int32, 1000), (np.int64, -2**62), (np.int16, 300)])
def test_zero_point_out_of_range_or_type(tmp_path, capsys, qdq, dtype, value):
    set_init(qdq, "zc", np.array(value, dtype))
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'q_c'" in msg and "zero point" in msg


def test_dequantize_reads_its_own_output(tmp_path, capsys, qdq):
    n = node(qdq, "dq_y")
    n.input[0] = n.output[0]
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'y'" in msg


def test_identity_alias_cycle(tmp_path, capsys, qdq):
    # q_y's output feeds dq_y, whose output feeds q_y: an alias cycle through Q/DQ
    node(qdq, "q_y").input[0] = "y"
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'y'" in msg or "'gq'" in msg


def test_graph_outputs_removed(tmp_path, capsys, qdq):
    del qdq.graph.output[:]
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "declares no graph outputs" in msg


def test_batchnorm_epsilon_nan(tmp_path, capsys, mixed):
    set_attr(mixed, "bn0", "epsilon", math.nan)
    msg = compile_error(save(mixed, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "batchnorm 'bn0'" in msg and "NaN" in msg


def test_all_nan_calibration_batch(tmp_path, capsys):
    model = conv_model(str(tmp_path / "m.onnx"))
    np.save(tmp_path / "calib.npy", np.full((2, 3, 16, 16), np.nan, np.float32))
    msg = compile_error(model, tmp_path, capsys, "--calib", str(tmp_path / "calib.npy"))
    assert "calib.npy" in msg and "NaN" in msg


def test_weights_overflowing_float32_in_calibration(tmp_path, capsys, mixed):
    wf = numpy_helper.to_array(next(t for t in mixed.graph.initializer if t.name == "wf")).copy()
    wf[0, :4] = 3e38
    set_init(mixed, "wf", wf)
    msg = compile_error(save(mixed, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "calibration" in msg and ("NaN or infinite" in msg or "too wide" in msg)


def test_missing_attribute_value(tmp_path, capsys, mixed):
    a = next(a for a in node(mixed, "conv0").attribute if a.name == "pads")
    a.type = onnx.AttributeProto.UNDEFINED
    msg = compile_error(save(mixed, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'conv0'" in msg and "'pads'" in msg


def test_attribute_of_wrong_type(tmp_path, capsys, mixed):
    set_attr(mixed, "pool0", "dilations", 1.5)
    msg = compile_error(save(mixed, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'pool0'" in msg and "'dilations'" in msg and "INTS" in msg


def test_missing_required_attribute(tmp_path, capsys, mixed):
    n = node(mixed, "cat0")
    del n.attribute[:]
    msg = compile_error(save(mixed, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'cat0'" in msg and "'axis'" in msg


@pytest.mark.parametrize("attrs,fragment", [
    ({"dilations": [-1, 1]}, "dilations"),
    ({"dilations": [0, 1]}, "dilations"),
    ({"dilations": [1, 1, 1]}, "dilations"),
    ({"strides": [0, 1]}, "strides"),
    ({"group": 0}, "groups"),
    ({"group": 2**62}, "groups"),
    ({"group": 1000}, "groups"),
    ({"pads": [1, 1, 65535, 1]}, "pads"),
])
def test_conv_attributes_out_of_range(tmp_path, capsys, attrs, fragment):
    m = load(Path(conv_model(str(tmp_path / "seed.onnx"))))
    for k, v in attrs.items():
        set_attr(m, "conv0", k, v)
    msg = compile_error(save(m, tmp_path / "m.onnx"), tmp_path, capsys)
    assert fragment in msg and "conv0" in msg


def test_invalid_utf8_op_type(tmp_path, capsys):
    data = Path(conv_model(str(tmp_path / "seed.onnx"))).read_bytes()
    i = data.index(b"Relu")
    (tmp_path / "m.onnx").write_bytes(data[:i] + b"\xff\xfeel" + data[i + 4:])
    msg = compile_error(tmp_path / "m.onnx", tmp_path, capsys)
    assert "not valid UTF-8" in msg


def test_bias_that_does_not_fit_int32_is_refused(tmp_path, capsys):
    m = load(Path(conv_model(str(tmp_path / "seed.onnx"))))
    set_init(m, "b", np.full(8, 3e38, np.float32))
    msg = compile_error(save(m, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "bias" in msg and "does not fit int32" in msg


def test_qdq_bias_near_int32_max_is_refused(tmp_path, capsys, qdq):
    """The C accumulator starts at the bias: a bias of about INT32_MAX overflowed it (UBSan: signed overflow)."""
    set_init(qdq, "bq", np.full(6, 2**31 - 2**16, np.int32))
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "conv0" in msg and "int32 accumulator" in msg


def test_batchnorm_huge_variance_compiles_exactly_or_is_refused(tmp_path, mixed):
    """A running_var of 3e38 once drove the folded bias to about INT32_MAX and the C code into overflow."""
    set_init(mixed, "bn_v", np.full(4, 3e38, np.float32))
    res = check_compile(save(mixed, tmp_path / "m.onnx"), tmp_path / "work", tmp_path / "cache")
    assert res["outcome"] in ("compiled and verified", "clean error"), res


# ---- TFLite --------------------------------------------------------------------------------------------------


def tflite_variant(tmp_path: Path, edit: Callable[[Any], None], seed: str = "tiny_cnn") -> Path:
    """tests/data/tflite/<seed>.tflite with ``edit`` applied to its object tree. tiny_cnn's tensors: 0 input,
    6/7 conv1 bias/filter, 8 conv1 output, 2/3 fc bias/weights, 13 output."""
    s = schema()
    m = s.ModelT.InitFromObj(s.Model.GetRootAsModel((TFLITE / f"{seed}.tflite").read_bytes(), 0))
    edit(m)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / f"{seed}_edited.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


def tensor(m: Any, i: int) -> Any:
    return m.subgraphs[0].tensors[i]


def _set_scale(i: int, value: float, k: int = 0) -> Callable[[Any], None]:
    def edit(m: Any) -> None:
        scale = list(tensor(m, i).quantization.scale)
        scale[k] = value
        tensor(m, i).quantization.scale = scale
    return edit


def _set_zp(i: int, value: int) -> Callable[[Any], None]:
    def edit(m: Any) -> None:
        tensor(m, i).quantization.zeroPoint = [value] * len(tensor(m, i).quantization.scale)
    return edit


def test_tflite_multiplier_too_large(tmp_path, capsys):
    msg = compile_error(tflite_variant(tmp_path, _set_scale(8, 1e-30)), tmp_path, capsys)
    assert "conv" in msg and "multiplier" in msg and "too large" in msg


@pytest.mark.parametrize("value", [0.0, 1e-40, math.nan])
def test_tflite_weight_scale_zero_denormal_nan(tmp_path, capsys, value):
    msg = compile_error(tflite_variant(tmp_path, _set_scale(7, value, 3)), tmp_path, capsys)
    assert "tensor 7" in msg and "scale" in msg


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.5])
def test_tflite_int32_bias_scale_nan_inf_negative(tmp_path, capsys, value):
    msg = compile_error(tflite_variant(tmp_path, _set_scale(6, value)), tmp_path, capsys)
    assert "tensor 6" in msg and "scale" in msg


@pytest.mark.parametrize("value", [200, -129, -2**62])
def test_tflite_zero_point_out_of_range(tmp_path, capsys, value):
    msg = compile_error(tflite_variant(tmp_path, _set_zp(8, value)), tmp_path, capsys)
    assert "tensor 8" in msg and "zero point" in msg and "[-128, 127]" in msg


def test_tflite_zero_points_not_pairing_with_scales(tmp_path, capsys):
    """Fuzz campaign 0, mutant 6143: one scale with two zero points on a conv's output."""
    def edit(m: Any) -> None:
        tensor(m, 8).quantization.zeroPoint = [-128, -128]
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "tensor 8" in msg and "zero point" in msg


def test_tflite_graph_outputs_removed(tmp_path, capsys):
    def edit(m: Any) -> None:
        m.subgraphs[0].outputs = []
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "no outputs" in msg


def test_tflite_per_channel_activation(tmp_path, capsys):
    def edit(m: Any) -> None:
        q = tensor(m, 8).quantization
        q.scale, q.zeroPoint, q.quantizedDimension = [float(q.scale[0])] * 6, [-128] * 6, 3
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "tensor 8" in msg and "per channel" in msg


def test_per_channel_params_where_one_scale_is_needed():
    q = QuantParams(np.array([0.1, 0.2]), np.array([0, 0]), axis=0)
    with pytest.raises(MCUCError, match="one scale per tensor"):
        _ = q.s
    with pytest.raises(MCUCError, match="one zero point per tensor"):
        _ = q.zp


@pytest.mark.parametrize("field", ["strideH", "strideW", "dilationHFactor"])
def test_tflite_stride_or_dilation_zero(tmp_path, capsys, field):
    def edit(m: Any) -> None:
        setattr(m.subgraphs[0].operators[0].builtinOptions, field, 0)
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "operator 0" in msg and field in msg


def test_tflite_bias_near_int32_max_is_refused(tmp_path, capsys):
    def edit(m: Any) -> None:
        buf = m.buffers[tensor(m, 6).buffer]
        buf.data = np.frombuffer(np.full(6, 2**31 - 1, "<i4").tobytes(), np.uint8)
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "conv_2d_0" in msg and "int32 accumulator" in msg


def test_tflite_int32_bias_retyped_to_float(tmp_path, capsys):
    def edit(m: Any) -> None:
        tensor(m, 6).type = 0
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "bias" in msg and "float32" in msg


def test_tflite_operator_reading_a_missing_tensor(tmp_path, capsys):
    def edit(m: Any) -> None:
        m.subgraphs[0].operators[1].inputs = [99]
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "operator 1" in msg and "[99]" in msg


def test_tflite_negative_input_index_is_not_python_indexing(tmp_path, capsys):
    def edit(m: Any) -> None:
        m.subgraphs[0].inputs = [0, -1]
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "model input -1" in msg


def test_tflite_bug_is_not_reported_as_a_corrupt_file(tmp_path, monkeypatch):
    """A ValueError raised while converting a valid file is a bug in mcuc: it must surface as itself, not as
    "not a valid .tflite model"."""
    def broken(self: Any, op: Any, name: str) -> None:
        raise ValueError("a bug in a converter")
    monkeypatch.setattr(tflite_frontend._Importer, "op_conv_2d", broken)
    with pytest.raises(ValueError, match="a bug in a converter"):
        load_tflite(str(TFLITE / "tiny_cnn.tflite"))


def test_tflite_unsupported_feature_is_not_called_corrupt(tmp_path, capsys):
    def edit(m: Any) -> None:
        m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = 4  # TANH
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "not supported" in msg and "not a valid" not in msg


# ---- further classes the fuzz campaign found -------------------------------------------------------------------


def test_batch_size_other_than_one(tmp_path, capsys):
    """A fixed batch of 34 compiled into C that reads 34 samples per call, which run and verify never fed."""
    m = load(Path(conv_model(str(tmp_path / "seed.onnx"))))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 34
    msg = compile_error(save(m, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "batch size 34" in msg


def test_tflite_batch_size_other_than_one(tmp_path, capsys):
    def edit(m: Any) -> None:
        for i in (0, 8):
            tensor(m, i).shape = [2, *list(tensor(m, i).shape)[1:]]
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "batch size 2" in msg


def test_tflite_output_that_is_the_input(tmp_path, capsys):
    def edit(m: Any) -> None:
        m.subgraphs[0].outputs = [0]
    msg = compile_error(tflite_variant(tmp_path, edit), tmp_path, capsys)
    assert "graph input" in msg and "computed outputs" in msg


def test_axis_out_of_range_is_not_wrapped(tmp_path, capsys, mixed):
    set_attr(mixed, "cat0", "axis", 7)
    msg = compile_error(save(mixed, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'cat0'" in msg and "axis 7" in msg and "rank 4" in msg


def test_concat_of_a_scalar(tmp_path, capsys, mixed):
    node(mixed, "cat0").input[0] = "hi"
    msg = compile_error(save(mixed, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'cat0'" in msg


def test_conv_bias_of_the_wrong_shape(tmp_path, capsys):
    m = load(Path(conv_model(str(tmp_path / "seed.onnx"))))
    node(m, "conv0").input[2] = "w"
    msg = compile_error(save(m, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "conv0" in msg and "bias of shape" in msg


def test_batchnorm_parameters_not_per_channel(tmp_path, capsys, mixed):
    node(mixed, "bn0").input[1] = "bf"
    msg = compile_error(save(mixed, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'bn0'" in msg and "one value per channel" in msg


def test_missing_required_input_of_an_op_newer_than_the_opset(tmp_path, capsys, qdq):
    """LayerNormalization (opset 17) in an opset-13 model is checked against its latest schema."""
    n = node(qdq, "relu0")
    n.op_type = "LayerNormalization"
    msg = compile_error(save(qdq, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'relu0'" in msg and "required input 1" in msg


def test_string_attribute_not_utf8(tmp_path, capsys, mixed):
    set_attr(mixed, "pad0", "mode", b"\xff\xfe")
    msg = compile_error(save(mixed, tmp_path / "m.onnx"), tmp_path, capsys)
    assert "'pad0'" in msg and "mode" in msg


def test_tflite_add_scales_out_of_kernel_range(tmp_path, capsys):
    """A reference prepare_* range error (add: an input scale 1e10 against an output scale 0.08) names the op."""
    def edit(m: Any) -> None:
        tensor(m, 0).quantization.scale = [1e10]
    msg = compile_error(tflite_variant(tmp_path, edit, seed="attention_relu"), tmp_path, capsys)
    assert "too small for inputs" in msg or "too large" in msg

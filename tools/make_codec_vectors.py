#!/usr/bin/python3
"""Writes the test vectors of lib/recordio.h and lib/npy.h into tests/codecs/.

Run from the repository root with Debian's python3-numpy and python3-protobuf:

    /usr/bin/python3 tools/make_codec_vectors.py

It writes the same bytes when nothing changed; tests/codecs.sh needs no Python.

For each vector NAME.npy or NAME.rio, one of:
  NAME.expect   what the reader must read, in the dump format below;
  NAME.error    the exact error message it must give.
Names starting with "w_" were written by numpy.save or by Python's protobuf
(serialized deterministically: map entries sorted by key); the C writers must
write them again byte for byte from what the reader read. Names starting with
"need_" are read with SMLIB_RIO_NEED_VALUES. "aws_" files are request and
answer bodies made by AWS's own encoders (copied from tests/xgboost/golden/).

Dump format, one line per NPY row or RecordIO record:
  NPY    "type=f8 rank=2 shape=3,2" then one line per row, values "%.17g"
         separated by spaces
  rio    "record N:" then, per map entry in key order (the last one of a
         repeated key), " F|L KEY TYPE shape=a,b keys=k,k values=v,v"
The Record schema is SageMaker's record.proto, re-expressed here as a
descriptor built at run time (no protoc needed).
"""
import io
import os
import shutil
import struct
import sys

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf import message_factory

OUT = "tests/codecs"
GOLDEN = "tests/xgboost/golden"
MAGIC = 0xCED7230A

# ---------------------------------------------------------------------------
# The Record schema


def record_class():
    """Builds aialgs.data.Record from a FileDescriptorProto."""
    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="smserve_record.proto", package="aialgs.data",
                                            syntax="proto2")

    def message(name, fields, parent=None, oneof=None):
        m = (parent.nested_type if parent else fd.message_type).add(name=name)
        if oneof:
            m.oneof_decl.add(name=oneof)
        for number, fname, ftype, label, extra in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if ftype == F.TYPE_MESSAGE:
                f.type_name = extra
            elif extra == "packed":
                f.options.packed = True
            if oneof:
                f.oneof_index = 0
        return m

    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    for name, vtype in (("Float32Tensor", F.TYPE_FLOAT), ("Float64Tensor", F.TYPE_DOUBLE),
                        ("Int32Tensor", F.TYPE_INT32)):
        message(name, [(1, "values", vtype, rep, "packed"), (2, "keys", F.TYPE_UINT64, rep, "packed"),
                       (3, "shape", F.TYPE_UINT64, rep, "packed")])
    message("Bytes", [(1, "value", F.TYPE_BYTES, rep, None), (2, "content_type", F.TYPE_STRING, opt, None)])
    message("Value", [(2, "float32_tensor", F.TYPE_MESSAGE, opt, ".aialgs.data.Float32Tensor"),
                      (3, "float64_tensor", F.TYPE_MESSAGE, opt, ".aialgs.data.Float64Tensor"),
                      (7, "int32_tensor", F.TYPE_MESSAGE, opt, ".aialgs.data.Int32Tensor"),
                      (9, "bytes", F.TYPE_MESSAGE, opt, ".aialgs.data.Bytes")], oneof="value")
    rec = message("Record", [(1, "features", F.TYPE_MESSAGE, rep, ".aialgs.data.Record.FeaturesEntry"),
                             (2, "label", F.TYPE_MESSAGE, rep, ".aialgs.data.Record.LabelEntry"),
                             (3, "uid", F.TYPE_STRING, opt, None), (4, "metadata", F.TYPE_STRING, opt, None),
                             (5, "configuration", F.TYPE_STRING, opt, None)])
    for entry in ("FeaturesEntry", "LabelEntry"):
        e = message(entry, [(1, "key", F.TYPE_STRING, opt, None),
                            (2, "value", F.TYPE_MESSAGE, opt, ".aialgs.data.Value")], parent=rec)
        e.options.map_entry = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    desc = pool.FindMessageTypeByName("aialgs.data.Record")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


Record = record_class()

# ---------------------------------------------------------------------------
# Dumps (what the C test prints for what it read)


def num(v):
    return "%.17g" % float(v)


def npy_dump(arr):
    code = arr.dtype.str[1:]
    rows = arr.reshape(1, -1) if arr.ndim == 1 else arr
    lines = ["type=%s rank=%d shape=%s" % (code, arr.ndim, ",".join(str(d) for d in arr.shape))]
    lines += [" ".join(num(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def tensor_dump(value):
    which = value.WhichOneof("value")
    if which is None:
        return "none"
    if which == "bytes":
        return "bytes"
    t = getattr(value, which)
    name = {"float32_tensor": "f32", "float64_tensor": "f64", "int32_tensor": "i32"}[which]
    return "%s shape=%s keys=%s values=%s" % (name, ",".join(str(d) for d in t.shape),
                                             ",".join(str(k) for k in t.keys),
                                             ",".join(num(v) for v in t.values))


def rio_payloads(data):
    """The payloads of a RecordIO body (as SageMaker's Python reader reads it)."""
    at = 0
    while at < len(data):
        magic, length = struct.unpack_from("<II", data, at)
        assert magic == MAGIC and length >> 29 == 0
        yield data[at + 8:at + 8 + length]
        at += 8 + (length + 3) // 4 * 4


def rio_dump(data):
    lines = []
    for i, payload in enumerate(rio_payloads(data), 1):
        r = Record()
        r.ParseFromString(payload)
        line = "record %d:" % i
        for tag, m in (("F", r.features), ("L", r.label)):
            for key in sorted(m):
                line += " %s %s %s" % (tag, key, tensor_dump(m[key]))
        lines.append(line)
    return "".join(s + "\n" for s in lines)


def frame(payload):
    pad = (4 - len(payload) % 4) % 4
    return struct.pack("<II", MAGIC, len(payload)) + payload + b"\0" * pad


# ---------------------------------------------------------------------------
# Writing vectors

written = set()


def put(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    written.add(name)


def npy_ok(name, arr, version=None):
    buf = io.BytesIO()
    if version:
        np.lib.format.write_array(buf, arr, version=version)
    else:
        np.save(buf, arr)
    put(name + ".npy", buf.getvalue())
    put(name + ".expect", npy_dump(np.load(io.BytesIO(buf.getvalue()))).encode())


def npy_header(header, version=(1, 0), body=b""):
    text = header.encode("latin1")
    fmt = "<H" if version[0] == 1 else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(text)) + text + body


def error(name, data, message):
    put(name, data)
    put(os.path.splitext(name)[0] + ".error", message.encode())


def npy_vectors():
    npy_ok("w_f8_2d", np.array([[1.5, -2.25, 0.1], [3.0, 1e300, -0.0]]))
    npy_ok("w_f4_2d", np.array([[0.1, 2.5], [-3.75, 1e-7]], dtype=np.float32))
    npy_ok("w_f8_1d", np.array([0.5, 1.0, 2.0, 1 / 3]))
    npy_ok("w_f4_1d", np.array([16777217.0, 0.2], dtype=np.float32))
    npy_ok("w_f8_rows100", np.arange(200, dtype=np.float64).reshape(100, 2) / 7)
    npy_ok("w_f8_wide", np.linspace(-1, 1, 40).reshape(1, 40))
    npy_ok("w_f8_empty", np.zeros((0, 4)))
    npy_ok("w_f8_special", np.array([[np.nan, np.inf, -np.inf, 5e-324]]))
    npy_ok("i4_2d", np.array([[1, -2, 2147483647], [-2147483648, 0, 5]], dtype=np.int32))
    npy_ok("i8_2d", np.array([[-(2 ** 53), 2 ** 53], [-1, 2 ** 63 - 1]], dtype=np.int64))
    npy_ok("i8_min", np.array([-(2 ** 63)], dtype=np.int64))
    npy_ok("u1_2d", np.array([[0, 255], [1, 2]], dtype=np.uint8))
    npy_ok("i1_1d", np.array([-128, 127, 0], dtype=np.int8))
    npy_ok("i2_1d", np.array([-32768, 32767], dtype=np.int16))
    npy_ok("u2_1d", np.array([65535, 1], dtype=np.uint16))
    npy_ok("u4_1d", np.array([4294967295, 7], dtype=np.uint32))
    npy_ok("u8_1d", np.array([2 ** 64 - 1, 3], dtype=np.uint64))
    npy_ok("b1_1d", np.array([True, False, True]))
    npy_ok("v2_f8", np.array([[1.25, 2.5]]), version=(2, 0))
    npy_ok("v3_f4", np.array([[1.25], [2.5]], dtype=np.float32), version=(3, 0))
    # Hand-written headers numpy also reads: other key order, double quotes,
    # no trailing comma, (n,) with spaces, '<u1' for a one-byte type.
    body = struct.pack("<2d", 1.0, 2.0)
    for name, header in (("order", "{'shape': (1, 2), 'fortran_order': False, 'descr': '<f8'}\n"),
                         ("quotes", '{"descr": "<f8", "fortran_order": False, "shape": (2, ) }  \n'),
                         ("tabs", "{\t'descr':'<f8','fortran_order':False,'shape':(1,2,),}\n")):
        data = npy_header(header, body=body)
        arr = np.load(io.BytesIO(data))
        put("hand_%s.npy" % name, data)
        put("hand_%s.expect" % name, npy_dump(arr).encode())
    data = npy_header("{'descr': '<u1', 'fortran_order': False, 'shape': (2,), }\n", body=b"\x07\x09")
    put("hand_lt_u1.npy", data)
    put("hand_lt_u1.expect", npy_dump(np.load(io.BytesIO(data))).encode())

    # Errors: the message names the byte offset (the header starts at 10).
    good = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }\n"

    def at(header, needle, version=(1, 0)):
        return (10 if version[0] == 1 else 12) + header.index(needle)

    error("bad_magic.npy", b"\x93NUMPZ\x01\x00", "npy: not an NPY file (no \\x93NUMPY magic) at byte 0")
    error("bad_empty.npy", b"", "npy: not an NPY file (no \\x93NUMPY magic) at byte 0")
    error("bad_version.npy", npy_header(good, version=(4, 0), body=body),
          "npy: NPY version 4.0 is not supported (1.0, 2.0, 3.0 are) at byte 6")
    error("bad_minor.npy", npy_header(good, version=(1, 1), body=body),
          "npy: NPY version 1.1 is not supported (1.0, 2.0, 3.0 are) at byte 6")
    error("bad_no_length.npy", b"\x93NUMPY\x02\x00\x10\x00", "npy: truncated header length at byte 10")
    error("bad_header_len.npy", npy_header(good)[:40],
          "npy: header length %d runs past the end (30 bytes follow) at byte 8" % len(good))
    for name, header, needle, message in (
            ("fortran", good.replace("False", "True"), "True",
             "fortran_order True is not supported (C order only)"),
            ("fortran_word", good.replace("False", "false"), "false", "expected False for fortran_order"),
            ("big_endian", good.replace("<f8", ">f8"), "'>f8'", "big-endian dtype '>f8' is not supported"),
            ("complex", good.replace("<f8", "<c16"), "'<c16'",
             "dtype '<c16' is not supported (little-endian f4, f8, i1-i8, u1-u8, b1 are)"),
            ("object", good.replace("<f8", "|O"), "'|O'",
             "dtype '|O' is not supported (little-endian f4, f8, i1-i8, u1-u8, b1 are)"),
            ("pipe_f8", good.replace("<f8", "|f8"), "'|f8'",
             "dtype '|f8' is not supported (little-endian f4, f8, i1-i8, u1-u8, b1 are)"),
            ("structured", good.replace("'<f8'", "[('a', '<f8')]"), "[", "structured dtypes are not supported"),
            ("no_comma", good.replace("(1, 2)", "(2)"), "(2)", "a shape of one dimension needs its comma: (n,)"),
            ("rank3", good.replace("(1, 2)", "(1, 2, 1)"), "(1, 2, 1)",
             "arrays of more than 2 dimensions are not supported"),
            ("rank0", good.replace("(1, 2)", "()"), "()", "0-dimensional arrays are not supported"),
            ("leading_zero", good.replace("(1, 2)", "(01, 2)"), "01", "dimension with a leading zero"),
            ("negative", good.replace("(1, 2)", "(-1, 2)"), "-1", "expected a dimension in the shape"),
            ("dim_overflow", good.replace("(1, 2)", "(99999999999999999999, 2)"), "999",
             "dimension too large"),
            ("shape_space", good.replace("(1, 2)", "(1 2)"), "2)", "expected ',' or ')' in the shape"),
            ("dup_key", good.replace("'shape'", "'descr': '<f8', 'shape'"), "'descr': '<f8', 'shape'",
             "key 'descr' given twice"),
            ("unknown_key", good.replace("'shape'", "'extra': False, 'shape'"), "'extra'",
             "unexpected key 'extra' in the header"),
            ("missing_key", "{'descr': '<f8', 'fortran_order': False, }\n", "\n", "header has no 'shape'"),
            ("after_dict", good.replace("}\n", "} x\n"), "x\n", "unexpected bytes after the header's dict"),
            ("unterminated", "{'descr': '<f8", "'<f8", "unterminated string in the header"),
            ("no_brace", good[1:], "'descr'", "expected '{' in the header"),
            ("no_close", good.replace("}\n", "\n"), "\n", "header ends where '}' was expected"),
            ("escape", good.replace("'<f8'", "'<f\\8'"), "\\", "unexpected character in a header string"),
            ("bare_value", good.replace("'<f8'", "f8"), "f8", "expected a quoted string in the header"),
            ("missing_comma", good.replace("'<f8', ", "'<f8' "), "'fortran",
             "expected ',' or '}' in the header"),
    ):
        offset = at(header, needle)
        if name == "dup_key":
            offset = 10 + header.rindex("'descr'")
        if name == "no_close":
            offset = 10 + len(header)
        error("bad_%s.npy" % name, npy_header(header, body=body), "npy: %s at byte %d" % (message, offset))
    data = npy_header(good, body=body[:-1])
    error("bad_truncated.npy", data, "npy: truncated data: the shape needs 16 bytes, 15 follow at byte %d"
          % (10 + len(good)))
    data = npy_header(good, body=body + b"\0")
    error("bad_trailing.npy", data, "npy: 1 bytes after the data at byte %d" % (10 + len(good) + 16))
    error("bad_zero_width.npy", npy_header(good.replace("(1, 2)", "(1000000000000, 0)")),
          "npy: shape (1000000000000, 0) has rows without values at byte 10")
    huge = good.replace("(1, 2)", "(4294967296, 4294967296)")
    error("bad_too_large.npy", npy_header(huge, body=body),
          "npy: shape (4294967296, 4294967296) too large at byte 10")


# ---------------------------------------------------------------------------
# RecordIO-protobuf


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(number, payload, wire=2):
    """A length-delimited field (or, for wire 0, a varint field)."""
    if wire == 0:
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | wire) + varint(len(payload)) + payload


def f32s(values):
    return struct.pack("<%df" % len(values), *values)


def entry(key, value, number=1):
    return field(number, field(1, key.encode()) + field(2, value))


def f32_value(values, keys=None, shape=None, number=2):
    t = field(1, f32s(values)) if values else b""
    if keys:
        t += field(2, b"".join(varint(k) for k in keys))
    if shape:
        t += field(3, b"".join(varint(d) for d in shape))
    return field(number, t)


def rio_ok(name, records, deterministic=True):
    data = b"".join(frame(r.SerializeToString(deterministic=deterministic)) for r in records)
    put(name + ".rio", data)
    put(name + ".expect", rio_dump(data).encode())


def rec(features=None, labels=None, **strings):
    r = Record()
    for m, spec in ((r.features, features or {}), (r.label, labels or {})):
        for key, (kind, values, keys, shape) in spec.items():
            t = getattr(m[key], kind)
            t.values.extend(values)
            t.keys.extend(keys)
            t.shape.extend(shape)
            if not values and not keys and not shape:
                t.SetInParent()
    for k, v in strings.items():
        setattr(r, k, v)
    return r


def rio_vectors():
    f32, f64, i32 = "float32_tensor", "float64_tensor", "int32_tensor"
    rio_ok("dense_f32", [rec({"values": (f32, [1.5, -2.0, 0.1, 3.0, 1e-30], [], [])}),
                         rec({"values": (f32, [0.0, -0.0, 7.0, 8.0, 9.0], [], [])})])
    rio_ok("dense_f64", [rec({"values": (f64, [0.1, 1e300, -5e-324, 2.0], [], [])})])
    rio_ok("dense_i32", [rec({"values": (i32, [0, -1, 2147483647, -2147483648, 300], [], [])})])
    rio_ok("dense_shape", [rec({"values": (f32, [1, 2, 3, 4, 5, 6], [], [2, 3])})])
    rio_ok("sparse_f32", [rec({"values": (f32, [0.5, 2.5], [1, 4], [5])}),
                          rec({"values": (f32, [7.0], [0], [5])})])
    rio_ok("sparse_f64_2d", [rec({"values": (f64, [1.25, -3.5], [0, 11], [3, 4])})])
    rio_ok("sparse_i32", [rec({"values": (i32, [-7, 9], [2, 1000000], [2 ** 40])})])
    rio_ok("sparse_no_shape", [rec({"values": (f32, [1.0], [123456789012], [])})])
    rio_ok("labeled", [rec({"values": (f32, [1, 2], [], [])}, {"values": (f32, [1.0], [], [])})])
    rio_ok("strings", [rec({"values": (f32, [4.0], [], [])}, uid="id-1", metadata="{}", configuration="c")])
    rio_ok("other_features", [rec({"alpha": (f64, [9.0], [], []), "values": (f32, [1.0, 2.0], [], []),
                                   "zeta": (i32, [3], [], [])})])
    rio_ok("nan_inf", [rec({"values": (f32, [float("nan"), float("inf"), -float("inf")], [], [])})])
    rio_ok("empty_values", [rec({"values": (f32, [], [], [])})])
    rio_ok("no_records", [])
    r = rec({"values": (f32, [1.0], [], [])})
    r.features["image"].bytes.value.append(b"\x89PNG")
    rio_ok("bytes_feature", [r])
    rio_ok("need_ok", [rec({"values": (f32, [1.0], [], [])})])
    # What the writer must write again byte for byte.
    rio_ok("w_linear_learner", [rec(labels={"score": (f32, [0.25], [], []), "predicted_label": (f32, [0.0], [], [])}),
                                rec(labels={"score": (f32, [0.75], [], []), "predicted_label": (f32, [1.0], [], [])})])
    rio_ok("w_probabilities", [rec(labels={"probabilities": (f32, [0.1, 0.2, 0.7], [], [])})])
    rio_ok("w_features_and_label", [rec({"values": (f32, [1.5, 2.5], [3, 200], [300])},
                                        {"score": (f32, [0.5], [], [])})])
    rio_ok("w_long", [rec(labels={"k" * 200: (f32, [float(i) for i in range(70)], [], [])})])
    rio_ok("w_empty_tensor", [rec(labels={"score": (f32, [], [], [])})])
    rio_ok("w_shape_only", [rec({"values": (f32, [1, 2, 3, 4], [], [2, 2])})])

    # AWS's own encoders: request bodies of the SageMaker encoder, and the
    # XGBoost container's answers (which repeat earlier Records' entries).
    for src, name in (("requests/rio_dense_f32", "aws_dense_f32"), ("requests/rio_dense_f64", "aws_dense_f64"),
                      ("requests/rio_dense_int", "aws_dense_int"), ("requests/rio_dense_labels", "aws_dense_labels"),
                      ("requests/rio_sparse_f32", "aws_sparse_f32"), ("requests/rio_sparse_f64", "aws_sparse_f64"),
                      ("answers/binary_logistic.batch.out-predicted_label_probabilities.csv_many.csv.acc-rio",
                       "w_aws_answer_labels"),
                      ("answers/multi_softprob.out-predicted_label_labels_probability_probabilities_raw_score_raw_scores"
                       ".csv_many.csv.acc-rio", "w_aws_answer_all")):
        path = os.path.join(GOLDEN, src)
        if not os.path.exists(path):
            sys.exit("missing %s" % path)
        with open(path, "rb") as f:
            data = f.read()
        put(name + ".rio", data)
        put(name + ".expect", rio_dump(data).encode())
    with open(os.path.join(GOLDEN, "requests/rio_sparse_empty_row"), "rb") as f:
        data = f.read()
    # Record 3 has no values and no keys: a dense tensor of 0 values, shape 5.
    at = sum(8 + (len(p) + 3) // 4 * 4 for p in list(rio_payloads(data))[:2])
    p3 = list(rio_payloads(data))[2]
    tensor_at = at + 8 + p3.index(b"\x12\x05\x12\x03\x1a\x01\x05") + 4
    error("aws_sparse_empty_row.rio", data,
          "recordio-protobuf: dense tensor has 0 values, its shape 5 at byte %d (record 3)" % tensor_at)
    with open(os.path.join(GOLDEN, "requests/rio_truncated"), "rb") as f:
        data = f.read()
    last = sum(8 + (len(p) + 3) // 4 * 4 for p in list(rio_payloads(data[:-7] + b"\0" * 7))[:-1])
    length = struct.unpack_from("<I", data, last + 4)[0]
    error("aws_truncated.rio", data, "recordio-protobuf: truncated record: length %d, %d bytes follow at byte %d"
          " (record %d)" % (length, len(data) - last - 8, last + 4, len(list(rio_payloads(data[:-7] + b"\0" * 7)))))

    # Hand-made errors; offsets computed from the bytes as built.
    vals = entry("values", f32_value([1.0, 2.0]))
    ok1 = frame(vals)

    def bad(name, payload, what, offset_in_payload, record=1, prefix=b""):
        error("bad_rio_%s.rio" % name, prefix + frame(payload),
              "recordio-protobuf: %s at byte %d (record %d)" % (what, len(prefix) + 8 + offset_in_payload, record))

    def bad_raw(name, data, what, offset, record=1):
        error("bad_rio_%s.rio" % name, data, "recordio-protobuf: %s at byte %d (record %d)" % (what, offset, record))

    bad_raw("magic", b"\x0b\x23\xd7\xce\x00\x00\x00\x00", "bad RecordIO magic 0xced7230b (expected 0xced7230a)", 0)
    bad_raw("magic_second", ok1 + b"\0\0\0\0\0\0\0\0", "bad RecordIO magic 0x00000000 (expected 0xced7230a)",
            len(ok1), 2)
    bad_raw("short_head", ok1 + ok1[:5], "truncated RecordIO header (5 of 8 bytes)", len(ok1), 2)
    bad_raw("length", struct.pack("<II", MAGIC, 9) + b"\0" * 4, "truncated record: length 9, 4 bytes follow", 4)
    bad_raw("split", struct.pack("<II", MAGIC, 1 << 29 | 4) + vals[:4],
            "split RecordIO record (continuation flag 1) not supported", 4)
    bad("varint_long", b"\x0a" + b"\xff" * 10 + b"\x01", "malformed varint", 1)
    bad("varint_64", b"\x0a" + b"\xff" * 9 + b"\x02", "malformed varint", 1)
    bad("varint_end", b"\x0a\x80", "malformed varint", 1)
    bad("entry_past_end", b"\x0a\x20\x0a\x01", "length 32 runs past the end of its message (2 bytes left)", 1)
    bad("nested_past_end", entry("values", b"\x12\x09\x0a\x07" + f32s([1.0])),
        "length 9 runs past the end of its message (6 bytes left)", 13)
    bad("features_varint", b"\x08\x05", "field features has wire type 0, expected 2", 0)
    bad("uid_fixed32", b"\x1d\0\0\0\0", "field uid has wire type 5, expected 2", 0)
    bad("group", b"\x0b\x0c", "field 1 has wire type 3 (groups are not supported)", 0)
    bad("field_zero", b"\x02\x00", "field number 0 out of range", 0)
    bad("unknown_short", vals + b"\x31\x00\x00", "8-byte value runs past the end of its message", len(vals) + 1)
    bad("key_varint", field(1, b"\x08\x06"), "field key has wire type 0, expected 2", 2)
    bad("values_unpacked", entry("values", field(2, b"\x0d" + f32s([1.0]))),
        "field values has wire type 5, expected 2", 14)
    bad("values_odd", entry("values", field(2, field(1, b"\0\0\x80\x3f\0\0"))),
        "6 bytes of values are not whole 4-byte numbers", 16)
    bad("f64_odd", entry("values", field(3, field(1, b"\0" * 12))),
        "12 bytes of values are not whole 8-byte numbers", 16)
    bad("int32_range", entry("values", field(7, field(1, varint(0) + varint(2 ** 31)))),
        "int32 value out of range", 17)
    bad("int32_varint", entry("values", field(7, field(1, b"\x80"))), "malformed varint", 16)
    bad("keys_count", entry("values", f32_value([1.0, 2.0], keys=[1], shape=[5])),
        "sparse tensor has 1 keys for 2 values", 14)
    bad("key_range", entry("values", f32_value([1.0, 2.0], keys=[1, 5], shape=[5])),
        "key 5 outside the shape's 5 values", 27)
    bad("key_range_2d", entry("values", f32_value([1.0], keys=[6], shape=[2, 3])),
        "key 6 outside the shape's 6 values", 22)
    bad("dense_shape", entry("values", f32_value([1.0, 2.0], shape=[3])),
        "dense tensor has 2 values, its shape 3", 14)
    bad("rank9", entry("values", f32_value([1.0], shape=[1] * 9)), "shape has more than 8 dimensions", 30)
    bad("shape_overflow", entry("values", f32_value([1.0], keys=[0], shape=[2 ** 32, 2 ** 32])),
        "shape's size overflows", 30)
    bad("shape_varint", entry("values", field(2, field(1, f32s([1.0])) + field(3, b"\x80"))),
        "malformed varint", 22)
    bad("two_tensors", entry("values", f32_value([1.0]) + f32_value([2.0], number=3)),
        "Value holds a second tensor", 20)
    bad("values_twice", entry("values", field(2, field(1, f32s([1.0])) + field(1, f32s([2.0])))),
        "tensor field values given twice", 20)
    bad("label_bad", vals + entry("score", field(2, field(1, b"\0")), number=2),
        "1 bytes of values are not whole 4-byte numbers", len(vals) + 15)
    bad("values_bytes", entry("values", field(9, field(1, b"x"))), "'values' feature holds no tensor", 12)
    bad("values_none", entry("values", b""), "'values' feature holds no tensor", 12)
    bad("need_no_values", entry("other", f32_value([1.0])), "Record has no 'values' feature", -8)
    bad("second_record", b"\x0a\x80", "malformed varint", 1, record=2, prefix=ok1)


def main():
    if not os.path.isdir(OUT):
        os.makedirs(OUT)
    npy_vectors()
    rio_vectors()
    stale = [f for f in os.listdir(OUT) if f not in written]
    for f in stale:
        os.remove(os.path.join(OUT, f))
    print("wrote %d files in %s%s" % (len(written), OUT, ", removed %d stale" % len(stale) if stale else ""))


if __name__ == "__main__":
    main()

"""Column-wise serialization of ``tf.train.Example`` records with numpy.

One scalar feature per column (``float_list`` for float32/float64 — stored as float32, which is
all ``float_list`` holds —, ``int64_list`` for int64, ``bytes_list`` of UTF-8 for strings). The
protobuf wire format of a scalar feature is a fixed prefix (key, tags, lengths) plus the value, so
a whole chunk is encoded with a few array operations; the bytes are identical to
``tf.train.Example.SerializeToString()`` up to the order of the features. ~230k rows/s for 29
columns here, against 3-5k rows/s building one proto per row.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tfstream.sources.base import Chunk
from tfstream.sources.schema import Column

# -- TFRecord encoding ---------------------------------------------------------------------------
#
# Wire format (protobuf): Example{1: Features{1: repeated MapEntry{1: key, 2: Feature}}};
# Feature{1: BytesList | 2: FloatList | 3: Int64List}, each list {1: values}, numbers packed. A
# field of wire type 2 is ``tag, varint(len(body)), body`` with ``tag = field_number << 3 | 2``.
#
# A chunk's records are laid out right-aligned in an ``(n, longest)`` byte matrix: the float
# features, whose bytes have a fixed size, come last in every record, so they fill the same
# columns of every row and are copied as one 2-D block; only the few variable-size bytes
# (lengths, int64 varints, strings) are gathered one by one.


class _Bytes(NamedTuple):
    """``n`` byte strings: row ``i`` is ``data[starts[i] : starts[i] + lengths[i]]``."""

    data: np.ndarray  # uint8
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64


class _ExampleEncoder:
    """Serializes chunks of a fixed schema into ``tf.train.Example`` records, column-wise."""

    def __init__(self, schema: dict[str, Column]):
        self._floats: list[tuple[str, int]] = []  # (name, offset of its value in the block)
        self._others: list[tuple[str, str, bytes]] = []  # (name, dtype, key field + value tag)
        template = b""  # the float block: every float entry with a zero value
        for name, column in schema.items():
            key = _field(1, name.encode("utf-8"))
            if column.dtype in ("float32", "float64"):
                float_list = b"\x0a\x04"  # field 1 (packed), 4 bytes
                feature = b"\x12" + _varint_bytes(len(float_list) + 4) + float_list
                entry = key + b"\x12" + _varint_bytes(len(feature) + 4) + feature
                prefix = b"\x0a" + _varint_bytes(len(entry) + 4) + entry
                self._floats.append((name, len(template) + len(prefix)))
                template += prefix + bytes(4)
            else:
                self._others.append((name, column.dtype, key + b"\x12"))
        self._template = np.frombuffer(template, np.uint8)

    def encode(self, chunk: Chunk) -> tuple[tuple[bytes, list[int], list[int]], np.ndarray]:
        """Returns ``((buffer, starts, ends), sizes)``: record ``i`` is
        ``buffer[starts[i]:ends[i]]``, ``sizes[i]`` bytes long."""
        n = len(next(iter(chunk.values())))
        width = len(self._template)
        parts: list[_Bytes] = []
        for name, dtype, key in self._others:
            if dtype == "int64":
                payload, list_tag, feature_tag = _varints(chunk[name].view(np.uint64)), 1, 3
            else:
                payload, list_tag, feature_tag = _utf8(chunk[name]), 1, 1
            entry, length = [payload], payload.lengths
            for prefix in (_tag(list_tag), _tag(feature_tag)):
                entry, length = _wrap(prefix, entry, length)
            entry, length = _wrap(key, entry, length)
            entry, length = _wrap(_tag(1), entry, length)
            parts += entry
        body = width + sum((p.lengths for p in parts), np.zeros(n, np.int64))
        head, sizes = _wrap(_tag(1), parts, body)
        variable = _concat(head)
        longest = int(sizes.max()) if n else 0
        matrix = np.empty((n, longest), np.uint8)
        if width:  # the float entries: the template, then each value into its 4 bytes
            matrix[:, longest - width :] = self._template
            fields = [f"c{j}" for j in range(len(self._floats))]
            record = np.dtype(
                {
                    "names": fields,
                    "formats": ["<f4"] * len(fields),
                    "offsets": [longest - width + offset for _, offset in self._floats],
                    "itemsize": longest,
                }
            )
            rows = matrix.view(record).reshape(n)
            for field, (name, _) in zip(fields, self._floats, strict=True):
                rows[field] = chunk[name]  # float64 values are rounded to float32 here
        row_starts = np.arange(n, dtype=np.int64) * longest + (longest - sizes)
        block = _as_block(variable, n)
        if block is not None:  # every record has the same size
            matrix[:, : longest - width] = block
        else:
            index = np.repeat(row_starts - variable.starts, variable.lengths)
            index += np.arange(len(index), dtype=np.int64)
            matrix.reshape(-1)[index] = variable.data
        ends = np.arange(1, n + 1, dtype=np.int64) * longest
        return (matrix.tobytes(), row_starts.tolist(), ends.tolist()), sizes


def _wrap(prefix: bytes, parts: list[_Bytes], length: np.ndarray):
    """``prefix, varint(length), *parts``: a length-delimited field around ``parts`` (whose
    rows are ``length`` bytes long) when ``prefix`` is its tag; a map entry's value when
    ``prefix`` is the key field followed by the value's tag. Returns the parts and their
    lengths."""
    n = len(length)
    size = _varints(length.astype(np.uint64))
    return [_const(prefix, n), size, *parts], length + len(prefix) + size.lengths


def _tag(field_number: int) -> bytes:
    return _varint_bytes(field_number << 3 | 2)


def _field(number: int, body: bytes) -> bytes:
    return _tag(number) + _varint_bytes(len(body)) + body


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varints(values: np.ndarray) -> _Bytes:
    """Protobuf varints of uint64 ``values`` (an int64 is encoded as its two's complement)."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    n = len(values)
    if not n or values.max() < 0x80:
        return _fixed(values.astype(np.uint8).reshape(n, 1))
    lengths = np.ones(n, np.int64)
    rest = values >> np.uint64(7)
    while rest.any():
        lengths += rest > 0
        rest >>= np.uint64(7)
    width = int(lengths.max())
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    groups = ((values[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    groups |= (np.arange(width) < lengths[:, None] - 1).astype(np.uint8) << 7
    data = groups[np.arange(width) < lengths[:, None]]
    return _Bytes(data, _starts(lengths), lengths)


def _utf8(values: np.ndarray) -> _Bytes:
    """UTF-8 bytes of an array of ``str`` (or ``bytes``); ``None`` becomes empty."""
    import pyarrow as pa

    if values.dtype.kind in "SU":
        values = values.astype(object)
    array = pa.array(values, type=pa.large_binary())
    offsets = np.frombuffer(array.buffers()[1], np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = array.buffers()[2]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return _Bytes(data, offsets[:-1].copy(), np.diff(offsets))


def _const(value: bytes, n: int) -> _Bytes:
    return _Bytes(
        np.frombuffer(value, np.uint8), np.zeros(n, np.int64), np.full(n, len(value), np.int64)
    )


def _fixed(block: np.ndarray) -> _Bytes:
    n, width = block.shape
    return _Bytes(block.reshape(-1), np.arange(n, dtype=np.int64) * width, np.full(n, width))


def _starts(lengths: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(lengths), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def _concat(parts: list[_Bytes]) -> _Bytes:
    """Row-wise concatenation: row ``i`` of the result is row ``i`` of each part, in order.
    Runs of parts with one size per row are first joined as 2-D blocks; the rest is one
    gather."""
    n = len(parts[0].lengths)
    merged: list[_Bytes] = []
    run: list[np.ndarray] = []
    for part in parts:
        block = _as_block(part, n)
        if block is not None:
            run.append(block)
            continue
        if run:
            merged.append(_fixed(np.hstack(run)))
            run = []
        merged.append(part)
    if run:
        merged.append(_fixed(np.hstack(run)))
    if len(merged) == 1:
        return merged[0]
    lengths = np.stack([p.lengths for p in merged], axis=1)  # (n, parts)
    data = np.concatenate([p.data for p in merged])
    bases = np.cumsum([0] + [len(p.data) for p in merged[:-1]])
    sources = np.stack([p.starts + b for p, b in zip(merged, bases, strict=True)], axis=1)
    seg_lengths = lengths.reshape(-1)
    index = np.repeat(sources.reshape(-1) - _starts(seg_lengths), seg_lengths)
    index += np.arange(len(index), dtype=np.int64)
    row_lengths = lengths.sum(axis=1)
    return _Bytes(data[index], _starts(row_lengths), row_lengths)


def _as_block(part: _Bytes, n: int) -> np.ndarray | None:
    """``part`` as an ``(n, width)`` array when every row has the same length and the rows are
    a constant or laid out back to back; else None."""
    if not n or not (part.lengths == part.lengths[0]).all():
        return None
    width = int(part.lengths[0])
    if len(part.data) == width and not part.starts.any():
        return np.broadcast_to(part.data, (n, width))
    if len(part.data) == n * width and part.starts[0] == 0:
        if np.array_equal(part.starts, np.arange(n, dtype=np.int64) * width):
            return part.data.reshape(n, width)
    return None

"""Property: random CSV text gives the C reader (through the block reader, header and
all) and Python's ``csv`` module the same rows -- or the C reader a clean DataError that
names a line. Fields hold quotes, the delimiter, line ends (LF and CRLF), empty values;
files may start with a BOM, end without a line end and hold blank lines."""
import csv
import io
import re

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from propensity import _core
from propensity.errors import DataError
from propensity.io.blocks import BlockReader, parse_header

# one category column placed nowhere: the parser then only splits records and gives the
# raw span of the field asked for as the id
_SCHEMA = _core.schema_new(np.array([2], np.int32), np.array([np.nan]), b"c\0",
                           np.array([0], np.int64), b"")
_NOWHERE = np.array([-1], np.int64)

_ALPHABET = st.sampled_from(["a", "b", "7", " ", '"', ",", ";", "\t", "|", "\n", "\r\n",
                             "\u00e9", "\u20ac"])
_FIELD = st.lists(_ALPHABET, max_size=6).map("".join)


def _unquote(raw):
    """The value of a raw field: inside the quotes '""' is a quote and the first lone
    quote closes them; text after the closing quote is kept (as Python's csv does)."""
    if not raw.startswith('"'):
        return raw
    out, i = [], 1
    while i < len(raw):
        if raw[i] == '"':
            if raw[i + 1:i + 2] == '"':
                out.append('"')
                i += 2
                continue
            return "".join(out) + raw[i + 1:]
        out.append(raw[i])
        i += 1
    return "".join(out)


def _c_rows(data, sep, n_fields, block):
    """Every field of every record as the C reader gives it (one pass per field, the raw
    span unquoted), read in blocks of ``block`` bytes."""
    names = parse_header(BlockReader(io.BytesIO(data), block).header_line(), sep, "prop.csv")
    columns = []
    for j in range(n_fields):
        reader = BlockReader(io.BytesIO(data), block, where="prop.csv")
        head = reader.header_line()
        assert head is not None
        line, values = 2, []
        while True:
            view, eof = reader.next_block()
            try:
                r = _core.csv_parse(view, schema=_SCHEMA, delimiter=sep, n_fields=n_fields,
                                    id_field=j, feature_field=_NOWHERE, fill_missing=-1,
                                    coerce=False, final=eof, first_line=line, first_row=1)
                buf = bytes(view)
            except ValueError as exc:
                raise DataError(f"prop.csv: {exc}") from None
            finally:
                view.release()
            for a, n in r["id_span"][:r["n_rows"]].tolist():
                values.append(_unquote(buf[a:a + n].decode("utf-8")))
            reader.consume(r["consumed"], r["n_lines"])
            line += r["n_lines"]
            if eof:
                break
        columns.append(values)
    return names, [list(row) for row in zip(*columns)]


@st.composite
def csv_files(draw):
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    n_fields = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(_FIELD, min_size=n_fields, max_size=n_fields), max_size=8))
    header = [f"h{j}" for j in range(n_fields)]
    out = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    writer = csv.writer(out, delimiter=sep, quoting=quoting, lineterminator=newline)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    text = out.getvalue()
    if draw(st.booleans()) and text.endswith(newline):
        text = text[:-len(newline)]                       # no line end at the very end
    if draw(st.booleans()):
        text = text.replace(newline, newline + newline, 1)  # a blank line after the header
    if draw(st.integers(0, 3)) == 0:                       # sometimes a damaged file
        at = draw(st.integers(0, len(text)))
        if 0 < at < len(text) and text[at - 1:at + 1] == "\r\n":
            at -= 1                                         # CRLF stays whole (no bare CR)
        text = text[:at] + draw(st.sampled_from(['"', sep, "\n", "x\"y"])) + text[at:]
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode("utf-8"), sep, n_fields


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(), st.sampled_from([16, 64, 1 << 16]))
def test_c_reader_agrees_with_python_csv(case, block):
    data, sep, n_fields = case
    text = data.decode("utf-8-sig")
    py = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    try:
        names, got = _c_rows(data, sep, n_fields, block)
    except DataError as exc:                               # a clean error naming a line
        assert re.search(r"line \d+|the header line", str(exc)), str(exc)
        return
    assert names == py[0]
    want = [r for r in py[1:] if r]                        # csv gives blank lines as []
    assert got == want

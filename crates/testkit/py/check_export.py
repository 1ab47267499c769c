#!/usr/bin/env python3
"""Reads one export back from S3 with readers wharf did not write, and compares it with the source rows.

    python check_export.py SPEC_JSON_PATH

SPEC_JSON_PATH holds one JSON object:
  endpoint, access_key, secret_key, region, bucket   where the export is (path-style, SigV4)
  format        parquet | csv | ndjson | json | xml | avro
  compression   none | gzip | zstd (whole-object compression of text formats; Content-Encoding)
  keys          the export's objects, in order; together they hold every row
  key_column    the column that identifies a row
  expected      the source rows: [{column: JSON value}]; timestamps ISO-8601 ("...Z"), dates
                "YYYY-MM-DD", times "HH:MM:SS[.ffffff]", decimals as strings, binary as lowercase hex
                ("00ff10", "" for no bytes), NaN/Infinity as "NaN"/"Infinity"/"-Infinity", lists as
                JSON arrays (elements may be null), null as null; a missing column is null
  types         {column: int64 | int32 | int16 | float64 | float32 | string | bool | date
                 | timestamp_us_utc | timestamp_us | decimal(p,s) | binary | time_us | list<T>}
                where T is any of the others (no lists of lists). Where a format has types:
                  int16     Parquet INT32 Int(16, signed) (Arrow int16); Avro int
                  float32   Parquet FLOAT (Arrow float32); Avro float
                  binary    Parquet BYTE_ARRAY without a logical type (Arrow binary); Avro bytes;
                            lowercase hex text in CSV, XML and JSON
                  time_us   time of day in microseconds: Parquet INT64 Time(MICROS) (Arrow time64[us],
                            isAdjustedToUTC either way); Avro long time-micros; text "HH:MM:SS[.f]"
                            with 0-9 fraction digits elsewhere
                  list<T>   Parquet LIST (3-level, element named element or item; Arrow list); Avro
                            array (items may be a union with null); JSON arrays; in CSV and XML the
                            array's JSON text ("[1,null,3]"), its elements compared as JSON values
  columns       optional: the columns in file order (else the order of `types`, which serde_json
                writes sorted). Required for a CSV without a header and when XML/Avro names
                collide (made unique with _2, _3... in column order). When given, every reader
                also checks the file's column order.
  csv           {"delimiter": ",", "quote": "\\"", "header": true, "null": "", "bom": false,
                 "line_terminator": "\\r\\n"}
  xml           {"root": "rows", "row": "row"}
  allow_naive_utc_text  optional, default false: accept timestamp_us_utc text without an offset
  readers       optional subset of pyarrow, duckdb, polars, stdlib, fastavro (default: every reader
                that applies to the format; readers that do not apply are listed under "skipped")

Readers per format (S3: read straight from the endpoint; bytes: the object as boto3 downloaded it):
  parquet  pyarrow (S3FileSystem), duckdb (httpfs read_parquet), polars (bytes)
  csv      stdlib (bytes; csv module + a strict tokenizer that tells quoted from unquoted fields),
           duckdb (httpfs read_csv, all VARCHAR), pyarrow (S3FileSystem, pyarrow.csv, all strings)
  ndjson   stdlib (bytes, json per line), duckdb (read_json newline_delimited, typed),
           polars (bytes, read_ndjson), pyarrow (S3FileSystem, pyarrow.json)
  json     stdlib (bytes, one array), duckdb (read_json array), polars (bytes, read_json)
  xml      stdlib (bytes; xml.etree for values, xml.sax for well-formedness)
  avro     fastavro (bytes)

Where a reader cannot read a type as itself, it reads it as the text the format holds (and the
type is checked by the other readers): pyarrow.json reads dates, times and binary (hex) as strings;
DuckDB reads JSON binary as VARCHAR (a BLOB would hold the hex text's own bytes); Polars reads JSON
int16 as Int64 (read_ndjson panics on Int16), and times, binary and decimals as String.

Known reader behaviour this surfaces: DuckDB and Polars read JSON numbers through float64, so a
decimal written as a JSON number with more than ~15 significant digits comes back rounded (decimals
written as JSON strings read exactly everywhere); DuckDB silently accepts "3" for BIGINT and "true"
for BOOLEAN in JSON, and reads Parquet nanosecond timestamps as microseconds (the pyarrow and
Polars readers check units). In CSV a null is an unquoted field equal to the null text; a quoted
field is always a value (a string, binary's hex, a list's JSON text), so with the null text "" an
empty string or empty binary reads back as itself only when quoted.

Values are compared in a canonical form per type: ints exactly (int16 also in range), floats with
relative tolerance 1e-9, float32 1e-6 (NaN equals NaN), bools, dates as ISO dates, timestamps as
UTC nanoseconds (microsecond inputs), decimals by numeric value, strings exactly, binary as bytes,
times as microseconds since midnight, lists element by element (length, nulls and order too). In
XML the characters XML 1.0 cannot hold are expected as U+FFFD. File column names are the source
names, except XML (element names made from column names) and Avro ([A-Za-z_][A-Za-z0-9_]*), both
made unique with _2, _3...

Prints one JSON line: {"ok": bool, "readers": {name: {"rows": n, "ok": bool, "errors": [...]}},
"errors": [...checks not tied to one reader...], "skipped": [...]} and exits 0 when everything
agrees, 1 when something does not, 2 when the spec itself is unusable. Secrets never appear in the
output.
"""

import csv
import datetime as dt
import io
import json
import math
import os
import re
import sys
import traceback
import urllib.parse
import xml.etree.ElementTree as ET
import xml.sax
import xml.sax.handler
import zlib
from decimal import Decimal

MAX_ERRORS = 10
FORMATS = ("parquet", "csv", "ndjson", "json", "xml", "avro")
ALL_READERS = ("pyarrow", "duckdb", "polars", "stdlib", "fastavro")
READERS_FOR = {
    "parquet": ("pyarrow", "duckdb", "polars"),
    "csv": ("stdlib", "duckdb", "pyarrow"),
    "ndjson": ("stdlib", "duckdb", "polars", "pyarrow"),
    "json": ("stdlib", "duckdb", "polars"),
    "xml": ("stdlib",),
    "avro": ("fastavro",),
}
TEXT_FORMATS = ("csv", "ndjson", "json", "xml")
MAGIC = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}
UTC_NAMES = ("UTC", "Etc/UTC", "+00:00", "Z", "utc")


class SpecError(Exception):
    pass


class Bad(Exception):
    """A value that cannot be read as its column's type."""


# ---------------------------------------------------------------------------------------------
# Types and canonical values


SCALAR_KINDS = ("int64", "int32", "int16", "float64", "float32", "string", "bool", "date", "timestamp_us_utc",
                "timestamp_us", "binary", "time_us")


class Type:
    def __init__(self, text):
        self.text = text.strip()
        self.item = None  # a list's element type
        m = re.fullmatch(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)", self.text)
        lm = re.fullmatch(r"list\s*<(.*)>", self.text)
        if m:
            self.kind, self.p, self.s = "decimal", int(m.group(1)), int(m.group(2))
        elif self.text in SCALAR_KINDS:
            self.kind, self.p, self.s = self.text, None, None
        elif lm:
            self.kind, self.p, self.s = "list", None, None
            self.item = Type(lm.group(1))
            if self.item.kind == "list":
                raise SpecError(f"lists of lists are not supported: {text!r}")
        else:
            raise SpecError(f"unknown type {text!r}")

    def __repr__(self):
        return self.text


class EpochUs(int):
    """Microseconds since the epoch, as a typed reader's timestamp column holds them."""


class F32(float):
    """A float32 value: compared with float32 precision."""


INT_RE = re.compile(r"[+-]?[0-9]+")
FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.I)
DEC_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
DATE_RE = re.compile(r"([+-]?[0-9]{4,})-([0-9]{2})-([0-9]{2})")
TS_RE = re.compile(
    r"([+-]?[0-9]{4,})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:\s*(Z|z|UTC|[+-][0-9]{2}(?::?[0-9]{2})?))?"
)
TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?")
HEX_RE = re.compile(r"(?:[0-9a-f]{2})*")
INT_RANGE = {"int16": (-(2**15), 2**15 - 1)}
FLOAT32_MAX = 3.4028235677973366e38 * (1 + 1e-6)
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def days_from_civil(y, m, d):
    """Days since 1970-01-01 for any proleptic Gregorian date (years outside 1..9999 too)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_ts_text(text, naive_ok, aware_ok):
    m = TS_RE.fullmatch(text.strip())
    if not m:
        raise Bad(f"not an ISO-8601 timestamp: {short(text)}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac, off = m.group(7) or "", m.group(8)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        raise Bad(f"timestamp out of range: {short(text)}")
    if off is None and not naive_ok:
        raise Bad(f"timestamp without a UTC offset: {short(text)}")
    if off is not None and not aware_ok:
        raise Bad(f"timestamp with an offset in a zone-less column: {short(text)}")
    ns = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + s
    ns = ns * 1_000_000_000 + int((frac + "000000000")[:9])
    if off and off.upper() not in ("Z", "UTC"):
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
        ns -= sign * minutes * 60 * 1_000_000_000
    return ns


def dt_to_ns(value, t):
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            off = value.utcoffset()
            value = value.replace(tzinfo=None) - off
        # A zone-less value for timestamp_us_utc is taken as UTC here; the type checks report it.
        days = value.toordinal() - EPOCH_ORDINAL
        secs = (days * 24 + value.hour) * 3600 + value.minute * 60 + value.second
        return secs * 1_000_000_000 + value.microsecond * 1000
    raise Bad(f"not a timestamp: {short(value)}")


def canon(t, v, mode, naive_utc_ok=False):
    """The canonical form of `v` as type `t`. `mode`: "text" (every value a string, as CSV/XML hold
    them), "typed" (a reader's own types), "json" (JSON values), "expected" (the spec's values)."""
    if v is None:
        return None
    k = t.kind
    # Strings stand for numbers and bools only in text formats; dates, timestamps and decimals
    # are strings in JSON too (and where a reader is told to read them as text).
    text = isinstance(v, str)
    if k == "string":
        if not text:
            raise Bad(f"not a string: {type(v).__name__} {short(v)}")
        return v
    if k in ("int64", "int32", "int16"):
        if isinstance(v, bool):
            raise Bad(f"a bool where {k} was expected: {v}")
        if isinstance(v, int):
            n = int(v)
        elif text and mode in ("text", "expected") and INT_RE.fullmatch(v.strip()):
            n = int(v)
        elif isinstance(v, Decimal) and mode != "json" and v == v.to_integral_value():
            n = int(v)
        else:
            raise Bad(f"not an {k}: {type(v).__name__} {short(v)}")
        lo, hi = INT_RANGE.get(k, (None, None))
        if lo is not None and not lo <= n <= hi:
            raise Bad(f"{n} is out of the {k} range")
        return n
    if k in ("float64", "float32"):
        wrap = F32 if k == "float32" else float
        if isinstance(v, bool):
            raise Bad(f"a bool where {k} was expected: {v}")
        special = text and v.strip().lower().lstrip("+-") in ("nan", "inf", "infinity")
        if isinstance(v, (int, float, Decimal)):
            f = wrap(v)
        elif text and (mode == "text" or (mode in ("expected", "json") and special)) and FLOAT_RE.fullmatch(v.strip()):
            f = wrap(v)
        else:
            raise Bad(f"not a {k}: {type(v).__name__} {short(v)}")
        if k == "float32" and math.isfinite(f) and abs(f) > FLOAT32_MAX:
            raise Bad(f"{short(v)} is out of the float32 range")
        return f
    if k == "binary":
        # Bytes from typed readers; lowercase hex where the format (or the reader) holds text.
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v)
        if text:
            if HEX_RE.fullmatch(v):
                return bytes.fromhex(v)
            raise Bad(f"not lowercase hex: {short(v)}")
        raise Bad(f"not binary: {type(v).__name__} {short(v)}")
    if k == "time_us":
        # Microseconds since midnight.
        if isinstance(v, dt.time):
            if v.tzinfo is not None:
                raise Bad(f"a time with a zone where a time of day was expected: {v!r}")
            return ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
        if text:
            m = TIME_RE.fullmatch(v.strip())
            if m:
                h, mi, sec = (int(g) for g in m.groups()[:3])
                frac = (m.group(4) or "") + "000000000"
                if not (h < 24 and mi < 60 and sec < 60):
                    raise Bad(f"time out of range: {short(v)}")
                if int(frac[6:9]):
                    raise Bad(f"time finer than microseconds: {short(v)}")
                return ((h * 60 + mi) * 60 + sec) * 1_000_000 + int(frac[:6])
        raise Bad(f"not a time: {type(v).__name__} {short(v)}")
    if k == "list":
        # CSV and XML hold a list as its JSON text; its elements are then JSON values.
        item_mode = mode
        if text and mode == "text":
            try:
                v = json_loads(v)
            except ValueError as e:
                raise Bad(f"not the JSON text of a list ({e}): {short(v)}")
            item_mode = "json"
        if not isinstance(v, (list, tuple)):
            raise Bad(f"not a list: {type(v).__name__} {short(v)}")
        out = []
        for i, item in enumerate(v):
            try:
                out.append(canon(t.item, item, item_mode, naive_utc_ok))
            except Bad as e:
                raise Bad(f"element {i}: {e}")
        return out
    if k == "bool":
        if isinstance(v, bool):
            return v
        if text and mode in ("text", "expected") and v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true"
        raise Bad(f"not a bool: {type(v).__name__} {short(v)}")
    if k == "date":
        if isinstance(v, dt.datetime):
            raise Bad(f"a timestamp where a date was expected: {v!r}")
        if isinstance(v, dt.date):
            return v.isoformat()
        if text:
            m = DATE_RE.fullmatch(v.strip())
            if m:
                y, mo, d = (int(g) for g in m.groups())
                try:
                    return dt.date(y, mo, d).isoformat()
                except ValueError:
                    if not (1 <= mo <= 12 and 1 <= d <= 31):
                        raise Bad(f"date out of range: {short(v)}")
                    return f"{y:04d}-{mo:02d}-{d:02d}"
        raise Bad(f"not a date: {type(v).__name__} {short(v)}")
    if k in ("timestamp_us_utc", "timestamp_us"):
        if isinstance(v, EpochUs):
            return int(v) * 1000
        if isinstance(v, dt.datetime):
            return dt_to_ns(v, t)
        if text:
            aware = k == "timestamp_us_utc"
            return parse_ts_text(v, naive_ok=(not aware) or naive_utc_ok, aware_ok=aware)
        raise Bad(f"not a timestamp: {type(v).__name__} {short(v)}")
    if k == "decimal":
        if isinstance(v, bool):
            raise Bad(f"a bool where {t} was expected: {v}")
        if isinstance(v, Decimal):
            return v
        if isinstance(v, int):
            return Decimal(v)
        if isinstance(v, float):
            return Decimal(repr(v))
        if text and DEC_RE.fullmatch(v.strip()):
            return Decimal(v.strip())
        raise Bad(f"not a {t}: {type(v).__name__} {short(v)}")
    raise Bad(f"unhandled type {t}")


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        tol = 1e-6 if isinstance(a, F32) or isinstance(b, F32) else 1e-9
        return a == b or math.isclose(a, b, rel_tol=tol, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def show(v, t=None):
    """A value for an error message: canonical values made readable, long ones shortened."""
    if v is None:
        return "null"
    if t is not None and t.kind == "list" and isinstance(v, list):
        txt = "[" + ", ".join(show(x, t.item) for x in v) + "]"
        return txt if len(txt) <= 200 else txt[:180] + "...] (" + str(len(v)) + " elements)"
    if t is not None and t.kind == "binary" and isinstance(v, bytes):
        return "0x" + v.hex() if len(v) <= 40 else f"0x{v[:30].hex()}...{v[-4:].hex()} ({len(v)} bytes)"
    if t is not None and t.kind == "time_us" and isinstance(v, int):
        secs, us = divmod(v, 1_000_000)
        return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{us:06d}"
    if t is not None and t.kind in ("timestamp_us_utc", "timestamp_us") and isinstance(v, int):
        secs, ns = divmod(v, 1_000_000_000)
        days, secs = divmod(secs, 86400)
        try:
            d = dt.date.fromordinal(days + EPOCH_ORDINAL)
            txt = f"{d.isoformat()}T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{ns:09d}"
            return txt.rstrip("0").rstrip(".") + ("Z" if t.kind == "timestamp_us_utc" else "")
        except (ValueError, OverflowError):
            return f"{v}ns"
    return short(v)


def short(v, limit=80):
    r = repr(v) if not isinstance(v, Decimal) else str(v)
    if len(r) > limit:
        extra = f", {len(v)} chars" if isinstance(v, str) else ""
        r = r[: limit - 20] + "..." + r[-12:] + f" ({len(r)} repr chars{extra})"
    return r


def first_difference(a, b):
    if isinstance(a, str) and isinstance(b, str):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return f" (first difference at char {i}: {x!r} vs {y!r}; lengths {len(a)}/{len(b)})"
        return f" (lengths {len(a)}/{len(b)})"
    return ""


XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# ---------------------------------------------------------------------------------------------
# Names a file holds for the source columns


def _xml_name_start(c):
    o = ord(c)
    return (
        c == "_" or "A" <= c <= "Z" or "a" <= c <= "z"
        or 0xC0 <= o <= 0xD6 or 0xD8 <= o <= 0xF6 or 0xF8 <= o <= 0x2FF
        or 0x370 <= o <= 0x37D or 0x37F <= o <= 0x1FFF or 0x200C <= o <= 0x200D
        or 0x2070 <= o <= 0x218F or 0x2C00 <= o <= 0x2FEF or 0x3001 <= o <= 0xD7FF
        or 0xF900 <= o <= 0xFDCF or 0xFDF0 <= o <= 0xFFFD or 0x10000 <= o <= 0xEFFFF
    )


def _xml_name_char(c):
    o = ord(c)
    return (
        _xml_name_start(c) or c in "-." or "0" <= c <= "9" or o == 0xB7
        or 0x300 <= o <= 0x36F or 0x203F <= o <= 0x2040
    )


def _unique(bases):
    out = []
    for base in bases:
        name, n = base, 2
        while name in out:
            name, n = f"{base}_{n}", n + 1
        out.append(name)
    return out


def xml_names(columns):
    """XML 1.0 element names (no ':'): invalid chars -> '_'; a name that cannot start as it does
    (digit, '-', '.', 'xml' in any case, empty) gets a leading '_'; repeats get _2, _3..."""
    bases = []
    for col in columns:
        name = "".join(c if _xml_name_char(c) else "_" for c in col)
        if not name or not _xml_name_start(name[0]) or name.lower().startswith("xml"):
            name = "_" + name
        bases.append(name)
    return _unique(bases)


def avro_names(columns):
    """Avro names [A-Za-z_][A-Za-z0-9_]*: other chars -> '_', leading non-letter gets '_'."""
    bases = []
    for col in columns:
        name = "".join(c if (c.isascii() and (c.isalnum() or c == "_")) else "_" for c in col)
        if not name or not (name[0].isascii() and (name[0].isalpha() or name[0] == "_")):
            name = "_" + name
        bases.append(name)
    return _unique(bases)


# ---------------------------------------------------------------------------------------------
# The context: spec, S3 clients, downloaded objects


class Ctx:
    def __init__(self, spec):
        self.spec = spec
        for field in ("endpoint", "access_key", "secret_key", "bucket", "format", "keys", "key_column", "expected", "types"):
            if field not in spec:
                raise SpecError(f"spec has no {field!r}")
        self.secret = spec["secret_key"]
        self.fmt = spec["format"]
        if self.fmt not in FORMATS:
            raise SpecError(f"unknown format {self.fmt!r}")
        self.comp = spec.get("compression") or "none"
        if self.comp not in ("none", "gzip", "zstd"):
            raise SpecError(f"unknown compression {self.comp!r}")
        if self.comp != "none" and self.fmt not in TEXT_FORMATS:
            raise SpecError(f"{self.fmt} files are not compressed as a whole (compression {self.comp!r})")
        self.types = {c: Type(t) for c, t in spec["types"].items()}
        self.columns = list(spec.get("columns") or spec["types"].keys())
        self.column_order_given = bool(spec.get("columns"))
        for c in self.columns:
            if c not in self.types:
                raise SpecError(f"column {c!r} has no type")
        if set(self.types) != set(self.columns):
            raise SpecError("`columns` and `types` name different columns")
        self.key = spec["key_column"]
        if self.key not in self.types:
            raise SpecError(f"key column {self.key!r} has no type")
        self.keys = list(spec["keys"])
        if not self.keys:
            raise SpecError("no keys")
        self.bucket = spec["bucket"]
        self.region = spec.get("region") or "us-east-1"
        url = urllib.parse.urlparse(spec["endpoint"])
        if url.scheme not in ("http", "https") or not url.netloc:
            raise SpecError("endpoint must be http(s)://host:port")
        self.endpoint, self.scheme, self.hostport = spec["endpoint"].rstrip("/"), url.scheme, url.netloc
        csv_spec = dict(delimiter=",", quote='"', header=True, null="", bom=False, line_terminator="\r\n")
        csv_spec.update(spec.get("csv") or {})
        self.csv = csv_spec
        xml_spec = dict(root="rows", row="row")
        xml_spec.update(spec.get("xml") or {})
        self.xml = xml_spec
        self.naive_utc_ok = bool(spec.get("allow_naive_utc_text"))
        if self.fmt == "csv" and not self.csv["header"] and not self.column_order_given:
            raise SpecError("a CSV without a header needs `columns` (the file's column order)")
        if self.fmt in ("xml", "avro"):
            names = (xml_names if self.fmt == "xml" else avro_names)(self.columns)
            bases = [n for c in self.columns for n in (xml_names if self.fmt == "xml" else avro_names)([c])]
            if len(set(bases)) != len(bases) and not self.column_order_given:
                raise SpecError(f"columns {sorted(self.columns)} share {self.fmt} names; `columns` must give "
                                "their order so the _2, _3 suffixes can be predicted")
            self.file_names = dict(zip(self.columns, names))
        else:
            self.file_names = {c: c for c in self.columns}
        self.source_of = {f: c for c, f in self.file_names.items()}
        # Expected rows in canonical form (XML cannot hold some characters: U+FFFD instead).
        self.expected = []
        for i, row in enumerate(spec["expected"]):
            unknown = set(row) - set(self.types)
            if unknown:
                raise SpecError(f"expected row {i} has columns without a type: {sorted(unknown)}")
            out = {}
            for c in self.columns:
                v = row.get(c)
                if self.fmt == "xml" and isinstance(v, str):
                    v = XML_ILLEGAL.sub("\ufffd", v)
                try:
                    out[c] = canon(self.types[c], v, "expected")
                except Bad as e:
                    raise SpecError(f"expected row {i} column {c!r}: {e}")
            if out[self.key] is None:
                raise SpecError(f"expected row {i} has a null key")
            self.expected.append(out)
        self.expected_by_key = {}
        for row in self.expected:
            if row[self.key] in self.expected_by_key:
                raise SpecError(f"expected rows repeat key {show(row[self.key])}")
            self.expected_by_key[row[self.key]] = row
        self.nullable = {c: any(r[c] is None for r in self.expected) for c in self.columns}
        self.item_nullable = {c: any(r[c] is not None and None in r[c] for r in self.expected)
                              for c in self.columns if self.types[c].kind == "list"}
        readers = spec.get("readers")
        if readers is None:
            readers = list(READERS_FOR[self.fmt])
        for r in readers:
            if r not in ALL_READERS:
                raise SpecError(f"unknown reader {r!r}")
        self.readers = [r for r in readers if r in READERS_FOR[self.fmt]]
        self.skipped = [r for r in readers if r not in READERS_FOR[self.fmt]]
        if not self.readers:
            raise SpecError(f"none of the readers {readers} reads {self.fmt}")
        self._s3 = self._fs = self._duck = None
        self.objects = {}  # key -> bytes as stored
        self.errors = []

    # -- S3 access ------------------------------------------------------------------------------

    def s3(self):
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            self._s3 = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=self.spec["access_key"],
                aws_secret_access_key=self.secret,
                region_name=self.region,
                config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                              retries={"max_attempts": 2, "mode": "standard"}),
            )
        return self._s3

    def fs(self):
        if self._fs is None:
            import pyarrow.fs as pafs

            self._fs = pafs.S3FileSystem(
                access_key=self.spec["access_key"], secret_key=self.secret, region=self.region,
                endpoint_override=self.hostport, scheme=self.scheme, force_virtual_addressing=False,
                allow_bucket_creation=False, allow_bucket_deletion=False,
            )
        return self._fs

    def duck(self):
        if self._duck is None:
            import duckdb
            import duckdb_ext

            con = duckdb.connect(":memory:", config={"threads": 2})
            con.execute("SET extension_directory = " + sql_str(duckdb_ext.get_extension_dir()))
            con.execute("SET autoinstall_known_extensions = false")
            con.execute("SET autoload_known_extensions = false")
            con.execute("LOAD httpfs")
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_http_metadata_cache = false")
            con.execute(
                "CREATE SECRET wharf_check (TYPE s3, KEY_ID " + sql_str(self.spec["access_key"])
                + ", SECRET " + sql_str(self.secret) + ", REGION " + sql_str(self.region)
                + ", ENDPOINT " + sql_str(self.hostport) + ", URL_STYLE 'path', USE_SSL "
                + ("true" if self.scheme == "https" else "false") + ")"
            )
            self._duck = con
        return self._duck

    def s3_urls(self):
        return "[" + ", ".join(sql_str(f"s3://{self.bucket}/{k}") for k in self.keys) + "]"

    def fetch_all(self):
        """Downloads every object with boto3 and checks how it is stored."""
        if len(set(self.keys)) != len(self.keys):
            self.errors.append("keys repeat an object")
        for key in self.keys:
            try:
                resp = self.s3().get_object(Bucket=self.bucket, Key=key)
                body = resp["Body"].read()
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"GetObject {key}: {describe(e)}")
                continue
            self.objects[key] = body
            enc = (resp.get("ContentEncoding") or "").strip().lower()
            want = "" if self.comp == "none" else self.comp
            if enc not in ((want,) if want else ("", "identity")):
                self.errors.append(f"{key}: Content-Encoding {enc or '(none)'!r}, expected {want or '(none)'!r}")
            if want and not body.startswith(MAGIC[want]):
                self.errors.append(f"{key}: body does not start with the {want} magic number")
            if len(body) != resp.get("ContentLength", len(body)):
                self.errors.append(f"{key}: got {len(body)} bytes, Content-Length {resp.get('ContentLength')}")

    def plain(self, key):
        """The object's bytes with its whole-object compression undone."""
        body = self.objects[key]
        # One gzip member or one zstd frame, ending where the object ends: readers that stop
        # after the first (zstandard's default stream reader, some partners' tools) must still
        # read every row.
        if self.comp == "gzip":
            d = zlib.decompressobj(wbits=31)
        elif self.comp == "zstd":
            import zstandard

            d = zstandard.ZstdDecompressor().decompressobj()
        else:
            return body
        plain = d.decompress(body)
        if not d.eof or d.unused_data:
            what = "gzip member" if self.comp == "gzip" else "zstd frame"
            self.errors.append(
                f"{key}: not one {what}: " + (f"{len(d.unused_data)} bytes after the first" if d.eof else "it does not end")
            )
        return plain

    def s3_read_plain(self, key):
        """The object read through pyarrow's S3FileSystem, decompressed by Arrow's codecs."""
        import pyarrow as pa

        codec = None if self.comp == "none" else self.comp
        with self.fs().open_input_stream(f"{self.bucket}/{key}", compression=codec) as f:
            data = f.read()
        return pa.py_buffer(data)


def sql_str(s):
    return "'" + str(s).replace("'", "''") + "'"


def sql_ident(s):
    return '"' + str(s).replace('"', '""') + '"'


def describe(e):
    text = f"{type(e).__name__}: {e}"
    return text if len(text) < 600 else text[:600] + "..."


# ---------------------------------------------------------------------------------------------
# Per-reader results


class Result:
    def __init__(self):
        self.rows = []  # [{source column: raw value}]
        self.errors = []
        self.mode = "typed"

    def err(self, msg):
        self.errors.append(msg)


def check_names(ctx, res, found, where):
    """`found` are the column names a file shows; compares with the names it should hold."""
    want = [ctx.file_names[c] for c in ctx.columns]
    missing = [n for n in want if n not in found]
    extra = [n for n in found if n not in want]
    dups = sorted({n for n in found if list(found).count(n) > 1})
    if missing:
        res.err(f"{where}: missing columns {missing}")
    if extra:
        res.err(f"{where}: unexpected columns {extra}")
    if dups:
        res.err(f"{where}: repeated columns {dups}")
    if not missing and not extra and not dups and ctx.column_order_given and list(found) != want:
        res.err(f"{where}: columns in order {list(found)}, expected {want}")


def arrow_rows(table, res, ctx, where):
    """Rows of an Arrow table keyed by source column, timestamps as EpochUs."""
    import pyarrow as pa

    check_names(ctx, res, table.column_names, where)
    cols = {}
    for name in table.column_names:
        src = ctx.source_of.get(name)
        if src is None:
            continue
        arr = table.column(name)
        if pa.types.is_timestamp(arr.type):
            if arr.type.unit != "us":
                arr = arr.cast(pa.timestamp("us", arr.type.tz))
            values = [None if v is None else EpochUs(v) for v in arr.cast(pa.int64()).to_pylist()]
        elif pa.types.is_list(arr.type) and pa.types.is_timestamp(arr.type.value_type):
            vt = arr.type.value_type
            if vt.unit != "us":
                arr = arr.cast(pa.list_(pa.timestamp("us", vt.tz)))
            values = [None if v is None else [None if x is None else EpochUs(x) for x in v]
                      for v in arr.cast(pa.list_(pa.int64())).to_pylist()]
        else:
            values = arr.to_pylist()
        cols[src] = values
    for i in range(table.num_rows):
        res.rows.append({c: v[i] for c, v in cols.items()})


def arrow_type_problem(t, at):
    import pyarrow as pa

    k = t.kind
    ok = {
        "int64": lambda: at == pa.int64(),
        "int32": lambda: at == pa.int32(),
        "int16": lambda: at == pa.int16(),
        "float64": lambda: at == pa.float64(),
        "float32": lambda: at == pa.float32(),
        "string": lambda: at in (pa.string(), pa.large_string(), pa.string_view()),
        "bool": lambda: at == pa.bool_(),
        "date": lambda: at == pa.date32(),
        "timestamp_us_utc": lambda: pa.types.is_timestamp(at) and at.unit == "us" and at.tz in UTC_NAMES,
        "timestamp_us": lambda: pa.types.is_timestamp(at) and at.unit == "us" and at.tz is None,
        "decimal": lambda: pa.types.is_decimal(at) and at.precision == t.p and at.scale == t.s,
        "binary": lambda: at in (pa.binary(), pa.large_binary(), pa.binary_view()),
        "time_us": lambda: at == pa.time64("us"),
        "list": lambda: ((pa.types.is_list(at) or pa.types.is_large_list(at))
                         and arrow_type_problem(t.item, at.value_type) is None),
    }[k]()
    return None if ok else f"Arrow type {at}, expected {t}"


# ---------------------------------------------------------------------------------------------
# Parquet


def parquet_logical_problem(t, col):
    lt = json.loads(col.logical_type.to_json())
    phys = col.physical_type
    k = t.kind
    if k == "int64":
        ok = phys == "INT64" and lt.get("Type") in ("None", "Int") and lt.get("bitWidth", 64) == 64 and lt.get("isSigned", True)
    elif k == "int32":
        ok = phys == "INT32" and lt.get("Type") in ("None", "Int") and lt.get("bitWidth", 32) == 32 and lt.get("isSigned", True)
    elif k == "int16":
        ok = phys == "INT32" and lt.get("Type") == "Int" and lt.get("bitWidth") == 16 and lt.get("isSigned") is True
    elif k == "float64":
        ok = phys == "DOUBLE"
    elif k == "float32":
        ok = phys == "FLOAT"
    elif k == "string":
        ok = phys == "BYTE_ARRAY" and lt.get("Type") == "String"
    elif k == "binary":
        ok = phys == "BYTE_ARRAY" and lt.get("Type") == "None"
    elif k == "time_us":
        # isAdjustedToUTC either way: a time of day without a zone (Arrow C++ writes true, arrow-rs false).
        ok = phys == "INT64" and lt.get("Type") == "Time" and lt.get("timeUnit") == "microseconds"
    elif k == "bool":
        ok = phys == "BOOLEAN"
    elif k == "date":
        ok = phys == "INT32" and lt.get("Type") == "Date"
    elif k in ("timestamp_us_utc", "timestamp_us"):
        ok = (phys == "INT64" and lt.get("Type") == "Timestamp" and lt.get("timeUnit") == "microseconds"
              and lt.get("isAdjustedToUTC") == (k == "timestamp_us_utc"))
    elif k == "decimal":
        ok = lt.get("Type") == "Decimal" and lt.get("precision") == t.p and lt.get("scale") == t.s
    else:
        ok = False
    return None if ok else f"Parquet {phys} {col.logical_type}, expected {t}"


PARQUET_GROUP_RE = re.compile(r"  (required|optional|repeated) group field_id=-?[0-9]+ (.*?)(?: \(([A-Za-z]+)\))? \{")


def parquet_groups(schema):
    """{name: (repetition, annotation or None)} for the top-level groups of a Parquet schema (pyarrow
    shows a group's LIST annotation only in the schema's printed form)."""
    out = {}
    for line in str(schema).splitlines():
        m = PARQUET_GROUP_RE.fullmatch(line)
        if m:
            out[m.group(2)] = (m.group(1), m.group(3))
    return out


def parquet_list_problems(ctx, src, col, groups):
    """A list column's leaf `col` (path <name>.list.element or <name>.list.item): the LIST group,
    the element type and where nulls may be."""
    t, name = ctx.types[src], ctx.file_names[src]
    problems = []
    rep, annotation = groups.get(name, (None, None))
    if annotation != "List":
        problems.append(f"Parquet group {rep} {annotation or '(no annotation)'}, expected a LIST")
    p = parquet_logical_problem(t.item, col)
    if p:
        problems.append(f"elements: {p}")
    optional = rep == "optional"
    if not optional and ctx.nullable[src]:
        problems.append("is REQUIRED but holds nulls")
    if col.max_definition_level - optional - 1 < 1 and ctx.item_nullable[src]:
        problems.append("elements are REQUIRED but some are null")
    return problems


def read_parquet_pyarrow(ctx, res):
    import pyarrow.parquet as pq

    for key in ctx.keys:
        with ctx.fs().open_input_file(f"{ctx.bucket}/{key}") as f:
            pf = pq.ParquetFile(f)
            schema = pf.schema
            groups = None
            for i in range(len(schema)):
                col = schema.column(i)
                src = ctx.source_of.get(col.name)
                if col.path != col.name:
                    m = re.fullmatch(r"(.*)\.list\.(?:element|item)", col.path)
                    src = ctx.source_of.get(m.group(1)) if m else None
                    if src is None or ctx.types[src].kind != "list" or col.max_repetition_level != 1:
                        res.err(f"{key}: nested Parquet column {col.path}")
                        continue
                    groups = groups if groups is not None else parquet_groups(schema)
                    for p in parquet_list_problems(ctx, src, col, groups):
                        res.err(f"{key}: column {m.group(1)!r}: {p}")
                    continue
                if src is not None:
                    p = parquet_logical_problem(ctx.types[src], col)
                    if p:
                        res.err(f"{key}: column {col.name!r}: {p}")
                    if col.max_definition_level == 0 and ctx.nullable[src]:
                        res.err(f"{key}: column {col.name!r} is REQUIRED but holds nulls")
            table = pf.read()
        for field in table.schema:
            src = ctx.source_of.get(field.name)
            if src is not None:
                p = arrow_type_problem(ctx.types[src], field.type)
                if p:
                    res.err(f"{key}: column {field.name!r}: {p}")
        arrow_rows(table, res, ctx, key)


DUCK_TYPES = {
    "int64": "BIGINT",
    "int32": "INTEGER",
    "int16": "SMALLINT",
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp_us_utc": "TIMESTAMPTZ",
    "timestamp_us": "TIMESTAMP",
    "binary": "BLOB",
    "time_us": "TIME",
}


def duck_type(t, json_text=False):
    """DuckDB's type for `t`; `json_text`: as read from JSON, where binary is hex text (DuckDB
    would take the text's own bytes for a BLOB)."""
    if t.kind == "decimal":
        return f"DECIMAL({t.p},{t.s})" if t.p <= 38 else "VARCHAR"
    if t.kind == "list":
        return duck_type(t.item, json_text) + "[]"
    if t.kind == "binary" and json_text:
        return "VARCHAR"
    return DUCK_TYPES[t.kind]


DUCK_DESCRIBE_NAMES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ[]": "TIMESTAMP WITH TIME ZONE[]"}


def duck_select(ctx, res, source, described, where, typed):
    """SELECT from `source`: timestamps as epoch microseconds; checks names (and types)."""
    names = [d[0] for d in described]
    check_names(ctx, res, names, where)
    sel, srcs = [], []
    for name, dtype in ((d[0], d[1]) for d in described):
        src = ctx.source_of.get(name)
        if src is None:
            continue
        t = ctx.types[src]
        if typed:
            want = DUCK_DESCRIBE_NAMES.get(duck_type(t), duck_type(t))
            if dtype != want:
                res.err(f"{where}: column {name!r}: DuckDB type {dtype}, expected {want}")
        if dtype.startswith("TIMESTAMP") and dtype.endswith("[]"):
            sel.append(f"list_transform({sql_ident(name)}, lambda x: epoch_us(x))")
            srcs.append((src, True))
        elif dtype.startswith("TIMESTAMP"):
            sel.append(f"epoch_us({sql_ident(name)})")
            srcs.append((src, True))
        else:
            sel.append(sql_ident(name))
            srcs.append((src, False))
    if not sel:
        return
    for row in ctx.duck().execute(f"SELECT {', '.join(sel)} FROM {source}").fetchall():
        res.rows.append({src: (epoch_us_values(v) if ts else v) for (src, ts), v in zip(srcs, row)})


def epoch_us_values(v):
    """Epoch microseconds (or a list of them) as EpochUs."""
    if isinstance(v, list):
        return [epoch_us_values(x) for x in v]
    return None if v is None else EpochUs(v)


def read_parquet_duckdb(ctx, res):
    src = f"read_parquet({ctx.s3_urls()})"
    described = ctx.duck().execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    duck_select(ctx, res, src, described, "read_parquet", typed=True)


POLARS_OK = {
    "int64": lambda pl, t, d: d == pl.Int64,
    "int32": lambda pl, t, d: d == pl.Int32,
    "int16": lambda pl, t, d: d == pl.Int16,
    "float64": lambda pl, t, d: d == pl.Float64,
    "float32": lambda pl, t, d: d == pl.Float32,
    "string": lambda pl, t, d: d == pl.String,
    "bool": lambda pl, t, d: d == pl.Boolean,
    "date": lambda pl, t, d: d == pl.Date,
    "timestamp_us_utc": lambda pl, t, d: isinstance(d, pl.Datetime) and d.time_unit == "us" and d.time_zone in UTC_NAMES,
    "timestamp_us": lambda pl, t, d: isinstance(d, pl.Datetime) and d.time_unit == "us" and d.time_zone is None,
    "decimal": lambda pl, t, d: isinstance(d, pl.Decimal) and d.precision == t.p and d.scale == t.s,
    "binary": lambda pl, t, d: d == pl.Binary,
    "time_us": lambda pl, t, d: d == pl.Time,
    "list": lambda pl, t, d: isinstance(d, pl.List) and POLARS_OK[t.item.kind](pl, t.item, d.inner),
}


def polars_rows(ctx, res, df, where, typed):
    import polars as pl

    check_names(ctx, res, df.columns, where)
    cols = {}
    for name, dtype in df.schema.items():
        src = ctx.source_of.get(name)
        if src is None:
            continue
        t = ctx.types[src]
        if typed and not POLARS_OK[t.kind](pl, t, dtype):
            res.err(f"{where}: column {name!r}: Polars type {dtype}, expected {t}")
        s = df.get_column(name)
        if isinstance(dtype, pl.Datetime):
            cols[src] = [None if v is None else EpochUs(v) for v in s.dt.epoch("us").to_list()]
        elif isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Datetime):
            cols[src] = epoch_us_values(s.list.eval(pl.element().dt.epoch("us")).to_list())
        else:
            cols[src] = s.to_list()
    for i in range(df.height):
        res.rows.append({c: v[i] for c, v in cols.items()})


def read_parquet_polars(ctx, res):
    import polars as pl

    for key in ctx.keys:
        df = pl.read_parquet(io.BytesIO(ctx.objects[key]))
        polars_rows(ctx, res, df, key, typed=True)


# ---------------------------------------------------------------------------------------------
# CSV


def csv_records(text, delim, quote):
    """Strict RFC 4180 tokenizer: [(fields [(value, quoted)], terminator)]."""
    out = []
    n, i = len(text), 0
    if n == 0:
        return out
    unquoted = re.compile("[^" + re.escape(delim + "\r\n") + "]*")
    fields = []
    while True:
        if i < n and text[i] == quote:
            i += 1
            parts = []
            while True:
                j = text.find(quote, i)
                if j < 0:
                    raise ValueError(f"unterminated quoted field (record {len(out) + 1})")
                parts.append(text[i:j])
                i = j + 1
                if i < n and text[i] == quote:
                    parts.append(quote)
                    i += 1
                    continue
                break
            fields.append(("".join(parts), True))
        else:
            m = unquoted.match(text, i)
            value = m.group(0)
            if quote in value:
                raise ValueError(f"quote character inside an unquoted field (record {len(out) + 1}): {short(value)}")
            fields.append((value, False))
            i = m.end()
        if i >= n:
            out.append((fields, ""))
            return out
        c = text[i]
        if c == delim:
            i += 1
            continue
        if text.startswith("\r\n", i):
            term, i = "\r\n", i + 2
        elif c in "\r\n":
            term, i = c, i + 1
        else:
            raise ValueError(f"unexpected {c!r} after a quoted field (record {len(out) + 1})")
        out.append((fields, term))
        fields = []
        if i >= n:
            return out


def read_csv_stdlib(ctx, res):
    o = ctx.csv
    delim, quote, null = o["delimiter"], o["quote"], o["null"]
    res.mode = "text"
    try:
        csv.field_size_limit(sys.maxsize)
    except OverflowError:
        csv.field_size_limit(2**31 - 1)
    for key in ctx.keys:
        data = ctx.plain(key)
        has_bom = data.startswith(b"\xef\xbb\xbf")
        if o["bom"] and not has_bom:
            res.err(f"{key}: no UTF-8 BOM")
        if not o["bom"] and has_bom:
            res.err(f"{key}: unexpected UTF-8 BOM")
        if has_bom:
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            res.err(f"{key}: not UTF-8: {e}")
            continue
        try:
            records = csv_records(text, delim, quote)
        except ValueError as e:
            res.err(f"{key}: {e}")
            continue
        # The standard library's parser must see the same fields.
        std = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim, quotechar=quote,
                              doublequote=True, strict=True))
        mine = [[v for v, _ in fields] for fields, _ in records]
        if [r if r else [""] for r in std] != mine:
            res.err(f"{key}: csv module and tokenizer disagree ({len(std)} vs {len(mine)} records)")
        bad_terms = [i for i, (_, term) in enumerate(records) if term != o["line_terminator"]]
        if bad_terms:
            i = bad_terms[0]
            res.err(f"{key}: record {i + 1} ends with {records[i][1]!r}, expected {o['line_terminator']!r}"
                    f" ({len(bad_terms)} such records)")
        if o["header"]:
            if not records:
                res.err(f"{key}: no header line")
                continue
            header = [v for v, _ in records[0][0]]
            check_names(ctx, res, header, f"{key} header")
            records = records[1:]
        else:
            header = [ctx.file_names[c] for c in ctx.columns]
        srcs = [ctx.source_of.get(h) for h in header]
        for n, (fields, _) in enumerate(records):
            if len(fields) != len(header):
                res.err(f"{key}: record {n + 1} has {len(fields)} fields, expected {len(header)}")
                continue
            res.rows.append({s: (None if (not q and v == null) else v)
                             for s, (v, q) in zip(srcs, fields) if s is not None})


def csv_duck_options(ctx):
    o = ctx.csv
    opts = [
        f"header = {'true' if o['header'] else 'false'}",
        f"delim = {sql_str(o['delimiter'])}",
        f"quote = {sql_str(o['quote'])}",
        f"escape = {sql_str(o['quote'])}",
        f"nullstr = {sql_str(o['null'])}",
        "allow_quoted_nulls = false",
        "all_varchar = true",
        "strict_mode = true",
        "auto_detect = false" if not o["header"] else "auto_detect = true",
        f"compression = {sql_str(ctx.comp if ctx.comp != 'none' else 'none')}",
    ]
    if not o["header"]:
        cols = ", ".join(f"{sql_str(ctx.file_names[c])}: 'VARCHAR'" for c in ctx.columns)
        opts.append("columns = {" + cols + "}")
    return ", ".join(opts)


def read_csv_duckdb(ctx, res):
    res.mode = "text"
    src = f"read_csv({ctx.s3_urls()}, {csv_duck_options(ctx)})"
    described = ctx.duck().execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    duck_select(ctx, res, src, described, "read_csv", typed=False)


def read_csv_pyarrow(ctx, res):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    o = ctx.csv
    res.mode = "text"
    for key in ctx.keys:
        buf = ctx.s3_read_plain(key)
        if buf.size == 0 or (o["bom"] and buf.size == 3 and buf.to_pybytes() == b"\xef\xbb\xbf"):
            if o["header"]:
                res.err(f"{key}: empty file, expected a header")
            continue
        names = [ctx.file_names[c] for c in ctx.columns]
        read = pacsv.ReadOptions(column_names=None if o["header"] else names, use_threads=False,
                                 block_size=1 << 24)
        parse = pacsv.ParseOptions(delimiter=o["delimiter"], quote_char=o["quote"], double_quote=True,
                                   escape_char=False, newlines_in_values=True)
        conv = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=[o["null"]],
                                    strings_can_be_null=True, quoted_strings_can_be_null=False,
                                    true_values=["true"], false_values=["false"])
        table = pacsv.read_csv(pa.BufferReader(buf), read_options=read, parse_options=parse, convert_options=conv)
        for field in table.schema:
            if field.name in ctx.source_of and field.type != pa.string():
                res.err(f"{key}: column {field.name!r} read as {field.type}")
        arrow_rows(table, res, ctx, key)


# ---------------------------------------------------------------------------------------------
# NDJSON and JSON


def json_object_hook(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"object repeats key {k!r}")
        seen[k] = v
    return seen


def json_loads(text):
    return json.loads(text, parse_float=Decimal, object_pairs_hook=json_object_hook)


def json_rows(ctx, res, objs, where):
    all_keys = []
    for i, obj in enumerate(objs):
        if not isinstance(obj, dict):
            res.err(f"{where}: row {i + 1} is a {type(obj).__name__}, not an object")
            continue
        for k in obj:
            if k not in all_keys:
                all_keys.append(k)
        res.rows.append({ctx.source_of[k]: v for k, v in obj.items() if k in ctx.source_of})
    if objs:
        check_names(ctx, res, all_keys, where)
        for c in ctx.columns:
            missing = sum(1 for o in objs if isinstance(o, dict) and ctx.file_names[c] not in o)
            if 0 < missing and ctx.file_names[c] in all_keys:
                res.err(f"{where}: {missing} rows leave out {ctx.file_names[c]!r} (nulls should be explicit)")


def json_text(ctx, res, key):
    """A JSON object's text, or None (reported) when it is not UTF-8. A BOM is reported and
    dropped, so the rows can still be checked."""
    try:
        text = ctx.plain(key).decode("utf-8")
    except UnicodeDecodeError as e:
        res.err(f"{key}: not UTF-8: {e}")
        return None
    if text.startswith("\ufeff"):
        res.err(f"{key}: starts with a BOM")
        text = text[1:]
    return text


def read_ndjson_stdlib(ctx, res):
    res.mode = "json"
    for key in ctx.keys:
        text = json_text(ctx, res, key)
        if text is None:
            continue
        if text and not text.endswith("\n"):
            res.err(f"{key}: last line has no newline")
        objs = []
        lines = text.split("\n")  # only \n: U+2028 and friends may sit inside JSON strings
        if lines and lines[-1] == "":
            lines.pop()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                res.err(f"{key}: line {n} is blank")
                continue
            try:
                objs.append(json_loads(line))
            except ValueError as e:
                res.err(f"{key}: line {n}: {e}")
        json_rows(ctx, res, objs, key)


def duck_json_source(ctx, fmt):
    cols = ", ".join(f"{sql_str(ctx.file_names[c])}: {sql_str(duck_type(ctx.types[c], json_text=True))}"
                     for c in ctx.columns)
    comp = ctx.comp if ctx.comp != "none" else "uncompressed"
    return f"read_json({ctx.s3_urls()}, format = {sql_str(fmt)}, columns = {{{cols}}}, compression = {sql_str(comp)})"


def read_json_duckdb(ctx, res, fmt):
    comp = ctx.comp if ctx.comp != "none" else "uncompressed"
    # Names as DuckDB detects them (with `columns` given, it ignores keys it was not told about).
    auto = (f"read_json({ctx.s3_urls()}, format = {sql_str(fmt)}, compression = {sql_str(comp)}, "
            f"sample_size = -1, maximum_depth = 1)")
    count = ctx.duck().execute(f"SELECT count(*) FROM {auto}").fetchone()[0]
    if count:
        names = [d[0] for d in ctx.duck().execute(f"DESCRIBE SELECT * FROM {auto}").fetchall()]
        check_names(ctx, res, names, "read_json (detected)")
    src = duck_json_source(ctx, fmt)
    described = ctx.duck().execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    duck_select(ctx, res, src, described, "read_json", typed=False)


def polars_json_type(t):
    import polars as pl

    if t.kind == "list":
        return pl.List(polars_json_type(t.item))
    return {
        "int64": pl.Int64, "int32": pl.Int32, "float64": pl.Float64, "float32": pl.Float32, "string": pl.String,
        "bool": pl.Boolean, "date": pl.Date, "timestamp_us_utc": pl.Datetime("us", "UTC"),
        "timestamp_us": pl.Datetime("us"),
        "decimal": pl.String,  # Polars reads JSON numbers into Decimal only through Float64
        "int16": pl.Int64,  # read_ndjson panics on Int16 ("unexpected dtype"); canon checks the range
        "time_us": pl.String,  # read_ndjson cannot read JSON text into Time
        "binary": pl.String,  # hex text; Polars does not read JSON into Binary
    }[t.kind]


def polars_json_schema(ctx):
    return {ctx.file_names[c]: polars_json_type(ctx.types[c]) for c in ctx.columns}


def read_ndjson_polars(ctx, res):
    import polars as pl

    for key in ctx.keys:
        data = ctx.plain(key)
        if data.strip():
            names = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None).columns
            check_names(ctx, res, names, f"{key} (inferred)")
        df = pl.read_ndjson(io.BytesIO(data), schema=polars_json_schema(ctx))
        polars_rows(ctx, res, df, key, typed=False)


def read_json_polars(ctx, res):
    import polars as pl

    for key in ctx.keys:
        data = ctx.plain(key)
        if data.strip() in (b"[]", b""):
            if not data.strip():
                res.err(f"{key}: empty file, expected []")
            continue
        names = pl.read_json(io.BytesIO(data), infer_schema_length=None).columns
        check_names(ctx, res, names, f"{key} (inferred)")
        df = pl.read_json(io.BytesIO(data), schema=polars_json_schema(ctx))
        polars_rows(ctx, res, df, key, typed=False)


def pyarrow_json_type(t):
    import pyarrow as pa

    if t.kind == "list":
        return pa.list_(pyarrow_json_type(t.item))
    if t.kind == "decimal":
        return pa.decimal128(t.p, t.s) if t.p <= 38 else pa.decimal256(t.p, t.s)
    return {
        "int64": pa.int64(), "int32": pa.int32(), "int16": pa.int16(), "float64": pa.float64(),
        "float32": pa.float32(), "string": pa.string(), "bool": pa.bool_(),
        "date": pa.string(),  # pyarrow.json does not parse dates
        "time_us": pa.string(),  # nor times
        "binary": pa.string(),  # hex text (pyarrow.json would take the text's own bytes for binary)
        "timestamp_us_utc": pa.timestamp("us", "UTC"), "timestamp_us": pa.timestamp("us"),
    }[t.kind]


def read_ndjson_pyarrow(ctx, res):
    import pyarrow as pa
    import pyarrow.json as pajson

    schema = pa.schema([(ctx.file_names[c], pyarrow_json_type(ctx.types[c])) for c in ctx.columns])
    for key in ctx.keys:
        buf = ctx.s3_read_plain(key)
        if buf.size == 0:
            continue
        opts = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error", newlines_in_values=False)
        table = pajson.read_json(pa.BufferReader(buf), read_options=pajson.ReadOptions(use_threads=False, block_size=1 << 24),
                                 parse_options=opts)
        arrow_rows(table, res, ctx, key)


def read_json_stdlib(ctx, res):
    res.mode = "json"
    for key in ctx.keys:
        text = json_text(ctx, res, key)
        if text is None:
            continue
        try:
            doc = json_loads(text)
        except ValueError as e:
            res.err(f"{key}: not one JSON document: {e}")
            continue
        if not isinstance(doc, list):
            res.err(f"{key}: top level is a {type(doc).__name__}, expected an array")
            continue
        json_rows(ctx, res, doc, key)


# ---------------------------------------------------------------------------------------------
# XML


class RowCounter(xml.sax.handler.ContentHandler):
    def __init__(self):
        super().__init__()
        self.depth = 0
        self.rows = 0
        self.root = None

    def startElement(self, name, attrs):
        self.depth += 1
        if self.depth == 1:
            self.root = name
        elif self.depth == 2:
            self.rows += 1

    def endElement(self, name):
        self.depth -= 1


def read_xml_stdlib(ctx, res):
    res.mode = "text"
    o = ctx.xml
    for key in ctx.keys:
        data = ctx.plain(key)
        counter = RowCounter()
        parser = xml.sax.make_parser()
        parser.setFeature(xml.sax.handler.feature_external_ges, False)
        parser.setFeature(xml.sax.handler.feature_namespaces, False)
        parser.setContentHandler(counter)
        try:
            parser.parse(io.BytesIO(data))
        except xml.sax.SAXException as e:
            res.err(f"{key}: xml.sax: not well-formed: {e}")
            continue
        head = data[:100]
        if not head.startswith(b"<?xml"):
            res.err(f"{key}: no XML declaration")
        elif not re.match(rb"<\?xml[^>]*encoding=[\"']UTF-8[\"']", head, re.I):
            res.err(f"{key}: XML declaration does not say UTF-8: {head[:60]!r}")
        try:
            root = ET.fromstring(data)
        except ET.ParseError as e:
            res.err(f"{key}: xml.etree: {e}")
            continue
        if root.tag != o["root"]:
            res.err(f"{key}: root element <{root.tag}>, expected <{o['root']}>")
        if root.attrib:
            res.err(f"{key}: root has attributes {sorted(root.attrib)}")
        if (root.text or "").strip():
            res.err(f"{key}: text directly in the root: {short(root.text)}")
        rows = list(root)
        if len(rows) != counter.rows:
            res.err(f"{key}: xml.sax saw {counter.rows} rows, xml.etree {len(rows)}")
        seen_names = []
        for n, row in enumerate(rows, 1):
            if row.tag != o["row"]:
                res.err(f"{key}: element {n} is <{row.tag}>, expected <{o['row']}>")
                continue
            if (row.text or "").strip() or (row.tail or "").strip():
                res.err(f"{key}: row {n} has text outside its column elements")
            out = {}
            for el in row:
                if el.tag not in seen_names:
                    seen_names.append(el.tag)
                src = ctx.source_of.get(el.tag)
                if src is None:
                    continue
                if src in out:
                    res.err(f"{key}: row {n} repeats <{el.tag}>")
                if len(el) or el.attrib:
                    res.err(f"{key}: row {n} <{el.tag}> has child elements or attributes")
                out[src] = el.text or ""
            res.rows.append(out)
        extra = [t for t in seen_names if t not in ctx.source_of]
        if extra:
            res.err(f"{key}: unexpected elements {extra}")


# ---------------------------------------------------------------------------------------------
# Avro


def avro_type_problem(t, schema, nullable, item_nullable=False):
    branches = schema if isinstance(schema, list) else [schema]
    non_null = [b for b in branches if b != "null" and not (isinstance(b, dict) and b.get("type") == "null")]
    if nullable and len(non_null) == len(branches):
        return f"Avro type {json.dumps(schema)} is not nullable but the column holds nulls"
    if len(non_null) != 1:
        return f"Avro type {json.dumps(schema)}: expected one non-null branch"
    s = non_null[0]
    base = s if isinstance(s, str) else s.get("type")
    logical = s.get("logicalType") if isinstance(s, dict) else None
    k = t.kind
    if k == "int64":
        ok = base == "long" and logical is None
    elif k in ("int32", "int16"):
        ok = base == "int" and logical is None
    elif k == "float64":
        ok = base == "double"
    elif k == "float32":
        ok = base == "float"
    elif k == "string":
        ok = base == "string" and logical is None
    elif k == "binary":
        ok = base == "bytes" and logical is None
    elif k == "time_us":
        ok = base == "long" and logical == "time-micros"
    elif k == "list":
        if base != "array" or "items" not in s:
            ok = False
        else:
            p = avro_type_problem(t.item, s["items"], item_nullable)
            if p:
                return f"array items: {p}"
            ok = True
    elif k == "bool":
        ok = base == "boolean"
    elif k == "date":
        ok = base == "int" and logical == "date"
    elif k == "timestamp_us_utc":
        ok = base == "long" and logical == "timestamp-micros"
    elif k == "timestamp_us":
        ok = base == "long" and logical == "local-timestamp-micros"
    elif k == "decimal":
        ok = (base in ("bytes", "fixed") and logical == "decimal" and s.get("precision") == t.p
              and s.get("scale", 0) == t.s)
    else:
        ok = False
    return None if ok else f"Avro type {json.dumps(schema)}, expected {t}"


def read_avro_fastavro(ctx, res):
    import fastavro

    for key in ctx.keys:
        reader = fastavro.reader(io.BytesIO(ctx.objects[key]))
        schema = reader.writer_schema
        if not isinstance(schema, dict) or schema.get("type") != "record":
            res.err(f"{key}: top-level schema is not a record: {short(json.dumps(schema))}")
            continue
        fields = schema.get("fields", [])
        check_names(ctx, res, [f["name"] for f in fields], key)
        for f in fields:
            src = ctx.source_of.get(f["name"])
            if src is not None:
                p = avro_type_problem(ctx.types[src], f["type"], ctx.nullable[src], ctx.item_nullable.get(src, False))
                if p:
                    res.err(f"{key}: field {f['name']!r}: {p}")
        for rec in reader:
            res.rows.append({ctx.source_of[k]: v for k, v in rec.items() if k in ctx.source_of})


# ---------------------------------------------------------------------------------------------
# Comparison


def compare(ctx, res):
    key_t = ctx.types[ctx.key]
    got = {}
    dups = {}
    for n, row in enumerate(res.rows, 1):
        try:
            k = canon(key_t, row.get(ctx.key), res.mode, ctx.naive_utc_ok)
        except Bad as e:
            res.err(f"row {n}: key column {ctx.key!r}: {e}")
            continue
        if k is None:
            res.err(f"row {n}: null key")
            continue
        if k in got:
            dups[k] = dups.get(k, 1) + 1
            continue
        got[k] = row
    for k, count in dups.items():
        res.err(f"key {show(k, key_t)} appears {count} times")
    missing = [k for k in ctx.expected_by_key if k not in got]
    extra = [k for k in got if k not in ctx.expected_by_key]
    if missing:
        res.err(f"{len(missing)} expected rows missing, keys {', '.join(show(k, key_t) for k in missing[:5])}")
    if extra:
        res.err(f"{len(extra)} unexpected rows, keys {', '.join(show(k, key_t) for k in extra[:5])}")
    for k, want in ctx.expected_by_key.items():
        row = got.get(k)
        if row is None:
            continue
        for c in ctx.columns:
            t = ctx.types[c]
            try:
                value = canon(t, row.get(c), res.mode, ctx.naive_utc_ok)
            except Bad as e:
                res.err(f"key {show(k, key_t)} column {c!r}: {e}")
                continue
            if not same(want[c], value):
                res.err(f"key {show(k, key_t)} column {c!r}: expected {show(want[c], t)}, got {show(value, t)}"
                        + first_difference(want[c], value))


READERS = {
    ("parquet", "pyarrow"): read_parquet_pyarrow,
    ("parquet", "duckdb"): read_parquet_duckdb,
    ("parquet", "polars"): read_parquet_polars,
    ("csv", "stdlib"): read_csv_stdlib,
    ("csv", "duckdb"): read_csv_duckdb,
    ("csv", "pyarrow"): read_csv_pyarrow,
    ("ndjson", "stdlib"): read_ndjson_stdlib,
    ("ndjson", "duckdb"): lambda ctx, res: read_json_duckdb(ctx, res, "newline_delimited"),
    ("ndjson", "polars"): read_ndjson_polars,
    ("ndjson", "pyarrow"): read_ndjson_pyarrow,
    ("json", "stdlib"): read_json_stdlib,
    ("json", "duckdb"): lambda ctx, res: read_json_duckdb(ctx, res, "array"),
    ("json", "polars"): read_json_polars,
    ("xml", "stdlib"): read_xml_stdlib,
    ("avro", "fastavro"): read_avro_fastavro,
}
USES_BYTES = {"stdlib", "polars", "fastavro"}


def run(spec):
    ctx = Ctx(spec)
    ctx.fetch_all()
    out = {"ok": True, "readers": {}, "errors": ctx.errors, "skipped": ctx.skipped}
    for name in ctx.readers:
        res = Result()
        if name in USES_BYTES and len(ctx.objects) != len(ctx.keys):
            res.err("objects could not be downloaded")
        else:
            try:
                READERS[(ctx.fmt, name)](ctx, res)
            except BaseException as e:  # noqa: BLE001 (a Rust panic in Polars is pyo3's PanicException)
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                    raise
                res.err(f"{name} failed: {describe(e)}")
                debug_traceback()
            else:
                compare(ctx, res)
        errs = res.errors
        out["readers"][name] = {"rows": len(res.rows), "ok": not errs, "errors": errs[:MAX_ERRORS]}
        if len(errs) > MAX_ERRORS:
            out["readers"][name]["more_errors"] = len(errs) - MAX_ERRORS
    out["expected_rows"] = len(ctx.expected)
    out["ok"] = not ctx.errors and all(r["ok"] for r in out["readers"].values())
    return out, ctx


SECRETS = []


def redact(text):
    for s in SECRETS:
        if s:
            text = text.replace(s, "***")
            text = text.replace(json.dumps(s)[1:-1], "***")
            text = text.replace(json.dumps(s, ensure_ascii=False)[1:-1], "***")
            text = text.replace(s.replace("'", "''"), "***")  # as written into DuckDB SQL
    return text


def debug_traceback():
    """Tracebacks on stderr only when CHECK_EXPORT_DEBUG is set, and without secrets."""
    if os.environ.get("CHECK_EXPORT_DEBUG"):
        print(redact(traceback.format_exc()), file=sys.stderr)


def main(argv):
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    if len(argv) != 2:
        print(json.dumps({"ok": False, "readers": {}, "error": "usage: check_export.py SPEC_JSON_PATH"}))
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            spec = json.load(f)
        if isinstance(spec, dict) and isinstance(spec.get("secret_key"), str):
            SECRETS.append(spec["secret_key"])
        out, _ = run(spec)
        code = 0 if out["ok"] else 1
    except SpecError as e:
        out, code = {"ok": False, "readers": {}, "error": f"bad spec: {e}"}, 2
    except Exception as e:  # noqa: BLE001
        debug_traceback()
        out, code = {"ok": False, "readers": {}, "error": describe(e)}, 2
    print(redact(json.dumps(out, ensure_ascii=True)), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))

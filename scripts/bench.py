#!/usr/bin/env python3
"""wharf's export benchmark (issue 3). Run it through scripts/bench, which prepares the venv and
builds wharf.

In one run, for each row count: generate the deterministic customers table with `wharf sample`,
then export it to ONE local S3 endpoint (`wharf local-s3`) with wharf and the peers that can do
the job (JOB_SPEC): Parquet-zstd, CSV, NDJSON, a filtered Parquet-zstd (segment = 'churn_risk'
AND is_subscribed), a JSON array, XML, Avro, gzip and zstd CSV, and, from the same rows loaded
into a throwaway PostgreSQL cluster (scripts/pg), CSV and Parquet-zstd.
Every export runs in a fresh process; wall time is measured around the process, CPU seconds and
peak RSS come from its rusage (os.wait4). Every output is read back from S3 and its row count
checked against the source, so a tool that wrote nothing cannot win. Prints a table per row count
and the issue's targets, and writes the same data as JSON.

How each tool writes to S3 (`api()` says it per job, and the report prints it):
  wharf    `wharf --json sync run NAME` (local source -> DataFusion, or PostgreSQL's cursor ->
           its own multipart uploader; destination checksum crc32c)
  polars   lazy streaming sinks: pl.scan_parquet(src)[.filter(..)].sink_parquet/sink_csv/
           sink_ndjson("s3://..", storage_options=..) (object_store); from PostgreSQL,
           pl.read_database_uri(.., engine="connectorx") (the whole table in memory) then a sink
  pyarrow  pq.ParquetFile.iter_batches (pyarrow.dataset scan with a filter expression for the
           filtered job) into pq.ParquetWriter / pyarrow.csv.CSVWriter on an output stream of
           pyarrow.fs.S3FileSystem; pyarrow has no NDJSON writer, so NDJSON is
           iter_batches + to_pylist + json.dumps per row written to the same kind of stream
  duckdb   COPY (SELECT * FROM read_parquet(src) [WHERE ..]) TO 's3://..' with httpfs loaded
           offline from duckdb-ext; from PostgreSQL through the postgres extension (ATTACH)
  psql     psql -c "\\copy customers TO STDOUT (FORMAT csv, HEADER)" piped into boto3's
           upload_fileobj (what a user scripts by hand)
XML and Avro have no streaming peer here: they are reported against wharf's own CSV of the same
rows, the JSON array against wharf's NDJSON (and duckdb's ARRAY true).
"""

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

BUCKET = "bench"
ACCESS_KEY = "wharfbench"
SECRET_ENV = "WHARF_BENCH_S3_SECRET"
PG_URL_ENV = "WHARF_BENCH_PG_URL"
REGION = "us-east-1"
TOOLS = ("wharf", "polars", "pyarrow", "duckdb", "psql")
# Each job: the file format, text compression, whether rows are filtered, whether the source is
# PostgreSQL, and the tools that have a way to do it (wharf always).
JOB_SPEC = {
    "parquet": {"fmt": "parquet", "label": "parquet-zstd", "tools": ("wharf", "polars", "pyarrow", "duckdb")},
    "csv": {"fmt": "csv", "tools": ("wharf", "polars", "pyarrow", "duckdb")},
    "ndjson": {"fmt": "ndjson", "tools": ("wharf", "polars", "pyarrow", "duckdb")},
    "filtered": {"fmt": "parquet", "filter": True, "tools": ("wharf", "polars", "pyarrow", "duckdb")},
    "json": {"fmt": "json", "label": "json-array", "tools": ("wharf", "duckdb")},
    "xml": {"fmt": "xml", "tools": ("wharf",)},
    "avro": {"fmt": "avro", "tools": ("wharf",)},
    "csv-gzip": {"fmt": "csv", "compression": "gzip", "tools": ("wharf", "polars", "duckdb")},
    "csv-zstd": {"fmt": "csv", "compression": "zstd", "tools": ("wharf", "polars", "duckdb")},
    "pg-csv": {"fmt": "csv", "pg": True, "tools": ("wharf", "psql", "polars", "duckdb")},
    "pg-parquet": {"fmt": "parquet", "pg": True, "label": "pg-parquet-zstd",
                   "tools": ("wharf", "polars", "duckdb")},
}
JOBS = tuple(JOB_SPEC)
FORMAT = {job: spec["fmt"] for job, spec in JOB_SPEC.items()}
JOB_LABEL = {job: spec.get("label", job) for job, spec in JOB_SPEC.items()}
FILTER_SQL = "segment = 'churn_risk' AND is_subscribed"
COLUMNS = 12
ZSTD_LEVEL = 3  # wharf's level; set explicitly for every peer (Parquet and zstd text)
GZIP_LEVEL = 6  # wharf's (flate2's default); set explicitly where the peer takes a level
PYARROW_ROW_GROUP = 1024 * 1024  # wharf's default row group (rows); pyarrow buffers to it
# Issue targets (issue 14): wharf's wall time and CPU seconds over polars', same run.
TIME_TARGET = {"parquet": 0.8, "csv": 0.7, "ndjson": 0.7, "filtered": 0.8}
CPU_TARGET = {"parquet": 0.9, "csv": 0.6, "ndjson": 0.6}
# ... and for PostgreSQL sources over the best peer (pg-csv: over psql \copy + upload).
PG_TARGET = {"pg-csv": ("psql",), "pg-parquet": ("polars", "duckdb")}
PG_LIMIT = 0.8
# Formats without a streaming peer are reported against wharf's own CSV / NDJSON of the same rows.
VS_WHARF = {"json": ("ndjson", None), "xml": ("csv", 1.5), "avro": ("csv", None)}
RSS_LIMIT_MIB = 300.0
RSS_GROWTH_LIMIT = 1.2
MIB = 1024 * 1024

def api(tool, job):
    """How `tool` does `job`, in words (printed with the results)."""
    spec = JOB_SPEC[job]
    fmt, comp = spec["fmt"], spec.get("compression")
    if tool == "wharf":
        src = "PostgreSQL source (binary COPY)" if spec.get("pg") else "DataFusion local source"
        return f"wharf --json sync run ({src}, own multipart uploader, crc32c)"
    if tool == "psql":
        return ("psql -c '\\copy customers TO STDOUT (FORMAT csv, HEADER)' | boto3 upload_fileobj "
                "(8 MiB parts, 4 threads)")
    if tool == "polars":
        read = ("pl.read_database_uri(sql, uri, engine='connectorx').lazy()" if spec.get("pg")
                else "pl.scan_parquet(src)" + (".filter(..)" if spec.get("filter") else ""))
        sink = f"sink_{fmt}('s3://..', storage_options"
        sink += f", compression='{comp}', level {GZIP_LEVEL if comp == 'gzip' else ZSTD_LEVEL})" if comp else ")"
        return f"{read}.{sink} (streaming sink, object_store)"
    if tool == "duckdb":
        src = ("ATTACH postgres (postgres_scanner) ... SELECT * FROM pg.public.customers"
               if spec.get("pg") else "SELECT * FROM read_parquet(src)" + (" WHERE .." if spec.get("filter") else ""))
        opts = {"parquet": f"FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL}",
                "csv": "FORMAT csv, HEADER", "ndjson": "FORMAT json", "json": "FORMAT json, ARRAY true"}[fmt]
        if comp:
            opts += f", COMPRESSION {comp} (duckdb's own level)"
        return f"COPY ({src}) TO 's3://..' ({opts}) (httpfs, path-style)"
    return {
        "parquet": "pq.ParquetFile.iter_batches -> pq.ParquetWriter(zstd) on S3FileSystem "
        "output stream (row groups buffered to 1Mi rows)",
        "csv": "pq.ParquetFile.iter_batches -> pyarrow.csv.CSVWriter on S3FileSystem output stream",
        "ndjson": "pq.ParquetFile.iter_batches -> to_pylist -> json.dumps per row -> S3FileSystem "
        "output stream (pyarrow has no NDJSON writer)",
        "filtered": "pyarrow.dataset scan with filter expression -> pq.ParquetWriter(zstd) on "
        "S3FileSystem output stream (row groups buffered to 1Mi rows)",
    }[job]


def output_ext(job):
    spec = JOB_SPEC[job]
    return spec["fmt"] + {"gzip": ".gz", "zstd": ".zst"}.get(spec.get("compression"), "")


# --------------------------------------------------------------------------------------------
# Peer mode: `bench.py --peer SPEC_JSON` runs one export in this (fresh) process and prints one
# JSON line: {"keys": [...], "work_s": seconds after imports}. The S3 secret comes from
# SECRET_ENV, the PostgreSQL URL from PG_URL_ENV.
# --------------------------------------------------------------------------------------------


def peer_polars(spec, secret):
    import polars as pl

    t0 = time.monotonic()
    job = JOB_SPEC[spec["job"]]
    opts = {
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": secret,
        "aws_region": REGION,
        "aws_endpoint_url": spec["endpoint"],
        "aws_allow_http": "true",
        "aws_virtual_hosted_style_request": "false",
    }
    if job.get("pg"):
        lf = pl.read_database_uri("SELECT * FROM customers", os.environ[PG_URL_ENV],
                                  engine="connectorx").lazy()
    else:
        lf = pl.scan_parquet(spec["src"])
    if job.get("filter"):
        lf = lf.filter((pl.col("segment") == "churn_risk") & pl.col("is_subscribed"))
    url = f"s3://{BUCKET}/{spec['key']}"
    comp = job.get("compression")
    text_comp = {}
    if comp:
        text_comp = {"compression": comp, "compression_level": GZIP_LEVEL if comp == "gzip" else ZSTD_LEVEL}
    if job["fmt"] == "parquet":
        lf.sink_parquet(url, compression="zstd", compression_level=ZSTD_LEVEL, storage_options=opts)
    elif job["fmt"] == "csv":
        lf.sink_csv(url, storage_options=opts, **text_comp)
    else:
        lf.sink_ndjson(url, storage_options=opts, **text_comp)
    return time.monotonic() - t0


def _json_default(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def peer_pyarrow(spec, secret):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    t0 = time.monotonic()
    fs = pafs.S3FileSystem(
        access_key=ACCESS_KEY,
        secret_key=secret,
        region=REGION,
        endpoint_override=spec["endpoint"].removeprefix("http://"),
        scheme="http",
    )
    if JOB_SPEC[spec["job"]].get("filter"):
        import pyarrow.dataset as ds

        dataset = ds.dataset(spec["src"], format="parquet")
        schema = dataset.schema
        batches = dataset.to_batches(
            filter=(ds.field("segment") == "churn_risk") & ds.field("is_subscribed")
        )
    else:
        source = pq.ParquetFile(spec["src"])
        schema = source.schema_arrow
        batches = source.iter_batches(batch_size=64 * 1024)
    fmt = FORMAT[spec["job"]]
    with fs.open_output_stream(f"{BUCKET}/{spec['key']}") as out:
        if fmt == "parquet":
            # write_batch makes one row group per call: buffer to wharf's row-group size.
            writer = pq.ParquetWriter(out, schema, compression="zstd", compression_level=ZSTD_LEVEL)
            pending, pending_rows = [], 0
            for batch in batches:
                pending.append(batch)
                pending_rows += batch.num_rows
                if pending_rows >= PYARROW_ROW_GROUP:
                    writer.write_table(pa.Table.from_batches(pending, schema), PYARROW_ROW_GROUP)
                    pending, pending_rows = [], 0
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema), PYARROW_ROW_GROUP)
            writer.close()
        elif fmt == "csv":
            writer = pacsv.CSVWriter(out, schema)
            for batch in batches:
                writer.write_batch(batch)
            writer.close()
        else:
            dumps = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode
            for batch in batches:
                out.write("".join(dumps(row) + "\n" for row in batch.to_pylist()).encode())
    return time.monotonic() - t0


def sql_str(value):
    return "'" + value.replace("'", "''") + "'"


def duckdb_connect(threads, extensions=()):
    """A DuckDB connection with `threads` threads and the extensions loaded offline from the
    duckdb-ext wheels (no download)."""
    import duckdb
    import duckdb_ext

    con = duckdb.connect()
    con.execute(f"SET extension_directory = {sql_str(duckdb_ext.get_extension_dir())}")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute(f"SET threads = {int(threads)}")
    for ext in extensions:
        con.execute(f"LOAD {ext}")
    return con


def duckdb_on_s3(spec, secret):
    """A DuckDB connection that writes to the bench's S3 endpoint (path-style, plain http)."""
    pg = JOB_SPEC.get(spec.get("job"), {}).get("pg")
    con = duckdb_connect(spec["threads"], ("httpfs", "postgres") if pg else ("httpfs",))
    con.execute(
        f"CREATE SECRET bench (TYPE s3, KEY_ID {sql_str(ACCESS_KEY)}, SECRET {sql_str(secret)}, "
        f"REGION {sql_str(REGION)}, ENDPOINT {sql_str(spec['endpoint'].removeprefix('http://'))}, "
        "URL_STYLE 'path', USE_SSL false)"
    )
    if pg:
        con.execute(f"ATTACH {sql_str(os.environ[PG_URL_ENV])} AS pg (TYPE postgres, READ_ONLY)")
    return con


def peer_duckdb(spec, secret):
    t0 = time.monotonic()
    job = JOB_SPEC[spec["job"]]
    con = duckdb_on_s3(spec, secret)
    where = f" WHERE {FILTER_SQL}" if job.get("filter") else ""
    source = "pg.public.customers" if job.get("pg") else f"read_parquet({sql_str(spec['src'])})"
    options = {
        "parquet": f"FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL}",
        "csv": "FORMAT csv, HEADER",
        "ndjson": "FORMAT json",
        "json": "FORMAT json, ARRAY true",
    }[job["fmt"]]
    if job.get("compression"):
        options += f", COMPRESSION {job['compression']}"
    con.execute(
        f"COPY (SELECT * FROM {source}{where}) "
        f"TO {sql_str(f's3://{BUCKET}/' + spec['key'])} ({options})"
    )
    con.close()
    return time.monotonic() - t0


def peer_upload_stdin(spec, secret):
    """The upload half of `psql \\copy ... | upload`: standard input to one S3 object with boto3's
    managed multipart upload."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    t0 = time.monotonic()
    s3 = boto3.client("s3", endpoint_url=spec["endpoint"], region_name=REGION,
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret)
    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4)
    s3.upload_fileobj(sys.stdin.buffer, BUCKET, spec["key"], Config=config)
    return time.monotonic() - t0


def peer_main(spec_json):
    spec = json.loads(spec_json)
    secret = os.environ[SECRET_ENV]
    work = {"polars": peer_polars, "pyarrow": peer_pyarrow, "duckdb": peer_duckdb,
            "psql": peer_upload_stdin}[spec["tool"]]
    work_s = work(spec, secret)
    print(json.dumps({"keys": [spec["key"]], "work_s": work_s}))


# --------------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------------


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def parse_rows(text):
    out = []
    for item in text.split(","):
        item = item.strip().lower().replace("_", "")
        mult = 1
        if item.endswith("k"):
            mult, item = 1000, item[:-1]
        elif item.endswith("m"):
            mult, item = 1000 * 1000, item[:-1]
        n = int(item) * mult
        if n < 1:
            raise argparse.ArgumentTypeError("row counts must be positive")
        out.append(n)
    return out


def parse_list(allowed):
    def parse(text):
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)} (got {text!r})")
        return [x for x in allowed if x in items]

    return parse


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid, children=False):
    """user+system CPU seconds of a live process (for the S3 server's share of each run); with
    `children`, plus those of its children that ended (PostgreSQL's backends, once a session
    closes, are counted in the postmaster's)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        if children:
            ticks += int(fields[13]) + int(fields[14])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


# ru_maxrss of a child counts the memory of the process it was forked from (Linux folds the
# pre-exec address space's high-water mark into it): measured in this big orchestrator, every tool
# would show its RSS. So a tiny stdlib-only launcher, started before anything heavy is imported,
# forks and execs each measured process and reports its rusage. (`rusage_floor_mib` in the results
# is what it reports for /bin/true.)
LAUNCHER = r"""
import json, os, signal, sys, time
timed_out = []
def on_alarm(signum, frame):
    timed_out.append(True)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
signal.signal(signal.SIGALRM, on_alarm)
for line in sys.stdin:
    req = json.loads(line)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    out, err = os.open(req["stdout"], flags, 0o644), os.open(req["stderr"], flags, 0o644)
    del timed_out[:]
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(req["cwd"])
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            os.execve(req["argv"][0], req["argv"], req["env"])
        finally:
            os._exit(127)
    os.close(out)
    os.close(err)
    signal.setitimer(signal.ITIMER_REAL, req["timeout"])
    _, status, ru = os.wait4(pid, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)
    wall = time.monotonic() - t0
    sys.stdout.write(json.dumps({"exit": os.waitstatus_to_exitcode(status), "timed_out": bool(timed_out),
        "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime, "maxrss_kib": ru.ru_maxrss}) + "\n")
    sys.stdout.flush()
"""


class Launcher:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, argv, env, cwd, timeout_s, stdout_path, stderr_path):
        req = {"argv": argv, "env": env, "cwd": cwd, "timeout": timeout_s,
               "stdout": stdout_path, "stderr": stderr_path}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError("the measuring launcher died")
        return json.loads(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure(launcher, argv, env, cwd, timeout_s, log_prefix):
    """Runs argv as a fresh process; returns wall/cpu/rss and its output."""
    out_path, err_path = log_prefix + ".out", log_prefix + ".err"
    r = launcher.run(argv, env, cwd, timeout_s, out_path, err_path)
    with open(out_path, "rb") as f:
        stdout = f.read().decode("utf-8", "replace")
    with open(err_path, "rb") as f:
        stderr = f.read().decode("utf-8", "replace")
    return {
        "exit": r["exit"],
        "timed_out": r["timed_out"],
        "wall_s": r["wall_s"],
        "user_s": r["user_s"],
        "sys_s": r["sys_s"],
        "cpu_s": r["user_s"] + r["sys_s"],
        "peak_rss_mib": r["maxrss_kib"] / 1024.0,  # ru_maxrss is KiB on Linux
        "stdout": stdout,
        "stderr": stderr,
    }


def run_checked(argv, env, what):
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


class S3Server:
    def __init__(self, binary, data_dir, env, log_path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        os.makedirs(os.path.join(data_dir, BUCKET), exist_ok=True)
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "local-s3", "--data", data_dir, "--access-key", ACCESS_KEY,
             "--secret-key-env", SECRET_ENV, "--port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"wharf local-s3 exited with {self.proc.returncode}; see {log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"wharf local-s3 not accepting connections on {self.port}")
                time.sleep(0.05)

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class PgServer:
    """A throwaway PostgreSQL cluster from scripts/pg (its own temp folder: the cluster belongs to
    the `postgres` user when run as root, who cannot enter the bench's private temp dir).
    Connections go without TLS (sslmode=disable) for every tool alike: loopback."""

    def __init__(self, env):
        self.dir = tempfile.mkdtemp(prefix="wharf-bench-pg-")
        self.script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg")
        url = run_checked([self.script, "start", self.dir], env, "scripts/pg start").strip()
        self.url = url + "?sslmode=disable"
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            self.pid = int(f.readline())

    def cpu_s(self):
        return proc_cpu_s(self.pid, children=True)

    def load(self, src, env):
        """Replaces table `customers` with the rows of the Parquet file `src` (duckdb's postgres
        extension, binary COPY), then VACUUM ANALYZE so no reader pays for hint bits."""
        t0 = time.monotonic()
        con = duckdb_connect(2, ("postgres",))
        con.execute(f"ATTACH {sql_str(self.url)} AS pg (TYPE postgres)")
        con.execute("DROP TABLE IF EXISTS pg.public.customers")
        con.execute(f"CREATE TABLE pg.public.customers AS SELECT * FROM read_parquet({sql_str(src)})")
        con.close()
        run_checked([shutil.which("psql") or "psql", "-X", "-q", self.url,
                     "-c", "ALTER TABLE customers ADD PRIMARY KEY (id)",
                     "-c", "VACUUM (ANALYZE) customers"], env, "psql VACUUM")
        return time.monotonic() - t0

    def stop(self, env):
        subprocess.run([self.script, "stop", self.dir], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def s3fs(endpoint, secret):
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(
        access_key=ACCESS_KEY, secret_key=secret, region=REGION,
        endpoint_override=endpoint.removeprefix("http://"), scheme="http",
    )


def verify(fs, job, keys, expected_rows):
    """Reads every output back from S3: object sizes, row counts, column counts. Parquet rows
    from pyarrow's footer, Avro rows from fastavro's block headers; text formats are streamed
    (gzip and zstd through pyarrow's decompressing stream) and counted by their row markers:
    the generated table has no newline, brace or angle bracket inside a value."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    spec = JOB_SPEC[job]
    fmt = spec["fmt"]
    total_bytes, rows, problems = 0, 0, []
    if not keys:
        problems.append("no output object")
    for key in keys:
        path = f"{BUCKET}/{key}"
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.File:
            problems.append(f"missing object {key}")
            continue
        total_bytes += info.size
        if fmt == "parquet":
            meta = pq.read_metadata(path, filesystem=fs)
            rows += meta.num_rows
            if meta.num_columns != COLUMNS:
                problems.append(f"{key}: {meta.num_columns} columns")
            continue
        if fmt == "avro":
            import fastavro

            # fastavro needs a file it can ask for its position; on pyarrow's random-access S3
            # file every small read is a ranged GET (over ten minutes for the 10M-row file), so the
            # object is streamed into a local temporary file first.
            with tempfile.TemporaryFile() as local:
                with fs.open_input_stream(path) as stream:
                    while chunk := stream.read(16 * MIB):
                        local.write(chunk)
                local.seek(0)
                reader = fastavro.block_reader(local)
                fields = reader.writer_schema.get("fields", [])
                if len(fields) != COLUMNS:
                    problems.append(f"{key}: {len(fields)} fields in the Avro schema")
                rows += sum(block.num_records for block in reader)
            continue
        # text: count row markers in the (decompressed) stream
        marker = {"csv": b"\n", "ndjson": b"\n", "json": b'{"id":', "xml": b"<row>"}[fmt]
        count, first, tail, last = 0, b"", b"", b"\n"
        with fs.open_input_stream(path, compression=None) as raw:
            stream = pa.CompressedInputStream(raw, spec["compression"]) if spec.get("compression") else raw
            while True:
                chunk = stream.read(16 * MIB)
                if not chunk:
                    break
                if len(first) < 64 * 1024:
                    first += chunk[: 64 * 1024]
                # the previous read's last len(marker)-1 bytes (too short to hold a marker) are
                # joined to this one, so a marker split across two reads is counted once
                joined = tail + chunk
                count += joined.count(marker)
                tail = joined[-(len(marker) - 1):] if len(marker) > 1 else b""
                last = chunk[-1:]
        head = first.split(b"\n", 1)[0].decode("utf-8", "replace")
        if fmt == "csv":
            if last != b"\n":
                count += 1  # unterminated last line
            rows += max(count - 1, 0)  # header
            if len(head.split(",")) != COLUMNS:
                problems.append(f"{key}: header has {len(head.split(','))} fields")
        elif fmt == "ndjson":
            if last != b"\n":
                count += 1
            rows += count
            if expected_rows:
                try:
                    obj = json.loads(head)
                    if not isinstance(obj, dict) or len(obj) != COLUMNS:
                        problems.append(f"{key}: first line is not a {COLUMNS}-key object")
                except ValueError:
                    problems.append(f"{key}: first line is not JSON")
        elif fmt == "json":
            rows += count
            if not first.lstrip().startswith(b"[") or last not in (b"]", b"\n"):
                problems.append(f"{key}: not one JSON array")
        else:  # xml
            rows += count
            if not first.startswith(b"<?xml"):
                problems.append(f"{key}: no XML declaration")
    if rows != expected_rows:
        problems.append(f"{rows} rows, expected {expected_rows}")
    return total_bytes, rows, problems


def delete_outputs(fs, keys):
    for key in keys:
        try:
            fs.delete_file(f"{BUCKET}/{key}")
        except OSError as e:
            log(f"warning: could not delete {key}: {e}")


def tool_versions(binary):
    import importlib.metadata as md

    def v(dist):
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    wharf = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "wharf": wharf,
        "wharf_binary": binary,
        "python": platform.python_version(),
        "polars": v("polars"),
        "polars-runtime-32": v("polars-runtime-32"),
        "pyarrow": v("pyarrow"),
        "duckdb": v("duckdb"),
        "duckdb-ext-httpfs": v("duckdb-ext-httpfs"),
    }


def machine_info():
    cpu_model, mem_total = None, None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_total = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_mib": mem_total,
        "kernel": platform.release(),
    }


def fmt_load(load):
    return " ".join(f"{x:.2f}" for x in load)


def ratio_str(r):
    return "-" if r is None else f"{r:.2f}x"


def representative(runs):
    """Of the repeats of one (rows, job, tool), the ok run with the median wall time."""
    ok = [r for r in runs if r["ok"]]
    if not ok:
        return runs[-1]
    ok.sort(key=lambda r: r["wall_s"])
    return ok[(len(ok) - 1) // 2]


def summarise(runs, rows_list, jobs, tools):
    summary = []
    for n in rows_list:
        for job in jobs:
            by_tool = {}
            for tool in tools:
                rs = [r for r in runs if r["rows"] == n and r["job"] == job and r["tool"] == tool]
                if rs:
                    by_tool[tool] = representative(rs)
            w = by_tool.get("wharf")
            for tool, r in by_tool.items():
                row = {k: r.get(k) for k in (
                    "rows", "job", "tool", "ok", "wall_s", "work_s", "cpu_s", "peak_rss_mib",
                    "server_cpu_s", "out_bytes", "out_rows", "expected_rows", "problems", "api")}
                row["repeats"] = len([x for x in runs if x["rows"] == n and x["job"] == job and x["tool"] == tool])
                row["wall_s_all"] = [x["wall_s"] for x in runs
                                     if x["rows"] == n and x["job"] == job and x["tool"] == tool]
                row["wharf_over_peer"] = (
                    w["wall_s"] / r["wall_s"]
                    if tool != "wharf" and w and w["ok"] and r["ok"] and r["wall_s"] > 0 else None
                )
                row["cpu_wharf_over_peer"] = (
                    w["cpu_s"] / r["cpu_s"]
                    if tool != "wharf" and w and w["ok"] and r["ok"] and r["cpu_s"] > 0 else None
                )
                # How busy the machine's cores were: the tool's and the S3 server's CPU over
                # the cores times the wall time.
                cores = len(os.sched_getaffinity(0))
                row["utilisation"] = (
                    (r["cpu_s"] + (r.get("server_cpu_s") or 0.0)) / (cores * r["wall_s"])
                    if r.get("wall_s") else None
                )
                summary.append(row)
    return summary


def judge(target, w, peer, missing, key, limit, note):
    """Fills `target` from wharf's summary row `w` against `peer`'s: MISS when wharf's run
    failed, n/a (saying `missing`) without a valid peer run, else the ratio of `key` with PASS
    or MISS against `limit` (info when there is none) and `note(ratio)`."""
    if not w or not w["ok"]:
        target.update(status="MISS", value=None, note="wharf run failed or output wrong")
    elif not peer or not peer["ok"]:
        target.update(status="n/a", value=None, note=missing)
    else:
        r = w[key] / peer[key]
        status = "info" if limit is None else ("PASS" if r <= limit else "MISS")
        target.update(status=status, value=r, note=note(r))
    return target


def targets(summary, rows_list, jobs):
    out = []

    def get(n, job, tool):
        for s in summary:
            if s["rows"] == n and s["job"] == job and s["tool"] == tool:
                return s
        return None

    for n in rows_list:
        for job in ("parquet", "csv", "ndjson", "filtered"):
            if job not in jobs:
                continue
            w, p = get(n, job, "wharf"), get(n, job, "polars")
            limit = TIME_TARGET[job]
            out.append(judge(
                {"rows": n, "target": f"time {JOB_LABEL[job]}", "limit": f"wharf wall <= {limit}x polars"},
                w, p, "no valid polars run", "wall_s", limit,
                lambda r: f"wharf {w['wall_s']:.2f} s, polars {p['wall_s']:.2f} s"))
            if job in CPU_TARGET:
                limit = CPU_TARGET[job]
                out.append(judge(
                    {"rows": n, "target": f"CPU {JOB_LABEL[job]}", "limit": f"wharf CPU <= {limit}x polars"},
                    w, p, "no valid polars run", "cpu_s", limit,
                    lambda r: f"wharf {w['cpu_s']:.2f} CPU s, polars {p['cpu_s']:.2f} CPU s"))
        for job, peers in PG_TARGET.items():
            if job not in jobs:
                continue
            w = get(n, job, "wharf")
            ps = [p for p in (get(n, job, tool) for tool in peers) if p and p["ok"]]
            best = min(ps, key=lambda p: p["wall_s"]) if ps else None
            out.append(judge(
                {"rows": n, "target": f"time {JOB_LABEL[job]}",
                 "limit": f"wharf wall <= {PG_LIMIT}x the fastest of {'/'.join(peers)}"},
                w, best, "no valid peer run", "wall_s", PG_LIMIT,
                lambda r: f"wharf {w['wall_s']:.2f} s, {best['tool']} {best['wall_s']:.2f} s"))
        for job, (base, limit) in VS_WHARF.items():
            w, b = get(n, job, "wharf"), get(n, base, "wharf")
            if job not in jobs or not w:
                continue
            out.append(judge(
                {"rows": n, "target": f"time {JOB_LABEL[job]} vs {JOB_LABEL[base]}",
                 "limit": f"wharf {job} wall <= {limit}x wharf {base}" if limit else f"report (wharf {base})"},
                w, b, f"no valid wharf {base} run (add --jobs {base})", "wall_s", limit,
                lambda r: f"{job} {w['wall_s']:.2f} s, {base} {b['wall_s']:.2f} s; "
                f"CPU {w['cpu_s']:.2f} vs {b['cpu_s']:.2f} s"))
        for job in ("csv-gzip", "csv-zstd"):
            w, p = get(n, job, "wharf"), get(n, job, "polars")
            if job not in jobs or not w:
                continue
            out.append(judge(
                {"rows": n, "target": f"time {JOB_LABEL[job]}", "limit": "report (polars, same codec and level)"},
                w, p, "no valid polars run", "wall_s", None,
                lambda r: f"wharf {w['wall_s']:.2f} s, polars {p['wall_s']:.2f} s; CPU "
                f"{w['cpu_s'] / p['cpu_s']:.2f}x; size {(w['out_bytes'] or 0) / max(p['out_bytes'] or 1, 1):.2f}x"))
        for job in jobs:
            w = get(n, job, "wharf")
            if not w:
                continue
            t = {"rows": n, "target": f"peak RSS {JOB_LABEL[job]}", "limit": f"< {RSS_LIMIT_MIB:.0f} MiB"}
            if not w["ok"]:
                t.update(status="MISS", value=None, note="wharf run failed or output wrong")
            else:
                t.update(status="PASS" if w["peak_rss_mib"] < RSS_LIMIT_MIB else "MISS",
                         value=w["peak_rss_mib"], note=f"{w['peak_rss_mib']:.1f} MiB")
            out.append(t)
    if len(rows_list) >= 2:
        lo, hi = min(rows_list), max(rows_list)
        for job in jobs:
            a, b = get(lo, job, "wharf"), get(hi, job, "wharf")
            if not a or not b:
                continue
            t = {"rows": f"{lo}->{hi}", "target": f"RSS growth {JOB_LABEL[job]}",
                 "limit": f"RSS({hi})/RSS({lo}) <= {RSS_GROWTH_LIMIT}"}
            if not (a["ok"] and b["ok"]):
                t.update(status="MISS", value=None, note="wharf run failed or output wrong")
            else:
                g = b["peak_rss_mib"] / a["peak_rss_mib"]
                t.update(status="PASS" if g <= RSS_GROWTH_LIMIT else "MISS", value=g,
                         note=f"{a['peak_rss_mib']:.1f} -> {b['peak_rss_mib']:.1f} MiB")
            out.append(t)
    return out


def print_report(res):
    m, v = res["machine"], res["versions"]
    print()
    print(f"wharf export benchmark  {res['started_at']}")
    print(f"machine: {m['nproc']} cores usable ({m['cpu_model']}), "
          f"{(m['mem_total_mib'] or 0) / 1024:.1f} GiB RAM, Linux {m['kernel']}")
    print(f"load average (1/5/15 min): start {fmt_load(m['loadavg_start'])}, end {fmt_load(m['loadavg_end'])}")
    print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if k != "wharf_binary"))
    print(f"wharf binary: {v['wharf_binary']}")
    print(f"peak RSS as measured for /bin/true (the method's floor): {m.get('rusage_floor_mib', 0):.1f} MiB")
    s = res["settings"]
    print(f"threads: {s['threads_note']}")
    print(f"parquet and zstd text: level {ZSTD_LEVEL} for every tool; gzip: level {GZIP_LEVEL} (duckdb: its own); "
          f"repeats per job: {s['repeat']} "
          f"(table shows the median-wall run)")
    print("how each tool writes to S3:")
    for job in res["jobs"]:
        for tool in (t for t in res["tools"] if t in JOB_SPEC[job]["tools"]):
            print(f"  {JOB_LABEL[job]:<16}{tool:<8} {api(tool, job)}")
    for n in res["rows"]:
        src = res["sources"].get(str(n), {})
        print()
        print(f"== {n:,} rows (source {src.get('bytes', 0) / MIB:.1f} MiB parquet; "
              f"filtered job selects {src.get('filtered_rows', 0):,} rows) ==")
        hdr = (f"{'job':<16}{'tool':<9}{'wall s':>8}{'work s':>8}{'CPU s':>8}{'RSS MiB':>9}"
               f"{'srv CPU':>9}{'util':>6}{'out MiB':>9}{'rows':>11}  {'check':<6}{'wharf/peer':>11}"
               f"{'CPU w/p':>9}")
        print(hdr)
        print("-" * len(hdr))
        for r in res["summary"]:
            if r["rows"] != n:
                continue
            check = "ok" if r["ok"] else "FAIL"
            util = f"{r['utilisation'] * 100:.0f}%" if r.get("utilisation") is not None else ""
            print(f"{JOB_LABEL[r['job']]:<16}{r['tool']:<9}{r['wall_s']:>8.2f}"
                  f"{(r['work_s'] if r['work_s'] is not None else float('nan')):>8.2f}"
                  f"{r['cpu_s']:>8.2f}{r['peak_rss_mib']:>9.1f}{r['server_cpu_s']:>9.2f}"
                  f"{util:>6}"
                  f"{(r['out_bytes'] or 0) / MIB:>9.1f}{(r['out_rows'] if r['out_rows'] is not None else -1):>11}"
                  f"  {check:<6}{ratio_str(r['wharf_over_peer']) if r['tool'] != 'wharf' else '':>11}"
                  f"{ratio_str(r['cpu_wharf_over_peer']) if r['tool'] != 'wharf' else '':>9}")
            if not r["ok"]:
                print(f"{'':<16}  problems: {'; '.join(r['problems'])}")
    print()
    print("wall s: process wall time (includes interpreter start and imports for the peers);")
    print("work s: time inside the process after imports (wharf: its run's duration_ms);")
    print("CPU s: user+system of the process (psql: psql + the uploader); RSS: its peak;")
    print("srv CPU: the S3 server's CPU during the run (pg-* jobs: plus PostgreSQL's);")
    print("util: (CPU s + srv CPU) / (cores x wall s), how busy the cores were; CPU w/p: wharf's CPU s over the peer's.")
    print()
    print("Targets")
    for t in res["targets"]:
        val = t["value"]
        ratio = t["target"].startswith(("time", "CPU", "RSS growth"))
        shown = "-" if val is None else (f"{val:.2f}x" if ratio else f"{val:.1f} MiB")
        print(f"  {t['status']:<5} {str(t['rows']):<20} {t['target']:<36} {shown:>10}  "
              f"({t['limit']}; {t['note']})")
    print()
    print(f"results: {res['out_path']}")


def main():
    ap = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark wharf's exports against polars, pyarrow and duckdb on a local S3 endpoint.",
    )
    ap.add_argument("--binary", help="wharf binary (scripts/bench builds one when omitted)")
    ap.add_argument("--rows", type=parse_rows, default=[1_000_000, 10_000_000],
                    help="comma-separated row counts, e.g. 1000000,10000000 or 1M,10M (default both)")
    ap.add_argument("--jobs", type=parse_list(JOBS), default=list(JOBS),
                    help=f"comma-separated subset of {','.join(JOBS)} (default all)")
    ap.add_argument("--tools", type=parse_list(TOOLS), default=list(TOOLS),
                    help=f"comma-separated subset of {','.join(TOOLS)} (default all)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per job and tool; the table shows the median-wall run (lower middle for even counts)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="threads for polars and duckdb (default: usable cores)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds before one export is killed")
    ap.add_argument("--out", default="bench-results.json", help="JSON results file (default ./bench-results.json)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and every output (GBs at 10M rows)")
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.peer:
        peer_main(args.peer)
        return 0
    if not args.binary:
        ap.error("--binary is required (scripts/bench passes it)")
    binary = os.path.abspath(args.binary)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    launcher = Launcher()  # first, while this process is still small (see LAUNCHER)
    machine = machine_info()
    machine["loadavg_start"] = list(os.getloadavg())
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if machine["loadavg_start"][0] > 0.5:
        log(f"note: 1-minute load average is {machine['loadavg_start'][0]:.2f}; timings may be noisy")

    secret = secrets.token_hex(20)
    env = dict(os.environ)
    env[SECRET_ENV] = secret
    env["POLARS_MAX_THREADS"] = str(args.threads)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env.pop("WHARF_ALLOW_PRIVATE_ENDPOINTS", None)

    tmp = tempfile.mkdtemp(prefix="wharf-bench-")
    log(f"bench: working in {tmp}")
    env["WHARF_HOME"] = os.path.join(tmp, "wharf-home")
    logs = os.path.join(tmp, "logs")
    os.makedirs(logs)
    server = pg = None
    runs, sources = [], {}
    out_path = os.path.abspath(args.out)
    try:
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        versions = tool_versions(binary)
        floor = measure(launcher, ["/bin/true"], env, tmp, 60, os.path.join(logs, "true"))
        machine["rusage_floor_mib"] = floor["peak_rss_mib"]
        server = S3Server(binary, os.path.join(tmp, "s3"), env, os.path.join(logs, "local-s3.log"))
        log(f"bench: local S3 endpoint {server.endpoint} (bucket {BUCKET})")
        fs = s3fs(server.endpoint, secret)
        w = [binary, "--allow-private-endpoints"]
        run_checked(w + ["destination", "add", "s3", "bench", "--bucket", BUCKET, "--region", REGION,
                         "--auth", "access-key", "--access-key-id", ACCESS_KEY,
                         "--secret-access-key-env", SECRET_ENV, "--endpoint", server.endpoint,
                         "--checksum", "crc32c"], env, "wharf destination add")
        if any(JOB_SPEC[job].get("pg") for job in args.jobs):
            log("bench: starting a PostgreSQL cluster (scripts/pg)")
            pg = PgServer(env)
            env[PG_URL_ENV] = pg.url
            if "wharf" in args.tools:
                run_checked(w + ["source", "add", "postgres", "pg", "--url-env", PG_URL_ENV,
                                 "--sslmode", "disable"], env, "wharf source add postgres")

        for n in args.rows:
            src_dir = os.path.join(tmp, f"rows_{n}")
            os.makedirs(src_dir)
            src = os.path.join(src_dir, "customers.parquet")
            log(f"bench: generating {n:,} customers")
            t0 = time.monotonic()
            run_checked([binary, "sample", "customers", "--rows", str(n), "--out", src], env, "wharf sample")
            gen_s = time.monotonic() - t0
            if pq.read_metadata(src).num_rows != n:
                raise BenchError(f"{src} does not have {n} rows")
            filtered_rows = ds.dataset(src, format="parquet").count_rows(
                filter=(ds.field("segment") == "churn_risk") & ds.field("is_subscribed"))
            sources[str(n)] = {"bytes": os.path.getsize(src), "generate_s": gen_s,
                               "filtered_rows": filtered_rows}
            with open(src, "rb") as f:  # warm the page cache for every tool alike
                while f.read(16 * MIB):
                    pass

            if pg:
                log(f"bench: loading {n:,} customers into PostgreSQL")
                sources[str(n)]["pg_load_s"] = pg.load(src, env)

            if "wharf" in args.tools:
                run_checked(w + ["source", "add", "local", f"src_{n}", "--path", src_dir], env, "wharf source add")
                run_checked(w + ["model", "add", f"all_{n}", "--source", f"src_{n}",
                                 "--sql", "SELECT * FROM customers", "--primary-key", "id"], env, "wharf model add")
                if pg:
                    run_checked(w + ["model", "add", f"pg_all_{n}", "--source", "pg",
                                     "--sql", "SELECT * FROM customers", "--primary-key", "id"],
                                env, "wharf model add")
                if "filtered" in args.jobs:
                    run_checked(w + ["model", "add", f"filtered_{n}", "--source", f"src_{n}",
                                     "--sql", f"SELECT * FROM customers WHERE {FILTER_SQL}",
                                     "--primary-key", "id"], env, "wharf model add")
                for job in args.jobs:
                    spec = JOB_SPEC[job]
                    model = "filtered" if spec.get("filter") else "pg_all" if spec.get("pg") else "all"
                    extra = ["--compression", spec["compression"]] if spec.get("compression") else []
                    run_checked(w + ["sync", "add", f"{job}_{n}", "--model", f"{model}_{n}",
                                     "--destination", "bench", "--format", FORMAT[job]] + extra,
                                env, "wharf sync add")

            for job in args.jobs:
                expected = filtered_rows if JOB_SPEC[job].get("filter") else n
                for rep in range(args.repeat):
                    for tool in [t for t in args.tools if t in JOB_SPEC[job]["tools"]]:
                        label = f"{n}-{job}-{tool}-{rep}"
                        if tool == "wharf":
                            argv = w + ["--json", "sync", "run", f"{job}_{n}"]
                        else:
                            key = f"{tool}/{n}/{job}-{rep}.{output_ext(job)}"
                            spec = {"tool": tool, "job": job, "src": src, "key": key,
                                    "endpoint": server.endpoint, "threads": args.threads}
                            argv = [sys.executable, os.path.abspath(__file__), "--peer", json.dumps(spec)]
                            if tool == "psql":
                                # psql's stdout piped into the uploader; bash waits for both, so
                                # the launcher's rusage counts both processes.
                                argv = ["/bin/bash", "-c", 'set -o pipefail; "$0" -X -q "$WHARF_BENCH_PG_URL" '
                                        '-c "\\copy customers TO STDOUT (FORMAT csv, HEADER)" | "$@"',
                                        shutil.which("psql") or "psql"] + argv
                        log(f"bench: {n:,} rows  {JOB_LABEL[job]:<12} {tool:<8} (run {rep + 1}/{args.repeat})")
                        os.sync()
                        srv0 = server.cpu_s() + (pg.cpu_s() if pg else 0.0)
                        m = measure(launcher, argv, env, tmp, args.timeout, os.path.join(logs, label))
                        srv = server.cpu_s() + (pg.cpu_s() if pg else 0.0) - srv0
                        run = {"rows": n, "job": job, "tool": tool, "repeat": rep, "api": api(tool, job),
                               "exit": m["exit"], "timed_out": m["timed_out"], "wall_s": m["wall_s"],
                               "cpu_s": m["cpu_s"], "user_s": m["user_s"], "sys_s": m["sys_s"],
                               "peak_rss_mib": m["peak_rss_mib"], "server_cpu_s": srv,
                               "expected_rows": expected, "work_s": None, "keys": [],
                               "reported_rows": None, "reported_bytes": None, "problems": []}
                        if m["exit"] != 0 and tool == "wharf":
                            try:
                                run["problems"].append(f"wharf: {json.loads(m['stdout']).get('error')}")
                            except ValueError:
                                pass
                        if m["exit"] != 0:
                            run["problems"].append(
                                f"exit {m['exit']}{' (timeout)' if m['timed_out'] else ''}: "
                                + (m["stderr"].strip().splitlines() or ["(no stderr)"])[-1][:300])
                        else:
                            try:
                                reply = json.loads(m["stdout"].strip().splitlines()[-1] if tool != "wharf"
                                                   else m["stdout"])
                                if tool == "wharf":
                                    run["keys"] = [f["key"] for f in reply.get("files", [])]
                                    run["work_s"] = (reply.get("duration_ms") or 0) / 1000.0
                                    run["reported_rows"] = reply.get("rows")
                                    run["reported_bytes"] = reply.get("bytes")
                                    if reply.get("status") != "succeeded":
                                        run["problems"].append(f"status {reply.get('status')}: {reply.get('error')}")
                                else:
                                    run["keys"] = reply["keys"]
                                    run["work_s"] = reply["work_s"]
                            except (ValueError, IndexError, KeyError) as e:
                                run["problems"].append(f"unreadable output ({e}): {m['stdout'][:300]!r}")
                        if run["keys"] or m["exit"] == 0:
                            try:
                                size, rows, problems = verify(fs, job, run["keys"], expected)
                                run["out_bytes"], run["out_rows"] = size, rows
                                run["problems"] += problems
                                if run["reported_rows"] is not None and run["reported_rows"] != rows:
                                    run["problems"].append(f"reported {run['reported_rows']} rows, read back {rows}")
                                if run["reported_bytes"] is not None and run["reported_bytes"] != size:
                                    run["problems"].append(f"reported {run['reported_bytes']} bytes, stored {size}")
                            except OSError as e:
                                run["problems"].append(f"read-back failed: {e}")
                            if not args.keep:
                                delete_outputs(fs, run["keys"])
                        run.setdefault("out_bytes", None)
                        run.setdefault("out_rows", None)
                        run["ok"] = not run["problems"]
                        if not run["ok"]:
                            log(f"bench:   FAILED: {'; '.join(run['problems'])} (logs: {logs}/{label}.*)")
                        else:
                            log(f"bench:   {m['wall_s']:.2f} s wall, {m['cpu_s']:.2f} s CPU, "
                                f"{m['peak_rss_mib']:.0f} MiB peak RSS, {run['out_rows']:,} rows")
                        runs.append(run)
            if not args.keep:
                shutil.rmtree(src_dir, ignore_errors=True)
    except BenchError as e:
        log(f"bench: error: {e}")
        return 2
    finally:
        launcher.stop()
        if server:
            server.stop()
        if pg:
            pg.stop(env)
        if args.keep:
            log(f"bench: kept {tmp}")
        elif any(not r["ok"] for r in runs):
            for entry in os.listdir(tmp):  # keep the logs of the failed runs
                if entry != "logs":
                    path = os.path.join(tmp, entry)
                    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
            log(f"bench: some runs failed; their logs are in {logs}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    machine["loadavg_end"] = list(os.getloadavg())
    summary = summarise(runs, args.rows, args.jobs, args.tools)
    res = {
        "started_at": started,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions,
        "rows": args.rows,
        "jobs": args.jobs,
        "tools": args.tools,
        "settings": {
            "threads": args.threads,
            "threads_note": (f"POLARS_MAX_THREADS={args.threads}, duckdb SET threads={args.threads}, "
                             "pyarrow default (cpu_count = usable cores), wharf: its own "
                             "(2 tokio workers, DataFusion partitions = cores)"),
            "repeat": args.repeat,
            "zstd_level": ZSTD_LEVEL,
            "gzip_level": GZIP_LEVEL,
            "postgres": "scripts/pg cluster on 127.0.0.1, sslmode=disable for every tool, table "
                        "loaded by duckdb's postgres extension then VACUUM ANALYZE",
            "pyarrow_row_group_rows": PYARROW_ROW_GROUP,
            "filter": FILTER_SQL,
            "s3": "wharf local-s3 on 127.0.0.1 (one server for every tool), path-style, http",
            "wharf_checksum": "crc32c",
        },
        "apis": {job: {tool: api(tool, job) for tool in JOB_SPEC[job]["tools"]} for job in args.jobs},
        "sources": sources,
        "runs": runs,
        "summary": summary,
        "targets": targets(summary, args.rows, args.jobs) if "wharf" in args.tools else [],
        "out_path": out_path,
    }
    with open(out_path, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print_report(res)
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

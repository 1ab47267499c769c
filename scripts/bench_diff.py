#!/usr/bin/env python3
"""wharf's diff benchmark (issue 12). Run it through `scripts/bench --diff`, which prepares the
venv and builds wharf.

For each row count: the customers table (`wharf sample customers`) as version 1, and a version
2 made from it with DuckDB: 1% of rows updated (`id % 100 = 7`: lifetime_value and orders),
0.5% deleted (`id % 200 = 13`) and 0.5% inserted (copies of `id % 200 = 99` under new ids).
Then, on ONE local S3 endpoint (`wharf local-s3`):

  wharf diff    a `--mode diff` Parquet sync: a first run on version 1 (every row added, not the
                measured job), then the measured run on version 2: it reads the table, hashes every
                row, compares with the snapshot and exports the change set (one file, `_change`).
  wharf all     the same model exported whole as Parquet (`--mode all`), on version 2: what the
                diff run is held to (<= 1.5x its time).
  duckdb        the same change set computed and exported in one query: anti-joins over the keys
                for added and removed rows, `EXCEPT` over the rows for changed ones, `COPY ... TO
                's3://..'` (httpfs), over the two Parquet files.
  polars        the same with lazy frames: anti and semi joins (nulls equal), concat, and
                `sink_parquet('s3://..')`.

Every export runs as a fresh process (wall time around the process, CPU and peak RSS from its
rusage), and is read back from S3: its row count must equal DuckDB's count of the change set, and
wharf's reported counts must equal DuckDB's. Writes bench-diff-results.json and prints a table.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402  (the export benchmark's launcher, S3 server and helpers)

TOOLS = ("wharf", "duckdb", "polars")
TIME_VS_DUCKDB = 0.8
TIME_VS_ALL = 1.5
RSS_LIMIT_MIB = 400.0


def version2_sql(v1, v2):
    """DuckDB statements writing version 2 of the table from version 1."""
    v1s, v2s = B.sql_str(v1), B.sql_str(v2)
    return (
        f"COPY (SELECT * REPLACE ("
        f"  CASE WHEN id % 100 = 7 THEN lifetime_value + 1.0 ELSE lifetime_value END AS lifetime_value,"
        f"  CASE WHEN id % 100 = 7 THEN orders + 1 ELSE orders END AS orders)"
        f" FROM read_parquet({v1s}) WHERE id % 200 <> 13"
        f" UNION ALL SELECT * REPLACE (id + (SELECT max(id) FROM read_parquet({v1s})) AS id)"
        f" FROM read_parquet({v1s}) WHERE id % 200 = 99"
        f" ORDER BY id) TO {v2s} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {B.ZSTD_LEVEL})"
    )


def change_set_sql(v1, v2, columns):
    """The change set as one query: rows with `_change`, removed rows with nulls."""
    o, n = f"read_parquet({B.sql_str(v1)})", f"read_parquet({B.sql_str(v2)})"
    nulls = ", ".join(["id"] + [f"NULL AS {c}" for c in columns if c != "id"])
    return (
        f"SELECT *, 'added' AS _change FROM {n} n WHERE NOT EXISTS (SELECT 1 FROM {o} o WHERE o.id = n.id)"
        f" UNION ALL SELECT *, 'changed' FROM (SELECT * FROM {n} EXCEPT SELECT * FROM {o}) c"
        f"   WHERE EXISTS (SELECT 1 FROM {o} o WHERE o.id = c.id)"
        f" UNION ALL SELECT {nulls}, 'removed' FROM {o} o WHERE NOT EXISTS (SELECT 1 FROM {n} n WHERE n.id = o.id)"
    )


# --------------------------------------------------------------------------------------------
# Peers: `bench_diff.py --peer SPEC_JSON` runs one export in this fresh process.
# --------------------------------------------------------------------------------------------


def peer_duckdb(spec, secret):
    t0 = time.monotonic()
    con = B.duckdb_on_s3(spec, secret)
    query = change_set_sql(spec["v1"], spec["v2"], spec["columns"])
    con.execute(
        f"COPY ({query}) TO {B.sql_str(f's3://{B.BUCKET}/' + spec['key'])} "
        f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {B.ZSTD_LEVEL})"
    )
    con.close()
    return time.monotonic() - t0


def peer_polars(spec, secret):
    import polars as pl

    t0 = time.monotonic()
    opts = {
        "aws_access_key_id": B.ACCESS_KEY,
        "aws_secret_access_key": secret,
        "aws_region": B.REGION,
        "aws_endpoint_url": spec["endpoint"],
        "aws_allow_http": "true",
        "aws_virtual_hosted_style_request": "false",
    }
    old, new = pl.scan_parquet(spec["v1"]), pl.scan_parquet(spec["v2"])
    schema = new.collect_schema()
    columns = list(schema.names())
    added = new.join(old.select("id"), on="id", how="anti")
    changed = new.join(old, on=columns, how="anti", nulls_equal=True).join(
        old.select("id"), on="id", how="semi")
    removed = old.select("id").join(new.select("id"), on="id", how="anti").with_columns(
        [pl.lit(None, dtype=schema[c]).alias(c) for c in columns if c != "id"]).select(columns)
    out = pl.concat([
        added.with_columns(pl.lit("added").alias("_change")),
        changed.with_columns(pl.lit("changed").alias("_change")),
        removed.with_columns(pl.lit("removed").alias("_change")),
    ])
    out.sink_parquet(f"s3://{B.BUCKET}/{spec['key']}", compression="zstd",
                     compression_level=B.ZSTD_LEVEL, storage_options=opts)
    return time.monotonic() - t0


def peer_main(spec_json):
    spec = json.loads(spec_json)
    secret = os.environ[B.SECRET_ENV]
    work = {"duckdb": peer_duckdb, "polars": peer_polars}[spec["tool"]]
    print(json.dumps({"keys": [spec["key"]], "work_s": work(spec, secret)}))


# --------------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------------


def read_back(fs, keys):
    """Rows and column names of Parquet objects on S3."""
    import pyarrow.parquet as pq

    rows, names = 0, None
    for key in keys:
        meta = pq.read_metadata(f"{B.BUCKET}/{key}", filesystem=fs)
        rows += meta.num_rows
        names = meta.schema.names
    return rows, names


def counts_of(v1, v2):
    import duckdb

    o, n = f"read_parquet({B.sql_str(v1)})", f"read_parquet({B.sql_str(v2)})"
    con = duckdb.connect()
    added, changed, removed, total = con.execute(
        f"SELECT (SELECT count(*) FROM {n} n WHERE NOT EXISTS (SELECT 1 FROM {o} o WHERE o.id = n.id)),"
        f" (SELECT count(*) FROM (SELECT * FROM {n} EXCEPT SELECT * FROM {o}) c"
        f"   WHERE EXISTS (SELECT 1 FROM {o} o WHERE o.id = c.id)),"
        f" (SELECT count(*) FROM {o} o WHERE NOT EXISTS (SELECT 1 FROM {n} n WHERE n.id = o.id)),"
        f" (SELECT count(*) FROM {n})"
    ).fetchone()
    con.close()
    return {"added": added, "changed": changed, "removed": removed,
            "unchanged": total - added - changed}


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench --diff",
                                 description="Benchmark wharf's diff runs against duckdb and polars.")
    ap.add_argument("--binary", help="wharf binary (scripts/bench builds one when omitted)")
    ap.add_argument("--rows", type=B.parse_rows, default=[10_000_000],
                    help="comma-separated row counts (default 10M)")
    ap.add_argument("--tools", type=B.parse_list(TOOLS), default=list(TOOLS))
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--out", default="bench-diff-results.json")
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        peer_main(args.peer)
        return 0
    if not args.binary:
        ap.error("--binary is required (scripts/bench passes it)")
    binary = os.path.abspath(args.binary)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    launcher = B.Launcher()
    machine = B.machine_info()
    machine["loadavg_start"] = list(os.getloadavg())
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    secret = secrets.token_hex(20)
    env = dict(os.environ)
    env[B.SECRET_ENV] = secret
    env["POLARS_MAX_THREADS"] = str(args.threads)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    tmp = tempfile.mkdtemp(prefix="wharf-bench-diff-")
    B.log(f"bench: working in {tmp}")
    env["WHARF_HOME"] = os.path.join(tmp, "wharf-home")
    logs = os.path.join(tmp, "logs")
    os.makedirs(logs)
    server, runs, failed = None, [], False
    try:
        import pyarrow.parquet as pq

        server = B.S3Server(binary, os.path.join(tmp, "s3"), env, os.path.join(logs, "local-s3.log"))
        fs = B.s3fs(server.endpoint, secret)
        w = [binary, "--allow-private-endpoints"]
        B.run_checked(w + ["destination", "add", "s3", "bench", "--bucket", B.BUCKET, "--region", B.REGION,
                           "--auth", "access-key", "--access-key-id", B.ACCESS_KEY,
                           "--secret-access-key-env", B.SECRET_ENV, "--endpoint", server.endpoint,
                           "--checksum", "crc32c"], env, "wharf destination add")
        for n in args.rows:
            data = os.path.join(tmp, f"rows_{n}")
            current = os.path.join(data, "current")
            os.makedirs(current)
            v1, v2 = os.path.join(data, "v1.parquet"), os.path.join(data, "v2.parquet")
            B.log(f"bench: generating {n:,} customers and version 2")
            B.run_checked([binary, "sample", "customers", "--rows", str(n), "--out", v1], env, "wharf sample")
            import duckdb

            duckdb.connect().execute(version2_sql(v1, v2)).close()
            columns = pq.read_schema(v1).names
            expected = counts_of(v1, v2)
            sent = expected["added"] + expected["changed"] + expected["removed"]
            B.log(f"bench: version 2: {expected}")

            def run(tool, label, argv):
                os.sync()
                srv0 = server.cpu_s()
                m = B.measure(launcher, argv, env, tmp, args.timeout, os.path.join(logs, f"{n}-{label}"))
                r = {"rows": n, "job": label, "tool": tool, "wall_s": m["wall_s"], "cpu_s": m["cpu_s"],
                     "peak_rss_mib": m["peak_rss_mib"], "server_cpu_s": server.cpu_s() - srv0,
                     "exit": m["exit"], "problems": []}
                if m["exit"] != 0:
                    r["problems"].append(f"exit {m['exit']}: {m['stderr'].strip()[-300:]}")
                    return r, None
                try:
                    reply = json.loads(m["stdout"].strip().splitlines()[-1] if tool != "wharf" else m["stdout"])
                except (ValueError, IndexError) as e:
                    r["problems"].append(f"unreadable output ({e})")
                    return r, None
                return r, reply

            def swap(version):
                shutil.copyfile(version, os.path.join(current, "customers.parquet.tmp"))
                os.replace(os.path.join(current, "customers.parquet.tmp"),
                           os.path.join(current, "customers.parquet"))

            if "wharf" in args.tools:
                swap(v1)
                B.run_checked(w + ["source", "add", "local", f"src_{n}", "--path", current], env, "source add")
                B.run_checked(w + ["model", "add", f"customers_{n}", "--source", f"src_{n}",
                                   "--sql", "SELECT * FROM customers", "--primary-key", "id"], env, "model add")
                for sync, mode in ((f"diff_{n}", "diff"), (f"all_{n}", "all")):
                    B.run_checked(w + ["sync", "add", sync, "--model", f"customers_{n}", "--destination", "bench",
                                       "--format", "parquet", "--mode", mode], env, "sync add")
                jobs = (("first", f"diff_{n}", v1), ("diff", f"diff_{n}", v2), ("all", f"all_{n}", v2))
                for label, sync, version in jobs:
                    swap(version)
                    B.log(f"bench: {n:,} rows  wharf {label}")
                    r, reply = run("wharf", label, w + ["--json", "sync", "run", sync])
                    if reply is not None:
                        keys = [f["key"] for f in reply.get("files", [])]
                        rows, names = read_back(fs, keys)
                        r["out_rows"] = rows
                        if reply.get("status") != "succeeded":
                            r["problems"].append(f"status {reply.get('status')}: {reply.get('error')}")
                        want = {"first": n, "diff": sent, "all": n - expected["removed"] + expected["added"]}[label]
                        if rows != want:
                            r["problems"].append(f"read back {rows} rows, expected {want}")
                        if label == "diff":
                            r["changes"] = reply.get("changes")
                            if reply.get("changes") != expected:
                                r["problems"].append(f"counts {reply.get('changes')}, duckdb says {expected}")
                            if names != columns + ["_change"]:
                                r["problems"].append(f"columns {names}")
                        B.delete_outputs(fs, keys)
                    runs.append(r)
            for tool in [t for t in args.tools if t != "wharf"]:
                key = f"{tool}/{n}/diff.parquet"
                spec = {"tool": tool, "v1": v1, "v2": v2, "key": key, "columns": columns,
                        "endpoint": server.endpoint, "threads": args.threads}
                B.log(f"bench: {n:,} rows  {tool} diff")
                r, reply = run(tool, "diff", [sys.executable, os.path.abspath(__file__), "--peer", json.dumps(spec)])
                if reply is not None:
                    rows, _ = read_back(fs, [key])
                    r["out_rows"] = rows
                    if rows != sent:
                        r["problems"].append(f"read back {rows} rows, expected {sent}")
                    B.delete_outputs(fs, [key])
                runs.append(r)
            for r in runs:
                if r["rows"] == n:
                    r["ok"] = not r["problems"]
                    failed |= not r["ok"]
                    state = "ok" if r["ok"] else "FAILED: " + "; ".join(r["problems"])
                    B.log(f"bench:   {r['tool']} {r['job']}: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU, "
                          f"{r['peak_rss_mib']:.0f} MiB peak RSS; {state}")
            shutil.rmtree(data, ignore_errors=True)
    finally:
        launcher.stop()
        if server:
            server.stop()
        if failed:
            B.log(f"bench: logs kept in {logs}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    machine["loadavg_end"] = list(os.getloadavg())
    res = {"started_at": started, "machine": machine, "runs": runs, "targets": targets(runs, args.rows)}
    with open(os.path.abspath(args.out), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    report(res)
    return 1 if failed else 0


def targets(runs, rows_list):
    out = []
    for n in rows_list:
        get = {(r["tool"], r["job"]): r for r in runs if r["rows"] == n and r.get("ok")}
        diff = get.get(("wharf", "diff"))
        if not diff:
            continue
        for (tool, job), limit, what in ((("duckdb", "diff"), TIME_VS_DUCKDB, "wall vs duckdb"),
                                         (("wharf", "all"), TIME_VS_ALL, "wall vs wharf all")):
            peer = get.get((tool, job))
            if peer:
                ratio = diff["wall_s"] / peer["wall_s"]
                out.append({"rows": n, "target": f"{what} <= {limit}", "value": round(ratio, 2),
                            "met": ratio <= limit})
        out.append({"rows": n, "target": f"peak RSS < {RSS_LIMIT_MIB:.0f} MiB",
                    "value": round(diff["peak_rss_mib"]), "met": diff["peak_rss_mib"] < RSS_LIMIT_MIB})
    return out


def report(res):
    m = res["machine"]
    print(f"\nwharf diff benchmark, {res['started_at']}; load {B.fmt_load(m['loadavg_start'])} -> "
          f"{B.fmt_load(m['loadavg_end'])}; {m['nproc']} CPUs, {m['cpu_model']}")
    print(f"{'rows':>11}  {'tool':<7} {'job':<6} {'wall s':>8} {'CPU s':>8} {'S3 CPU s':>9} {'peak MiB':>9}  result")
    for r in res["runs"]:
        print(f"{r['rows']:>11,}  {r['tool']:<7} {r['job']:<6} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} "
              f"{r['server_cpu_s']:>9.2f} {r['peak_rss_mib']:>9.0f}  {'ok' if r.get('ok') else 'FAILED'}")
    for t in res["targets"]:
        print(f"  {t['rows']:,} rows: {t['target']}: {t['value']} {'met' if t['met'] else 'NOT MET'}")


if __name__ == "__main__":
    sys.exit(main())

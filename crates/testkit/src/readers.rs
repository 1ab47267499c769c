//! Independent readers: `py/check_export.py` in the project's venv.

use std::process::Command;

/// Runs `py/check_export.py` on `spec` (see the script for its fields) and returns its report.
/// Panics with the report when a reader disagrees with the expected rows.
pub fn check_export(spec: &serde_json::Value) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("spec.json");
    std::fs::write(&path, serde_json::to_vec(spec).expect("spec JSON")).expect("write spec");
    let python = crate::moto::pyenv().join("bin/python");
    let script = crate::repo_root().join("crates/testkit/py/check_export.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "check_export.py printed no report (exit {:?}):\n{stdout}\n{}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(
        output.status.success() && report["ok"] == true,
        "readers disagree with the source rows:\n{}\n{}",
        serde_json::to_string_pretty(&report).unwrap_or_default(),
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

/// Runs `sql` in DuckDB (in the project's venv, time zone UTC) and returns its rows as JSON
/// arrays. For checking wharf's results against SQL written by hand and run by another engine.
pub fn duckdb_rows(sql: &str) -> Vec<Vec<serde_json::Value>> {
    let python = crate::moto::pyenv().join("bin/python");
    let script = "import duckdb, json, sys\n\
                  con = duckdb.connect()\n\
                  con.execute(\"SET TimeZone = 'UTC'\")\n\
                  rows = con.execute(sys.argv[1]).fetchall()\n\
                  print(json.dumps([list(r) for r in rows], default=str))\n";
    let output = Command::new(&python)
        .args(["-c", script, sql])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "duckdb failed on {sql}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "duckdb printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

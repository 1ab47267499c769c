use super::*;
use crate::changes::LocalSnapshots;
use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::DataType;
use std::collections::BTreeSet;

struct Fx {
    dir: tempfile::TempDir,
    store: LocalSnapshots,
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalSnapshots::new(dir.path().join("snapshots"));
    Fx { dir, store }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]))
}

type Row = (Option<i64>, Option<&'static str>, Option<f64>);

fn batch(rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("batch")
}

impl Fx {
    /// Compares `batches` with the snapshot of `previous` (a run id), as run `run`.
    fn compare(
        &self,
        run: &str,
        previous: Option<&str>,
        batches: &[RecordBatch],
    ) -> Result<ChangeCounts, ChangeError> {
        self.compare_spilling(run, previous, batches, FLUSH_BYTES)
            .map(|(counts, _)| counts)
    }

    /// [`Self::compare`] with partitions written out at `flush_bytes`; also returns how many
    /// buffers were written out before the end, and checks that the spill files held them.
    fn compare_spilling(
        &self,
        run: &str,
        previous: Option<&str>,
        batches: &[RecordBatch],
        flush_bytes: usize,
    ) -> Result<(ChangeCounts, u64), ChangeError> {
        let previous = previous.map(|p| Previous {
            run: p.to_string(),
            meta: SnapshotMeta::read(&self.store, "s", p)
                .expect("meta")
                .expect("a snapshot"),
        });
        let mut comparison = Comparison::new(
            &self.store,
            "s",
            run,
            previous,
            schema(),
            vec![0],
            &self.dir.path().join("spill").join(run),
        )?
        .flush_at(flush_bytes);
        for b in batches {
            comparison.push(b)?;
        }
        let early = comparison.early_flushes;
        if early > 0 {
            let spilled: u64 = std::fs::read_dir(self.dir.path().join("spill").join(run))
                .expect("the spill folder")
                .map(|entry| entry.expect("entry").metadata().expect("metadata").len())
                .sum();
            assert!(
                spilled > 0,
                "{early} buffers written out, but the spill files are empty"
            );
        }
        Ok((comparison.finish()?, early))
    }

    fn ids(&self, run: &str, blob: &str) -> BTreeSet<i64> {
        let reader = snapshot::read_blob(&self.store, "s", run, blob)
            .expect("read")
            .expect("exists");
        let mut ids = BTreeSet::new();
        for b in reader {
            let b = b.expect("batch");
            let column = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
            ids.extend(column.iter().flatten());
        }
        ids
    }
}

fn set(ids: &[i64]) -> BTreeSet<i64> {
    ids.iter().copied().collect()
}

#[test]
fn the_first_run_adds_every_row_and_later_runs_send_what_changed() {
    let fx = fx();
    let v1 = batch(&[
        (Some(1), Some("Ada"), Some(1.0)),
        (Some(2), Some("Bob"), None),
        (Some(3), None, Some(-0.0)),
        (Some(4), Some("Éva"), Some(f64::NAN)),
        (Some(5), Some(""), Some(2.5)),
    ]);
    let first = fx.compare("r1", None, &[v1]).expect("first");
    assert_eq!(
        first,
        ChangeCounts {
            added: 5,
            ..ChangeCounts::default()
        }
    );
    assert_eq!(fx.ids("r1", ADDED), set(&[1, 2, 3, 4, 5]));

    // 1 unchanged; 2 gets a score (null -> value); 3 a name (null -> value) and 0.0 for -0.0;
    // 4 stays NaN (unchanged); 5's empty name becomes null; 6 and 7 are new; none is removed.
    let v2 = [
        batch(&[
            (Some(1), Some("Ada"), Some(1.0)),
            (Some(2), Some("Bob"), Some(3.0)),
        ]),
        batch(&[
            (Some(3), Some("Cy"), Some(0.0)),
            (
                Some(4),
                Some("Éva"),
                Some(f64::from_bits(0x7ff0_0000_0000_0001)),
            ),
            (Some(5), None, Some(2.5)),
            (Some(6), Some("Dee"), None),
        ]),
        batch(&[(Some(7), Some("Eli"), Some(7.0))]),
    ];
    let second = fx.compare("r2", Some("r1"), &v2).expect("second");
    assert_eq!(
        second,
        ChangeCounts {
            added: 2,
            changed: 3,
            removed: 0,
            unchanged: 2,
        }
    );
    assert_eq!(fx.ids("r2", ADDED), set(&[6, 7]));
    assert_eq!(fx.ids("r2", CHANGED), set(&[2, 3, 5]));
    assert!(fx.ids("r2", REMOVED).is_empty());

    // 2 goes back to its v1 value (a change against v2), 6 and 3 are deleted.
    let v3 = batch(&[
        (Some(7), Some("Eli"), Some(7.0)),
        (Some(1), Some("Ada"), Some(1.0)),
        (Some(2), Some("Bob"), None),
        (Some(4), Some("Éva"), Some(f64::NAN)),
        (Some(5), None, Some(2.5)),
    ]);
    let third = fx.compare("r3", Some("r2"), &[v3]).expect("third");
    assert_eq!(
        third,
        ChangeCounts {
            added: 0,
            changed: 1,
            removed: 2,
            unchanged: 4,
        }
    );
    assert_eq!(fx.ids("r3", CHANGED), set(&[2]));
    assert_eq!(fx.ids("r3", REMOVED), set(&[3, 6]));
    let meta = SnapshotMeta::read(&fx.store, "s", "r3")
        .expect("read")
        .expect("meta");
    assert_eq!(meta.rows, 5);
    assert_eq!(meta.key_columns, ["id"]);
    // The spill is gone; the change set and the snapshot stay until the run is committed.
    assert!(!fx.dir.path().join("spill").join("r3").exists());
}

#[test]
fn many_rows_across_every_partition_compare_exactly() {
    let fx = fx();
    let names: Vec<String> = (0..50_000).map(|i| format!("n{i}")).collect();
    let make = |ids: &mut dyn Iterator<Item = i64>, bump: &dyn Fn(i64) -> bool| {
        let ids: Vec<i64> = ids.collect();
        let mut batches = Vec::new();
        for chunk in ids.chunks(4096) {
            let name: Vec<Option<&str>> = chunk
                .iter()
                .map(|&i| Some(names[(i % 50_000) as usize].as_str()))
                .collect();
            let score: Vec<Option<f64>> = chunk
                .iter()
                .map(|&i| Some(if bump(i) { i as f64 + 0.5 } else { i as f64 }))
                .collect();
            batches.push(
                RecordBatch::try_new(
                    schema(),
                    vec![
                        Arc::new(Int64Array::from(chunk.to_vec())),
                        Arc::new(StringArray::from(name)),
                        Arc::new(Float64Array::from(score)),
                    ],
                )
                .expect("batch"),
            );
        }
        batches
    };
    let v1 = make(&mut (0..100_000), &|_| false);
    fx.compare("r1", None, &v1).expect("first");
    // Rows 0..1000 removed, 100000..101000 added, every 97th changed. Partitions are written
    // out at 4 KiB (about 100 rows), so each spills many times before the comparison.
    let v2 = make(&mut (1_000..101_000), &|i| i % 97 == 0);
    let (counts, early) = fx
        .compare_spilling("r2", Some("r1"), &v2, 4 * 1024)
        .expect("second");
    assert!(
        early >= 256,
        "every partition spilled before the end: {early} early writes"
    );
    let changed = (1_000..100_000).filter(|i| i % 97 == 0).count() as u64;
    assert_eq!(counts.rows_read(), 100_000);
    assert_eq!(counts.removed, 1_000);
    assert_eq!(counts.added, 1_000);
    assert_eq!(counts.changed, changed);
    assert_eq!(counts.unchanged, 99_000 - changed);
    assert_eq!(fx.ids("r2", REMOVED), (0..1_000).collect());
    assert_eq!(fx.ids("r2", ADDED), (100_000..101_000).collect());
}

#[test]
fn repeated_and_null_keys_fail_with_counts_and_an_example() {
    let fx = fx();
    let repeated = [
        batch(&[(Some(1), Some("a"), None), (Some(2), Some("b"), None)]),
        batch(&[(Some(2), Some("c"), None), (Some(2), Some("d"), None)]),
    ];
    let err = fx.compare("r1", None, &repeated).expect_err("duplicates");
    assert!(
        matches!(&err, ChangeError::DuplicateKeys { column, extra_rows: 2, example } if column == "id" && example == "2"),
        "{err:?}"
    );
    assert!(err.to_string().contains("for example 2"), "{err}");
    assert!(
        fx.store.runs("s").expect("runs").is_empty(),
        "nothing is left of a failed comparison"
    );

    let nulls = [batch(&[
        (None, Some("a"), None),
        (Some(1), None, None),
        (None, None, None),
    ])];
    let err = fx.compare("r2", None, &nulls).expect_err("null keys");
    assert!(
        matches!(&err, ChangeError::NullKeys { column, rows: 2 } if column == "id"),
        "{err:?}"
    );
    assert_eq!(err.code(), "model.null_key");
}

#[test]
fn a_snapshot_of_other_columns_is_not_compared_against() {
    let fx = fx();
    fx.compare("r1", None, &[batch(&[(Some(1), Some("a"), None)])])
        .expect("first");
    let mut meta = SnapshotMeta::read(&fx.store, "s", "r1")
        .expect("read")
        .expect("meta");
    meta.columns[1].0 = "renamed".into();
    meta.write(&fx.store, "s", "r1").expect("write");
    let counts = fx
        .compare("r2", Some("r1"), &[batch(&[(Some(1), Some("a"), None)])])
        .expect("second");
    assert_eq!(counts.added, 1, "a full run: {counts:?}");
}

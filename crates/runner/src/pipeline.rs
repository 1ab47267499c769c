//! The data path of a run: batches from the query, projected and renamed, cut into files,
//! encoded on a blocking thread and streamed to S3 (the manifest follows, in `manifest`).

use crate::progress::{RunProgress, Stop, stopped};
use crate::{Failed, FileOutcome, RunFailure, failure};
use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use wharf_delivery::DeliveryError;
use wharf_delivery::upload::{
    self, ObjectSpec, ObjectUpload, PartSink, UploadJournal, UploadSettings, UploadTarget,
};
use wharf_domain::{KeyPrefix, KeyTemplate, KeyValues, OnEmpty, SyncSettings};
use wharf_engine::QueryStream;
use wharf_formats::FileWriter;
use wharf_store::{CommittedFile, NewRunFile, Store};

#[derive(Clone)]
pub(crate) struct Job {
    /// The attempt's id: its file records are its own.
    pub run_id: String,
    /// The run id its keys carry: the logical run's (see `attempt`).
    pub keys_run: String,
    /// Files an earlier attempt of the logical run committed, by key: kept, not written again.
    pub carried: Arc<HashMap<String, CommittedFile>>,
    /// The attempt continues an earlier one: an object found at one of its keys is that
    /// attempt's, committed before its end was recorded.
    pub continues: bool,
    pub started_at: OffsetDateTime,
    pub model: String,
    pub segment: String,
    pub sync: String,
    pub settings: SyncSettings,
    pub template: KeyTemplate,
    pub prefix: KeyPrefix,
    pub target: Arc<UploadTarget>,
    pub upload: UploadSettings,
    pub journal: Arc<dyn UploadJournal>,
    pub progress: Arc<RunProgress>,
    /// The kind of change the files hold (`{change}`), for a diff by kind of change.
    pub change: Option<&'static str>,
    /// Files the run recorded before this export (a diff by kind of change exports each kind
    /// in turn, `{part}` counting from 0 in each): the run's file records count on from it.
    pub recorded_before: u32,
}

impl Job {
    pub(crate) fn key(&self, part: u32) -> Result<String, RunFailure> {
        let ext = self.settings.file.extension();
        self.template
            .render(
                &self.prefix,
                &KeyValues {
                    model: &self.model,
                    segment: &self.segment,
                    sync: &self.sync,
                    run: &self.keys_run,
                    started_at: self.started_at,
                    part,
                    ext: &ext,
                    change: self.change,
                },
            )
            .map_err(|e| failure("sync.key_template", e))
    }
}

/// Column selection and renames, resolved against the query's schema.
pub(crate) struct Projection {
    indices: Vec<usize>,
    pub(crate) schema: SchemaRef,
}

impl Projection {
    pub(crate) fn new(settings: &SyncSettings, source: &Schema) -> Result<Self, RunFailure> {
        if settings.columns.is_empty() {
            return Ok(Self {
                indices: (0..source.fields().len()).collect(),
                schema: Arc::new(source.clone()),
            });
        }
        let mut indices = Vec::new();
        let mut fields = Vec::new();
        for mapping in &settings.columns {
            let Ok(index) = source.index_of(&mapping.source) else {
                let available: Vec<&str> =
                    source.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(failure(
                    "sync.columns",
                    format!(
                        "the model has no column {:?} (its columns are: {}); fix the sync's columns",
                        mapping.source,
                        available.join(", ")
                    ),
                ));
            };
            let field = source.field(index);
            indices.push(index);
            fields.push(Field::new(
                &mapping.target,
                field.data_type().clone(),
                field.is_nullable(),
            ));
        }
        Ok(Self {
            indices,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    pub(crate) fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, RunFailure> {
        let columns = self
            .indices
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| {
            failure(
                "query.schema",
                format!("the query returned an unexpected batch: {e}"),
            )
        })
    }
}

/// What the query reader sends: a batch, the end (`Ok(None)`), or why it stopped. A channel that
/// closes without the end marker means the reader died, never a complete result.
pub(crate) type Batch = Result<Option<RecordBatch>, RunFailure>;

/// Batches to export: a query's result, or a change set read back from its snapshot folder.
pub(crate) struct Source {
    pub schema: SchemaRef,
    pub stream: futures::stream::BoxStream<'static, Result<RecordBatch, RunFailure>>,
}

impl From<QueryStream> for Source {
    fn from(stream: QueryStream) -> Self {
        Self {
            schema: stream.schema(),
            stream: stream
                .map(|item| item.map_err(|e| failure(e.code(), e)))
                .boxed(),
        }
    }
}

/// Streams the source into files. Returns the files written and the schema they were written
/// with; on failure, the files completed before it.
pub(crate) async fn export(
    job: Job,
    source: Source,
    store: Store,
) -> Result<(Vec<FileOutcome>, SchemaRef), Failed> {
    let projection = Projection::new(&job.settings, &source.schema).map_err(|f| (Vec::new(), f))?;
    // A few batches of read-ahead: the query runs while the encoder works.
    let (tx, rx) = mpsc::channel::<Batch>(4);
    let reader = tokio::spawn(read_query(source.stream, tx, job.progress.stop.subscribe()));
    let runtime = tokio::runtime::Handle::current();
    let schema = projection.schema.clone();
    let encoded = tokio::task::spawn_blocking(move || {
        let mut files = FileLoop {
            job: &job,
            runtime: &runtime,
            store: &store,
            schema: &projection.schema,
            done: Vec::new(),
            current: None,
            carrying: None,
            next_part: 0,
        };
        files
            .run(rx, &projection)
            .map_err(|f| (files.done.clone(), f))?;
        Ok(files.done)
    })
    .await;
    reader.abort();
    let files = match encoded {
        Ok(result) => result?,
        Err(e) => {
            return Err((
                Vec::new(),
                failure("internal", format!("the encoder stopped: {e}")),
            ));
        }
    };
    Ok((files, schema))
}

pub(crate) async fn read_query(
    mut stream: futures::stream::BoxStream<'static, Result<RecordBatch, RunFailure>>,
    tx: mpsc::Sender<Batch>,
    mut stop: watch::Receiver<Option<Stop>>,
) {
    loop {
        let item: Batch = tokio::select! {
            why = stop.wait_for(Option::is_some) => Err(stopped(why.ok().and_then(|w| *w))),
            item = stream.next() => match item {
                Some(Ok(batch)) => Ok(Some(batch)),
                Some(Err(f)) => Err(f),
                None => Ok(None),
            },
        };
        let last = !matches!(item, Ok(Some(_)));
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

struct OpenFile {
    key: String,
    part: u32,
    writer: FileWriter<PartSink>,
    upload: ObjectUpload,
    written: Arc<AtomicU64>,
}

impl OpenFile {
    /// Bytes written and held by the encoder, exactly: the Parquet writer encodes the rows it
    /// gathers to count them, so this is asked only near a size limit.
    fn size(&mut self) -> Result<u64, wharf_formats::FormatError> {
        Ok(self.written.load(Ordering::Relaxed) + self.writer.buffered_bytes()? as u64)
    }

    /// At least [`Self::size`], without encoding anything.
    fn size_high(&self) -> u64 {
        self.written.load(Ordering::Relaxed) + self.writer.buffered_bytes_high() as u64
    }
}

/// A file an earlier attempt committed, whose rows this attempt passes over.
struct Carried {
    part: u32,
    committed: CommittedFile,
    /// Rows still to pass over.
    left: u64,
}

struct FileLoop<'a> {
    job: &'a Job,
    runtime: &'a tokio::runtime::Handle,
    store: &'a Store,
    schema: &'a SchemaRef,
    done: Vec<FileOutcome>,
    current: Option<OpenFile>,
    carrying: Option<Carried>,
    next_part: u32,
}

/// Most rows per slice when files are split by size: the size is checked between slices,
/// which are cut to the rows that fit by the average row size so far.
const SIZE_CHECK_ROWS: usize = 1024;

impl FileLoop<'_> {
    fn run(
        &mut self,
        mut rx: mpsc::Receiver<Batch>,
        projection: &Projection,
    ) -> Result<(), RunFailure> {
        let settings = &self.job.settings;
        let mut total_rows = 0u64;
        loop {
            let batch = match rx.blocking_recv() {
                Some(Ok(Some(batch))) => projection.apply(&batch),
                Some(Ok(None)) => break,
                Some(Err(f)) => Err(f),
                None => Err(failure(
                    "internal",
                    "the query reader stopped before the end of the result",
                )),
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(f) => return Err(self.abandon(f)),
            };
            if self.job.progress.cancelled() {
                return Err(self.abandon(self.job.progress.stopped()));
            }
            let mut offset = 0;
            while offset < batch.num_rows() {
                if self.current.is_none() && self.carrying.is_none() {
                    self.open()?;
                }
                if let Some(carried) = self.carrying.as_mut() {
                    // The file an earlier attempt committed holds these rows (the same ones,
                    // when the input is the same): pass over them.
                    let take = (batch.num_rows() - offset)
                        .min(usize::try_from(carried.left).unwrap_or(usize::MAX));
                    carried.left -= take as u64;
                    offset += take;
                    total_rows += take as u64;
                    if carried.left == 0 {
                        self.close()?;
                    }
                    continue;
                }
                let Some(file) = self.current.as_mut() else {
                    break;
                };
                let mut take = batch.num_rows() - offset;
                if let Some(max) = settings.max_rows_per_file {
                    let room = max.saturating_sub(file.writer.rows());
                    take = take.min(usize::try_from(room).unwrap_or(usize::MAX));
                }
                if let Some(max) = settings.max_bytes_per_file {
                    // Rows that should fit in the room left, from the average row so far.
                    let rows = file.writer.rows();
                    let per_row = move |size: u64| size.checked_div(rows).unwrap_or(256).max(1);
                    let high = file.size_high();
                    let size = if high.saturating_add(SIZE_CHECK_ROWS as u64 * per_row(high)) < max
                    {
                        high
                    } else {
                        match file.size() {
                            Ok(size) => size,
                            Err(e) => return Err(self.write_failed(e)),
                        }
                    };
                    let fits = max.saturating_sub(size) / per_row(size);
                    take = take.min((fits as usize).clamp(1, SIZE_CHECK_ROWS));
                }
                if let Err(e) = file.writer.write(&batch.slice(offset, take)) {
                    return Err(self.write_failed(e));
                }
                offset += take;
                total_rows += take as u64;
                self.job
                    .progress
                    .rows
                    .fetch_add(take as u64, Ordering::Relaxed);
                let full_rows = settings
                    .max_rows_per_file
                    .is_some_and(|max| file.writer.rows() >= max);
                let full_bytes = match settings.max_bytes_per_file {
                    Some(max) if file.size_high() >= max => match file.size() {
                        Ok(size) => size >= max,
                        Err(e) => return Err(self.write_failed(e)),
                    },
                    _ => false,
                };
                if full_rows || full_bytes {
                    self.close()?;
                }
            }
        }
        if self.current.is_some() || self.carrying.is_some() {
            self.close()?;
        } else if total_rows == 0 && self.done.is_empty() && settings.on_empty == OnEmpty::EmptyFile
        {
            self.open()?;
            self.close()?;
        }
        Ok(())
    }

    fn open(&mut self) -> Result<(), RunFailure> {
        let part = self.next_part;
        self.next_part += 1;
        let key = self.job.key(part)?;
        if let Some(committed) = self.job.carried.get(&key) {
            self.carrying = Some(Carried {
                part,
                committed: committed.clone(),
                left: committed.file.rows,
            });
            return Ok(());
        }
        let file = &self.job.settings.file;
        let object = ObjectSpec {
            key: key.clone(),
            content_type: file.format.content_type().to_string(),
            content_encoding: file.compression.content_encoding().map(str::to_owned),
            overwrite: self.job.settings.overwrite,
        };
        let (sink, upload) = {
            let _runtime = self.runtime.enter();
            upload::start(
                self.job.target.clone(),
                object,
                self.job.upload,
                self.job.journal.clone(),
                self.job.progress.upload.clone(),
            )
        };
        let written = sink.written_counter();
        let writer = match FileWriter::new(file, self.schema, sink) {
            Ok(writer) => writer,
            Err(e) => {
                // The sink was dropped: the upload ends as cancelled, with nothing written.
                let _ = self.runtime.block_on(upload.finish());
                return Err(failure("format.error", e));
            }
        };
        self.current = Some(OpenFile {
            key,
            part,
            writer,
            upload,
            written,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), RunFailure> {
        if let Some(carried) = self.carrying.take() {
            let c = carried.committed;
            let outcome = FileOutcome {
                key: c.file.key,
                rows: c.file.rows,
                bytes: c.file.bytes,
                checksum: c.file.checksum,
                carried_from: Some(c.written_by),
            };
            return self.commit(outcome, carried.part, c.file.request_id);
        }
        let Some(file) = self.current.take() else {
            return Ok(());
        };
        let rows = file.writer.rows();
        let sink = match file.writer.finish() {
            Ok(sink) => sink,
            Err(e) => return Err(self.upload_or(file.upload, failure("format.error", e))),
        };
        if sink.finish().is_err() {
            return Err(self.upload_or(file.upload, failure("internal", "the upload stopped")));
        }
        let (outcome, request_id) = match self.runtime.block_on(file.upload.finish()) {
            Ok(uploaded) => (
                FileOutcome {
                    key: file.key,
                    rows,
                    bytes: uploaded.bytes,
                    checksum: uploaded.checksum,
                    carried_from: None,
                },
                uploaded.request_id,
            ),
            Err(_) if self.job.progress.cancelled() => return Err(self.job.progress.stopped()),
            Err(e @ DeliveryError::KeyExists { .. }) if self.job.continues => {
                (self.found_committed(file.key, rows, e)?, None)
            }
            Err(e) => return Err(failure(e.code(), e)),
        };
        self.commit(outcome, file.part, request_id)
    }

    /// A retry met an object at one of its keys: an earlier attempt committed it and stopped
    /// before recording it. It is kept, as the earlier attempt wrote it (its rows counted as
    /// this attempt encoded them).
    fn found_committed(
        &self,
        key: String,
        rows: u64,
        exists: DeliveryError,
    ) -> Result<FileOutcome, RunFailure> {
        match self.runtime.block_on(self.job.target.stat(&key)) {
            Ok(Some((bytes, checksum))) => {
                tracing::info!(%key, "an earlier attempt of this run committed the file: kept");
                Ok(FileOutcome {
                    key,
                    rows,
                    bytes,
                    checksum,
                    carried_from: Some(self.job.keys_run.clone()),
                })
            }
            Ok(None) => Err(failure(exists.code(), exists)),
            Err(e) => Err(failure(e.code(), e)),
        }
    }

    /// Records a file of the run (written, or kept from an earlier attempt).
    fn commit(
        &mut self,
        outcome: FileOutcome,
        part: u32,
        request_id: Option<String>,
    ) -> Result<(), RunFailure> {
        let rows = outcome.rows;
        let recorded = self.runtime.block_on(self.store.add_run_file(
            &self.job.run_id,
            &NewRunFile {
                part: i64::from(self.job.recorded_before) + i64::from(part),
                key: outcome.key.clone(),
                rows,
                bytes: outcome.bytes,
                checksum: outcome.checksum.clone(),
                request_id,
                carried_from: outcome.carried_from.clone(),
            },
        ));
        // In the bucket either way: the run's files say so (a fenced run deletes its own).
        self.done.push(outcome);
        match recorded {
            Ok(()) => {}
            Err(e @ wharf_store::StoreError::Fenced { .. }) => {
                return Err(failure("lease_lost", e));
            }
            Err(e) => return Err(failure("store.error", e)),
        }
        self.job.progress.files.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A write failed. If the upload failed first (the sink reports a broken pipe), its error
    /// is the cause; otherwise the encoder's.
    fn write_failed(&mut self, e: wharf_formats::FormatError) -> RunFailure {
        let cause = failure("format.error", &e);
        match self.current.take() {
            Some(file) => {
                drop(file.writer);
                self.upload_or(file.upload, cause)
            }
            None => cause,
        }
    }

    /// Stops the open file (its upload is aborted) and returns `why`.
    fn abandon(&mut self, why: RunFailure) -> RunFailure {
        self.carrying = None;
        if let Some(file) = self.current.take() {
            drop(file.writer);
            let _ = self.runtime.block_on(file.upload.finish());
        }
        why
    }

    /// Waits for an upload whose sink is gone; its error if it had one, else `otherwise`.
    fn upload_or(&self, upload: ObjectUpload, otherwise: RunFailure) -> RunFailure {
        let result = self.runtime.block_on(upload.finish());
        if self.job.progress.cancelled() {
            return self.job.progress.stopped();
        }
        match result {
            Err(e) if !matches!(e, wharf_delivery::DeliveryError::Cancelled(_)) => {
                failure(e.code(), e)
            }
            _ => otherwise,
        }
    }
}

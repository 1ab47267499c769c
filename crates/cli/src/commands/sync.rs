//! `wharf sync ...`: model or segment -> destination as files, and running it.

use super::Context;
use crate::args::{AddSync, SyncCommand};
use crate::error::CliError;
use crate::output;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wharf_domain::FileSpec;
use wharf_domain::schedule::parse_seconds;
use wharf_domain::units::human_bytes;
use wharf_service::{
    Caller, NewSync, PolicyPatch, RunOutcome, RunProgress, ScheduleSpec, Service, SyncView,
};

pub async fn run(context: &Context, command: SyncCommand) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    match command {
        SyncCommand::Add(args) => add(context, &service, &caller, *args, false).await,
        SyncCommand::Update(args) => add(context, &service, &caller, *args, true).await,
        SyncCommand::Rm { name } => {
            service.remove_sync(&caller, &name).await?;
            if context.json {
                output::json(&serde_json::json!({ "removed": name }));
            } else {
                outln!("removed sync {name} and its run history");
            }
            Ok(())
        }
        SyncCommand::List => {
            let syncs = service.syncs(&caller).await?;
            if context.json {
                output::json(&syncs);
            } else {
                let rows: Vec<Vec<String>> = syncs
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            match &s.segment {
                                Some(g) => format!("{} / {g}", s.model),
                                None => s.model.clone(),
                            },
                            s.destination.clone(),
                            s.settings.file.extension(),
                            s.settings.key_template.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "NAME",
                        "MODEL / SEGMENT",
                        "DESTINATION",
                        "FORMAT",
                        "KEY TEMPLATE",
                    ],
                    &rows,
                );
            }
            Ok(())
        }
        SyncCommand::Show { name } => {
            let sync = service.sync(&caller, &name).await?;
            if context.json {
                output::json(&sync);
            } else {
                describe(&sync);
            }
            Ok(())
        }
        SyncCommand::Run {
            name,
            server: Some(server),
            token_env: Some(token_env),
        } => super::remote::run(context, &server, &token_env, &name).await,
        SyncCommand::Run { name, .. } => run_now(context, &service, &caller, &name).await,
        SyncCommand::Resume { name } => {
            let sync = service.resume_sync(&caller, &name).await?;
            if context.json {
                output::json(&sync);
            } else {
                outln!("resumed sync {name}");
                describe(&sync);
            }
            Ok(())
        }
        SyncCommand::Reset { name } => {
            let sync = service.reset_sync(&caller, &name).await?;
            if context.json {
                output::json(&sync);
            } else {
                outln!("forgot the snapshot of sync {name}: its next run sends every row");
            }
            Ok(())
        }
        SyncCommand::Pause { name } => {
            let sync = service.pause_sync(&caller, &name).await?;
            if context.json {
                output::json(&sync);
            } else {
                outln!("paused sync {name}; `wharf sync resume {name}` resumes it");
            }
            Ok(())
        }
    }
}

fn describe(s: &SyncView) {
    let st = &s.settings;
    outln!("sync          {}", s.name);
    outln!("model         {}", s.model);
    if let Some(segment) = &s.segment {
        outln!("segment       {segment}");
    }
    outln!("destination   {}", s.destination);
    outln!("format        {}", st.file.extension());
    outln!("key template  {}", st.key_template);
    if !st.columns.is_empty() {
        let cols: Vec<String> = st
            .columns
            .iter()
            .map(|c| {
                if c.source == c.target {
                    c.source.clone()
                } else {
                    format!("{} -> {}", c.source, c.target)
                }
            })
            .collect();
        outln!("columns       {}", cols.join(", "));
    }
    if let Some(n) = st.max_rows_per_file {
        outln!("rows per file {n}");
    }
    if let Some(n) = st.max_bytes_per_file {
        outln!("bytes per file {n}");
    }
    outln!("manifest      {}", if st.manifest { "yes" } else { "no" });
    outln!("on empty      {}", st.on_empty);
    outln!("overwrite     {}", if st.overwrite { "yes" } else { "no" });
    match st.mode {
        wharf_domain::SyncMode::All => {
            outln!("mode          all (every run sends the whole result)")
        }
        mode => outln!(
            "mode          {mode}{}; {}",
            if mode == wharf_domain::SyncMode::Diff {
                format!(" ({} layout)", st.diff_layout)
            } else {
                String::new()
            },
            match &s.snapshot_run {
                Some(run) => format!("compares with the snapshot of run {run}"),
                None => "no snapshot yet: the next run sends every row".into(),
            }
        ),
    }
    outln!("schedule      {}", s.schedule.description);
    if !s.schedule.next_runs.is_empty() {
        outln!("next runs     {}", s.schedule.next_runs.join(", "));
    }
    let p = &s.policy;
    outln!(
        "on overlap    {}; {} attempt(s) per due time, backoff {}s to {}s; {}",
        p.overlap,
        p.max_attempts,
        p.retry_base_seconds,
        p.retry_cap_seconds,
        match p.pause_after {
            0 => "never paused by failures".to_string(),
            1 => "paused after 1 failure".to_string(),
            n => format!("paused after {n} failures in a row"),
        }
    );
    if s.paused {
        outln!(
            "PAUSED        {} (`wharf sync resume {}` resumes it)",
            s.pause_reason.as_deref().unwrap_or("paused"),
            s.name
        );
    }
}

/// `sync add`, or `sync update` when `replace`: the same options, the same checks.
async fn add(
    context: &Context,
    service: &Service,
    caller: &Caller,
    a: AddSync,
    replace: bool,
) -> Result<(), CliError> {
    if a.model.is_none() && a.segment.is_none() {
        return Err(CliError::bad("give --model or --segment"));
    }
    let schedule = a
        .schedule
        .as_deref()
        .map(|text| ScheduleSpec::parse_flag(text, a.timezone.as_deref()))
        .transpose()?;
    let seconds = |field: &'static str, text: &Option<String>| {
        text.as_deref().map(|t| parse_seconds(field, t)).transpose()
    };
    let policy = PolicyPatch {
        overlap: a.overlap,
        max_attempts: a.max_attempts,
        retry_base_seconds: seconds("retry_base", &a.retry_base)?,
        retry_cap_seconds: seconds("retry_cap", &a.retry_cap)?,
        pause_after: a.pause_after,
    };
    let new = NewSync {
        name: a.name,
        model: a.model,
        segment: a.segment,
        destination: a.destination,
        file: FileSpec {
            format: a.format,
            compression: a.compression,
            parquet_compression: a.parquet_compression,
            parquet_row_group_rows: a.parquet_row_group_rows,
            csv_delimiter: a.csv_delimiter,
            csv_quote: a.csv_quote,
            csv_header: a.csv_header,
            csv_null: a.csv_null,
            csv_bom: a.csv_bom,
            xml_root: a.xml_root,
            xml_row: a.xml_row,
        },
        columns: a.columns,
        key_template: a.key_template,
        max_rows_per_file: a.max_rows_per_file,
        max_bytes_per_file: a.max_bytes_per_file,
        manifest: a.manifest,
        on_empty: a.on_empty,
        overwrite: a.overwrite,
        schedule,
        policy,
        mode: a.mode,
        diff_layout: a.diff_layout,
    };
    let sync = if replace {
        let name = new.name.clone();
        service.update_sync(caller, &name, new).await?
    } else {
        service.add_sync(caller, new).await?
    };
    if context.json {
        output::json(&sync);
    } else {
        outln!(
            "{} sync {}",
            if replace { "Updated" } else { "Added" },
            sync.name
        );
        if sync.snapshot_reset {
            outln!(
                "Its snapshot was forgotten (its rows are exported differently now): the next run sends every row."
            );
        }
        describe(&sync);
        outln!(
            "\nPreview its keys with `wharf plan {0}`; run it with `wharf sync run {0}`.",
            sync.name
        );
    }
    Ok(())
}

async fn run_now(
    context: &Context,
    service: &Service,
    caller: &Caller,
    name: &str,
) -> Result<(), CliError> {
    let outcome = run_with_progress(context, service, caller, name).await?;
    report(context, &outcome);
    if outcome.error.is_some() {
        return Err(CliError::Failed(String::new()));
    }
    Ok(())
}

/// Runs a sync, drawing a progress line on a terminal (nothing otherwise). Ctrl-C (SIGINT) and
/// SIGTERM (what systemd, Docker and Kubernetes send to stop a process) cancel the run: its
/// upload is aborted and it is recorded as cancelled; a second signal quits at once.
pub async fn run_with_progress(
    context: &Context,
    service: &Service,
    caller: &Caller,
    name: &str,
) -> Result<RunOutcome, CliError> {
    let progress = Arc::new(RunProgress::default());
    let bar = (!context.json && std::io::stderr().is_terminal())
        .then(|| ProgressLine::new(progress.clone(), name));
    let run = service.run_sync(caller, name, progress.clone());
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut stop = StopSignals::new()?;
    let mut interrupted = false;
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            signal = stop.next(), if !interrupted => {
                interrupted = true;
                if let Some(bar) = &bar {
                    bar.clear();
                }
                errln!("\n{signal}: cancelling the run and aborting its upload (send it again to quit at once)");
                progress.cancel();
                let mut again = StopSignals::new()?;
                tokio::spawn(async move {
                    let signal = again.next().await;
                    errln!("{signal} again: quitting; the next run closes this one and aborts its upload");
                    std::process::exit(130);
                });
            }
            _ = tick.tick() => {
                if let Some(bar) = &bar {
                    bar.draw();
                }
            }
        }
    };
    if let Some(bar) = &bar {
        bar.clear();
    }
    Ok(outcome?)
}

/// SIGINT (Ctrl-C) and SIGTERM, whichever comes first. Both are streams that keep what arrives
/// from their creation on: a `ctrl_c()` future made anew at each wait (as a `select!` loop
/// does) would miss a SIGINT that lands between two waits.
pub(super) struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(super) fn new() -> Result<Self, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind, name| {
            signal(kind).map_err(|e| CliError::failed(format!("cannot listen for {name}: {e}")))
        };
        Ok(Self {
            interrupt: listen(SignalKind::interrupt(), "SIGINT")?,
            terminate: listen(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    /// Waits for the next signal and names it.
    pub(super) async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "interrupted (SIGINT)",
            _ = self.terminate.recv() => "terminated (SIGTERM)",
        }
    }
}

pub fn report(context: &Context, outcome: &RunOutcome) {
    if context.json {
        output::json(outcome);
        return;
    }
    let seconds = outcome.duration_ms as f64 / 1000.0;
    match &outcome.error {
        None => outln!(
            "run {} succeeded: {} rows, {} files, {} in {seconds:.1} s",
            outcome.run_id,
            outcome.rows,
            outcome.files.len(),
            human_bytes(outcome.bytes),
        ),
        Some(e) => outln!(
            "run {} failed after {seconds:.1} s [{}]: {}",
            outcome.run_id,
            e.code,
            e.message
        ),
    }
    if let Some(c) = &outcome.changes {
        outln!(
            "{} compared with the last snapshot: {} added, {} changed, {} removed, {} unchanged",
            outcome.mode,
            c.added,
            c.changed,
            c.removed,
            c.unchanged
        );
    }
    if !outcome.files.is_empty() {
        let rows: Vec<Vec<String>> = outcome
            .files
            .iter()
            .map(|f| {
                vec![
                    f.key.clone(),
                    f.rows.to_string(),
                    f.bytes.to_string(),
                    f.checksum.clone(),
                ]
            })
            .collect();
        output::table(&["KEY", "ROWS", "BYTES", "CHECKSUM"], &rows);
    }
    if let Some(manifest) = &outcome.manifest {
        outln!("manifest: {manifest}");
    }
    if outcome.error.is_some() && !outcome.files.is_empty() {
        outln!(
            "(files above were completed before the failure; no manifest marks this run complete)"
        );
    }
}

/// A one-line progress display on a terminal: rows, bytes uploaded, parts, throughput.
struct ProgressLine {
    progress: Arc<RunProgress>,
    name: String,
    bar: indicatif::ProgressBar,
    started: Instant,
}

impl ProgressLine {
    fn new(progress: Arc<RunProgress>, name: &str) -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Self {
            progress,
            name: name.to_string(),
            bar,
            started: Instant::now(),
        }
    }

    fn draw(&self) {
        let rows = self.progress.rows.load(Ordering::Relaxed);
        let compared = self.progress.compared.load(Ordering::Relaxed);
        if compared > 0 && rows == 0 && self.progress.files.load(Ordering::Relaxed) == 0 {
            // A sync that sends changes reads and compares the whole result first.
            self.bar.set_message(format!(
                "{}: comparing with the last snapshot: {compared} rows read",
                self.name
            ));
            self.bar.tick();
            return;
        }
        let bytes = self.progress.upload.bytes.load(Ordering::Relaxed);
        let parts = self.progress.upload.parts.load(Ordering::Relaxed);
        let files = self.progress.files.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        self.bar.set_message(format!(
            "{}: {rows} rows · {} uploaded · {parts} parts · {files} files · {}/s",
            self.name,
            human_bytes(bytes),
            human_bytes((bytes as f64 / secs) as u64)
        ));
        self.bar.tick();
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

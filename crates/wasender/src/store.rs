//! `dead-letters` and `journal stats`: reading a journal directory (a
//! running listener's too, without its lock), or Redis delivery's dead
//! stream; requeueing and purging (which need the journal's lock).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Subcommand};
use wasenderapi::journal::{JournalDir, JournalInfo, Requeue};
use wasenderapi::redis::{RedisDeadLetters, RedisOptions};
use wasenderapi::WasenderError;

use crate::output::{self, usage, BoxError, Outcome, EXIT_REJECTED};

/// Where dead letters are: a journal directory, or a Redis dead-letter stream.
#[derive(Args, Debug)]
pub struct StoreArg {
    /// The journal directory (the listener's --journal). `list` reads a
    /// running listener's directory too; `requeue` and `purge` need it stopped.
    #[arg(long, env = "WASENDER_JOURNAL_DIR")]
    journal: Option<PathBuf>,
    /// The Redis server of Redis delivery (its dead-letter stream). Given on
    /// the command line, it wins over WASENDER_JOURNAL_DIR.
    #[arg(long)]
    redis: Option<String>,
}

/// The store a [`StoreArg`] names.
enum Store {
    Journal(PathBuf),
    Redis(String),
}

impl StoreArg {
    /// Picks the store: a flag wins over the environment; `--journal` and
    /// `--redis` together are a usage error.
    fn resolve(self, matches: Option<&ArgMatches>) -> Result<Store, BoxError> {
        let from_command_line =
            |id: &str| matches.and_then(|m| m.value_source(id)) == Some(ValueSource::CommandLine);
        match (self.journal, self.redis) {
            (Some(_), Some(_)) if from_command_line("journal") => {
                Err(usage("--journal and --redis both given: choose one"))
            }
            (_, Some(url)) => Ok(Store::Redis(url)),
            (Some(dir), None) => Ok(Store::Journal(dir)),
            (None, None) => Err(usage(
                "choose the dead letters: --journal DIR (or WASENDER_JOURNAL_DIR) or --redis URL",
            )),
        }
    }
}

/// `dead-letters` subcommands.
#[derive(Subcommand, Debug)]
pub enum DeadLetterCommand {
    /// Print each dead letter as one JSON line (a running listener's journal too).
    List(StoreArg),
    /// Put dead letters back into the journal, to be handled again (past the dedupe window).
    #[command(
        long_about = "Put dead letters back into the journal so they are handled \
        again, past the dedupe window. A requeued letter is marked, so requeuing it again does \
        nothing. Works on a stopped listener's directory; a running listener holds the lock, \
        so use its API (WebhookListener::requeue_dead_letters) instead."
    )]
    Requeue(RequeueArgs),
    /// Delete every dead letter (the journal's listener stopped).
    Purge(StoreArg),
}

/// Which dead letters to requeue.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Selection {
    /// Every dead letter not requeued yet.
    #[arg(long)]
    all: bool,
    /// The dead letter with this journal sequence number.
    #[arg(long)]
    seq: Option<u64>,
    /// The dead letters of this event (message `key.id`; journal only).
    #[arg(long)]
    event_id: Option<String>,
    /// The dead letter with this entry id in Redis's dead stream (`dead-letters list --redis`).
    #[arg(long)]
    id: Option<String>,
}

/// `dead-letters requeue` arguments.
#[derive(Args, Debug)]
pub struct RequeueArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    which: Selection,
}

/// `journal` subcommands.
#[derive(Subcommand, Debug)]
pub enum JournalCommand {
    /// Pending events, segments, bytes on disk, dead letters (a running listener's journal too).
    #[command(
        long_about = "Pending events, segments, bytes on disk, dead letters and dedupe \
        keys of a journal directory, as readable lines (or one JSON object with --json). A \
        running listener's directory is read as it is, without its lock and changing nothing."
    )]
    Stats(StatsArgs),
}

/// `journal stats` arguments.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The journal directory (the listener's --journal).
    #[arg(long, env = "WASENDER_JOURNAL_DIR")]
    journal: PathBuf,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

/// Runs a `dead-letters` subcommand; `matches` are its own argument matches.
pub fn dead_letters(command: DeadLetterCommand, matches: Option<&ArgMatches>) -> Outcome {
    match command {
        DeadLetterCommand::List(store) => {
            match store.resolve(matches)? {
                Store::Redis(url) => {
                    let mut dead = RedisDeadLetters::connect(&RedisOptions::new(url.as_str()))?;
                    let mut after: Option<String> = None;
                    loop {
                        let page = dead.list(after.as_deref(), 100)?;
                        let Some(last) = page.last().and_then(|l| l.id.entry_id()) else {
                            break;
                        };
                        after = Some(last.to_owned());
                        for letter in &page {
                            output::line(redis_letter_json(letter))?;
                        }
                    }
                }
                Store::Journal(dir) => {
                    for letter in JournalDir::inspect(&dir)?.dead_letters() {
                        output::line(serde_json::to_string(letter)?)?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DeadLetterCommand::Requeue(args) => {
            let which = args.which;
            let n = match args.store.resolve(matches)? {
                Store::Redis(url) => {
                    let mut dead = RedisDeadLetters::connect(&RedisOptions::new(url.as_str()))?;
                    match (which.all, which.id) {
                        (true, _) => dead.requeue_all()?,
                        (false, Some(id)) => usize::from(dead.requeue(&id)?.is_some()),
                        _ => return Err(usage("with --redis, choose --all or --id ENTRY_ID")),
                    }
                }
                Store::Journal(dir) => {
                    let selection = if which.all {
                        Requeue::All
                    } else if let Some(seq) = which.seq {
                        Requeue::Seq(seq)
                    } else if let Some(id) = which.event_id {
                        Requeue::EventId(id)
                    } else {
                        return Err(usage(
                            "with --journal, choose --all, --seq N or --event-id ID",
                        ));
                    };
                    open_journal(&dir)?.requeue(selection)?
                }
            };
            output::line(format_args!("requeued {n} dead letter(s)"))?;
            Ok(if n > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_REJECTED)
            })
        }
        DeadLetterCommand::Purge(store) => {
            let n = match store.resolve(matches)? {
                Store::Redis(url) => {
                    RedisDeadLetters::connect(&RedisOptions::new(url.as_str()))?.purge()? as usize
                }
                Store::Journal(dir) => open_journal(&dir)?.purge()?,
            };
            output::line(format_args!("purged {n} dead letter(s)"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One Redis dead letter as a JSON line.
fn redis_letter_json(letter: &wasenderapi::handler::DeadLetter) -> serde_json::Value {
    serde_json::to_value(letter).unwrap_or_default()
}

/// Opens a stopped listener's journal directory (taking its lock, to change
/// it), explaining a lock held by a running one.
fn open_journal(dir: &Path) -> Result<JournalDir, BoxError> {
    JournalDir::open(dir).map_err(|e| match e {
        WasenderError::JournalLocked { pid, .. } => format!(
            "{e}: stop that listener first{}, or use its API (WebhookListener::dead_letters, \
             requeue_dead_letters, purge_dead_letters) while it runs",
            pid.map(|p| format!(" (kill -TERM {p})"))
                .unwrap_or_default()
        )
        .into(),
        other => other.into(),
    })
}

/// `wasender journal stats`.
pub fn journal_stats(args: &StatsArgs) -> Outcome {
    let snapshot = JournalDir::inspect(&args.journal)?;
    let info = snapshot.stats();
    if args.json {
        output::line(stats_json(info))?;
    } else {
        for line in stats_lines(info) {
            output::line(line)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The counts as one JSON object.
fn stats_json(info: &JournalInfo) -> serde_json::Value {
    serde_json::json!({
        "path": info.path.to_string_lossy(),
        "pending": info.pending,
        "segments": info.segments,
        "disk_bytes": info.disk_bytes,
        "dead_letters": info.dead_letters,
        "requeued": info.requeued,
        "dedupe_entries": info.dedupe_entries,
        "damaged_ranges": info.damaged_ranges,
    })
}

/// The counts as aligned `name: value` lines.
fn stats_lines(info: &JournalInfo) -> Vec<String> {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    vec![
        format!("journal:         {}", info.path.display()),
        format!(
            "pending:         {} (handled when the listener next runs)",
            plural(info.pending, "event", "events")
        ),
        format!(
            "segments:        {} ({} on disk in all)",
            info.segments,
            human_bytes(info.disk_bytes)
        ),
        format!(
            "dead letters:    {} (and {} requeued, listed until purged)",
            info.dead_letters, info.requeued
        ),
        format!(
            "dedupe keys:     {}",
            plural(info.dedupe_entries, "key", "keys")
        ),
        format!("damaged ranges:  {}", info.damaged_ranges),
    ]
}

/// `bytes` in B, KiB, MiB or GiB, with one decimal past bytes.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(8 * 1024 * 1024 + 300_000), "8.3 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}

//! `wasender`: run and operate a WasenderAPI webhook receiver from the shell.
//!
//! ```text
//! cargo install wasenderapi --features cli
//! WASENDER_WEBHOOK_SECRET=… wasender listen --port 3000 --journal /var/lib/wasender
//! wasender --help
//! ```
//!
//! Exit codes: 0 success; 1 the answer was "no" (a rejected signature or body,
//! a non-2xx answer to `send-event`, nothing matched a requeue); 2 the command
//! line is wrong (clap's usage errors); 3 the operation failed (I/O, a locked
//! journal, an address in use, an unreachable server or Redis).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use wasenderapi::journal::{JournalDir, Requeue};
use wasenderapi::listener::{mask_session_id, DeliveryMode};
use wasenderapi::redis::{RedisDeadLetters, RedisOptions, RedisWorker};
use wasenderapi::{
    sign_webhook, SignatureScheme, WasenderError, WasenderWebhookEvent, WebhookHandler,
    WebhookListener, WebhookVerifier, SIGNATURE_HEADER,
};

/// Exit code: the operation ran and its answer was "no".
const EXIT_REJECTED: u8 = 1;
/// Exit code: the operation could not be carried out.
const EXIT_FAILED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "wasender",
    version,
    about = "Receive, verify and replay WasenderAPI (WhatsApp) webhooks",
    long_about = "Receive, verify and replay WasenderAPI (WhatsApp) webhooks.\n\n\
        Exit codes: 0 success; 1 the answer was \"no\" (rejected signature or body, non-2xx \
        answer, nothing to requeue); 2 usage error; 3 the operation failed (I/O, locked \
        journal, address in use, server unreachable).\n\n\
        Logs go to stderr; RUST_LOG=debug shows every request."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the webhook listener until SIGTERM or Ctrl-C, logging one line per event.
    #[command(
        long_about = "Run the webhook listener until SIGTERM or Ctrl-C, logging one \
        line per event.\n\nWithout --journal events are handled inline (the 200 means the \
        handler ran). With --journal DIR they are appended to a durable journal and fsynced \
        before the 200, and replayed after a crash. The first SIGTERM drains (up to \
        --drain-timeout); a second one stops at once, leaving the rest in the journal."
    )]
    Listen(ListenArgs),
    /// POST a signed event (a JSON file, or - for stdin) to a listener, as WasenderAPI would.
    #[command(name = "send-event")]
    SendEvent(SendEventArgs),
    /// Handle the events Redis-mode listeners added to the stream, until SIGTERM or Ctrl-C.
    #[command(
        long_about = "Handle the events that listeners in Redis mode (listen --redis) \
        added to the stream, logging one line per event, until SIGTERM or Ctrl-C. Run as many \
        workers as you like, on as many machines: they share the stream through a consumer \
        group; entries held by a crashed worker are taken over after the claim idle time."
    )]
    Worker(WorkerArgs),
    /// GET a listener's /healthz: exit 0 when it answers 200 (for container health checks).
    Health(HealthArgs),
    /// Verify a body and signature: print the event type, or why it is refused.
    #[command(
        long_about = "Verify a body and signature as the listener would: print the \
        event type and exit 0, or print why it is refused and exit 1.\n\n\
        Example: wasender verify --body event.json --signature \"$SIG\" --secret \"$SECRET\""
    )]
    Verify(VerifyArgs),
    /// List, requeue or purge dead letters (a journal directory, or Redis delivery's dead stream).
    #[command(name = "dead-letters", subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Inspect a journal directory.
    #[command(subcommand)]
    Journal(JournalCommand),
}

#[derive(Args, Debug)]
struct SecretArgs {
    /// The webhook secret (as shown in the WasenderAPI dashboard).
    #[arg(long, env = "WASENDER_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// How the signature header is computed.
    #[arg(long, value_enum, env = "WASENDER_SIGNATURE_SCHEME", default_value_t = Scheme::Shared)]
    scheme: Scheme,
}

impl SecretArgs {
    fn verifier(&self) -> WebhookVerifier {
        WebhookVerifier::with_secret(&self.secret).with_scheme(self.scheme.into())
    }
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Scheme {
    /// The header carries the secret itself (WasenderAPI's scheme).
    Shared,
    /// The header carries an HMAC-SHA256 of the body (signing proxies).
    Hmac,
}

impl From<Scheme> for SignatureScheme {
    fn from(scheme: Scheme) -> Self {
        match scheme {
            Scheme::Shared => SignatureScheme::SharedSecret,
            Scheme::Hmac => SignatureScheme::HmacSha256,
        }
    }
}

#[derive(Args, Debug)]
struct ListenArgs {
    #[command(flatten)]
    secret: SecretArgs,
    /// The address to listen on (host:port).
    #[arg(
        long,
        env = "WASENDER_BIND",
        default_value = "0.0.0.0:3000",
        conflicts_with = "port"
    )]
    bind: String,
    /// Listen on 0.0.0.0:PORT (overrides --bind).
    #[arg(long, env = "PORT")]
    port: Option<u16>,
    /// The path events are posted to.
    #[arg(long, env = "WASENDER_PATH", default_value = "/webhook")]
    path: String,
    /// Durable delivery: the journal directory (created if missing, locked while running).
    #[arg(long, env = "WASENDER_JOURNAL_DIR", conflicts_with = "redis")]
    journal: Option<PathBuf>,
    /// Redis delivery: add each event to this Redis stream for `wasender worker` processes
    /// (nothing is handled here).
    #[arg(long, env = "WASENDER_REDIS_URL")]
    redis: Option<String>,
    /// Serve /metrics in the Prometheus text format.
    #[arg(long, env = "WASENDER_METRICS")]
    metrics: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "WASENDER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "WASENDER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Threads running the handler in durable mode.
    #[arg(long, env = "WASENDER_HANDLER_THREADS", default_value_t = 2)]
    handler_threads: usize,
    /// Suppress repeated events: remember this many recent event keys (0: off).
    #[arg(long, env = "WASENDER_DEDUPE", default_value_t = 0)]
    dedupe: usize,
    /// How long shutdown waits for queued events, in seconds.
    #[arg(long, env = "WASENDER_DRAIN_TIMEOUT", default_value_t = 30)]
    drain_timeout: u64,
}

#[derive(Args, Debug)]
struct WorkerArgs {
    /// The Redis server the listeners add events to.
    #[arg(long, env = "WASENDER_REDIS_URL")]
    redis: String,
    /// Threads running the handler.
    #[arg(long, env = "WASENDER_HANDLER_THREADS", default_value_t = 4)]
    handler_threads: usize,
    /// This worker's name in the consumer group (default: host name and pid).
    #[arg(long, env = "WASENDER_CONSUMER")]
    consumer: Option<String>,
}

#[derive(Args, Debug)]
struct HealthArgs {
    /// The health URL.
    #[arg(long, default_value = "http://127.0.0.1:3000/healthz")]
    url: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

#[derive(Args, Debug)]
struct SendEventArgs {
    /// Where to post, e.g. http://127.0.0.1:3000/webhook.
    url: String,
    /// The JSON body to send (`-` reads stdin).
    file: PathBuf,
    #[command(flatten)]
    secret: SecretArgs,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// The raw request body (`-` reads stdin).
    #[arg(long, default_value = "-")]
    body: PathBuf,
    /// The X-Webhook-Signature value.
    #[arg(long, conflicts_with = "signature_file")]
    signature: Option<String>,
    /// A file holding the X-Webhook-Signature value (trailing newline ignored).
    #[arg(long)]
    signature_file: Option<PathBuf>,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Args, Debug)]
struct JournalArg {
    /// The journal directory (the listener's --journal / WASENDER_JOURNAL_DIR).
    #[arg(long, env = "WASENDER_JOURNAL_DIR")]
    journal: PathBuf,
}

/// Where dead letters are: a journal directory, or a Redis dead-letter stream.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct StoreArg {
    /// The journal directory of a stopped durable listener.
    #[arg(long)]
    journal: Option<PathBuf>,
    /// The Redis server of Redis delivery (its dead-letter stream).
    #[arg(long)]
    redis: Option<String>,
}

#[derive(Subcommand, Debug)]
enum DeadLetterCommand {
    /// Print each dead letter as one JSON line.
    List(StoreArg),
    /// Put dead letters back into the journal, to be handled again (past the dedupe window).
    #[command(
        long_about = "Put dead letters back into the journal so they are handled \
        again, past the dedupe window. A requeued letter is marked, so requeuing it again does \
        nothing. Works on a stopped listener's directory; a running listener holds the lock, \
        so use its API (WebhookListener::requeue_dead_letters) instead."
    )]
    Requeue(RequeueArgs),
    /// Delete every dead letter.
    Purge(StoreArg),
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct Selection {
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

#[derive(Args, Debug)]
struct RequeueArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    which: Selection,
}

#[derive(Subcommand, Debug)]
enum JournalCommand {
    /// Pending events, segments, bytes on disk, dead letters.
    Stats(JournalArg),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Listen(args) => listen(args),
        Command::Worker(args) => worker(args),
        Command::SendEvent(args) => send_event(args),
        Command::Health(args) => health(args),
        Command::Verify(args) => verify(args),
        Command::DeadLetters(command) => dead_letters(command),
        Command::Journal(JournalCommand::Stats(args)) => journal_stats(&args.journal),
    };
    match outcome {
        Ok(code) => code,
        Err(e) if e.is::<Usage>() => {
            eprintln!("wasender: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("wasender: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(EXIT_FAILED)
        }
    }
}

type Outcome = Result<ExitCode, Box<dyn std::error::Error>>;

fn read_input(path: &Path) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading stdin: {e}"))?;
        Ok(bytes)
    } else {
        Ok(std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?)
    }
}

/// Logs one line per event: its type, the masked session, and message texts.
fn log_event(event: &WasenderWebhookEvent) {
    let session = event
        .session_id()
        .map_or_else(|| "-".to_owned(), mask_session_id);
    let messages = event.messages();
    if messages.is_empty() {
        log::info!("{} (session {session})", event.event_type().as_str());
    }
    for m in messages {
        log::info!(
            "{} (session {session}) chat {} from {}: {}",
            event.event_type().as_str(),
            m.chat_jid().unwrap_or("?"),
            m.sender_phone().as_deref().unwrap_or("?"),
            m.text()
                .map_or_else(|| "(no text)".to_owned(), |t| format!("{t:?}"))
        );
    }
}

fn listen(args: ListenArgs) -> Outcome {
    let bind = match args.port {
        Some(port) => format!("0.0.0.0:{port}"),
        None => args.bind.clone(),
    };
    let mode = match (&args.journal, &args.redis) {
        (Some(dir), _) => DeliveryMode::durable(dir),
        (None, Some(url)) => DeliveryMode::redis(RedisOptions::new(url.as_str())),
        (None, None) => DeliveryMode::Inline,
    };
    let mut builder = WebhookListener::builder(args.secret.verifier(), EveryEvent)
        .bind(bind.as_str())
        .path(&args.path)
        .delivery_mode(mode)
        .drain_timeout(Duration::from_secs(args.drain_timeout));
    if args.journal.is_some() {
        builder = builder.handler_threads(args.handler_threads.max(1));
    }
    if args.dedupe > 0 {
        builder = builder.dedupe(args.dedupe);
    }
    if args.metrics {
        builder = builder.metrics(true);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        builder = builder.tls(cert, key);
    }
    let listener = builder.spawn()?;
    log::info!(
        "POST events to http://{}{} (GET /healthz for health checks)",
        listener.local_addr(),
        args.path
    );
    let stats = listener.run_until_signal()?;
    log::info!("stopped: {stats:?}");
    Ok(ExitCode::SUCCESS)
}

/// Logs every event through [`log_event`].
struct EveryEvent;

impl WebhookHandler for EveryEvent {
    type Error = std::convert::Infallible;

    fn on_event(&self, event: &WasenderWebhookEvent) -> Result<(), Self::Error> {
        log_event(event);
        Ok(())
    }
}

fn worker(args: WorkerArgs) -> Outcome {
    let mut builder = RedisWorker::builder(RedisOptions::new(args.redis.as_str()), EveryEvent)
        .handler_threads(args.handler_threads.max(1));
    if let Some(name) = args.consumer {
        builder = builder.consumer_name(name);
    }
    let worker = builder.spawn()?;
    log::info!(
        "worker {} handling events from {}",
        worker.consumer_name(),
        RedisOptions::new(args.redis.as_str()).redacted_url()
    );
    let stats = worker.run_until_signal()?;
    log::info!("stopped: {stats:?}");
    Ok(ExitCode::SUCCESS)
}

/// A blocking HTTP agent that hands back 4xx/5xx answers instead of failing on them.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

fn health(args: HealthArgs) -> Outcome {
    let mut response = agent(Duration::from_secs(args.timeout))
        .get(&args.url)
        .call()
        .map_err(|e| format!("GET {}: {e}", args.url))?;
    let status = response.status();
    let answer = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    println!("{} {answer}", status.as_u16());
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REJECTED)
    })
}

fn send_event(args: SendEventArgs) -> Outcome {
    let body = read_input(&args.file)?;
    let scheme: SignatureScheme = args.secret.scheme.into();
    let signature = sign_webhook(scheme, &args.secret.secret, &body);
    let mut response = agent(Duration::from_secs(args.timeout))
        .post(&args.url)
        .header("Content-Type", "application/json")
        .header(SIGNATURE_HEADER, &signature)
        .send(&body[..])
        .map_err(|e| format!("POST {}: {e}", args.url))?;
    let status = response.status();
    let answer = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .unwrap_or_default();
    println!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    println!("{answer}");
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REJECTED)
    })
}

fn verify(args: VerifyArgs) -> Outcome {
    let body = read_input(&args.body)?;
    let signature = match (&args.signature, &args.signature_file) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(path)) => Some(
            String::from_utf8_lossy(&read_input(path)?)
                .trim_end()
                .to_owned(),
        ),
        (None, None) => None,
    };
    match args
        .secret
        .verifier()
        .handle_webhook_event(&body, signature.as_deref())
    {
        Ok(event) => {
            println!("{}", event.event_type().as_str());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_webhook_rejection() => {
            println!(
                "refused ({}): {e}",
                e.status_code().map_or("-".into(), |s| s.to_string())
            );
            Ok(ExitCode::from(EXIT_REJECTED))
        }
        Err(e) => Err(e.into()),
    }
}

fn dead_letters(command: DeadLetterCommand) -> Outcome {
    match command {
        DeadLetterCommand::List(store) => {
            if let Some(url) = &store.redis {
                let mut dead = RedisDeadLetters::connect(&RedisOptions::new(url.as_str()))?;
                let mut after: Option<String> = None;
                loop {
                    let page = dead.list(after.as_deref(), 100)?;
                    let Some(last) = page.last().and_then(|l| l.id.entry_id()) else {
                        break;
                    };
                    after = Some(last.to_owned());
                    for letter in &page {
                        println!("{}", redis_letter_json(letter));
                    }
                }
            } else if let Some(dir) = &store.journal {
                for letter in open_journal(dir)?.dead_letters()? {
                    println!("{}", serde_json::to_string(&letter)?);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DeadLetterCommand::Requeue(args) => {
            let which = args.which;
            let n = if let Some(url) = &args.store.redis {
                let mut dead = RedisDeadLetters::connect(&RedisOptions::new(url.as_str()))?;
                match (which.all, which.id) {
                    (true, _) => dead.requeue_all()?,
                    (false, Some(id)) => usize::from(dead.requeue(&id)?.is_some()),
                    _ => return Err(usage("with --redis, choose --all or --id ENTRY_ID")),
                }
            } else if let Some(dir) = &args.store.journal {
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
                open_journal(dir)?.requeue(selection)?
            } else {
                0
            };
            println!("requeued {n} dead letter(s)");
            Ok(if n > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_REJECTED)
            })
        }
        DeadLetterCommand::Purge(store) => {
            let n = if let Some(url) = &store.redis {
                RedisDeadLetters::connect(&RedisOptions::new(url.as_str()))?.purge()? as usize
            } else if let Some(dir) = &store.journal {
                open_journal(dir)?.purge()?
            } else {
                0
            };
            println!("purged {n} dead letter(s)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One Redis dead letter as a JSON line (the body as text when it is UTF-8).
fn redis_letter_json(letter: &wasenderapi::handler::DeadLetter) -> serde_json::Value {
    serde_json::to_value(letter).unwrap_or_default()
}

/// A command-line mistake found after parsing (exit code 2, like clap's own).
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(text: &str) -> Box<dyn std::error::Error> {
    Box::new(Usage(text.to_owned()))
}

/// Opens a stopped listener's journal directory, explaining a lock held by a running one.
fn open_journal(dir: &Path) -> Result<JournalDir, Box<dyn std::error::Error>> {
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

fn journal_stats(dir: &Path) -> Outcome {
    let journal = open_journal(dir)?;
    println!("{:#?}", journal.stats()?);
    Ok(ExitCode::SUCCESS)
}

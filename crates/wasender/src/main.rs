//! `wasender`: run and operate a WasenderAPI webhook receiver from the shell.
//!
//! ```text
//! cargo install --locked --path crates/wasender
//! WASENDER_WEBHOOK_SECRET=… wasender listen --port 3000 --journal /var/lib/wasender
//! wasender --help
//! ```
//!
//! Exit codes: 0 success; 1 the answer was "no" (a rejected signature or body,
//! a non-2xx answer to `send-event`, nothing matched a requeue); 2 the command
//! line is wrong; 3 the operation failed (I/O, a locked journal, an address in
//! use, an unreachable server or Redis); 141 standard output was closed
//! before everything was written (`wasender … | head -c0`).

mod http;
mod output;
mod store;
mod values;

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{
    ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum,
};
use wasenderapi::listener::{DeliveryMode, ListenerStats, WebhookListenerBuilder};
use wasenderapi::redis::{RedisOptions, RedisWorker};
use wasenderapi::signature::{sign_webhook, SignatureScheme};
use wasenderapi::{WasenderWebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};

use http::TlsArgs;
use output::{usage, BoxError, Outcome, EXIT_REJECTED};
use store::{DeadLetterCommand, JournalCommand};

/// The address `listen` binds when neither --bind nor --port says otherwise.
const DEFAULT_BIND: &str = "0.0.0.0:3000";

#[derive(Parser, Debug)]
#[command(
    name = "wasender",
    version,
    about = "Receive, verify and replay WasenderAPI (WhatsApp) webhooks",
    long_about = "Receive, verify and replay WasenderAPI (WhatsApp) webhooks.\n\n\
        Every option with an environment variable ([env: …]) takes its value from the \
        command line first: a flag you type wins over the environment.\n\n\
        Exit codes: 0 success; 1 the answer was \"no\" (rejected signature or body, non-2xx \
        answer, nothing to requeue); 2 usage error; 3 the operation failed (I/O, locked \
        journal, address in use, server unreachable); 141 standard output was closed before \
        everything was written.\n\n\
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
        --drain-timeout); a second one stops at once, leaving the rest in the journal.\n\n\
        A flag on the command line wins over every environment variable, including that of \
        an option it excludes: --bind wins over PORT, --port over WASENDER_BIND, --journal \
        over WASENDER_REDIS_URL, --redis over WASENDER_JOURNAL_DIR. With both PORT and \
        WASENDER_BIND in the environment, WASENDER_BIND wins.\n\n\
        Durations are written 500ms, 5s, 2m or 1h (a bare number is seconds); sizes in \
        bytes, or with KiB, MiB or GiB."
    )]
    Listen(Box<ListenArgs>),
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
    #[command(
        long_about = "GET a listener's /healthz: print the status and answer, and exit \
        0 when it is 200 (1 for another status, 3 when there is no answer).\n\n\
        --local probes the listener that `wasender listen` starts with this same environment \
        (PORT or WASENDER_BIND; https:// when WASENDER_TLS_CERT is set) on this host, which is \
        what a container's HEALTHCHECK wants; when that gets no answer (or the 400 a TLS \
        listener gives plain HTTP) it tries the other scheme once (TLS given as --tls-cert/--tls-key flags does not show in the \
        environment). Over TLS that probe does not check the certificate: it is issued for \
        your public name, not for 127.0.0.1, and the probe asks only whether this host's \
        listener answers."
    )]
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
    /// The address to listen on, host:port [default: 0.0.0.0:3000].
    #[arg(long, env = "WASENDER_BIND")]
    bind: Option<String>,
    /// Listen on 0.0.0.0:PORT instead of --bind (on the command line it wins over
    /// WASENDER_BIND; in the environment WASENDER_BIND wins over PORT).
    #[arg(long, env = "PORT")]
    port: Option<u16>,
    /// The path events are posted to.
    #[arg(long, env = "WASENDER_PATH", default_value = "/webhook")]
    path: String,
    /// Durable delivery: the journal directory (created if missing, locked while running).
    #[arg(long, env = "WASENDER_JOURNAL_DIR")]
    journal: Option<PathBuf>,
    /// Redis delivery: add each event to this Redis stream for `wasender worker` processes
    /// (nothing is handled here).
    #[arg(long, env = "WASENDER_REDIS_URL")]
    redis: Option<String>,
    /// Serve /metrics in the Prometheus text format (--metrics, or --metrics=true|false|1|0).
    #[arg(
        long,
        env = "WASENDER_METRICS",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new(),
    )]
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
    /// How long shutdown waits for queued events.
    #[arg(long, env = "WASENDER_DRAIN_TIMEOUT", default_value = "30s", value_parser = values::duration)]
    drain_timeout: Duration,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The listener's connection limits; each left out keeps the listener's default.
#[derive(Args, Debug)]
#[command(next_help_heading = "Connection limits (the listener's defaults when left out)")]
struct LimitArgs {
    /// Event loop threads serving the connections (default: one per CPU but one).
    #[arg(long, env = "WASENDER_EVENT_LOOPS", value_name = "N")]
    event_loops: Option<usize>,
    /// The most connections open at once; more are answered 503 and closed.
    #[arg(long, env = "WASENDER_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// The most connections one peer address may hold open (trusted proxies are exempt).
    #[arg(long, env = "WASENDER_MAX_CONNECTIONS_PER_PEER", value_name = "N")]
    max_connections_per_peer: Option<usize>,
    /// How long a connection may wait with no request in progress.
    #[arg(long, env = "WASENDER_IDLE_TIMEOUT", value_name = "DURATION", value_parser = values::duration)]
    idle_timeout: Option<Duration>,
    /// The longest time from a request's first byte to the end of its head (then 408).
    #[arg(long, env = "WASENDER_HEADER_TIMEOUT", value_name = "DURATION", value_parser = values::duration)]
    header_timeout: Option<Duration>,
    /// The longest a whole request may take to arrive once started (then 408).
    #[arg(long, env = "WASENDER_REQUEST_TIMEOUT", value_name = "DURATION", value_parser = values::duration)]
    request_timeout: Option<Duration>,
    /// The largest accepted body (larger: 413).
    #[arg(long, env = "WASENDER_MAX_BODY_BYTES", value_name = "SIZE", value_parser = values::bytes)]
    max_body_bytes: Option<usize>,
    /// The most request bytes buffered across all connections at once.
    #[arg(long, env = "WASENDER_MAX_BUFFERED_BYTES", value_name = "SIZE", value_parser = values::bytes)]
    max_buffered_bytes: Option<usize>,
    /// A reverse proxy whose X-Forwarded-For is believed (repeat the flag for more;
    /// the variable takes a comma-separated list).
    #[arg(
        long = "trusted-proxy",
        env = "WASENDER_TRUSTED_PROXIES",
        value_name = "IP",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<IpAddr>,
}

#[derive(Args, Debug)]
struct WorkerArgs {
    /// The Redis server the listeners add events to.
    #[arg(long, env = "WASENDER_REDIS_URL")]
    redis: String,
    /// Threads running the handler (each takes its own event from Redis, so
    /// this is also how many are fetched at once).
    #[arg(long, env = "WASENDER_HANDLER_THREADS", default_value_t = wasenderapi::redis::DEFAULT_WORKER_HANDLER_THREADS)]
    handler_threads: usize,
    /// This worker's name in the consumer group (default: host name and pid).
    #[arg(long, env = "WASENDER_CONSUMER")]
    consumer: Option<String>,
}

#[derive(Args, Debug)]
struct HealthArgs {
    /// The health URL [default: http://127.0.0.1:3000/healthz].
    #[arg(long, conflicts_with = "local")]
    url: Option<String>,
    /// Probe this host's listener as `wasender listen` would start it with this
    /// environment (PORT or WASENDER_BIND, https when WASENDER_TLS_CERT is set,
    /// else http and then https), without checking its certificate.
    #[arg(long)]
    local: bool,
    /// Give up after this long.
    #[arg(long, default_value = "3s", value_parser = values::duration)]
    timeout: Duration,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Args, Debug)]
struct SendEventArgs {
    /// Where to post, e.g. http://127.0.0.1:3000/webhook.
    url: String,
    /// The JSON body to send (`-` reads stdin).
    file: PathBuf,
    #[command(flatten)]
    secret: SecretArgs,
    /// Give up after this long.
    #[arg(long, default_value = "30s", value_parser = values::duration)]
    timeout: Duration,
    #[command(flatten)]
    tls: TlsArgs,
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

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let sub = |name: &str| matches.subcommand_matches(name);
    let outcome = match cli.command {
        Command::Listen(args) => listen(*args, sub("listen")),
        Command::Worker(args) => worker(args),
        Command::SendEvent(args) => send_event(args),
        Command::Health(args) => health(args),
        Command::Verify(args) => verify(args),
        Command::DeadLetters(command) => {
            let own = sub("dead-letters").and_then(|m| m.subcommand().map(|(_, m)| m));
            store::dead_letters(command, own)
        }
        Command::Journal(JournalCommand::Stats(args)) => store::journal_stats(&args),
    };
    output::finish(outcome)
}

fn read_input(path: &Path) -> Result<Vec<u8>, BoxError> {
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

/// A session id (possibly the session's API key) as logs show it: its first
/// four characters and `…`, or only `…` when it is short.
fn mask_session_id(id: &str) -> String {
    if id.chars().count() < 12 {
        return "…".to_owned();
    }
    let head: String = id.chars().take(4).collect();
    format!("{head}…")
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

/// Whether the value of argument `id` came from the command line.
fn typed(matches: Option<&ArgMatches>, id: &str) -> bool {
    matches.and_then(|m| m.value_source(id)) == Some(ValueSource::CommandLine)
}

/// The address to bind: a flag wins over the environment; in the
/// environment WASENDER_BIND wins over PORT; both flags are a usage error.
fn bind_address(args: &ListenArgs, matches: Option<&ArgMatches>) -> Result<String, BoxError> {
    let from_port = |port: u16| format!("0.0.0.0:{port}");
    Ok(match (&args.bind, args.port) {
        (Some(bind), Some(port)) => match (typed(matches, "bind"), typed(matches, "port")) {
            (true, true) => return Err(usage("--bind and --port both given: choose one")),
            (false, true) => from_port(port),
            _ => bind.clone(),
        },
        (Some(bind), None) => bind.clone(),
        (None, Some(port)) => from_port(port),
        (None, None) => DEFAULT_BIND.to_owned(),
    })
}

/// The delivery mode: a flag wins over the environment; --journal and
/// --redis together (or both variables) are a usage error.
fn delivery_mode(args: &ListenArgs, matches: Option<&ArgMatches>) -> Result<Delivery, BoxError> {
    Ok(match (&args.journal, &args.redis) {
        (Some(dir), Some(url)) => match (typed(matches, "journal"), typed(matches, "redis")) {
            (true, false) => Delivery::Handler(DeliveryMode::durable(dir)),
            (false, true) => Delivery::Redis(RedisOptions::new(url.as_str())),
            (true, true) => return Err(usage("--journal and --redis both given: choose one")),
            (false, false) => {
                return Err(usage(
                    "WASENDER_JOURNAL_DIR and WASENDER_REDIS_URL are both set: unset one, or \
                     choose with --journal or --redis",
                ))
            }
        },
        (Some(dir), None) => Delivery::Handler(DeliveryMode::durable(dir)),
        (None, Some(url)) => Delivery::Redis(RedisOptions::new(url.as_str())),
        (None, None) => Delivery::Handler(DeliveryMode::Inline),
    })
}

/// Where `listen` delivers events: to a handler (inline or durable), or to Redis.
enum Delivery {
    Handler(DeliveryMode),
    Redis(RedisOptions),
}

/// The options of `listen` that every delivery shares; `true` with TLS.
fn configure<H>(
    mut builder: WebhookListenerBuilder<H>,
    args: &ListenArgs,
    bind: &str,
) -> (WebhookListenerBuilder<H>, bool) {
    builder = builder
        .bind(bind)
        .path(&args.path)
        .drain_timeout(args.drain_timeout);
    if args.metrics {
        builder = builder.metrics(true);
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            builder = builder.tls(cert, key);
            true
        }
        _ => false,
    };
    let limits = &args.limits;
    if let Some(n) = limits.event_loops {
        builder = builder.event_loops(n);
    }
    if let Some(n) = limits.max_connections {
        builder = builder.max_connections(n);
    }
    if let Some(n) = limits.max_connections_per_peer {
        builder = builder.max_connections_per_peer(n);
    }
    if let Some(t) = limits.idle_timeout {
        builder = builder.idle_timeout(t);
    }
    if let Some(t) = limits.header_timeout {
        builder = builder.header_timeout(t);
    }
    if let Some(t) = limits.request_timeout {
        builder = builder.request_timeout(t);
    }
    if let Some(n) = limits.max_body_bytes {
        builder = builder.max_body_bytes(n);
    }
    if let Some(n) = limits.max_buffered_bytes {
        builder = builder.max_buffered_bytes(n);
    }
    if !limits.trusted_proxies.is_empty() {
        builder = builder.trusted_proxies(limits.trusted_proxies.iter().copied());
    }
    (builder, tls)
}

fn listen(args: ListenArgs, matches: Option<&ArgMatches>) -> Outcome {
    let bind = bind_address(&args, matches)?;
    let delivery = delivery_mode(&args, matches)?;
    let redis = matches!(delivery, Delivery::Redis(_));
    let (listener, tls) = match delivery {
        Delivery::Redis(options) => {
            let builder = WebhookListener::redis_builder(args.secret.verifier(), options);
            let (builder, tls) = configure(builder, &args, &bind);
            (builder.spawn()?, tls)
        }
        Delivery::Handler(mode) => {
            let durable = matches!(mode, DeliveryMode::Durable { .. });
            let mut builder =
                WebhookListener::builder(args.secret.verifier(), EveryEvent).delivery_mode(mode);
            if durable {
                builder = builder.handler_threads(args.handler_threads.max(1));
            }
            if args.dedupe > 0 {
                builder = builder.dedupe(args.dedupe);
            }
            let (builder, tls) = configure(builder, &args, &bind);
            (builder.spawn()?, tls)
        }
    };
    log::info!(
        "POST events to {}://{}{} (GET /healthz for health checks)",
        if tls { "https" } else { "http" },
        listener.local_addr(),
        args.path
    );
    let stats = listener.run_until_signal()?;
    log::info!("stopped: {}", stopped_line(&stats, redis));
    Ok(ExitCode::SUCCESS)
}

/// The listener's totals, as the stop line says them.
fn stopped_line(stats: &ListenerStats, redis: bool) -> String {
    // A Redis-mode listener runs no handler: its events went to the stream.
    let mut line = if redis {
        format!("{} events added to the Redis stream", stats.queued)
    } else {
        format!("{} events handled", stats.handled)
    };
    line.push_str(&format!(", {} requests rejected", stats.rejected()));
    for (n, what) in [
        (stats.handler_errors, "handler errors"),
        (stats.dead_lettered, "dead-lettered"),
        (stats.dropped, "dropped unhandled"),
        (stats.journal_errors, "journal errors"),
    ] {
        if n > 0 {
            line.push_str(&format!(", {n} {what}"));
        }
    }
    line
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
    log::info!("stopped: {stats}");
    Ok(ExitCode::SUCCESS)
}

/// The health URL of the listener `wasender listen` would start with this
/// process's environment, on this host, and whether it serves TLS.
fn local_health_url() -> Result<(String, bool), BoxError> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let address = match (set("WASENDER_BIND"), set("PORT")) {
        (Some(bind), _) => bind,
        (None, Some(port)) => {
            let port: u16 = port
                .trim()
                .parse()
                .map_err(|_| usage(format!("PORT must be a port number, got {port:?}")))?;
            format!("0.0.0.0:{port}")
        }
        (None, None) => DEFAULT_BIND.to_owned(),
    };
    // A wildcard address is reached on loopback; a named one as it is.
    let address = match address.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let loopback: IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            std::net::SocketAddr::new(loopback, addr.port()).to_string()
        }
        _ => address,
    };
    let tls = set("WASENDER_TLS_CERT").is_some();
    let scheme = if tls { "https" } else { "http" };
    Ok((format!("{scheme}://{address}/healthz"), tls))
}

fn health(args: HealthArgs) -> Outcome {
    if args.local {
        let (url, tls) = local_health_url()?;
        // This host's own listener: its certificate names the public host.
        let trust = TlsArgs {
            danger_accept_invalid_certs: true,
            ..args.tls.clone()
        };
        let first = http::fetch_health(&url, args.timeout, &trust);
        // No answer, or 400 (what a TLS listener answers plain HTTP): TLS may
        // have been given as flags (--tls-cert in the container's command),
        // which this environment does not show. Try the other scheme once.
        let retry = match &first {
            Ok((status, _)) => *status == 400,
            Err(e) => !e.is::<output::Usage>() && !e.is::<output::StdoutClosed>(),
        };
        if retry {
            let other = if tls {
                url.replacen("https://", "http://", 1)
            } else {
                url.replacen("http://", "https://", 1)
            };
            if let Ok(answer) = http::fetch_health(&other, args.timeout, &trust) {
                return http::report_health(answer);
            }
        }
        return http::report_health(first?);
    }
    let url = args
        .url
        .unwrap_or_else(|| "http://127.0.0.1:3000/healthz".to_owned());
    http::report_health(http::fetch_health(&url, args.timeout, &args.tls)?)
}

fn send_event(args: SendEventArgs) -> Outcome {
    http::check_url(&args.url)?;
    let body = read_input(&args.file)?;
    let scheme: SignatureScheme = args.secret.scheme.into();
    let signature = sign_webhook(scheme, &args.secret.secret, &body);
    http::send_event(&args.url, &body, &signature, args.timeout, &args.tls)
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
            output::line(event.event_type().as_str())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_webhook_rejection() => {
            output::line(format_args!(
                "refused ({}): {e}",
                e.status_code().map_or("-".into(), |s| s.to_string())
            ))?;
            Ok(ExitCode::from(EXIT_REJECTED))
        }
        Err(e) => Err(e.into()),
    }
}

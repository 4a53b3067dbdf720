//! HTTPS for the listener (feature `tls`): the certificate and key, the
//! handshake, and the encrypted stream the request loop runs over.
//!
//! TLS itself is `rustls`, on the `ring` crypto provider (the one the client's
//! `ureq` uses too). What is ours is the wiring that keeps the listener's
//! bounds: the handshake runs on the connection's own thread under the request
//! deadline, and each read of decrypted bytes waits at most the read timeout
//! however the client trickles its TLS records. (`rustls::StreamOwned` is not
//! used for that reason: its `read` keeps reading the socket until a whole
//! record has arrived, so a client sending a record a byte at a time would
//! never trip a deadline.)

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

use super::builder::WebhookListenerBuilder;
use super::connection::{serve_transport, Transport};
use super::http::{self, Response};
use super::limits::Deadline;
use super::server::Shared;
use super::stats::Outcome;
use super::workers::Job;
use crate::error::{Result, WasenderError};
use crate::handler::WebhookHandler;

/// The only application protocol the listener speaks, offered through ALPN.
const HTTP_1_1: &[u8] = b"http/1.1";
/// Protocols a [`ServerConfig`] given to `tls_config` may offer through ALPN.
const HTTP_1_X: [&[u8]; 2] = [HTTP_1_1, b"http/1.0"];
/// The largest certificate or key file read: PEM chains are a few KiB.
const MAX_PEM_FILE: u64 = 1 << 20;
/// The first byte of a TLS handshake record (content type 22).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// Bytes of a plain-HTTP request discarded before closing, so the client reads our 400.
const PLAIN_LINGER_BYTES: usize = 64 * 1024;
/// Longest time spent discarding a plain-HTTP request.
const PLAIN_LINGER_TIME: Duration = Duration::from_millis(250);

/// Where the listener's TLS configuration comes from, as set on the builder.
pub(crate) enum TlsSource {
    /// PEM files, read and checked at `spawn`.
    Files { cert: PathBuf, key: PathBuf },
    /// A configuration the user built.
    Config(Arc<ServerConfig>),
}

impl TlsSource {
    /// The configuration to serve with: the files read and checked, or the
    /// user's configuration checked. Errors name the file concerned.
    pub(crate) fn load(self) -> Result<Arc<ServerConfig>> {
        match self {
            Self::Files { cert, key } => load_files(&cert, &key).map(Arc::new),
            Self::Config(config) => {
                if let Some(other) = config
                    .alpn_protocols
                    .iter()
                    .find(|p| !HTTP_1_X.contains(&p.as_slice()))
                {
                    return Err(WasenderError::InvalidArgument(format!(
                        "webhook listener: tls_config offers ALPN protocol {:?}, but the listener speaks only HTTP/1.1 (offer \"http/1.1\" or nothing)",
                        String::from_utf8_lossy(other)
                    )));
                }
                Ok(config)
            }
        }
    }
}

impl Shared {
    /// Serves connections over TLS with `config`, when there is one.
    pub(crate) fn with_tls(mut self, config: Option<Arc<ServerConfig>>) -> Self {
        self.tls = config;
        self
    }
}

impl<H: WebhookHandler + 'static> WebhookListenerBuilder<H> {
    /// Serves HTTPS (feature `tls`) with the certificate chain in `cert_path`
    /// and the private key in `key_path`, both PEM (default: plain HTTP).
    ///
    /// The chain starts with the server's own certificate, followed by any
    /// intermediates, as Let's Encrypt's `fullchain.pem` is; the key is PKCS#8
    /// (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1
    /// (`BEGIN EC PRIVATE KEY`). Both are read when [`spawn`](Self::spawn) is
    /// called, which fails with [`WasenderError::TlsFile`], naming the file,
    /// when one cannot be read, holds no certificate or key, or the key does
    /// not belong to the certificate. Files are read once: restart the
    /// listener to serve a renewed certificate.
    ///
    /// TLS 1.2 and 1.3 through `rustls` with the `ring` provider, ALPN
    /// `http/1.1`. Every bound of plain HTTP holds: the handshake runs on the
    /// connection's own thread and must finish within the
    /// [`request_timeout`](Self::request_timeout), each read within the
    /// [`read_timeout`](Self::read_timeout), and a handshaking connection
    /// counts against [`max_connections`](Self::max_connections). A client
    /// speaking plain HTTP to the port is answered 400 (unencrypted) and
    /// closed; any other non-TLS input gets a TLS alert and is closed.
    ///
    /// ```no_run
    /// # use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
    /// # struct Bot;
    /// # impl WebhookHandler for Bot { type Error = std::convert::Infallible; }
    /// let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
    ///     .bind("0.0.0.0:8443")
    ///     .tls("/etc/wasender/fullchain.pem", "/etc/wasender/privkey.pem")
    ///     .spawn()?;
    /// println!("POST events to https://{}/webhook", listener.local_addr());
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    ///
    /// Replaces an earlier [`tls_config`](Self::tls_config).
    pub fn tls(mut self, cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Self {
        self.tls = Some(TlsSource::Files {
            cert: cert_path.into(),
            key: key_path.into(),
        });
        self
    }

    /// Serves HTTPS (feature `tls`) with a `rustls` 0.23 configuration you
    /// built yourself: client certificates, a certificate resolver that
    /// reloads renewed files, another crypto provider, other protocol
    /// versions. The bounds are as with [`tls`](Self::tls).
    ///
    /// Its `alpn_protocols` must be empty or offer only `http/1.1` (and
    /// `http/1.0`): the listener speaks HTTP/1.1, so [`spawn`](Self::spawn)
    /// refuses a configuration offering `h2` with
    /// [`WasenderError::InvalidArgument`].
    ///
    /// Replaces an earlier [`tls`](Self::tls).
    pub fn tls_config(mut self, config: Arc<ServerConfig>) -> Self {
        self.tls = Some(TlsSource::Config(config));
        self
    }
}

/// Reads the PEM chain and key and builds the configuration (`ring`, TLS 1.2
/// and 1.3, ALPN `http/1.1`).
fn load_files(cert_path: &Path, key_path: &Path) -> Result<ServerConfig> {
    let cert_pem = read_pem_file(cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert_path, "certificate", e))?;
    if chain.is_empty() {
        return Err(pem_error(
            cert_path,
            "certificate",
            pem::Error::NoItemsFound,
        ));
    }
    let key_pem = read_pem_file(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| pem_error(key_path, "private key", e))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| rustls_error(cert_path, "cannot be served", e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                rustls_error(cert_path, "does not hold a usable certificate", e)
            }
            rustls::Error::InconsistentKeys(_) => {
                let what = format!(
                    "is not the private key of the certificate in {}",
                    cert_path.display()
                );
                rustls_error(key_path, &what, e)
            }
            e => rustls_error(key_path, "does not hold a usable private key", e),
        })?;
    config.alpn_protocols = vec![HTTP_1_1.to_vec()];
    Ok(config)
}

/// The bytes of a certificate or key file, at most [`MAX_PEM_FILE`].
fn read_pem_file(path: &Path) -> Result<Vec<u8>> {
    let tls_file = |reason: String, source: io::Error| WasenderError::TlsFile {
        path: path.to_owned(),
        reason,
        source: Some(Box::new(source)),
    };
    let file = File::open(path).map_err(|e| tls_file(format!("cannot open it: {e}"), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| tls_file(format!("cannot read it: {e}"), e))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(WasenderError::TlsFile {
            path: path.to_owned(),
            reason: format!("it is larger than {MAX_PEM_FILE} bytes, too large for a PEM file"),
            source: None,
        });
    }
    Ok(bytes)
}

fn pem_error(path: &Path, what: &str, error: pem::Error) -> WasenderError {
    let reason = match &error {
        pem::Error::NoItemsFound => match what {
            "certificate" => "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
            _ => "it holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)".to_owned(),
        },
        e => format!("its {what} is not valid PEM: {e}"),
    };
    WasenderError::TlsFile {
        path: path.to_owned(),
        reason,
        source: Some(Box::new(error)),
    }
}

fn rustls_error(path: &Path, what: &str, error: rustls::Error) -> WasenderError {
    WasenderError::TlsFile {
        path: path.to_owned(),
        reason: format!("it {what}: {error}"),
        source: Some(Box::new(error)),
    }
}

/// Serves one accepted connection over TLS: handshake within the request
/// timeout, then the listener's request loop over the encrypted stream. The
/// socket's timeouts are already set.
pub(crate) fn serve(
    sock: TcpStream,
    peer: SocketAddr,
    config: &Arc<ServerConfig>,
    shared: &Shared,
    jobs: &SyncSender<Job>,
) {
    let limits = &shared.limits;
    let deadline = Deadline::after(limits.request_timeout);
    match first_byte(&sock, limits.read_timeout.min(limits.request_timeout)) {
        Some(TLS_HANDSHAKE_RECORD) => {}
        Some(b'A'..=b'Z') => return refuse_plain_http(sock, peer, shared),
        // Other bytes: rustls answers them with an alert.
        Some(_) => {}
        None => return,
    }
    let conn = match ServerConnection::new(Arc::clone(config)) {
        Ok(conn) => conn,
        Err(e) => {
            log::warn!("could not start a TLS session for {peer}: {e}");
            return;
        }
    };
    let mut stream = TlsStream {
        conn,
        sock,
        read_timeout: limits.read_timeout,
    };
    if let Err(e) = stream.handshake(deadline, limits.write_timeout) {
        log::debug!("TLS handshake with {peer} failed: {e}");
        return;
    }
    serve_transport(&mut stream, peer, shared, jobs);
    // A clean end for a client that closed first or idled out; after an
    // answer with `Connection: close` this was already sent.
    stream.close();
}

/// The first byte the client sent, waiting at most `timeout`; `None` when it
/// closed or sent nothing in time.
fn first_byte(sock: &TcpStream, timeout: Duration) -> Option<u8> {
    let mut byte = [0u8; 1];
    if sock.set_read_timeout(Some(timeout)).is_err() {
        return None;
    }
    loop {
        match sock.peek(&mut byte) {
            Ok(0) => return None,
            Ok(_) => return Some(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Answers a plain-HTTP request on the TLS port with an unencrypted 400, then closes.
fn refuse_plain_http(mut sock: TcpStream, peer: SocketAddr, shared: &Shared) {
    log::debug!("plain HTTP from {peer} on the HTTPS port: answered 400");
    let counters = &shared.counters;
    counters.request_started();
    let response = Response::error(400, "this port speaks HTTPS: use an https:// URL");
    let _ = http::write_response(&mut sock, &response, false, false);
    counters.request_finished(Outcome::Malformed);
    // Read what the client is still sending for a short while, so that it
    // gets our answer rather than a connection reset.
    let _ = sock.shutdown(Shutdown::Write);
    let started = Instant::now();
    let mut discarded = 0;
    let mut sink = [0u8; 8192];
    while discarded < PLAIN_LINGER_BYTES {
        let Some(left) = PLAIN_LINGER_TIME.checked_sub(started.elapsed()) else {
            break;
        };
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match sock.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => discarded += n,
        }
    }
}

/// A server-side TLS session over its socket, read and written with the
/// listener's bounds.
struct TlsStream {
    conn: ServerConnection,
    sock: TcpStream,
    /// The longest one [`read`](Read::read) waits for decrypted bytes, over
    /// all the socket reads it takes.
    read_timeout: Duration,
}

impl TlsStream {
    /// Completes the handshake by `deadline`, each read waiting at most the
    /// read timeout and each write at most `write_timeout`.
    fn handshake(&mut self, deadline: Deadline, write_timeout: Duration) -> io::Result<()> {
        while self.conn.is_handshaking() {
            let left = deadline
                .remaining()
                .ok_or_else(|| io::Error::new(ErrorKind::TimedOut, "handshake deadline passed"))?;
            if self.conn.wants_write() {
                self.sock.set_write_timeout(Some(left.min(write_timeout)))?;
                self.conn.write_tls(&mut self.sock)?;
                continue;
            }
            self.sock
                .set_read_timeout(Some(left.min(self.read_timeout)))?;
            if self.conn.read_tls(&mut self.sock)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            self.process()?;
        }
        self.sock.set_write_timeout(Some(write_timeout))?;
        // The server's last handshake flight (and TLS 1.3 session tickets).
        self.push()
    }

    /// Processes the records received; on a protocol error, sends the alert
    /// rustls prepared and fails.
    fn process(&mut self) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.push();
                Err(io::Error::new(ErrorKind::InvalidData, e))
            }
        }
    }

    /// Writes every TLS record waiting to be sent.
    fn push(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock)? == 0 {
                return Err(ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Sends `close_notify` and stops writing.
    fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.push();
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let started = Instant::now();
        loop {
            match self.conn.reader().read(buf) {
                // Bytes, or 0 once the client sent `close_notify`.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // `UnexpectedEof`: the client closed without `close_notify`.
                Err(e) => return Err(e),
            }
            let left = self
                .read_timeout
                .checked_sub(started.elapsed())
                .filter(|left| !left.is_zero())
                .ok_or_else(|| io::Error::from(ErrorKind::TimedOut))?;
            self.sock.set_read_timeout(Some(left))?;
            // At end of stream rustls notes it; the next pass reports it.
            self.conn.read_tls(&mut self.sock)?;
            self.process()?;
            // Answers to post-handshake messages (a key update).
            self.push()?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.conn.writer().write(buf)?;
        self.push()?;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.writer().flush()?;
        self.push()
    }
}

impl Transport for TlsStream {
    fn shutdown_write(&mut self) {
        self.close();
    }

    fn limit_reads(&mut self, timeout: Duration) {
        self.read_timeout = timeout;
    }
}

//! HTTPS (feature `tls`): the certificate and key, and TLS over a
//! non-blocking socket.
//!
//! TLS itself is `rustls`, with the process's default crypto provider (the
//! `ring` provider that the client's `ureq` uses too, unless the program
//! installed another). What is ours is the wiring that keeps the listener's
//! bounds: a session is created only once the client's first byte shows a
//! TLS handshake, records are read and written as the socket allows, never
//! waiting, so a client trickling its records a byte at a time holds only
//! its own small buffers until its timeout, like any other slow client.
//! A client speaking plain HTTP to the port gets an unencrypted 400.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::panic::catch_unwind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

use super::transport::{PlainHttp, Transport};
use crate::error::{Result, WasenderError};

/// The only application protocol the listener speaks, offered through ALPN.
const HTTP_1_1: &[u8] = b"http/1.1";
/// Protocols a [`ServerConfig`] given to `tls_config` may offer through ALPN.
const HTTP_1_X: [&[u8]; 2] = [HTTP_1_1, b"http/1.0"];
/// The largest certificate or key file read: PEM chains are a few KiB.
const MAX_PEM_FILE: u64 = 1 << 20;

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

    // A library uses the process's default provider (rustls resolves it
    // from its crate features, `ring` here, unless the program installed
    // one); it panics when both providers are compiled in and none was chosen.
    let builder = catch_unwind(ServerConfig::builder).map_err(|_| {
        WasenderError::InvalidArgument(
            "webhook listener: rustls has more than one crypto provider compiled in; call \
             rustls::crypto::CryptoProvider::install_default() before starting the listener"
                .to_owned(),
        )
    })?;
    let mut config = builder
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

/// TLS over a non-blocking socket. The session is created when the
/// client's first byte shows a TLS handshake.
#[derive(Debug)]
pub(crate) struct Tls {
    sock: mio::net::TcpStream,
    config: Arc<ServerConfig>,
    session: Option<Box<ServerConnection>>,
    /// The client spoke plain HTTP: reads and writes bypass TLS (to answer 400).
    plain: bool,
    drained: bool,
}

/// The first byte of a TLS handshake record (content type 22).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

impl Tls {
    pub fn new(sock: mio::net::TcpStream, config: Arc<ServerConfig>) -> Self {
        Self {
            sock,
            config,
            session: None,
            plain: false,
            drained: false,
        }
    }

    /// The socket, to register it.
    pub fn socket(&mut self) -> &mut mio::net::TcpStream {
        &mut self.sock
    }

    /// Starts the session once the first byte is in: a TLS record, or
    /// anything but an HTTP method (which rustls answers with an alert).
    fn start(&mut self) -> io::Result<()> {
        let mut first = [0u8; 1];
        let n = loop {
            match self.sock.peek(&mut first) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        if first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_uppercase() {
            self.plain = true;
            return Err(io::Error::new(ErrorKind::InvalidData, PlainHttp));
        }
        let session = ServerConnection::new(Arc::clone(&self.config)).map_err(io::Error::other)?;
        self.session = Some(Box::new(session));
        Ok(())
    }

    /// Writes every TLS record the session has ready, as far as the socket takes them.
    fn push(sock: &mut mio::net::TcpStream, session: &mut ServerConnection) -> io::Result<()> {
        while session.wants_write() {
            match session.write_tls(sock) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Transport for Tls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.plain {
            return self.sock.read(buf);
        }
        if self.session.is_none() {
            self.start()?;
        }
        let Some(session) = self.session.as_deref_mut() else {
            return Err(ErrorKind::NotConnected.into());
        };
        loop {
            match session.reader().read(buf) {
                // Bytes, or 0 once the client sent `close_notify`.
                Ok(n) => {
                    self.drained = false;
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // `UnexpectedEof`: the client closed without `close_notify`.
                Err(e) => return Err(e),
            }
            match session.read_tls(&mut self.sock) {
                // The end of the stream: rustls notes it, the reader reports it next.
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.kind() == ErrorKind::WouldBlock {
                        self.drained = true;
                    }
                    return Err(e);
                }
            }
            let processed = session.process_new_packets();
            // The handshake's next flight, an alert, or an answer to a key update.
            match Self::push(&mut self.sock, session) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = processed {
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
        }
    }

    fn drained(&self) -> bool {
        self.drained
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.plain {
            return self.sock.write(buf);
        }
        let Some(session) = self.session.as_deref_mut() else {
            return Err(ErrorKind::NotConnected.into());
        };
        let taken = session.writer().write(buf)?;
        match Self::push(&mut self.sock, session) {
            Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
            _ if taken == 0 => Err(ErrorKind::WouldBlock.into()),
            _ => Ok(taken),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.session.as_deref_mut() {
            Some(session) if !self.plain => Self::push(&mut self.sock, session),
            _ => Ok(()),
        }
    }

    fn shutdown_write(&mut self) {
        if let Some(session) = self.session.as_deref_mut().filter(|_| !self.plain) {
            session.send_close_notify();
            let _ = Self::push(&mut self.sock, session);
        }
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}

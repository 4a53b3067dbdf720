//! HTTPS (feature `tls`): events served over TLS with a certificate made at
//! test time, and the same bounds as plain HTTP for clients that stall,
//! trickle or do not speak TLS at all.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};
use wasenderapi::listener::WebhookListenerBuilder;
use wasenderapi::{WasenderError, WebhookListener};

use crate::support::http::{post_request, read_response};
use crate::support::listener::{builder, verifier};
use crate::support::{event, signature, wait_for, Conn, Recorder, Response, TempDir};

/// A test certificate authority, and a server certificate it signed for
/// `localhost` and `127.0.0.1`, written as PEM files.
struct TestPki {
    dir: TempDir,
    ca: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl TestPki {
    fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        let server_key = KeyPair::generate().expect("server key");
        let server = server_params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");

        let pki = Self {
            dir: TempDir::new("tls"),
            ca: ca.der().clone(),
            cert_pem: server.pem(),
            key_pem: server_key.serialize_pem(),
        };
        pki.write("cert.pem", &pki.cert_pem);
        pki.write("key.pem", &pki.key_pem);
        pki
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write PEM file");
        path
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// The server's certificate chain and key, parsed back from the PEM files.
    fn server_identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let cert = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("cert PEM");
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("key PEM");
        (vec![cert], key)
    }

    /// A client configuration trusting only the test CA, offering ALPN http/1.1.
    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca.clone())
            .expect("CA is a valid trust anchor");
        let mut config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A test listener serving HTTPS with `pki`'s server certificate.
fn tls_builder(pki: &TestPki, recorder: Arc<Recorder>) -> WebhookListenerBuilder<Recorder> {
    builder(recorder).tls(pki.cert_path(), pki.key_path())
}

/// Timeouts long enough that "served while another client stalls" is
/// unambiguous on a loaded machine.
fn slow_timeouts(builder: WebhookListenerBuilder<Recorder>) -> WebhookListenerBuilder<Recorder> {
    builder
        .idle_timeout(Duration::from_millis(1000))
        .request_timeout(Duration::from_millis(1500))
}

/// A keep-alive HTTPS connection.
struct Https(StreamOwned<ClientConnection, TcpStream>);

impl Https {
    /// Connects and completes the handshake, or returns the error that ended it.
    fn try_connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Self> {
        let sock = TcpStream::connect(addr)?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::try_from("localhost").expect("a valid DNS name");
        let conn = ClientConnection::new(config, name).expect("client session");
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Self(stream))
    }

    fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> Self {
        Self::try_connect(addr, config).expect("TLS handshake")
    }

    fn post_signed(&mut self, body: &[u8]) -> Response {
        let request = post_request("/webhook", body, Some(&signature(body)));
        self.0.write_all(&request).expect("send over TLS");
        self.read_reply()
    }

    fn get(&mut self, path: &str) -> Response {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.0.write_all(request.as_bytes()).expect("send over TLS");
        self.read_reply()
    }

    fn read_reply(&mut self) -> Response {
        read_response(&mut self.0, true).expect("a response")
    }
}

/// Reads raw bytes until the server closes the connection; `None` if it is
/// still open after `timeout`.
fn read_until_closed(sock: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = timeout.checked_sub(started.elapsed())?;
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.read(&mut buf) {
            Ok(0) => return Some(received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            // A reset is a close too.
            Err(_) => return Some(received),
        }
    }
}

/// The bytes of a real TLS ClientHello for `localhost`.
fn client_hello(config: Arc<ClientConfig>) -> Vec<u8> {
    let name = ServerName::try_from("localhost").expect("a valid DNS name");
    let mut conn = ClientConnection::new(config, name).expect("client session");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("write to a Vec");
    hello
}

/// Writes `bytes` one at a time, `every` apart (a client slow on purpose),
/// until the peer closes or all are sent.
fn trickle(mut sock: TcpStream, bytes: Vec<u8>, every: Duration) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for byte in bytes {
            thread::sleep(every);
            if sock.write_all(&[byte]).is_err() {
                return;
            }
        }
    })
}

#[test]
fn signed_event_over_https_is_handled_on_a_keep_alive_connection() {
    let pki = TestPki::new();
    let recorder = Arc::new(Recorder::default());
    let listener = tls_builder(&pki, Arc::clone(&recorder)).spawn().unwrap();
    let mut conn = Https::connect(listener.local_addr(), pki.client_config());
    assert_eq!(conn.0.conn.alpn_protocol(), Some(&b"http/1.1"[..]));

    let reply = conn.post_signed(&event("TLS-1", "hello"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["event"], "messages.received");
    assert_eq!(reply.header("connection"), Some("keep-alive"));
    // The same routing and answers as plain HTTP, on the same connection.
    assert_eq!(conn.get("/healthz").status, 200);
    assert_eq!(conn.post_signed(&event("TLS-2", "again")).status, 200);
    assert_eq!(conn.get("/elsewhere").status, 404);

    assert_eq!((recorder.count("TLS-1"), recorder.count("TLS-2")), (1, 1));
    let stats = listener.shutdown();
    assert_eq!((stats.handled, stats.health_checks), (2, 1));
}

#[test]
fn unsigned_large_and_oversized_requests_get_the_plain_http_answers() {
    let pki = TestPki::new();
    let recorder = Arc::new(Recorder::default());
    let listener = tls_builder(&pki, Arc::clone(&recorder))
        .max_body_bytes(256 * 1024)
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    let mut conn = Https::connect(addr, pki.client_config());
    let body = br#"{"event":"session.status"}"#;
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.0.write_all(head.as_bytes()).unwrap();
    conn.0.write_all(body).unwrap();
    assert_eq!(conn.read_reply().status, 401);

    // Many TLS records under the limit: read whole; over it: refused.
    let mut conn = Https::connect(addr, pki.client_config());
    let large = event("LARGE", &"x".repeat(200 * 1024));
    assert_eq!(conn.post_signed(&large).status, 200);
    assert_eq!(recorder.count("LARGE"), 1);
    let too_large = event("TOO-LARGE", &"x".repeat(300 * 1024));
    assert_eq!(conn.post_signed(&too_large).status, 413);
    let stats = listener.shutdown();
    assert_eq!((stats.rejected_signature, stats.rejected_too_large), (1, 1));
}

#[cfg(feature = "client")]
#[test]
fn ureq_trusting_the_test_ca_posts_an_event_over_https() {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};

    let pki = TestPki::new();
    let recorder = Arc::new(Recorder::default());
    let listener = tls_builder(&pki, Arc::clone(&recorder)).spawn().unwrap();
    let roots = RootCerts::new_with_certs(&[Certificate::from_der(&pki.ca).to_owned()]);
    let agent = ureq::Agent::config_builder()
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .http_status_as_error(false)
        .build()
        .new_agent();
    let body = event("UREQ-1", "hi");
    let url = format!("https://{}/webhook", listener.local_addr());
    let response = agent
        .post(&url)
        .header("X-Webhook-Signature", signature(&body))
        .header("Content-Type", "application/json")
        .send(&body[..])
        .expect("HTTPS request");
    assert_eq!(response.status(), 200);
    assert_eq!(recorder.count("UREQ-1"), 1);
    listener.shutdown();
}

#[test]
fn tls_config_serves_a_configuration_built_by_hand() {
    let pki = TestPki::new();
    let (chain, key) = pki.server_identity();
    let config = ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .tls_config(Arc::new(config))
        .spawn()
        .unwrap();
    let mut conn = Https::connect(listener.local_addr(), pki.client_config());
    assert_eq!(
        conn.0.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(conn.post_signed(&event("OWN-1", "x")).status, 200);
    assert_eq!(recorder.count("OWN-1"), 1);
    listener.shutdown();
}

#[test]
fn stalled_handshakes_time_out_while_another_client_is_served() {
    let pki = TestPki::new();
    let recorder = Arc::new(Recorder::default());
    let listener = slow_timeouts(tls_builder(&pki, Arc::clone(&recorder)).workers(1))
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    // One connects and sends nothing; one stops halfway through its ClientHello.
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut halfway = TcpStream::connect(addr).unwrap();
    let hello = client_hello(pki.client_config());
    halfway.write_all(&hello[..hello.len() / 2]).unwrap();
    let started = Instant::now();

    let mut conn = Https::connect(addr, pki.client_config());
    assert_eq!(conn.post_signed(&event("MEANWHILE", "x")).status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "served while two handshakes stall ({:?})",
        started.elapsed()
    );

    for (name, sock) in [("silent", &mut silent), ("halfway", &mut halfway)] {
        let received = read_until_closed(sock, Duration::from_secs(3));
        assert!(received.is_some(), "{name} connection closed by the server");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_millis(2500),
        "closed by the read timeout (1 s), not at once and not never: {elapsed:?}"
    );
    assert_eq!(recorder.count("MEANWHILE"), 1);
    listener.shutdown();
}

#[test]
fn trickled_handshake_is_cut_off_at_the_idle_timeout() {
    let pki = TestPki::new();
    let listener = slow_timeouts(tls_builder(&pki, Arc::new(Recorder::default())))
        .spawn()
        .unwrap();
    let mut sock = TcpStream::connect(listener.local_addr()).unwrap();
    let started = Instant::now();
    // No request byte arrives while the handshake trickles in: the
    // connection is idle, and goes at the 1 s idle timeout.
    let trickler = trickle(
        sock.try_clone().unwrap(),
        client_hello(pki.client_config()),
        Duration::from_millis(100),
    );
    let received = read_until_closed(&mut sock, Duration::from_secs(5));
    let elapsed = started.elapsed();
    assert!(received.is_some(), "closed by the server");
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_millis(2500),
        "cut off at the idle timeout (1 s): {elapsed:?}"
    );
    let _ = sock.shutdown(std::net::Shutdown::Both);
    trickler.join().unwrap();
    listener.shutdown();
}

#[test]
fn request_trickled_inside_one_tls_record_is_cut_off_at_the_idle_timeout() {
    let pki = TestPki::new();
    let recorder = Arc::new(Recorder::default());
    let listener = tls_builder(&pki, Arc::clone(&recorder))
        .idle_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_secs(10))
        .spawn()
        .unwrap();
    let Https(mut stream) = Https::connect(listener.local_addr(), pki.client_config());
    // The whole request in one encrypted record, sent a byte every 50 ms: no
    // decrypted byte arrives before the record is complete, so the
    // connection stays idle and goes at the idle timeout.
    let body = event("TRICKLED", "x");
    let request = format!(
        "POST /webhook HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nX-Webhook-Signature: {}\r\n\r\n",
        body.len(),
        signature(&body)
    );
    stream.conn.writer().write_all(request.as_bytes()).unwrap();
    stream.conn.writer().write_all(&body).unwrap();
    let mut record = Vec::new();
    while stream.conn.wants_write() {
        stream.conn.write_tls(&mut record).unwrap();
    }
    let started = Instant::now();
    let trickler = trickle(
        stream.sock.try_clone().unwrap(),
        record,
        Duration::from_millis(50),
    );
    let received = read_until_closed(&mut stream.sock, Duration::from_secs(5));
    let elapsed = started.elapsed();
    assert!(received.is_some(), "closed by the server");
    assert!(
        elapsed < Duration::from_millis(2000),
        "closed at the idle timeout (0.5 s), not at the 10 s deadline: {elapsed:?}"
    );
    let _ = stream.sock.shutdown(std::net::Shutdown::Both);
    trickler.join().unwrap();
    assert_eq!(recorder.count("TRICKLED"), 0);
    listener.shutdown();
}

#[test]
fn plain_http_to_the_tls_port_is_answered_400_and_closed() {
    let pki = TestPki::new();
    let recorder = Arc::new(Recorder::default());
    let listener = tls_builder(&pki, Arc::clone(&recorder)).spawn().unwrap();
    let mut conn = Conn::open(listener.local_addr());
    let reply = conn.post_signed(&event("PLAIN", "x"));
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("https://"), "{}", reply.body);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(conn.is_closed_within(Duration::from_secs(2)));
    assert_eq!(recorder.count("PLAIN"), 0);
    assert_eq!(listener.shutdown().rejected_malformed, 1);
}

#[test]
fn bytes_that_are_not_tls_get_an_alert_and_the_connection_closed() {
    let pki = TestPki::new();
    let listener = tls_builder(&pki, Arc::new(Recorder::default()))
        .spawn()
        .unwrap();
    let mut sock = TcpStream::connect(listener.local_addr()).unwrap();
    sock.write_all(b"\x00\x01\x02\x03 not a TLS record\r\n\r\n")
        .unwrap();
    let received = read_until_closed(&mut sock, Duration::from_secs(2)).expect("closed");
    // 0x15: an alert record.
    assert_eq!(received.first(), Some(&0x15), "{received:?}");
    listener.shutdown();
}

#[test]
fn a_silent_connection_at_the_cap_makes_room_for_an_https_client() {
    let pki = TestPki::new();
    let listener = tls_builder(&pki, Arc::new(Recorder::default()))
        .max_connections(1)
        .max_connections_per_peer(1)
        .idle_timeout(Duration::from_secs(30))
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    let mut silent = TcpStream::connect(addr).unwrap();
    wait_for(
        "the listener to take the silent connection in first",
        Duration::from_secs(5),
        || listener.stats().open_connections == 1,
    );
    let mut conn = Https::connect(addr, pki.client_config());
    assert_eq!(conn.get("/healthz").status, 200);
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(2)).is_some(),
        "the silent connection was closed to make room"
    );
    listener.shutdown();
}

#[test]
fn missing_certificate_file_fails_spawn_naming_it() {
    let pki = TestPki::new();
    let missing = pki.dir.join("no-such-cert.pem");
    let err = builder(Arc::new(Recorder::default()))
        .tls(&missing, pki.key_path())
        .spawn()
        .unwrap_err();
    match &err {
        WasenderError::TlsFile { path, .. } => assert_eq!(path, &missing),
        other => panic!("expected TlsFile, got {other:?}"),
    }
    assert!(err.to_string().contains("no-such-cert.pem"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn certificate_file_without_a_certificate_fails_spawn_naming_it() {
    let pki = TestPki::new();
    // Certificate and key swapped, as happens when pasting paths.
    let err = builder(Arc::new(Recorder::default()))
        .tls(pki.key_path(), pki.cert_path())
        .spawn()
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, WasenderError::TlsFile { .. }), "{err:?}");
    assert!(
        text.contains("key.pem") && text.contains("no PEM certificate"),
        "{text}"
    );

    let garbage = pki.write("garbage.pem", "-----BEGIN CERTIFICATE-----\n!!!!\n");
    let err = builder(Arc::new(Recorder::default()))
        .tls(&garbage, pki.key_path())
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("garbage.pem"), "{err}");
}

#[test]
fn key_of_another_certificate_fails_spawn_naming_the_key_file() {
    let pki = TestPki::new();
    let other_key = pki.write(
        "other-key.pem",
        &KeyPair::generate().unwrap().serialize_pem(),
    );
    let err = builder(Arc::new(Recorder::default()))
        .tls(pki.cert_path(), &other_key)
        .spawn()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("other-key.pem") && text.contains("not the private key"),
        "{text}"
    );
    assert!(!text.contains(&pki.key_pem[40..80]), "no key material");
}

#[test]
fn tls_config_offering_h2_is_refused() {
    let pki = TestPki::new();
    let (chain, key) = pki.server_identity();
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let err = WebhookListener::builder(verifier(), Arc::new(Recorder::default()))
        .bind("127.0.0.1:0")
        .tls_config(Arc::new(config))
        .spawn()
        .unwrap_err();
    assert!(matches!(err, WasenderError::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("h2"), "{err}");
}

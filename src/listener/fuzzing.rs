//! The listener's production pairing over in-memory bytes, for the fuzz
//! target in `fuzz/` (compiled only with `--cfg fuzzing`, as cargo-fuzz
//! builds) and for the unit tests.
//!
//! [`serve_script`] runs exactly what a TCP connection in inline mode runs:
//! the connection state machine of the HTTP core (head parsing, framing,
//! limits, `Expect`, keep-alive, pipelining, lingering), the connection
//! table (timeouts, with a clock moved by hand), the hand-off of a complete
//! request ([`Job::run`](super::http) and `Conn::complete`), and the
//! listener's service (routing, verification, decoding, inline delivery to
//! a handler, the answers). Only the socket is replaced by memory.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::delivery::{Delivery, InlineDelivery};
use super::http::testing::{
    Admission, AnswerLater, Clock, Conn, ConnLimits, Doom, Env, Home, ManualClock, Memory, Next,
    Table, TableLimits, LINGER_TIME,
};
use super::http::{Later, Peer};
use super::service::WebhookService;
use super::stats::Counters;
use crate::handler::WebhookHandler;
use crate::signature::verifier::WebhookVerifier;

/// The head limit used by [`serve_script`].
pub const FUZZ_MAX_HEAD: usize = 4096;
/// The body limit used by [`serve_script`].
pub const FUZZ_MAX_BODY: usize = 16 * 1024;
/// The webhook path served by [`serve_script`].
pub const FUZZ_PATH: &str = "/webhook";

/// The table's timeouts under [`serve_script`]: a pause of up to 1.5 s
/// between pieces of input makes each reachable.
fn limits() -> TableLimits {
    TableLimits {
        max_connections: 16,
        max_per_peer: 16,
        max_buffered_bytes: 1 << 30,
        idle_timeout: Duration::from_millis(1000),
        header_timeout: Duration::from_millis(2000),
        request_timeout: Duration::from_millis(4000),
        write_timeout: Duration::from_millis(1000),
        linger_time: LINGER_TIME,
    }
}

/// What one scripted connection got back.
#[derive(Debug, Default)]
pub struct Served {
    /// The status of each answer written, in order (an interim `100 Continue` included).
    pub statuses: Vec<u16>,
    /// Whether each answer said `Connection: close`.
    pub closing: Vec<bool>,
    /// Every byte written back.
    pub output: Vec<u8>,
    /// Bytes written after an answer that said `Connection: close` (must be 0).
    pub after_close: usize,
    /// Bytes left over that do not parse as answers (must be 0).
    pub garbage: usize,
}

/// Serves `script` on one connection: its first byte chooses how the rest
/// is cut into pieces (1 to 8,192 bytes), its second the pause between
/// pieces (0 to 1.5 s, by a clock moved by hand) and whether the client
/// closes its side at the end; the rest is what the client sends. At the
/// end the clock moves a minute on, so any timeout left fires.
pub fn serve_script(verifier: &WebhookVerifier, script: &[u8]) -> Served {
    let (size, pause, close) = match script {
        [a, b, ..] => (
            1 + (*a as usize * 257) % 8192,
            Duration::from_millis(u64::from(b & 0x0f) * 100),
            b & 0x80 != 0,
        ),
        _ => (8192, Duration::ZERO, true),
    };
    let input = script.get(2..).unwrap_or_default();
    let pieces: Vec<&[u8]> = input.chunks(size).collect();
    serve_pieces(verifier, &pieces, pause, close)
}

/// Serves the pieces one after the other, `pause` apart; `close`: the client
/// closes its side after the last one.
pub fn serve_pieces(
    verifier: &WebhookVerifier,
    pieces: &[&[u8]],
    pause: Duration,
    close: bool,
) -> Served {
    let counters = Arc::new(Counters::default());
    let delivery: Arc<dyn Delivery> = Arc::new(InlineDelivery::new(
        Arc::new(AcceptAll),
        None,
        Arc::clone(&counters),
    ));
    let service = WebhookService::new(verifier.clone(), delivery, counters, FUZZ_PATH.to_owned());
    let clock = ManualClock::new();
    let table = Mutex::new(Table::new(limits()));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000));
    let mut dooms = Vec::new();
    let admitted = crate::sync::lock(&table).admit(addr.ip(), false, 0, clock.now(), &mut dooms);
    let Admission::Admitted(home) = admitted else {
        return Served::default();
    };
    let peer = Peer {
        addr,
        forwarded_for: None,
    };
    let mut conn = Conn::new(home, Memory::default(), peer);
    let mut scratch = vec![0u8; 64 * 1024];
    let mut run = Run {
        table: &table,
        service: &service,
        clock: &clock,
        scratch: &mut scratch,
        dooms,
        home,
        peer,
        later: Arc::default(),
    };
    let mut open = true;
    for piece in pieces {
        conn.transport.input.extend(piece.iter());
        conn.readable(false);
        open = run.drive(&mut conn);
        if !open {
            break;
        }
        clock.advance(pause);
        open = run.sweep(&mut conn);
        if !open {
            break;
        }
    }
    if open && close {
        conn.transport.eof = true;
        conn.readable(true);
        open = run.drive(&mut conn);
    }
    if open {
        clock.advance(Duration::from_secs(60));
        run.sweep(&mut conn);
    }
    answers(conn.transport.output)
}

/// One scripted connection's surroundings.
struct Run<'a> {
    table: &'a Mutex<Table>,
    service: &'a WebhookService,
    clock: &'a ManualClock,
    scratch: &'a mut [u8],
    dooms: Vec<(Home, Doom)>,
    home: Home,
    peer: Peer,
    later: Arc<Answered>,
}

/// Where a later answer lands under [`serve_script`].
#[derive(Default)]
struct Answered(Mutex<Option<super::http::Response>>);

impl AnswerLater for Answered {
    fn answer(&self, _home: Home, response: super::http::Response) {
        *crate::sync::lock(&self.0) = Some(response);
    }
}

impl Run<'_> {
    fn env(&mut self) -> Env<'_> {
        Env {
            table: self.table,
            service: self.service,
            limits: ConnLimits {
                max_head_bytes: FUZZ_MAX_HEAD,
                max_body_bytes: FUZZ_MAX_BODY,
            },
            clock: self.clock,
            trusted: &[],
            scratch: self.scratch,
            draining: false,
            dooms: &mut self.dooms,
        }
    }

    /// Drives the connection as a core does, running each complete request
    /// through the same hand-off; `false` once it closed.
    fn drive(&mut self, conn: &mut Conn<Memory>) -> bool {
        let mut next = conn.drive(&mut self.env());
        loop {
            match next {
                Next::Wait => return true,
                Next::Close => {
                    crate::sync::lock(self.table).remove(self.home);
                    return false;
                }
                Next::Yield => next = conn.drive(&mut self.env()),
                Next::Process(job) => {
                    let later =
                        Later::new(Arc::clone(&self.later) as Arc<dyn AnswerLater>, self.home);
                    let answered = job.run(self.service, self.peer, later);
                    // An answer given later arrives as it would through a core's inbox.
                    let response = answered.or_else(|| crate::sync::lock(&self.later.0).take());
                    let Some(response) = response else {
                        return true;
                    };
                    conn.complete(&mut self.env(), Some(job.body), &response);
                    next = conn.drive(&mut self.env());
                }
            }
        }
    }

    /// Fires what the clock made due; `false` once the connection closed.
    fn sweep(&mut self, conn: &mut Conn<Memory>) -> bool {
        let now = self.clock.now();
        crate::sync::lock(self.table).sweep(now, &mut self.dooms);
        let mine: Vec<Doom> = self
            .dooms
            .drain(..)
            .filter(|(home, _)| *home == self.home)
            .map(|(_, doom)| doom)
            .collect();
        for doom in mine {
            match conn.doomed(&mut self.env(), doom) {
                Next::Close => {
                    crate::sync::lock(self.table).remove(self.home);
                    return false;
                }
                _ => {
                    if !self.drive(conn) {
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// Splits what was written back into answers.
fn answers(output: Vec<u8>) -> Served {
    let mut served = Served::default();
    let mut rest = output.as_slice();
    while !rest.is_empty() {
        if served.closing.last() == Some(&true) {
            served.after_close = rest.len();
            break;
        }
        let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
            served.garbage = rest.len();
            break;
        };
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let status = head
            .get(9..12)
            .and_then(|digits| digits.parse().ok())
            .unwrap_or(0);
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        served.statuses.push(status);
        served
            .closing
            .push(head.lines().any(|line| line == "Connection: close"));
        let total = (end + 4 + length).min(rest.len());
        rest = &rest[total..];
    }
    served.output = output;
    served
}

/// A handler that accepts every event.
struct AcceptAll;

impl WebhookHandler for AcceptAll {
    type Error = Infallible;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{sign_webhook, SignatureScheme};

    const SECRET: &str = "fuzz-secret";

    fn verifier() -> WebhookVerifier {
        WebhookVerifier::with_secret(SECRET)
    }

    /// Serves `input` sent at once, no pause; the client then closes.
    fn serve(input: &[u8]) -> Served {
        serve_pieces(&verifier(), &[input], Duration::ZERO, true)
    }

    fn post(body: &[u8], signature: Option<&str>) -> Vec<u8> {
        let mut request = b"POST /webhook HTTP/1.1\r\nHost: x\r\n".to_vec();
        if let Some(signature) = signature {
            request.extend_from_slice(format!("X-Webhook-Signature: {signature}\r\n").as_bytes());
        }
        request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(body);
        request
    }

    fn signed(body: &[u8]) -> Vec<u8> {
        post(
            body,
            Some(&sign_webhook(SignatureScheme::SharedSecret, SECRET, body)),
        )
    }

    const EVENT: &[u8] = br#"{"event":"session.status","data":{"status":"connected"}}"#;

    #[test]
    fn a_signed_event_is_200() {
        let served = serve(&signed(EVENT));
        assert_eq!(served.statuses, [200]);
        assert!(served.output.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(served
            .output
            .ends_with(br#"{"status":"success","event":"session.status"}"#));
    }

    #[test]
    fn a_request_sent_a_byte_at_a_time_is_served_the_same() {
        let input = signed(EVENT);
        let pieces: Vec<&[u8]> = input.chunks(1).collect();
        let served = serve_pieces(&verifier(), &pieces, Duration::ZERO, false);
        assert_eq!(served.statuses, [200]);
    }

    #[test]
    fn a_signed_body_that_is_not_json_is_400_and_a_missing_signature_401() {
        assert_eq!(serve(&signed(b"{not json")).statuses, [400]);
        assert_eq!(serve(&post(EVENT, None)).statuses, [401]);
    }

    #[test]
    fn an_oversized_head_is_431_and_closes() {
        let mut input = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(FUZZ_MAX_HEAD)
        )
        .into_bytes();
        input.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let served = serve(&input);
        assert_eq!(served.statuses, [431]);
        assert_eq!(served.closing, [true]);
        assert!(served
            .output
            .starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    }

    #[test]
    fn a_body_over_the_limit_is_413_by_its_bytes_too() {
        // Chunked: no length is declared, the bytes themselves go over.
        let big = "a".repeat(FUZZ_MAX_BODY + 1);
        let input = format!(
            "POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
            big.len()
        );
        assert_eq!(serve(input.as_bytes()).statuses, [413]);
        let pieces = [
            "POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned(),
        ]
        .into_iter()
        .chain((0..=FUZZ_MAX_BODY / 1000).map(|_| format!("3e8\r\n{}\r\n", "b".repeat(1000))))
        .collect::<Vec<_>>();
        let pieces: Vec<&[u8]> = pieces.iter().map(|p| p.as_bytes()).collect();
        let served = serve_pieces(&verifier(), &pieces, Duration::ZERO, false);
        assert_eq!(served.statuses, [413]);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_until_one_closes() {
        let mut input = signed(EVENT);
        input.extend_from_slice(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        input.extend_from_slice(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
        );
        input.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let served = serve(&input);
        assert_eq!(served.statuses, [200, 200, 404, 413]);
        assert_eq!(served.closing, [false, false, false, true]);
        assert_eq!(served.after_close, 0);
    }

    #[test]
    fn expect_continue_is_told_to_go_on_only_when_it_is_worth_it() {
        let signature = sign_webhook(SignatureScheme::SharedSecret, SECRET, EVENT);
        let head = |extra: &str| {
            format!(
                "POST /webhook HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n{extra}Content-Length: {}\r\n\r\n",
                EVENT.len()
            )
        };
        // The client waits for the go-ahead before sending its body.
        let signed_head = head(&format!("X-Webhook-Signature: {signature}\r\n"));
        let served = serve_pieces(
            &verifier(),
            &[signed_head.as_bytes(), EVENT],
            Duration::ZERO,
            true,
        );
        assert_eq!(served.statuses, [100, 200]);
        // No signature: the final answer at once, no 100.
        let served = serve_pieces(&verifier(), &[head("").as_bytes()], Duration::ZERO, false);
        assert_eq!(served.statuses, [401]);
        assert_eq!(served.closing, [true]);
        // Another path: 404 at once.
        let other = head("").replace("/webhook", "/elsewhere");
        let served = serve_pieces(&verifier(), &[other.as_bytes()], Duration::ZERO, false);
        assert_eq!(served.statuses, [404]);
    }

    #[test]
    fn rfc_9112_host_and_framing_rules() {
        let cases: [(&[u8], u16); 6] = [
            (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.0\r\n\r\n", 200),
            (
                b"POST /webhook HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400,
            ),
            (
                b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (b"GET http://example.com/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        ];
        for (input, status) in cases {
            let served = serve(input);
            assert_eq!(
                served.statuses,
                [status],
                "{}",
                String::from_utf8_lossy(input)
            );
            if status == 400 {
                assert_eq!(served.closing, [true]);
            }
        }
        let absolute = format!(
            "POST http://example.com/webhook HTTP/1.1\r\nHost: example.com\r\nX-Webhook-Signature: {}\r\nContent-Length: {}\r\n\r\n",
            sign_webhook(SignatureScheme::SharedSecret, SECRET, EVENT),
            EVENT.len()
        );
        let mut input = absolute.into_bytes();
        input.extend_from_slice(EVENT);
        assert_eq!(serve(&input).statuses, [200]);
    }

    #[test]
    fn not_http_is_400_and_another_version_505() {
        assert_eq!(serve(b"NONSENSE\r\n\r\n").statuses, [400]);
        assert_eq!(serve(b"GET /healthz HTTP/2.0\r\n\r\n").statuses, [505]);
    }

    #[test]
    fn a_stalled_head_is_408_by_the_clock_and_an_idle_connection_just_closes() {
        let served = serve_pieces(
            &verifier(),
            &[b"POST /webhook HTTP/1.1\r\nHost: x\r\n"],
            Duration::ZERO,
            false,
        );
        assert_eq!(served.statuses, [408]);
        let served = serve_pieces(&verifier(), &[b""], Duration::ZERO, false);
        assert!(served.statuses.is_empty());
        assert!(served.output.is_empty());
    }

    /// Every answer is one the listener documents; refusals close the
    /// connection and nothing is written after an answer that closed it.
    fn check(served: &Served, script: &[u8]) {
        let context = || String::from_utf8_lossy(script).into_owned();
        assert_eq!(served.garbage, 0, "{}", context());
        assert_eq!(served.after_close, 0, "{}", context());
        for (i, status) in served.statuses.iter().enumerate() {
            assert!(
                matches!(
                    status,
                    100 | 200 | 400 | 401 | 404 | 405 | 408 | 413 | 431 | 500 | 503 | 505
                ),
                "unexpected status {status}: {}",
                context()
            );
            if matches!(status, 400 | 408 | 413 | 431 | 505) {
                assert!(served.closing[i], "{status} must close: {}", context());
            }
        }
    }

    #[test]
    fn random_scripts_get_only_documented_answers() {
        // A small, deterministic fuzz run on stable (cargo-fuzz runs the same
        // entry with coverage guidance): requests spliced from valid pieces,
        // mutated, cut and paused at random.
        let pieces: [&[u8]; 12] = [
            b"POST /webhook HTTP/1.1\r\n",
            b"Host: x\r\n",
            b"Content-Length: 57\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"X-Webhook-Signature: fuzz-secret\r\n",
            b"Expect: 100-continue\r\n",
            b"\r\n",
            EVENT,
            b"5\r\nhello\r\n0\r\n\r\n",
            b"GET /healthz HTTP/1.0\r\n",
            b"Connection: close\r\n",
            b"\xff\x00 \n",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut script = vec![(next() % 256) as u8, (next() % 256) as u8];
            for _ in 0..next() % 24 {
                let piece = pieces[(next() % pieces.len() as u64) as usize];
                script.extend_from_slice(piece);
                if next() % 8 == 0 {
                    let at = (next() as usize) % script.len();
                    script[at] = (next() % 256) as u8;
                }
            }
            let served = serve_script(&verifier(), &script);
            check(&served, &script);
        }
    }

    #[test]
    fn large_scripts_reach_the_limits_by_their_bytes() {
        let mut script = vec![200, 0];
        script.extend_from_slice(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Pad: ");
        script.extend(std::iter::repeat_n(b'p', 70 * 1024));
        let served = serve_script(&verifier(), &script);
        assert_eq!(served.statuses, [431]);
        check(&served, &script);
    }
}

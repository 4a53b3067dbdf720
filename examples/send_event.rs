//! Post a signed webhook event to a listener, as WasenderAPI would.
//!
//! ```text
//! WASENDER_WEBHOOK_SECRET=<same secret as the listener> \
//!     cargo run --example send_event -- [URL] [FILE.json]
//! ```
//!
//! URL defaults to `http://127.0.0.1:3000/webhook`; FILE defaults to the
//! `messages.received` fixture (any JSON file works). Prints the status and
//! the answer. Plain HTTP only, so it needs no extra dependency.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use wasenderapi::signature::{sign_webhook, SignatureScheme, SIGNATURE_HEADER};

const DEFAULT_URL: &str = "http://127.0.0.1:3000/webhook";
const DEFAULT_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/messages.received.json"
);

/// Splits `http://host:port/path` into (`host:port`, `/path`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported, got {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_owned()))
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("send_event: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| DEFAULT_URL.to_owned());
    let file = args.next().unwrap_or_else(|| DEFAULT_FILE.to_owned());
    let secret = std::env::var("WASENDER_WEBHOOK_SECRET")
        .map_err(|_| "set WASENDER_WEBHOOK_SECRET to the listener's secret")?;

    let body = std::fs::read(&file).map_err(|e| format!("reading {file}: {e}"))?;
    let (authority, path) = split_url(&url)?;
    let signature = sign_webhook(SignatureScheme::SharedSecret, &secret, &body);

    let mut stream =
        TcpStream::connect(&authority).map_err(|e| format!("connecting to {authority}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n{SIGNATURE_HEADER}: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;

    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (response_head, response_body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status_line = response_head.lines().next().unwrap_or("(no answer)");
    println!("POST {url} ({} bytes from {file})", body.len());
    println!("{status_line}");
    println!("{response_body}");
    Ok(())
}

//! The commands that make HTTP(S) requests, `send-event` and `health`: the
//! blocking agent with its TLS settings, URL checks that say what to type,
//! and errors that say what went wrong (a plain-HTTP server behind an
//! `https://` URL, an untrusted certificate).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use ureq::tls::{PemItem, RootCerts, TlsConfig};

use crate::output::{self, usage, BoxError, Outcome, EXIT_REJECTED};

/// The longest time to connect, TLS handshake included. A TLS client
/// talking to a plain-HTTP server waits for an answer that never comes: this
/// bound makes that mistake fail fast (and be named, see [`explain`]).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How `https://` servers are trusted.
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Trust the certificate authorities in this PEM file for https:// URLs
    /// (instead of the built-in web roots), e.g. the CA of a self-signed
    /// listener certificate.
    #[arg(long, env = "WASENDER_CACERT", value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// For development only: accept any certificate an https:// server
    /// presents, unchecked (self-signed, expired, for another name). Anyone
    /// on the path can then read and change the traffic.
    #[arg(long)]
    pub danger_accept_invalid_certs: bool,
}

/// Fails with a usage error unless `url` starts with `http://` or
/// `https://`, saying what to type instead.
pub fn check_url(url: &str) -> Result<(), BoxError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(());
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(usage(format!(
            "{url:?}: {scheme}:// is not supported; use http:// or https://"
        )));
    }
    Err(usage(format!(
        "{url:?} has no scheme: write http://{url} (or https://{url} for a listener serving TLS)"
    )))
}

/// The certificates in the PEM file at `path`.
fn read_ca(path: &Path) -> Result<RootCerts, BoxError> {
    let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert.to_owned()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading {}: {e}", path.display()).into()),
        }
    }
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()).into());
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// A blocking agent that hands back 4xx/5xx answers instead of failing on
/// them, gives up after `timeout` (connecting within [`CONNECT_TIMEOUT`]),
/// and trusts servers as `tls` says.
pub fn agent(timeout: Duration, tls: &TlsArgs) -> Result<ureq::Agent, BoxError> {
    let mut tls_config = TlsConfig::builder();
    if let Some(path) = &tls.cacert {
        tls_config = tls_config.root_certs(read_ca(path)?);
    }
    if tls.danger_accept_invalid_certs {
        tls_config = tls_config.disable_verification(true);
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(CONNECT_TIMEOUT.min(timeout)))
        .tls_config(tls_config.build())
        .build()
        .into())
}

/// `host:port` of an `http(s)://` URL, with the scheme's default port.
fn authority(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty() && !host.ends_with(':') && !port.contains(']')
    });
    if has_port {
        Some(authority.to_owned())
    } else if scheme.eq_ignore_ascii_case("https") {
        Some(format!("{authority}:443"))
    } else {
        Some(format!("{authority}:80"))
    }
}

/// Whether the server at `authority` answers a plain HTTP request with an
/// HTTP status line (within a second or two).
fn speaks_plain_http(authority: &str) -> bool {
    let probe = || -> std::io::Result<bool> {
        let addr = authority
            .to_socket_addrs()?
            .next()
            .ok_or(std::io::ErrorKind::NotFound)?;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(1)))?;
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head)?;
        Ok(&head == b"HTTP/")
    };
    probe().unwrap_or(false)
}

/// The error for a failed request to `url`, said plainly: an `https://` URL
/// whose server speaks plain HTTP, or whose certificate is not trusted, gets
/// what to do about it.
fn explain(method: &str, url: &str, error: ureq::Error) -> BoxError {
    let text = output::describe(&error);
    let https = url.to_ascii_lowercase().starts_with("https://");
    if https {
        if text.contains("certificate") {
            return format!(
                "{method} {url}: {text} (pass --cacert with the authority that signed the \
                 server's certificate; --danger-accept-invalid-certs skips the check, for \
                 development only)"
            )
            .into();
        }
        if let Some(authority) = authority(url) {
            if speaks_plain_http(&authority) {
                let plain = format!("http://{}", &url["https://".len()..]);
                return format!(
                    "{method} {url}: the server at {authority} speaks plain HTTP, not HTTPS: \
                     use {plain} (or serve TLS: wasender listen --tls-cert … --tls-key …)"
                )
                .into();
            }
        }
    }
    if let ureq::Error::Timeout(_) = error {
        return format!("{method} {url}: no answer in time ({text})").into();
    }
    format!("{method} {url}: {text}").into()
}

/// Reads at most `limit` bytes of a response body as text (lossy).
fn body_text(response: &mut ureq::http::Response<ureq::Body>, limit: u64) -> String {
    let mut bytes = Vec::new();
    let _ = response
        .body_mut()
        .as_reader()
        .take(limit)
        .read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `wasender send-event`: posts a signed body and prints the answer.
pub fn send_event(
    url: &str,
    body: &[u8],
    signature: &str,
    timeout: Duration,
    tls: &TlsArgs,
) -> Outcome {
    check_url(url)?;
    let mut response = agent(timeout, tls)?
        .post(url)
        .header("Content-Type", "application/json")
        .header(wasenderapi::signature::SIGNATURE_HEADER, signature)
        .send(body)
        .map_err(|e| explain("POST", url, e))?;
    let status = response.status();
    let answer = body_text(&mut response, 1 << 20);
    output::line(format_args!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    ))?;
    output::line(answer)?;
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REJECTED)
    })
}

/// GETs a health URL: its status and (at most 64 KiB of) its answer.
pub fn fetch_health(
    url: &str,
    timeout: Duration,
    tls: &TlsArgs,
) -> Result<(u16, String), BoxError> {
    check_url(url)?;
    let mut response = agent(timeout, tls)?
        .get(url)
        .call()
        .map_err(|e| explain("GET", url, e))?;
    let status = response.status().as_u16();
    Ok((status, body_text(&mut response, 64 * 1024)))
}

/// Prints a health answer; exit 0 for a 2xx status, 1 for another.
pub fn report_health((status, answer): (u16, String)) -> Outcome {
    output::line(format_args!("{status} {answer}"))?;
    Ok(if (200..300).contains(&status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REJECTED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_a_scheme_say_what_to_write() {
        assert!(check_url("http://127.0.0.1:3000/webhook").is_ok());
        assert!(check_url("HTTPS://example.com/webhook").is_ok());
        let err = check_url("127.0.0.1:3000/webhook").expect_err("no scheme");
        assert!(
            err.to_string()
                .contains("write http://127.0.0.1:3000/webhook"),
            "{err}"
        );
        let err = check_url("ftp://example.com").expect_err("ftp");
        assert!(err.to_string().contains("use http:// or https://"), "{err}");
    }

    #[test]
    fn authorities_get_the_scheme_default_port() {
        assert_eq!(
            authority("https://127.0.0.1:8443/x").as_deref(),
            Some("127.0.0.1:8443")
        );
        assert_eq!(
            authority("https://example.com/x?y").as_deref(),
            Some("example.com:443")
        );
        assert_eq!(
            authority("http://[::1]:3000/").as_deref(),
            Some("[::1]:3000")
        );
        assert_eq!(authority("http://[::1]/").as_deref(), Some("[::1]:80"));
    }
}

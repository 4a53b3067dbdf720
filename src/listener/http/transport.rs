//! The byte streams a connection runs over: a non-blocking TCP socket, TLS
//! on one (`tls.rs`), or in-memory bytes (the fuzz target and unit tests).

use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;

/// A non-blocking byte stream. Reads and writes never wait: when nothing
/// can be done they fail with [`ErrorKind::WouldBlock`], and the
/// connection waits for the next readiness event.
pub(crate) trait Transport {
    /// Reads decoded bytes into `buf`; `Ok(0)` is the end of the stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Whether the last read emptied what the peer had sent, so that more
    /// bytes come with a new readiness event (no read needed to find out).
    fn drained(&self) -> bool;

    /// Writes some of `buf`, returning how much was taken.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;

    /// Sends what the transport itself still holds (TLS records);
    /// [`ErrorKind::WouldBlock`] while some is left.
    fn flush(&mut self) -> io::Result<()>;

    /// Stops sending: the peer reads our last answer, then the end of the stream.
    fn shutdown_write(&mut self);
}

/// The error a TLS transport returns when the client spoke plain HTTP.
#[derive(Debug)]
pub(crate) struct PlainHttp;

impl std::fmt::Display for PlainHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("plain HTTP on the HTTPS port")
    }
}

impl std::error::Error for PlainHttp {}

/// Plain TCP.
#[derive(Debug)]
pub(crate) struct Plain {
    stream: mio::net::TcpStream,
    drained: bool,
}

impl Plain {
    pub fn new(stream: mio::net::TcpStream) -> Self {
        Self {
            stream,
            drained: false,
        }
    }

    /// The socket, to register it.
    pub fn socket(&mut self) -> &mut mio::net::TcpStream {
        &mut self.stream
    }
}

impl Transport for Plain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(buf) {
                // A short read empties the socket's buffer (epoll and kqueue
                // then report the next bytes as a new event), as tokio assumes.
                Ok(n) => {
                    self.drained = n < buf.len();
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.drained = e.kind() == ErrorKind::WouldBlock;
                    return Err(e);
                }
            }
        }
    }

    fn drained(&self) -> bool {
        self.drained && !cfg!(windows)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.stream.write(buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Bytes in memory: what the client has sent so far, and what was written
/// back (the fuzz target and unit tests).
#[cfg(any(test, fuzzing))]
#[derive(Debug, Default)]
pub(crate) struct Memory {
    /// Sent by the client, not read yet.
    pub input: std::collections::VecDeque<u8>,
    /// The client closed its side: once `input` is read, reads return 0.
    pub eof: bool,
    /// Everything written back.
    pub output: Vec<u8>,
    /// Bytes the writer takes per call (0: all); a slow reader.
    pub write_limit: usize,
    /// The server stopped sending (after this many output bytes).
    pub shut_at: Option<usize>,
}

#[cfg(any(test, fuzzing))]
impl Transport for Memory {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(ErrorKind::WouldBlock.into())
            };
        }
        let (front, _) = self.input.as_slices();
        let n = buf.len().min(front.len());
        buf[..n].copy_from_slice(&front[..n]);
        self.input.drain(..n);
        Ok(n)
    }

    fn drained(&self) -> bool {
        self.input.is_empty()
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.shut_at.is_some() {
            return Err(ErrorKind::BrokenPipe.into());
        }
        let n = match self.write_limit {
            0 => buf.len(),
            limit => buf.len().min(limit),
        };
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn shutdown_write(&mut self) {
        self.shut_at.get_or_insert(self.output.len());
    }
}

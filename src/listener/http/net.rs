//! The stream of a connection accepted from the network: plain TCP, or TLS
//! over it (feature `tls`).

use std::io;

use super::transport::{Plain, Transport};

/// A connection's stream: plain TCP, or TLS over it.
#[derive(Debug)]
pub(crate) enum NetStream {
    Plain(Plain),
    #[cfg(feature = "tls")]
    Tls(Box<super::tls::Tls>),
}

impl NetStream {
    /// The socket, to register it.
    pub fn socket(&mut self) -> &mut mio::net::TcpStream {
        match self {
            Self::Plain(plain) => plain.socket(),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls.socket(),
        }
    }
}

impl Transport for NetStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.read(buf),
        }
    }

    fn drained(&self) -> bool {
        match self {
            Self::Plain(s) => s.drained(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.drained(),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.flush(),
        }
    }

    fn shutdown_write(&mut self) {
        match self {
            Self::Plain(s) => s.shutdown_write(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.shutdown_write(),
        }
    }
}

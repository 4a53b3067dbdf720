//! What the integration tests share, each helper written once: fixtures,
//! waiting for a condition, temporary directories, signed events and a raw
//! HTTP/1.1 client, the steerable handlers, test listeners, child processes
//! (this binary again, and the examples), a private `redis-server`, the
//! captured log, and the lock that keeps the heaviest tests apart.

pub mod fixtures;
pub mod handlers;
pub mod heavy;
pub mod http;
#[cfg(feature = "listener")]
pub mod listener;
#[cfg(feature = "listener")]
pub mod logs;
pub mod process;
#[cfg(all(feature = "redis", feature = "listener", feature = "client"))]
pub mod redis;
#[cfg(feature = "client")]
pub mod rest;
pub mod temp;
pub mod wait;
pub mod webhook;

pub use handlers::{AppendIds, Recorder};
pub use http::{post, Conn, Response};
pub use temp::TempDir;
pub use wait::{wait_for, wait_until};
pub use webhook::{event, signature, SECRET};

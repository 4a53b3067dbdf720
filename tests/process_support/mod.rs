//! Shared helpers for tests that run a listener in a child process: this
//! test binary re-executed in "child mode" (one `#[test]` that returns at once
//! unless its environment says otherwise), a port file it publishes, signals
//! sent with the `kill` command, and timed waits for its exit.
//!
//! Included with `#[path]` by `listener_signals.rs` and `listener_health.rs`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Where a child publishes its address and the number of events it replayed.
pub const ENV_PORT_FILE: &str = "WASENDER_TEST_CHILD_PORT_FILE";

/// Publishes `addr` and `recovered` for the parent (written aside, then renamed into place).
pub fn publish(addr: SocketAddr, recovered: u64) {
    let Some(port_file) = std::env::var_os(ENV_PORT_FILE).map(PathBuf::from) else {
        panic!("{ENV_PORT_FILE} is not set");
    };
    let staging = port_file.with_extension("tmp");
    std::fs::write(&staging, format!("{addr} {recovered}")).expect("write the port file");
    std::fs::rename(&staging, &port_file).expect("publish the port file");
}

/// A child listener process.
pub struct ChildListener {
    pub child: Child,
    pub addr: SocketAddr,
    /// Events the child replayed from its journal at start.
    pub recovered: u64,
}

/// Runs the test `child_test` of this binary in a child process with `envs`
/// (through `sh -c` with `shell_prefix` first when given, e.g. a `ulimit`),
/// and waits until it has published its address in `dir/port`.
pub fn spawn_child(
    child_test: &str,
    dir: &Path,
    envs: &[(&str, String)],
    shell_prefix: Option<&str>,
) -> ChildListener {
    let port_file = dir.join("port");
    let _ = std::fs::remove_file(&port_file);
    let exe = std::env::current_exe().expect("test binary path");
    let args = ["--exact", child_test, "--nocapture", "--test-threads=1"];
    let mut command = match shell_prefix {
        None => {
            let mut command = Command::new(exe);
            command.args(args);
            command
        }
        Some(prefix) => {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                .arg(exe)
                .args(args);
            command
        }
    };
    command
        .env(ENV_PORT_FILE, &port_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in envs {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn the child");
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            let mut fields = text.split_whitespace();
            let addr = fields.next().and_then(|a| a.parse().ok());
            let recovered = fields.next().and_then(|r| r.parse().ok());
            if let (Some(addr), Some(recovered)) = (addr, recovered) {
                return ChildListener {
                    child,
                    addr,
                    recovered,
                };
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the child exited early: {status}");
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the child did not start listening");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

impl ChildListener {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the child has handlers installed for SIGTERM and SIGINT
    /// (Linux: the `SigCgt` mask in `/proc/<pid>/status`), so that a signal
    /// sent now reaches the listener instead of killing the process.
    pub fn wait_for_signal_handlers(&mut self) {
        const SIGINT_BIT: u64 = 1 << (2 - 1);
        const SIGTERM_BIT: u64 = 1 << (15 - 1);
        let status_file = format!("/proc/{}/status", self.pid());
        let started = Instant::now();
        loop {
            let caught = std::fs::read_to_string(&status_file)
                .ok()
                .and_then(|status| {
                    let line = status.lines().find(|l| l.starts_with("SigCgt:"))?;
                    u64::from_str_radix(line["SigCgt:".len()..].trim(), 16).ok()
                })
                .unwrap_or(0);
            if caught & (SIGINT_BIT | SIGTERM_BIT) == SIGINT_BIT | SIGTERM_BIT {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the child exited before installing its handlers: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the child installed no SIGTERM/SIGINT handlers"
            );
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sends `signal` (`"TERM"`, `"INT"`, …) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed: {status}");
    }

    /// Waits up to `timeout` for the child to exit; returns its status and
    /// how long it took, or `None` (the child is then killed).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, started.elapsed()));
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Whether the child is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChildListener {
    fn drop(&mut self) {
        // A failed test must not leave a listener behind.
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

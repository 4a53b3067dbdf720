//! Child processes. Tests that kill a process, send it signals, change its
//! limits or measure its memory do it to a child, never to this test
//! process (whose other tests run beside them):
//! - this test binary run again in "child mode": one `#[test]` selected
//!   with `--exact`, which returns at once unless its environment says
//!   otherwise, and talks to the parent in lines on its stdout
//!   ([`say`], read back with [`ChildProcess::expect_line`]);
//! - `examples/listen`, as a user runs it ([`ListenExample`]).

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::wait::wait_until;

/// Starts the lines a child says to its parent: the test harness prints on
/// the same stdout, sometimes on the same line.
const MARKER: &str = "@@child@@ ";

/// How long a child may take to start (a debug build, two busy cores).
const START: Duration = Duration::from_secs(30);

/// The name libtest knows the test `name` of module `module` by:
/// `module_path!()` without the crate, then the test's name.
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_owned(),
    }
}

/// A command running the single test `test` (see [`test_name`]) of this
/// binary, alone, its output not captured.
pub fn child_command(test: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    command
}

/// Like [`child_command`], through `sh -c` with `prefix` run first (a
/// `ulimit`, a `trap`): the limits apply to the child alone.
pub fn child_command_in_shell(prefix: &str, test: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{prefix}; exec \"$0\" \"$@\""))
        .arg(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"]);
    command
}

/// Child side: says `line` to the parent.
pub fn say(line: &str) {
    println!("\n{MARKER}{line}");
}

/// Child side: says where the listener of this child listens, and how many
/// events it replayed from its journal at start (see [`ChildListener`]).
pub fn say_listening(addr: SocketAddr, recovered: u64) {
    say(&format!("listening {addr} {recovered}"));
}

/// Child side: blocks until the parent closes our stdin (or dies).
pub fn wait_for_stdin_eof() {
    let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
}

/// Child side: blocks until the parent kills this process.
pub fn wait_to_be_killed() -> ! {
    loop {
        thread::park();
    }
}

/// Sends `signal` (`"TERM"`, `"KILL"`, `"STOP"`, …) to `pid` with the `kill` command.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// The peak resident memory (`VmHWM`) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

/// A child process whose stdin is ours to close and whose [`say`]s we
/// read. Dropping it stops it: SIGTERM, up to 3 s to exit, then SIGKILL.
pub struct ChildProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl ChildProcess {
    /// Spawns `command` (stdin and stdout piped, stderr inherited), called
    /// `name` in messages.
    pub fn spawn(name: &str, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the child's stdout");
        let (send, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find(MARKER) {
                    let _ = send.send(line[at + MARKER.len()..].to_owned());
                }
            }
        });
        Self {
            name: name.to_owned(),
            child,
            stdin,
            lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the child says, which must start with `tag`: the rest of it.
    #[track_caller]
    pub fn expect_line(&self, tag: &str, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => match line.strip_prefix(tag) {
                Some(rest) => rest.trim().to_owned(),
                None => panic!("{}: expected {tag:?}, got {line:?}", self.name),
            },
            Err(RecvTimeoutError::Timeout) => {
                panic!("{}: no {tag:?} line within {timeout:?}", self.name)
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{}: exited before saying {tag:?}", self.name)
            }
        }
    }

    /// The lines the child said that were not read yet, without waiting.
    pub fn said(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Closes the child's stdin (children that wait for it then stop).
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Closes the child's stdin, waits for its `stats` line and for its
    /// exit with status 0; returns the rest of that line.
    #[track_caller]
    pub fn stop(mut self) -> String {
        self.close_stdin();
        let deadline = Instant::now() + Duration::from_secs(20);
        let stats = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match line.strip_prefix("stats") {
                    Some(rest) => break rest.trim().to_owned(),
                    None => continue,
                },
                Err(e) => panic!("{}: no stats line after stopping ({e})", self.name),
            }
        };
        let (status, _) = self
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{} did not exit after stopping", self.name));
        assert!(status.success(), "{} exited with {status}", self.name);
        stats
    }

    /// The child's exit status, if it exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Whether the child is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the child to exit; returns its status and
    /// how long that took, or `None` (the child is then killed).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        let mut status = None;
        wait_until(timeout, || {
            status = self.exited();
            status.is_some()
        });
        match status {
            Some(status) => Some((status, started.elapsed())),
            None => {
                self.kill();
                None
            }
        }
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (`"TERM"`, `"INT"`, …) to the child.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits until the child has handlers installed for SIGTERM and SIGINT
    /// (Linux: the `SigCgt` mask in `/proc/<pid>/status`), so that a signal
    /// sent now reaches its listener instead of killing the process.
    #[cfg(target_os = "linux")]
    pub fn wait_for_signal_handlers(&mut self) {
        const SIGINT_BIT: u64 = 1 << (2 - 1);
        const SIGTERM_BIT: u64 = 1 << (15 - 1);
        let status_file = format!("/proc/{}/status", self.pid());
        let caught = || {
            std::fs::read_to_string(&status_file)
                .ok()
                .and_then(|status| {
                    let line = status.lines().find(|l| l.starts_with("SigCgt:"))?;
                    u64::from_str_radix(line["SigCgt:".len()..].trim(), 16).ok()
                })
                .unwrap_or(0)
        };
        let installed = wait_until(Duration::from_secs(10), || {
            caught() & (SIGINT_BIT | SIGTERM_BIT) == SIGINT_BIT | SIGTERM_BIT || !self.running()
        });
        if let Some(status) = self.exited() {
            panic!(
                "{} exited before installing its handlers: {status}",
                self.name
            );
        }
        assert!(
            installed,
            "{} installed no SIGTERM/SIGINT handlers",
            self.name
        );
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // A failed test must not leave a process behind.
        if !self.running() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        if self.wait_exit(Duration::from_secs(3)).is_none() {
            eprintln!("{} ignored SIGTERM: killed", self.name);
        }
    }
}

/// A child process running a listener, which said where it listens (see
/// [`say_listening`]); the process's methods are its own.
pub struct ChildListener {
    pub process: ChildProcess,
    pub addr: SocketAddr,
    /// Events the child replayed from its journal at start.
    pub recovered: u64,
}

impl ChildListener {
    /// Spawns `command` and waits until its listener listens.
    pub fn spawn(name: &str, command: Command) -> Self {
        let process = ChildProcess::spawn(name, command);
        let line = process.expect_line("listening", START);
        let mut fields = line.split_whitespace();
        let addr = fields.next().and_then(|a| a.parse().ok());
        let recovered = fields.next().and_then(|r| r.parse().ok());
        let (Some(addr), Some(recovered)) = (addr, recovered) else {
            panic!("{name}: a malformed listening line {line:?}");
        };
        Self {
            process,
            addr,
            recovered,
        }
    }
}

impl std::ops::Deref for ChildListener {
    type Target = ChildProcess;

    fn deref(&self) -> &ChildProcess {
        &self.process
    }
}

impl std::ops::DerefMut for ChildListener {
    fn deref_mut(&mut self) -> &mut ChildProcess {
        &mut self.process
    }
}

/// Where cargo put example `name`: `target/<profile>/examples/<name>`,
/// beside this binary's `target/<profile>/deps/`. `cargo test` builds the
/// examples (with the run's features) before it runs any test.
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples",
        path.display()
    );
    path
}

/// A running `examples/listen` on a port of its choosing (`PORT=0`), its
/// log (stderr) collected line by line. Killed when dropped.
pub struct ListenExample {
    child: Child,
    pub addr: SocketAddr,
    /// The line that says where it listens.
    pub start_line: String,
    log: Receiver<String>,
    reader: Option<thread::JoinHandle<()>>,
    /// What it logged so far (see [`collect_log`](Self::collect_log)).
    pub lines: Vec<String>,
}

impl ListenExample {
    /// Starts the example with `secret`, durable on `journal` when given,
    /// through `sh -c` with `shell_prefix` run first when given (a
    /// `ulimit`), and waits for the line saying where it listens.
    pub fn start(secret: &str, journal: Option<&Path>, shell_prefix: Option<&str>) -> Self {
        let example = example_path("listen");
        let mut command = match shell_prefix {
            None => Command::new(&example),
            Some(prefix) => {
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("{prefix}; exec \"$0\""))
                    .arg(&example);
                command
            }
        };
        command
            .env("PORT", "0")
            .env("WASENDER_WEBHOOK_SECRET", secret)
            .env("RUST_LOG", "info")
            .env_remove("WASENDER_REDIS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match journal {
            Some(journal) => command.env("WASENDER_JOURNAL_DIR", journal),
            None => command.env_remove("WASENDER_JOURNAL_DIR"),
        };
        let mut child = command.spawn().expect("examples/listen starts");
        let stderr = child.stderr.take().expect("its stderr");
        let (send, log) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut example = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            start_line: String::new(),
            log,
            reader: Some(reader),
            lines: Vec::new(),
        };
        let deadline = Instant::now() + START;
        let (start_line, port) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match example.log.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!(
                    "examples/listen said nothing of listening ({e}); its log: {:#?}",
                    example.lines
                ),
            };
            example.lines.push(line.clone());
            if let Some(port) = listening_port(&line) {
                break (line, port);
            }
        };
        example.addr.set_port(port);
        example.start_line = start_line;
        example
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes what it logged since the last call into [`lines`](Self::lines).
    pub fn collect_log(&mut self) {
        self.lines.extend(self.log.try_iter());
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; returns the
    /// exit code and how long it took, with the whole log collected.
    pub fn terminate_and_wait(&mut self, timeout: Duration) -> (Option<i32>, Duration) {
        let sent = Instant::now();
        send_signal(self.pid(), "TERM");
        let mut status = None;
        let exited = wait_until(timeout, || {
            status = self.child.try_wait().expect("wait for examples/listen");
            status.is_some()
        });
        assert!(exited, "examples/listen did not stop within {timeout:?}");
        let took = sent.elapsed();
        // The log ends with the process: its reader ends with the pipe.
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the log reader");
        }
        self.collect_log();
        (status.and_then(|s| s.code()), took)
    }
}

/// The port in the example's `webhook listener on http://<addr>:<port>/…` line.
fn listening_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("webhook listener on http://")?;
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

impl Drop for ListenExample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

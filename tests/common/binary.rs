//! The `h2c-mux` binary in its own process, serving the demo on a loopback port, so
//! a test can measure the server's memory alone or drive it as its users do.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::within;

/// The running binary; killed when dropped.
pub struct Binary {
    pub child: Child,
    pub pid: String,
    pub addr: SocketAddr,
}

impl Binary {
    /// Starts the binary with the environment it finds (less `RUST_LOG`).
    pub async fn start() -> Binary {
        Binary::start_with(|_| {}).await
    }

    /// Starts the binary, letting `tune` adjust its command (the environment) first,
    /// and waits (bounded) for the log line that says where it listens.
    pub async fn start_with(tune: impl FnOnce(&mut Command)) -> Binary {
        Binary::spawn(true, tune).await.0
    }

    /// Starts the binary with its line per request (no `--quiet`), and hands on
    /// every log line after the one that says where it listens.
    pub async fn start_logged() -> (Binary, mpsc::UnboundedReceiver<String>) {
        let (server, log) = Binary::spawn(false, |_| {}).await;
        (server, log.expect("the log"))
    }

    async fn spawn(
        quiet: bool,
        tune: impl FnOnce(&mut Command),
    ) -> (Binary, Option<mpsc::UnboundedReceiver<String>>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_h2c-mux"));
        cmd.args(["--listen", "127.0.0.1:0", "--log", "info"]);
        if quiet {
            cmd.arg("--quiet");
        }
        cmd.env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        tune(&mut cmd);
        let mut child = cmd.spawn().expect("start the h2c-mux binary");
        let pid = child.id().expect("pid").to_string();
        // The log goes to stdout.
        let log = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(log).lines();
        let addr = within("the binary to say where it listens", async {
            while let Some(line) = lines.next_line().await.expect("read the server log") {
                if let Some(rest) = line
                    .split("addr=")
                    .nth(1)
                    .filter(|_| line.contains("listening"))
                {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    return addr.parse::<SocketAddr>().expect("listening address");
                }
            }
            panic!("the server exited before listening");
        })
        .await;
        assert!(addr.ip().is_loopback(), "listening on {addr}");
        // Keep reading the log so the server never blocks on a full pipe.
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
        (Binary { child, pid, addr }, (!quiet).then_some(rx))
    }

    /// A size field of the server's `/proc/PID/status` (`VmRSS:`, `VmHWM:`), in KiB.
    pub fn kib(&self, field: &str) -> u64 {
        proc_kib(&self.pid, field).expect("server memory figures")
    }

    /// The server's mappings with the most resident memory, a line each, to tell
    /// the heap, the per-thread arenas and the stacks apart when RSS is too high.
    pub fn largest_mappings(&self) -> String {
        let smaps =
            std::fs::read_to_string(format!("/proc/{}/smaps", self.pid)).unwrap_or_default();
        let mut mappings: Vec<(u64, &str)> = Vec::new();
        let mut current = "";
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or_default();
            if first.contains('-') && !first.ends_with(':') {
                current = line;
            } else if first == "Rss:" {
                let kib = line.split_whitespace().nth(1).and_then(|v| v.parse().ok());
                mappings.push((kib.unwrap_or(0), current));
            }
        }
        mappings.sort_by_key(|m| std::cmp::Reverse(m.0));
        mappings
            .iter()
            .take(16)
            .map(|(kib, m)| format!("{kib:>8} KiB  {m}\n"))
            .collect()
    }

    /// Open file descriptors of the server process.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count())
            .expect("server fds")
    }
}

/// A size field of process `pid` (`self` for this one), in KiB, from
/// `/proc/PID/status`.
pub fn proc_kib(pid: &str, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

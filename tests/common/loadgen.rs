//! What the two load generators of the benchmark harness (`examples/h2c_load.rs`,
//! `examples/ws_load.rs`, both driven by `benches/run`) have in common: the flags
//! both take, the counters of a run with its first error, the figures of the
//! summary, and the idle modes: opening many connections, the `READY` line that
//! `benches/run` waits for before it measures the server, and the hold.
//!
//! Each generator keeps its own protocol, its own flags and its own report.

use std::cell::RefCell;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::str::FromStr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::time::timeout_at;

/// Connections being opened at once in the idle modes, so the listen backlog never
/// overflows.
pub const OPEN_AT_ONCE: usize = 128;
/// Longest the idle modes spend opening their connections, so an idle run is bounded
/// in time even against a server that stops answering.
pub const OPEN_WITHIN: Duration = Duration::from_secs(120);

/// The command line, one flag at a time. Every mistake ends in the generator's own
/// `usage`, which prints its synopsis and exits.
pub struct Flags {
    args: std::iter::Skip<std::env::Args>,
    usage: fn(&str) -> !,
}

impl Flags {
    pub fn new(usage: fn(&str) -> !) -> Flags {
        Flags {
            args: std::env::args().skip(1),
            usage,
        }
    }

    pub fn next_flag(&mut self) -> Option<String> {
        self.args.next()
    }

    /// The value that follows `flag`.
    pub fn value(&mut self, flag: &str) -> String {
        let usage = self.usage;
        self.args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
    }

    /// The value that follows `flag`, parsed; `name` is how the error names the
    /// flag (its short form, whichever form was given).
    pub fn parse<T: FromStr>(&mut self, flag: &str, name: &str) -> T {
        let usage = self.usage;
        self.value(flag)
            .parse()
            .unwrap_or_else(|_| usage(&format!("bad {name}")))
    }
}

/// The flags every load generator takes: where, how many connections, how long a
/// load run lasts and how long the idle modes hold their connections.
#[derive(Debug)]
pub struct BaseArgs {
    pub addr: SocketAddr,
    pub conns: usize,
    pub duration: Duration,
    pub hold: Duration,
}

impl BaseArgs {
    /// The defaults: `addr`, 50 connections, 5 s of load, held 60 s.
    pub fn new(addr: &str) -> BaseArgs {
        BaseArgs {
            addr: addr.parse().expect("a default address"),
            conns: 50,
            duration: Duration::from_secs(5),
            hold: Duration::from_secs(60),
        }
    }

    /// Takes `flag`, one the generator has no use of its own for: one of the
    /// shared flags, `--help`, or else an unknown flag.
    pub fn take(&mut self, flag: &str, flags: &mut Flags) {
        let usage = flags.usage;
        match flag {
            "--addr" => self.addr = flags.parse(flag, "--addr"),
            "-c" | "--connections" => self.conns = flags.parse(flag, "-c"),
            "-d" | "--duration" => {
                let s = flags.parse::<f64>(flag, "-d");
                if !(s > 0.0 && s <= 600.0) {
                    usage("-d must be in (0, 600] seconds");
                }
                self.duration = Duration::from_secs_f64(s);
            }
            "--hold" => {
                let s = flags.parse::<f64>(flag, "--hold");
                if !(0.0..=3600.0).contains(&s) {
                    usage("--hold must be in [0, 3600] seconds");
                }
                self.hold = Duration::from_secs_f64(s);
            }
            "-h" | "--help" => usage("help"),
            f => usage(&format!("unknown flag {f}")),
        }
    }

    /// The first check once every flag is read: the load stays on this machine.
    pub fn check_loopback(&self, flags: &Flags) {
        if !self.addr.ip().is_loopback() {
            (flags.usage)("--addr must be a loopback address");
        }
    }
}

/// Runs `run` on one thread, as both generators do: their tasks share counters
/// through `Rc<RefCell<_>>`, and one thread keeps the client cheap next to the
/// server under test.
pub fn run_local(run: impl Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    tokio::task::LocalSet::new().block_on(&rt, run)
}

/// The counters of one run; `own` holds what one generator counts besides.
#[derive(Default)]
pub struct Stats<C> {
    /// Connections opened and answered.
    pub conns: u64,
    /// What the run's bound (`--max-conns`, `--max-messages`) counts, started.
    pub started: u64,
    pub errors: u64,
    /// The first error, shown in the summary and on the `READY` line.
    pub first_error: Option<String>,
    pub own: C,
}

/// The counters, shared by the tasks of one thread.
pub type Shared<C> = Rc<RefCell<Stats<C>>>;

impl<C> Stats<C> {
    pub fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    /// Starts one more of what the run's bound counts, unless `max` have started
    /// or `deadline` has passed.
    pub fn start_one(&mut self, max: u64, deadline: tokio::time::Instant) -> bool {
        if self.started >= max || tokio::time::Instant::now() >= deadline {
            return false;
        }
        self.started += 1;
        true
    }

    /// ` (first: ERROR)` after the error count of a summary, or nothing.
    pub fn first_error_note(&self) -> String {
        self.first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    }
}

/// The seconds a load run lasted: its duration at most, since the slots still
/// running at the deadline are cut and count nothing after it.
pub fn elapsed_s(start: Instant, duration: Duration) -> f64 {
    start.elapsed().as_secs_f64().min(duration.as_secs_f64())
}

/// The `p`th percentile (nearest rank) of `sorted`, 0 for no sample.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A latency sample in µs.
pub fn micros(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

/// A loopback connection with `TCP_NODELAY`, as every client of the harness uses.
pub async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let sock = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    sock.set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    Ok(sock)
}

/// The idle modes: opens `total` connections with `open`, `OPEN_AT_ONCE` at a time
/// and all within `OPEN_WITHIN`; prints `READY opened=N failed=F in S s` (with the
/// first error, if any), the line `benches/run` reads before it measures the
/// server; holds the connections for `hold`; and drops them.
///
/// `open` is given the end of the opening. It counts what it opened in `stats` and
/// returns what is to be held, or `None` for a connection that holds itself (in a
/// task of its own, answering the server's PINGs).
pub async fn open_and_hold<C, K, F, Fut>(stats: Shared<C>, total: usize, hold: Duration, open: F)
where
    C: 'static,
    K: 'static,
    F: Fn(tokio::time::Instant) -> Fut + 'static,
    Fut: Future<Output = Result<Option<K>, String>> + 'static,
{
    let start = Instant::now();
    let open_deadline = tokio::time::Instant::now() + OPEN_WITHIN;
    let kept: Rc<RefCell<Vec<K>>> = Rc::new(RefCell::new(Vec::new()));
    let next = Rc::new(RefCell::new(0usize));
    let open = Rc::new(open);
    let mut openers = Vec::new();
    for _ in 0..OPEN_AT_ONCE.min(total) {
        let (stats, kept, next, open) = (stats.clone(), kept.clone(), next.clone(), open.clone());
        openers.push(tokio::task::spawn_local(async move {
            loop {
                {
                    let mut n = next.borrow_mut();
                    if *n >= total {
                        return;
                    }
                    *n += 1;
                }
                match timeout_at(open_deadline, open(open_deadline)).await {
                    Ok(Ok(Some(conn))) => kept.borrow_mut().push(conn),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => stats.borrow_mut().error(e),
                    Err(_) => {
                        stats.borrow_mut().error("open deadline passed".into());
                        return;
                    }
                }
            }
        }));
    }
    for t in openers {
        let _ = t.await;
    }
    {
        let s = stats.borrow();
        println!(
            "READY opened={} failed={} in {:.2} s{}",
            s.conns,
            s.errors,
            start.elapsed().as_secs_f64(),
            s.first_error
                .as_deref()
                .map(|e| format!(" (first error: {e})"))
                .unwrap_or_default()
        );
    }
    // benches/run reads the line through a pipe, where stdout is block-buffered.
    let _ = std::io::stdout().flush();
    tokio::time::sleep(hold).await;
    drop(kept);
}

//! WebSocket load generator of the benchmark harness (`benches/run`, scenario S7;
//! see `benches/README.md`), a tokio-tungstenite client on one thread.
//!
//! ```sh
//! # 50 WebSockets for 5 s, each echoing 32-byte messages one at a time
//! cargo run --release --example ws_load -- --addr 127.0.0.1:9011 -c 50 -d 5 --size 32
//! # 1,000 idle WebSockets, each after one echo, held for at most 60 s
//! cargo run --release --example ws_load -- --addr 127.0.0.1:9011 --mode idle -c 1000 --hold 60
//! ```
//!
//! `echo` (the default): `-c` WebSockets to `ws://ADDR/ws` are opened at once; on
//! each, one message at a time is sent and its echo awaited (as wrk keeps one
//! request in flight per connection), binary and text in turn, each `--size` bytes.
//! A message counts once its echo has come back equal to what was sent. The run
//! stops at `-d` seconds or once `--max-messages` have been sent, whichever is
//! first; then every WebSocket is closed with the close handshake (bounded, not
//! counted). Output: a human summary, then `RESULT {json}` with `conns`,
//! `messages`, `errors`, `elapsed_s`, `msg_per_s` and the latency of a message
//! (written to echo read) as `p50_us`, `p99_us`.
//!
//! `idle`: open `-c` WebSockets (a bounded number at a time, within 120 s), one echo
//! on each, print `READY opened=N failed=F`, hold them without reading for
//! `--hold` seconds, and exit.
//!
//! Loopback only: `--addr` must be a loopback address.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// Longest the close handshake at the end of a run may take per WebSocket.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// WebSockets being opened at once in `idle` mode, so the listen backlog never
/// overflows.
const OPEN_AT_ONCE: usize = 128;
/// Longest `idle` mode spends opening its WebSockets.
const OPEN_WITHIN: Duration = Duration::from_secs(120);
/// Largest `--size`: the scenario is about small messages; this only keeps a typo
/// from asking for gigabytes.
const MAX_SIZE: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Echo,
    Idle,
}

#[derive(Debug)]
struct Args {
    addr: SocketAddr,
    mode: Mode,
    conns: usize,
    duration: Duration,
    max_messages: u64,
    size: usize,
    hold: Duration,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "ws_load: {msg}\n\
         usage: ws_load --addr 127.0.0.1:PORT [--mode echo|idle] [-c CONNS=50] [-d SECS=5]\n\
         \x20      [--max-messages TOTAL=100000000] [--size BYTES=32] [--hold SECS=60]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:9011".parse().unwrap(),
        mode: Mode::Echo,
        conns: 50,
        duration: Duration::from_secs(5),
        max_messages: 100_000_000,
        size: 32,
        hold: Duration::from_secs(60),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--addr" => a.addr = val().parse().unwrap_or_else(|_| usage("bad --addr")),
            "--mode" => {
                a.mode = match val().as_str() {
                    "echo" => Mode::Echo,
                    "idle" => Mode::Idle,
                    m => usage(&format!("unknown mode {m}")),
                }
            }
            "-c" | "--connections" => a.conns = val().parse().unwrap_or_else(|_| usage("bad -c")),
            "-d" | "--duration" => {
                let s: f64 = val().parse().unwrap_or_else(|_| usage("bad -d"));
                if !(s > 0.0 && s <= 600.0) {
                    usage("-d must be in (0, 600] seconds");
                }
                a.duration = Duration::from_secs_f64(s);
            }
            "--max-messages" => {
                a.max_messages = val()
                    .parse()
                    .unwrap_or_else(|_| usage("bad --max-messages"))
            }
            "--size" => a.size = val().parse().unwrap_or_else(|_| usage("bad --size")),
            "--hold" => {
                let s: f64 = val().parse().unwrap_or_else(|_| usage("bad --hold"));
                if !(0.0..=3600.0).contains(&s) {
                    usage("--hold must be in [0, 3600] seconds");
                }
                a.hold = Duration::from_secs_f64(s);
            }
            "-h" | "--help" => usage("help"),
            f => usage(&format!("unknown flag {f}")),
        }
    }
    if !a.addr.ip().is_loopback() {
        usage("--addr must be a loopback address");
    }
    if a.conns == 0 || a.max_messages == 0 {
        usage("-c and --max-messages must be at least 1");
    }
    if a.size == 0 || a.size > MAX_SIZE {
        usage("--size must be in [1, 1048576] bytes");
    }
    a
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    match args.mode {
        Mode::Echo => local.block_on(&rt, echo(args)),
        Mode::Idle => local.block_on(&rt, idle(args)),
    }
}

#[derive(Default)]
struct Stats {
    conns: u64,
    started: u64,
    messages: u64,
    errors: u64,
    first_error: Option<String>,
    lat_us: Vec<u32>,
}

impl Stats {
    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }
}

type Shared = Rc<RefCell<Stats>>;

/// The two messages sent in turn, made once: sending one clones a `Bytes`.
#[derive(Clone)]
struct Payload {
    binary: Message,
    text: Message,
}

impl Payload {
    fn new(size: usize) -> Payload {
        let binary: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let text: String = (0..size)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        Payload {
            binary: Message::Binary(Bytes::from(binary)),
            text: Message::Text(Utf8Bytes::from(text)),
        }
    }
}

async fn open(addr: SocketAddr) -> Result<Ws, String> {
    let sock = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    sock.set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), sock)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// Sends `msg` and waits for it to come back.
async fn exchange(ws: &mut Ws, msg: &Message) -> Result<(), String> {
    ws.send(msg.clone())
        .await
        .map_err(|e| format!("send: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(back)) if back == *msg => return Ok(()),
            // tungstenite answers pings itself; neither server sends any here.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(other)) => return Err(format!("echo differs: {other:?}")),
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("closed by the server".into()),
        }
    }
}

/// The client's close, then the server's, within `CLOSE_WAIT`.
async fn close(mut ws: Ws) {
    let _ = timeout(CLOSE_WAIT, async {
        if ws.close(None).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------
// Echo load

async fn echo(args: Args) {
    let stats: Shared = Rc::new(RefCell::new(Stats::default()));
    let payload = Payload::new(args.size);
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + args.duration);
    let mut slots = Vec::new();
    for _ in 0..args.conns {
        let (stats, payload) = (stats.clone(), payload.clone());
        let (addr, max) = (args.addr, args.max_messages);
        slots.push(tokio::task::spawn_local(async move {
            let mut ws = match timeout_at(deadline, open(addr)).await {
                Ok(Ok(ws)) => ws,
                Ok(Err(e)) => return stats.borrow_mut().error(e),
                Err(_) => return,
            };
            stats.borrow_mut().conns += 1;
            let mut binary = true;
            loop {
                {
                    let mut s = stats.borrow_mut();
                    if s.started >= max || tokio::time::Instant::now() >= deadline {
                        break;
                    }
                    s.started += 1;
                }
                let msg = if binary {
                    &payload.binary
                } else {
                    &payload.text
                };
                binary = !binary;
                let sent = Instant::now();
                match timeout_at(deadline, exchange(&mut ws, msg)).await {
                    Ok(Ok(())) => {
                        let mut s = stats.borrow_mut();
                        s.messages += 1;
                        s.lat_us.push(micros(sent.elapsed()));
                    }
                    // A broken WebSocket: this slot is done.
                    Ok(Err(e)) => return stats.borrow_mut().error(e),
                    // The deadline, with this message in flight: not counted.
                    Err(_) => break,
                }
            }
            close(ws).await;
        }));
    }
    for s in slots {
        let _ = s.await;
    }
    let elapsed = start
        .elapsed()
        .as_secs_f64()
        .min(args.duration.as_secs_f64());
    let mut s = stats.borrow_mut();
    s.lat_us.sort_unstable();
    let pct = |v: &[u32], p: f64| -> u32 {
        if v.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    };
    let (p50, p99) = (pct(&s.lat_us, 50.0), pct(&s.lat_us, 99.0));
    println!(
        "ws_load echo: {} WebSockets ({} opened), {}-byte messages, {:.1} s",
        args.conns, s.conns, args.size, elapsed
    );
    println!(
        "  messages: {} echoed, {:.0}/s; p50 {p50} us, p99 {p99} us",
        s.messages,
        s.messages as f64 / elapsed
    );
    println!(
        "  errors:   {}{}",
        s.errors,
        s.first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "RESULT {{\"mode\":\"echo\",\"conns\":{},\"messages\":{},\"errors\":{},\"elapsed_s\":{:.3},\
         \"msg_per_s\":{:.1},\"p50_us\":{p50},\"p99_us\":{p99}}}",
        s.conns,
        s.messages,
        s.errors,
        elapsed,
        s.messages as f64 / elapsed,
    );
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

// ---------------------------------------------------------------------------------
// Idle WebSockets

async fn idle(args: Args) {
    let stats: Shared = Rc::new(RefCell::new(Stats::default()));
    let payload = Payload::new(args.size);
    let start = Instant::now();
    let open_deadline = tokio::time::Instant::now() + OPEN_WITHIN;
    let kept: Rc<RefCell<Vec<Ws>>> = Rc::new(RefCell::new(Vec::new()));
    let next = Rc::new(RefCell::new(0usize));
    let mut openers = Vec::new();
    for _ in 0..OPEN_AT_ONCE.min(args.conns) {
        let (stats, kept, next, payload) =
            (stats.clone(), kept.clone(), next.clone(), payload.clone());
        let (addr, total) = (args.addr, args.conns);
        openers.push(tokio::task::spawn_local(async move {
            loop {
                {
                    let mut n = next.borrow_mut();
                    if *n >= total {
                        return;
                    }
                    *n += 1;
                }
                let one = async {
                    let mut ws = open(addr).await?;
                    exchange(&mut ws, &payload.binary).await?;
                    Ok::<_, String>(ws)
                };
                match timeout_at(open_deadline, one).await {
                    Ok(Ok(ws)) => {
                        let mut s = stats.borrow_mut();
                        s.conns += 1;
                        s.messages += 1;
                        kept.borrow_mut().push(ws);
                    }
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
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    tokio::time::sleep(args.hold).await;
    drop(kept);
}

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

// The integration tests' support module (tests/common): the scaffolding both load
// generators share (flags, counters, the idle modes' opening and `READY` line)
// is its `loadgen`.
#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::loadgen::{
    connect, elapsed_s, micros, open_and_hold, percentile, run_local, BaseArgs, Flags,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// Longest the close handshake at the end of a run may take per WebSocket.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
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
    base: BaseArgs,
    mode: Mode,
    max_messages: u64,
    size: usize,
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
        base: BaseArgs::new("127.0.0.1:9011"),
        mode: Mode::Echo,
        max_messages: 100_000_000,
        size: 32,
    };
    let mut flags = Flags::new(usage);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--mode" => {
                a.mode = match flags.value(&flag).as_str() {
                    "echo" => Mode::Echo,
                    "idle" => Mode::Idle,
                    m => usage(&format!("unknown mode {m}")),
                }
            }
            "--max-messages" => a.max_messages = flags.parse(&flag, "--max-messages"),
            "--size" => a.size = flags.parse(&flag, "--size"),
            f => a.base.take(f, &mut flags),
        }
    }
    a.base.check_loopback(&flags);
    if a.base.conns == 0 || a.max_messages == 0 {
        usage("-c and --max-messages must be at least 1");
    }
    if a.size == 0 || a.size > MAX_SIZE {
        usage("--size must be in [1, 1048576] bytes");
    }
    a
}

fn main() {
    let args = parse_args();
    match args.mode {
        Mode::Echo => run_local(echo(args)),
        Mode::Idle => run_local(idle(args)),
    }
}

/// What ws_load counts besides the connections and errors.
#[derive(Default)]
struct Echoes {
    messages: u64,
    lat_us: Vec<u32>,
}

type Shared = common::loadgen::Shared<Echoes>;

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
    let sock = connect(addr).await?;
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
    let stats = Shared::default();
    let payload = Payload::new(args.size);
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + args.base.duration);
    let mut slots = Vec::new();
    for _ in 0..args.base.conns {
        let (stats, payload) = (stats.clone(), payload.clone());
        let (addr, max) = (args.base.addr, args.max_messages);
        slots.push(tokio::task::spawn_local(async move {
            let mut ws = match timeout_at(deadline, open(addr)).await {
                Ok(Ok(ws)) => ws,
                Ok(Err(e)) => return stats.borrow_mut().error(e),
                Err(_) => return,
            };
            stats.borrow_mut().conns += 1;
            let mut binary = true;
            loop {
                if !stats.borrow_mut().start_one(max, deadline) {
                    break;
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
                        let echoes = &mut stats.borrow_mut().own;
                        echoes.messages += 1;
                        echoes.lat_us.push(micros(sent.elapsed()));
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
    let elapsed = elapsed_s(start, args.base.duration);
    let mut s = stats.borrow_mut();
    s.own.lat_us.sort_unstable();
    let lat = &s.own.lat_us;
    let (p50, p99) = (percentile(lat, 50.0), percentile(lat, 99.0));
    let messages = s.own.messages;
    println!(
        "ws_load echo: {} WebSockets ({} opened), {}-byte messages, {:.1} s",
        args.base.conns, s.conns, args.size, elapsed
    );
    println!(
        "  messages: {} echoed, {:.0}/s; p50 {p50} us, p99 {p99} us",
        messages,
        messages as f64 / elapsed
    );
    println!("  errors:   {}{}", s.errors, s.first_error_note());
    println!(
        "RESULT {{\"mode\":\"echo\",\"conns\":{},\"messages\":{},\"errors\":{},\"elapsed_s\":{:.3},\
         \"msg_per_s\":{:.1},\"p50_us\":{p50},\"p99_us\":{p99}}}",
        s.conns,
        messages,
        s.errors,
        elapsed,
        messages as f64 / elapsed,
    );
}

// ---------------------------------------------------------------------------------
// Idle WebSockets

async fn idle(args: Args) {
    let stats = Shared::default();
    let payload = Payload::new(args.size);
    let addr = args.base.addr;
    open_and_hold(stats.clone(), args.base.conns, args.base.hold, move |_| {
        let (stats, payload) = (stats.clone(), payload.clone());
        async move {
            let mut ws = open(addr).await?;
            exchange(&mut ws, &payload.binary).await?;
            let mut s = stats.borrow_mut();
            s.conns += 1;
            s.own.messages += 1;
            Ok(Some(ws))
        }
    })
    .await;
}

//! Load generator for the paths no common tool drives: the cleartext `Upgrade: h2c`
//! switch (and, for a like-for-like comparison, HTTP/2 with prior knowledge opened the
//! same way), plus idle connections for the memory scenario. Part of the benchmark
//! harness (`benches/run`, see `benches/README.md`).
//!
//! ```sh
//! # 50 connection slots for 5 s: each connection upgrades, reads stream 1, closes
//! cargo run --release --example h2c_load -- --addr 127.0.0.1:8080 --mode upgrade -c 50 -d 5
//! # the same, then 100 more requests on streams 3, 5, ..., 10 in flight at a time
//! cargo run --release --example h2c_load -- --addr 127.0.0.1:8080 --mode upgrade -n 101 --depth 10
//! # prior knowledge, one request per connection
//! cargo run --release --example h2c_load -- --addr 127.0.0.1:8080 --mode prior
//! # 1,000 idle upgraded connections, held for at most 60 s
//! cargo run --release --example h2c_load -- --addr 127.0.0.1:8080 --mode idle-upgrade -c 1000 --hold 60
//! ```
//!
//! Load modes (`upgrade`, `prior`): `-c` connection slots run concurrently; each slot
//! opens a connection, sends `-n` requests on it (at most `--depth` in flight), closes
//! it (GOAWAY, then waits for the server to close first) and opens the next, until
//! `-d` seconds have passed or `--max-conns` connections were opened. `upgrade` sends
//! `GET /` as HTTP/1.1 with `Upgrade: h2c`, reads the `101`, sends the preface and
//! SETTINGS, reads stream 1's response, and sends any further requests on streams
//! 3, 5, .... `prior` sends the preface, SETTINGS and its first requests in one write
//! (streams 1, 3, ...), like h2load does. The client speaks just enough HTTP/2 by
//! hand: it encodes request headers with the HPACK static table, answers SETTINGS and
//! PING, returns flow-control credit, and finds the end of each response from the
//! frame flags (END_STREAM), checking that its HEADERS start with `:status: 200`
//! (HPACK index 8) and that its body is the 12 bytes of `hello world\n`. Nothing is
//! HPACK-decoded, so the client stays cheap next to the server under test.
//!
//! Output: a human summary, then one line `RESULT {json}` with `conns`, `requests`,
//! `errors`, `elapsed_s`, `conns_per_s`, `req_per_s`, latency percentiles in µs of
//! whole connections (`conn_p50_us`, `conn_p99_us`: connect to the end of the first
//! response) and of requests (`req_p50_us`, `req_p99_us`: request written to
//! END_STREAM; for the upgrade's stream 1 that is the HTTP/1.1 request).
//!
//! Idle modes (`idle-h1`, `idle-upgrade`, `idle-prior`): open `-c` connections (a
//! bounded number at a time), complete one `GET /` on each (HTTP/1.1 keep-alive, via
//! the upgrade, or with prior knowledge), print `READY opened=N failed=F`, then hold
//! them open (HTTP/2 ones keep answering PING) for `--hold` seconds and exit.
//!
//! Loopback only: `--addr` must be a loopback address.

// The integration tests' support module (tests/common), shared the way h2 shares
// tests/h2-support: the frame layer (constants, frame headers, builders), the
// upgrade request's fields and the HTTP/1 response head parser come from there,
// and so does what both load generators share (`loadgen`: flags, counters, the
// idle modes' opening and `READY` line). The client loop stays here: it decodes no HPACK, so it stays cheap next to the
// server under test.
#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use common::h1::{parse_head, H1Response};
use common::h2c::upgrade_fields;
use common::h2frame::{
    frame_head, put_frame, settings_payload, ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS,
    PADDED, PING, PREFACE, PRIORITY_FLAG, RST_STREAM, SETTINGS, SETTINGS_ENABLE_PUSH,
    SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_UPDATE,
};
use common::loadgen::{
    connect, elapsed_s, micros, open_and_hold, percentile, run_local, BaseArgs, Flags,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

const BODY: &[u8] = b"hello world\n";

/// Receive window the client announces for each stream and adds to the connection.
const WINDOW: u32 = 1 << 20;
/// Longest the client waits for the server to close after its GOAWAY.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Upgrade,
    Prior,
    IdleH1,
    IdleUpgrade,
    IdlePrior,
}

#[derive(Debug)]
struct Args {
    base: BaseArgs,
    mode: Mode,
    requests: u32,
    depth: u32,
    max_conns: u64,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "h2c_load: {msg}\n\
         usage: h2c_load --addr 127.0.0.1:PORT --mode upgrade|prior|idle-h1|idle-upgrade|idle-prior\n\
         \x20      [-c CONNS=50] [-d SECS=5] [-n REQUESTS_PER_CONN=1] [--depth IN_FLIGHT=10]\n\
         \x20      [--max-conns TOTAL=10000000] [--hold SECS=60]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        base: BaseArgs::new("127.0.0.1:8080"),
        mode: Mode::Upgrade,
        requests: 1,
        depth: 10,
        max_conns: 10_000_000,
    };
    let mut flags = Flags::new(usage);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--mode" => {
                a.mode = match flags.value(&flag).as_str() {
                    "upgrade" => Mode::Upgrade,
                    "prior" => Mode::Prior,
                    "idle-h1" => Mode::IdleH1,
                    "idle-upgrade" => Mode::IdleUpgrade,
                    "idle-prior" => Mode::IdlePrior,
                    m => usage(&format!("unknown mode {m}")),
                }
            }
            "-n" | "--requests" => a.requests = flags.parse(&flag, "-n"),
            "--depth" => a.depth = flags.parse(&flag, "--depth"),
            "--max-conns" => a.max_conns = flags.parse(&flag, "--max-conns"),
            f => a.base.take(f, &mut flags),
        }
    }
    a.base.check_loopback(&flags);
    if a.base.conns == 0 || a.requests == 0 || a.depth == 0 {
        usage("-c, -n and --depth must be at least 1");
    }
    // Stream ids are odd and below 2^31.
    if a.requests > 1_000_000 {
        usage("-n must be at most 1000000");
    }
    a
}

fn main() {
    let args = parse_args();
    match args.mode {
        Mode::Upgrade | Mode::Prior => run_local(load(args)),
        Mode::IdleH1 | Mode::IdleUpgrade | Mode::IdlePrior => run_local(idle(args)),
    }
}

// ---------------------------------------------------------------------------------
// Load

/// What h2c_load counts besides the connections and errors.
#[derive(Default)]
struct Requests {
    requests: u64,
    conn_lat_us: Vec<u32>,
    req_lat_us: Vec<u32>,
}

type Shared = common::loadgen::Shared<Requests>;

async fn load(args: Args) {
    let stats = Shared::default();
    let settings = client_settings();
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + args.base.duration);
    let mut tasks = Vec::new();
    for _ in 0..args.base.conns {
        let stats = stats.clone();
        let settings = settings.clone();
        let (addr, mode, requests, depth, max_conns) = (
            args.base.addr,
            args.mode,
            args.requests,
            args.depth,
            args.max_conns,
        );
        tasks.push(tokio::task::spawn_local(async move {
            // The whole slot stops at the deadline, whatever it is waiting for.
            let _ = timeout_at(deadline, async {
                loop {
                    if !stats.borrow_mut().start_one(max_conns, deadline) {
                        break;
                    }
                    let plan = Plan {
                        addr,
                        mode,
                        requests,
                        depth,
                        settings: &settings,
                        keep: false,
                    };
                    if let Err(e) = one_connection(&plan, &stats, deadline).await {
                        stats.borrow_mut().error(e);
                        // A refused or reset connection: do not spin.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
            .await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = elapsed_s(start, args.base.duration);
    let mut s = stats.borrow_mut();
    s.own.conn_lat_us.sort_unstable();
    s.own.req_lat_us.sort_unstable();
    let (conn_lat, req_lat, requests) = (&s.own.conn_lat_us, &s.own.req_lat_us, s.own.requests);
    let mode = if args.mode == Mode::Upgrade {
        "upgrade"
    } else {
        "prior"
    };
    println!(
        "h2c_load {mode}: {} connection slots, {} request(s) per connection, depth {}, {:.1} s",
        args.base.conns, args.requests, args.depth, elapsed
    );
    println!(
        "  connections: {} completed, {:.0}/s; connect..first response p50 {} us, p99 {} us",
        s.conns,
        s.conns as f64 / elapsed,
        percentile(conn_lat, 50.0),
        percentile(conn_lat, 99.0)
    );
    println!(
        "  requests:    {} completed, {:.0}/s; p50 {} us, p99 {} us",
        requests,
        requests as f64 / elapsed,
        percentile(req_lat, 50.0),
        percentile(req_lat, 99.0)
    );
    println!("  errors:      {}{}", s.errors, s.first_error_note());
    println!(
        "RESULT {{\"mode\":\"{mode}\",\"conns\":{},\"requests\":{},\"errors\":{},\"elapsed_s\":{:.3},\
         \"conns_per_s\":{:.1},\"req_per_s\":{:.1},\"conn_p50_us\":{},\"conn_p99_us\":{},\
         \"req_p50_us\":{},\"req_p99_us\":{}}}",
        s.conns,
        requests,
        s.errors,
        elapsed,
        s.conns as f64 / elapsed,
        requests as f64 / elapsed,
        percentile(conn_lat, 50.0),
        percentile(conn_lat, 99.0),
        percentile(req_lat, 50.0),
        percentile(req_lat, 99.0),
    );
}

struct Plan<'a> {
    addr: SocketAddr,
    mode: Mode,
    requests: u32,
    depth: u32,
    settings: &'a [u8],
    /// Keep the connection open afterwards (idle modes) instead of closing it.
    keep: bool,
}

/// The client's settings: ENABLE_PUSH = 0, INITIAL_WINDOW_SIZE = WINDOW.
const CLIENT_SETTINGS: &[(u16, u32)] = &[
    (SETTINGS_ENABLE_PUSH, 0),
    (SETTINGS_INITIAL_WINDOW_SIZE, WINDOW),
];

/// The client's SETTINGS payload.
fn client_settings() -> Vec<u8> {
    settings_payload(CLIENT_SETTINGS)
}

/// HEADERS for `GET /` on `stream`: :method GET, :scheme http, :path / from the HPACK
/// static table, :authority as a literal without indexing (name index 1).
fn put_get(dst: &mut Vec<u8>, stream: u32, authority: &[u8]) {
    let mut block = Vec::with_capacity(8 + authority.len());
    block.extend_from_slice(&[0x82, 0x86, 0x84, 0x01]);
    debug_assert!(authority.len() < 127);
    block.push(authority.len() as u8);
    block.extend_from_slice(authority);
    put_frame(dst, HEADERS, END_STREAM | END_HEADERS, stream, &block);
}

/// The opening the client writes right after the preface: SETTINGS and connection credit.
fn put_client_start(dst: &mut Vec<u8>, settings: &[u8]) {
    dst.extend_from_slice(PREFACE);
    put_frame(dst, SETTINGS, 0, 0, settings);
    put_frame(dst, WINDOW_UPDATE, 0, 0, &(WINDOW - 65_535).to_be_bytes());
}

struct Flight {
    id: u32,
    sent: Instant,
    status_ok: Option<bool>,
    body: usize,
}

/// The requests of one HTTP/2 connection.
struct Work {
    /// Already in flight: the upgrade's stream 1.
    flights: Vec<Flight>,
    /// The next stream id to use.
    next_id: u32,
    /// How many more requests to send.
    to_send: u32,
    /// Most requests in flight at once.
    depth: u32,
    /// No new request after this.
    deadline: tokio::time::Instant,
    /// When the connection was opened: the first complete response counts the
    /// connection and completes its latency sample.
    on_first: Option<Instant>,
}

/// An HTTP/2 client connection, driven by hand.
struct H2 {
    sock: TcpStream,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    /// DATA payload received since the last connection WINDOW_UPDATE.
    unacked: u32,
    authority: Vec<u8>,
}

impl H2 {
    async fn flush(&mut self) -> Result<(), String> {
        if !self.wbuf.is_empty() {
            self.sock
                .write_all(&self.wbuf)
                .await
                .map_err(|e| format!("write: {e}"))?;
            self.wbuf.clear();
        }
        Ok(())
    }

    async fn fill(&mut self) -> Result<(), String> {
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(16 * 1024);
        }
        match self.sock.read_buf(&mut self.rbuf).await {
            Ok(0) => Err("connection closed by the server".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// Runs the requests of one connection.
    async fn run(&mut self, work: Work, stats: &Shared) -> Result<(), String> {
        let Work {
            mut flights,
            mut next_id,
            mut to_send,
            depth,
            deadline,
            mut on_first,
        } = work;
        loop {
            while (flights.len() as u32) < depth
                && to_send > 0
                && tokio::time::Instant::now() < deadline
            {
                let auth = std::mem::take(&mut self.authority);
                put_get(&mut self.wbuf, next_id, &auth);
                self.authority = auth;
                flights.push(Flight {
                    id: next_id,
                    sent: Instant::now(),
                    status_ok: None,
                    body: 0,
                });
                next_id += 2;
                to_send -= 1;
            }
            self.flush().await?;
            if flights.is_empty() {
                return Ok(());
            }
            // Handle every complete frame in the buffer, then read more.
            let mut progressed = false;
            while let Some(head) = frame_head(&self.rbuf) {
                let (len, ty, flags, sid) = (head.len, head.ty, head.flags, head.stream);
                if self.rbuf.len() < 9 + len {
                    break;
                }
                self.rbuf.advance(9);
                let payload = self.rbuf.split_to(len);
                progressed = true;
                match ty {
                    HEADERS | DATA => {
                        let Some(i) = flights.iter().position(|f| f.id == sid) else {
                            return Err(format!("frame type {ty} on unknown stream {sid}"));
                        };
                        let f = &mut flights[i];
                        let mut p = &payload[..];
                        let mut pad = 0;
                        if flags & PADDED != 0 && !p.is_empty() {
                            pad = usize::from(p[0]);
                            p = &p[1..];
                        }
                        if ty == HEADERS && flags & PRIORITY_FLAG != 0 && p.len() >= 5 {
                            p = &p[5..];
                        }
                        let p = &p[..p.len().saturating_sub(pad)];
                        if ty == HEADERS {
                            if f.status_ok.is_none() {
                                f.status_ok = Some(p.first() == Some(&0x88));
                            }
                        } else {
                            f.body += p.len();
                            self.unacked += len as u32;
                        }
                        if flags & END_STREAM != 0 {
                            let f = flights.swap_remove(i);
                            let now = Instant::now();
                            let mut s = stats.borrow_mut();
                            if f.status_ok == Some(true) && f.body == BODY.len() {
                                s.own.requests += 1;
                                s.own.req_lat_us.push(micros(now - f.sent));
                            } else {
                                s.error(format!(
                                    "stream {}: status 200: {:?}, body {} bytes",
                                    f.id, f.status_ok, f.body
                                ));
                            }
                            if let Some(t0) = on_first.take() {
                                s.conns += 1;
                                s.own.conn_lat_us.push(micros(now - t0));
                            }
                        }
                    }
                    SETTINGS if flags & ACK == 0 => {
                        put_frame(&mut self.wbuf, SETTINGS, ACK, 0, &[])
                    }
                    PING if flags & ACK == 0 => put_frame(&mut self.wbuf, PING, ACK, 0, &payload),
                    GOAWAY => {
                        let code = payload
                            .get(4..8)
                            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                        return Err(format!("GOAWAY from the server, error code {code:?}"));
                    }
                    RST_STREAM => return Err(format!("RST_STREAM on stream {sid}")),
                    _ => {}
                }
            }
            if self.unacked >= WINDOW / 2 {
                put_frame(
                    &mut self.wbuf,
                    WINDOW_UPDATE,
                    0,
                    0,
                    &self.unacked.to_be_bytes(),
                );
                self.unacked = 0;
            }
            self.flush().await?;
            if !progressed {
                self.fill().await?;
            }
        }
    }

    /// GOAWAY, then wait (bounded) for the server to close, then close. h2 closes a
    /// connection with no open stream once it has read a GOAWAY, so the server closes
    /// first and the TIME_WAIT state stays on its side: the client's ephemeral ports
    /// are free again at once, which a closing client would exhaust at about 14,000
    /// connections per second (half the default port range; Linux keeps the other
    /// half for bind()).
    async fn close(mut self) {
        put_frame(&mut self.wbuf, GOAWAY, 0, 0, &[0u8; 8]);
        if self.flush().await.is_err() {
            return;
        }
        let until = tokio::time::Instant::now() + CLOSE_WAIT;
        let mut sink = [0u8; 4096];
        while let Ok(Ok(n)) = timeout_at(until, self.sock.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    }

    /// Keeps an idle connection alive: answers SETTINGS and PING until the server closes.
    async fn idle(mut self) {
        loop {
            while let Some(head) = frame_head(&self.rbuf) {
                let (len, ty, flags) = (head.len, head.ty, head.flags);
                if self.rbuf.len() < 9 + len {
                    break;
                }
                self.rbuf.advance(9);
                let payload = self.rbuf.split_to(len);
                match ty {
                    SETTINGS if flags & ACK == 0 => {
                        put_frame(&mut self.wbuf, SETTINGS, ACK, 0, &[])
                    }
                    PING if flags & ACK == 0 => put_frame(&mut self.wbuf, PING, ACK, 0, &payload),
                    GOAWAY => return,
                    _ => {}
                }
            }
            if self.flush().await.is_err() || self.fill().await.is_err() {
                return;
            }
        }
    }
}

/// What a finished connection leaves behind for the idle modes.
enum Kept {
    H1(TcpStream),
    H2(H2),
}

/// Opens one connection and runs `plan` on it. Returns the connection when
/// `plan.keep`, else closes it.
async fn one_connection(
    plan: &Plan<'_>,
    stats: &Shared,
    deadline: tokio::time::Instant,
) -> Result<Option<Kept>, String> {
    let t0 = Instant::now();
    let mut sock = connect(plan.addr).await?;
    let authority = plan.addr.to_string().into_bytes();
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut wbuf = Vec::with_capacity(1024);
    let (flights, next_id, to_send) = match plan.mode {
        Mode::Upgrade | Mode::IdleUpgrade => {
            let req = format!(
                "GET / HTTP/1.1\r\nHost: {}\r\n{}\r\n",
                plan.addr,
                upgrade_fields(CLIENT_SETTINGS)
            );
            let sent = Instant::now();
            sock.write_all(req.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            let head = read_h1_head(&mut sock, &mut rbuf).await?;
            if (head.version.as_str(), head.status) != ("HTTP/1.1", 101) {
                return Err(format!(
                    "no upgrade: {} {} {}",
                    head.version, head.status, head.reason
                ));
            }
            put_client_start(&mut wbuf, plan.settings);
            let f = Flight {
                id: 1,
                sent,
                status_ok: None,
                body: 0,
            };
            (vec![f], 3, plan.requests - 1)
        }
        Mode::Prior | Mode::IdlePrior => {
            put_client_start(&mut wbuf, plan.settings);
            (Vec::new(), 1, plan.requests)
        }
        Mode::IdleH1 => {
            let req = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", plan.addr);
            sock.write_all(req.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            let head = read_h1_head(&mut sock, &mut rbuf).await?;
            if (head.version.as_str(), head.status) != ("HTTP/1.1", 200) {
                return Err("HTTP/1.1 response is not 200".into());
            }
            while rbuf.len() < BODY.len() {
                if sock
                    .read_buf(&mut rbuf)
                    .await
                    .map_err(|e| format!("read: {e}"))?
                    == 0
                {
                    return Err("closed before the body".into());
                }
            }
            stats.borrow_mut().own.requests += 1;
            return Ok(Some(Kept::H1(sock)));
        }
    };
    let mut h2 = H2 {
        sock,
        rbuf,
        wbuf,
        unacked: 0,
        authority,
    };
    let work = Work {
        flights,
        next_id,
        to_send,
        depth: plan.depth,
        deadline,
        on_first: Some(t0),
    };
    h2.run(work, stats).await?;
    if plan.keep {
        return Ok(Some(Kept::H2(h2)));
    }
    h2.close().await;
    Ok(None)
}

/// Reads an HTTP/1.1 response head; returns it and leaves what follows in `rbuf`.
async fn read_h1_head(sock: &mut TcpStream, rbuf: &mut BytesMut) -> Result<H1Response, String> {
    loop {
        let mut input = &rbuf[..];
        if let Some(head) = parse_head(&mut input) {
            let used = rbuf.len() - input.len();
            rbuf.advance(used);
            return Ok(head);
        }
        if rbuf.len() > 64 * 1024 {
            return Err("response head too large".into());
        }
        let n = sock
            .read_buf(rbuf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before the response head".into());
        }
    }
}

// ---------------------------------------------------------------------------------
// Idle connections (S6)

async fn idle(args: Args) {
    let stats = Shared::default();
    let settings = client_settings();
    let (addr, mode) = (args.base.addr, args.mode);
    open_and_hold(
        stats.clone(),
        args.base.conns,
        args.base.hold,
        move |open_deadline| {
            let (stats, settings) = (stats.clone(), settings.clone());
            async move {
                let plan = Plan {
                    addr,
                    mode,
                    requests: 1,
                    depth: 1,
                    settings: &settings,
                    keep: true,
                };
                let far = open_deadline + Duration::from_secs(3600);
                match one_connection(&plan, &stats, far).await? {
                    Some(Kept::H1(sock)) => {
                        stats.borrow_mut().conns += 1;
                        Ok(Some(sock))
                    }
                    Some(Kept::H2(h2)) => {
                        // one_connection counted it already.
                        tokio::task::spawn_local(h2.idle());
                        Ok(None)
                    }
                    None => Ok(None),
                }
            }
        },
    )
    .await;
}

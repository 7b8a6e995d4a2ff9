//! What the server logs, captured in memory for the tests that check it.
//!
//! One subscriber for the whole test binary, installed by the first caller of
//! [`captured`]: a subscriber that is only a thread's default can miss events
//! whose call site another test, on another thread, reached first (`tracing`
//! caches each call site's interest). Tests running at once tell their lines
//! apart by their connection's peer address ([`Captured::lines_of`]).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

/// A `tracing-subscriber` writer that keeps everything written to it.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

/// The log of this test binary: every event of h2c-mux at `debug` and above.
pub fn captured() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("h2c_mux=debug"))
            .with_writer(log.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("the first subscriber of this test binary");
        log
    })
}

impl Captured {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().expect("log").clone();
        String::from_utf8(bytes).expect("utf-8 log")
    }

    /// The lines logged so far within the connection from `peer`.
    pub fn lines_of(&self, peer: SocketAddr) -> Vec<String> {
        let span = format!("connection{{peer={peer} ");
        self.text()
            .lines()
            .filter(|l| l.contains(&span))
            .map(str::to_string)
            .collect()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

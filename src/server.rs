//! The accept loop: a task per connection, graceful shutdown with a bounded drain.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::builder::Config;
use crate::conn::Connection;
use crate::service::HttpService;

/// Pause after an accept error such as EMFILE, so a full descriptor table does not
/// turn the loop into a busy spin while connections close.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// What the accept loop tells its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stop {
    Running,
    /// Finish what is in flight, then close.
    Graceful,
    /// The drain timed out: close now.
    Abort,
}

pub(crate) async fn serve<S, F>(
    listener: TcpListener,
    svc: S,
    cfg: Arc<Config>,
    shutdown: F,
) -> io::Result<()>
where
    S: HttpService,
    F: Future<Output = ()>,
{
    // Each connection task holds a permit; the permits count the open connections.
    // Nothing joins the tasks: a finished connection wakes no one, where a
    // `JoinSet` polled by this loop cost a cross-thread wake-up (a futex call and a
    // context switch on each side) per connection. Draining waits for every permit.
    // If this future is dropped, `stop_tx` goes with it and the connections close.
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let mut shutdown = std::pin::pin!(shutdown);
    let limit = Arc::new(Semaphore::new(cfg.max_connections));
    'accept: loop {
        // A slot first: at the limit, connections wait in the kernel's backlog.
        let permit = match limit.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                debug!(
                    max = cfg.max_connections,
                    "connection limit reached; pausing accept"
                );
                tokio::select! {
                    _ = shutdown.as_mut() => break 'accept,
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break 'accept,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            _ = shutdown.as_mut() => break 'accept,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if is_connection_error(&e) {
                    debug!(error = %e, "accept: connection error");
                } else {
                    warn!(error = %e, "accept failed; backing off");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            debug!(error = %e, "set_nodelay failed");
        }
        let conn = Connection::new(stream, svc.clone(), cfg.clone(), Some(peer));
        let stop = stop_rx.clone();
        // The handle is dropped: the task runs detached, counted by its permit.
        drop(tokio::spawn(run_connection(conn, stop, permit)));
    }
    drop(listener);
    let open = cfg.max_connections - limit.available_permits();
    info!(
        open,
        "shutting down: no new connections, draining open ones"
    );
    let _ = stop_tx.send(Stop::Graceful);
    let all_closed = || all_permits(&limit, cfg.max_connections);
    if tokio::time::timeout(cfg.drain_timeout, all_closed())
        .await
        .is_err()
    {
        warn!(
            left = cfg.max_connections - limit.available_permits(),
            "drain timeout: closing remaining connections"
        );
        let _ = stop_tx.send(Stop::Abort);
        all_closed().await;
    }
    Ok(())
}

/// One connection's task: serve it, shut it down gracefully when told, drop it
/// when the drain times out (or `serve` itself is dropped).
async fn run_connection(
    conn: Connection,
    mut stop: watch::Receiver<Stop>,
    permit: OwnedSemaphorePermit,
) {
    {
        let mut conn = std::pin::pin!(conn);
        let res = tokio::select! {
            // Shutdown first, so a response finished in the same wake-up is
            // still told `connection: close`.
            biased;
            _ = stop.changed() => {
                conn.graceful_shutdown();
                tokio::select! {
                    biased;
                    // An error: the sender is gone, as good as an abort.
                    _ = stop.wait_for(|s| *s == Stop::Abort) => Ok(()),
                    res = conn.as_mut() => res,
                }
            }
            res = conn.as_mut() => res,
        };
        if let Err(e) = res {
            debug!(error = %e, "connection ended with an error");
        }
    }
    // The connection (and its service) is gone before the permit says so.
    drop(permit);
}

/// Waits until every connection has returned its permit.
async fn all_permits(limit: &Semaphore, max: usize) {
    let mut left = max;
    while left > 0 {
        let n = u32::try_from(left).unwrap_or(u32::MAX);
        match limit.acquire_many(n).await {
            Ok(p) => p.forget(),
            Err(_) => return,
        }
        left -= n as usize;
    }
}

/// Errors that concern one incoming connection, not the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

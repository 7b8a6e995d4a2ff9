//! The accept loop: a task per connection, graceful shutdown with a bounded drain.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::builder::Config;
use crate::conn::Connection;
use crate::service::HttpService;

/// Pause after an accept error such as EMFILE, so a full descriptor table does not
/// turn the loop into a busy spin while connections close.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

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
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
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
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => continue 'accept,
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break 'accept,
                    },
                }
            }
        };
        let accepted = loop {
            tokio::select! {
                _ = shutdown.as_mut() => break 'accept,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => break accepted,
            }
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
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let mut conn = std::pin::pin!(conn);
            let res = tokio::select! {
                // Shutdown first, so a response finished in the same wake-up is
                // still told `connection: close`.
                biased;
                _ = stop.changed() => {
                    conn.graceful_shutdown();
                    conn.await
                }
                res = conn.as_mut() => res,
            };
            if let Err(e) = res {
                debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = tasks.len();
    info!(
        open,
        "shutting down: no new connections, draining open ones"
    );
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(cfg.drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            left = tasks.len(),
            "drain timeout: closing remaining connections"
        );
        tasks.shutdown().await;
    }
    Ok(())
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

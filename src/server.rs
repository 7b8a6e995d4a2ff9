//! The accept loop: a task per connection, graceful shutdown with a bounded drain.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use slab::Slab;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::connection::{Connection, Ended};
use crate::error::BoxError;
#[cfg(feature = "upgrades")]
use crate::handover::{Cut, Release, Upgraded};
use crate::listener::{Listener, ListenerAddr};
use crate::make::sealed::Make;
use crate::policy::Transport;
use crate::service::HttpService;
use crate::shutdown::Shutdown;

/// Pause after an accept error such as EMFILE, so a full descriptor table does not
/// turn the loop into a busy spin while connections close.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// The connections [`accept_loop`] started and has not seen finish: how it
/// reaches them to shut them down. Each task registers itself before it can run and removes itself
/// when it ends, so nothing polls a shared signal on every wake-up of every
/// connection (a `watch` receiver in each task's `select!` costs 200–340
/// instructions per HTTP/1.1 request).
#[derive(Default)]
struct Registry {
    /// Keyed by slot, reused once its task has removed itself: cheaper per
    /// connection than a `HashMap` keyed by a counter (SipHash on insert and remove
    /// costs about 400 instructions per connection when each request has its own
    /// connection).
    conns: Mutex<Slab<Entry>>,
}

enum Entry {
    /// A connection's task: how to ask it to close, and how to cancel it.
    Serving {
        shutdown: Arc<Shutdown>,
        abort: AbortHandle,
    },
    /// A connection whose service holds its upgraded transport (WebSocket, or any
    /// upgrade other than h2c), after its task ended: an idle WebSocket costs no
    /// task beside the service's own. Still open: it keeps its permit until the
    /// transport releases this entry, and is cut at the drain bound.
    #[cfg(feature = "upgrades")]
    Switched {
        cut: Cut,
        /// Held, and given back when the entry goes.
        _permit: OwnedSemaphorePermit,
    },
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slab<Entry>> {
        // A panic elsewhere while this was held leaves the slab as it was: usable.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns the task serving `accepted` and registers it, under the lock, so the
    /// task cannot remove itself before it is added.
    fn spawn<I, F, S>(
        self: &Arc<Self>,
        accepted: Accepted<I, F>,
        cfg: Arc<Config>,
        permit: OwnedSemaphorePermit,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        F: Future<Output = Result<S, BoxError>> + Send + 'static,
        S: HttpService,
    {
        let mut conns = self.lock();
        let slot = conns.vacant_entry();
        let id = slot.key();
        // Made here, not by the connection, so a shutdown reaches a task that is
        // still waiting for its service.
        let shutdown = Arc::new(Shutdown::default());
        let Accepted {
            io,
            peer,
            transport,
            service,
        } = accepted;
        let task = tokio::spawn(ConnectionTask {
            stage: TaskStage::Making {
                service,
                start: Some(Start {
                    io,
                    peer,
                    transport,
                    cfg,
                    shutdown: shutdown.clone(),
                }),
            },
            permit: Some(permit),
            registered: Registered {
                registry: self.clone(),
                id,
                armed: false,
            },
        });
        slot.insert(Entry::Serving {
            shutdown,
            abort: task.abort_handle(),
        });
    }

    fn remove(&self, id: usize) {
        self.lock().try_remove(id);
    }

    /// Entry `id`'s task ends, its service holding the upgraded transport: the
    /// entry keeps `permit` until the transport releases it. `false` if the
    /// transport is gone already (the entry is then the task's to remove).
    #[cfg(feature = "upgrades")]
    fn switched(
        self: &Arc<Self>,
        id: usize,
        upgraded: Upgraded,
        permit: OwnedSemaphorePermit,
    ) -> bool {
        // Under the lock, so the transport, dropped meanwhile, cannot release the
        // entry before it is the switched one.
        let mut conns = self.lock();
        let Some(entry) = conns.get_mut(id) else {
            return false;
        };
        let Some(cut) = upgraded.detach(self.clone(), id) else {
            return false;
        };
        // The task's abort handle goes with the old entry, and with it the last
        // hold on the task's memory.
        *entry = Entry::Switched {
            cut,
            _permit: permit,
        };
        true
    }

    /// Every open connection finishes what is in flight, then closes. An
    /// upgraded connection speaks its service's protocol, which this cannot ask to
    /// close: it is cut at the drain bound.
    fn shutdown_all(&self) {
        for (_, e) in self.lock().iter() {
            match e {
                Entry::Serving { shutdown, .. } => shutdown.trigger(),
                #[cfg(feature = "upgrades")]
                Entry::Switched { .. } => {}
            }
        }
    }

    /// Every open connection is dropped now: its task is cancelled, or its
    /// upgraded transport cut and its permit given back.
    fn abort_all(&self) {
        self.lock().retain(|_, e| match e {
            Entry::Serving { abort, .. } => {
                abort.abort();
                true
            }
            #[cfg(feature = "upgrades")]
            Entry::Switched { cut, .. } => !cut.cut(),
        });
    }
}

#[cfg(feature = "upgrades")]
impl Release for Registry {
    fn release(&self, id: usize) {
        self.remove(id);
    }
}

/// Cancels the connections still open when `accept_loop` ends or is dropped.
struct AbortOnDrop(Arc<Registry>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort_all();
    }
}

/// One accepted connection on its way to its task: the transport, the peer as
/// requests see it, what the transport negotiated, and the future of its service.
struct Accepted<I, F> {
    io: I,
    peer: Option<SocketAddr>,
    transport: Transport,
    service: F,
}

/// Accepts connections until `shutdown` completes, serving each on its own task,
/// then drains them (see [`Builder::serve`](crate::Builder::serve)).
pub(crate) async fn accept_loop<L, M, Via, F>(
    mut listener: L,
    mut make: M,
    cfg: Arc<Config>,
    shutdown: F,
) -> io::Result<()>
where
    L: Listener,
    M: Make<L::Addr, Via>,
    F: Future<Output = ()>,
{
    // Each connection task holds a permit; the permits count the open connections.
    // Nothing joins the tasks: a finished connection wakes no one, where a
    // `JoinSet` polled by this loop costs a cross-thread wake-up (a futex call and a
    // context switch on each side) per connection. Draining waits for every permit.
    // If this future is dropped, the guard cancels the connections.
    let registry = Arc::new(Registry::default());
    let _guard = AbortOnDrop(registry.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    let limit = Arc::new(Semaphore::new(cfg.max_connections));
    let result = 'accept: loop {
        // A slot first: at the limit, connections wait in the kernel's backlog.
        let permit = match limit.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                debug!(
                    max = cfg.max_connections,
                    "connection limit reached; pausing accept"
                );
                tokio::select! {
                    _ = shutdown.as_mut() => break 'accept Ok(()),
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break 'accept Ok(()),
                    },
                }
            }
        };
        // Then a ready make-service (a cloned service always is), so connections
        // wait in the backlog while it is not.
        let ready = tokio::select! {
            _ = shutdown.as_mut() => break 'accept Ok(()),
            ready = poll_fn(|cx| make.poll_ready(cx)) => ready,
        };
        if let Err(e) = ready {
            warn!(
                error = &*e as &dyn std::error::Error,
                "make-service failed; no more connections"
            );
            break 'accept Err(io::Error::other(e));
        }
        let accepted = tokio::select! {
            _ = shutdown.as_mut() => break 'accept Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (io, addr) = match accepted {
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
        let peer = addr.remote_addr();
        let transport = listener.transport(&io);
        let service = make.make(addr);
        let accepted = Accepted {
            io,
            peer,
            transport,
            service,
        };
        registry.spawn(accepted, cfg.clone(), permit);
    };
    drop(listener);
    let open = cfg.max_connections - limit.available_permits();
    info!(
        open,
        "shutting down: no new connections, draining open ones"
    );
    registry.shutdown_all();
    let all_closed = || all_permits(&limit, cfg.max_connections);
    if tokio::time::timeout(cfg.drain_timeout, all_closed())
        .await
        .is_err()
    {
        warn!(
            left = cfg.max_connections - limit.available_permits(),
            "drain timeout: closing remaining connections"
        );
        registry.abort_all();
        all_closed().await;
    }
    result
}

pin_project! {
    /// One connection's task: waits for its service, then serves the connection
    /// until it closes (a graceful shutdown reaches it through its [`Shutdown`]; a
    /// drain timeout cancels the task).
    ///
    /// Written by hand rather than as an `async fn`, which would keep its
    /// arguments (the transport, the peer, the service's future) for its whole
    /// life beside the connection made of them. Here they share their space with
    /// the connection: the task of an idle HTTP/1.1 connection over TCP is 256
    /// bytes of heap, not 384 (on x86-64 tokio rounds a task up to a multiple of
    /// 128), and a new connection's future is that much less to copy into it.
    ///
    /// The fields drop in the order they are declared, however the task ends
    /// (done, cancelled, or unwound by a panicking service): the connection (and
    /// its service) is gone before the permit says so, and the registry entry
    /// goes last.
    struct ConnectionTask<I, F> {
        #[pin]
        stage: TaskStage<I, F>,
        // Taken only by a switch, into the registry entry.
        permit: Option<OwnedSemaphorePermit>,
        registered: Registered,
    }
}

pin_project! {
    #[project = TaskStageProj]
    enum TaskStage<I, F> {
        /// Waiting for the service; `start` is taken when it is ready.
        Making {
            #[pin]
            service: F,
            start: Option<Start<I>>,
        },
        Serving {
            conn: Connection,
        },
        /// The make-service failed: the transport is closed.
        Closed,
    }
}

/// What a connection is made of besides its service.
struct Start<I> {
    io: I,
    peer: Option<SocketAddr>,
    transport: Transport,
    cfg: Arc<Config>,
    shutdown: Arc<Shutdown>,
}

impl<I, F, S> Future for ConnectionTask<I, F>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Future<Output = Result<S, BoxError>>,
    S: HttpService,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        // From the first poll on, never while `spawn` holds the registry's lock.
        this.registered.armed = true;
        loop {
            match this.stage.as_mut().project() {
                TaskStageProj::Making { service, start } => {
                    let made = ready!(service.poll(cx));
                    let Some(Start {
                        io,
                        peer,
                        transport,
                        cfg,
                        shutdown,
                    }) = start.take()
                    else {
                        this.stage.set(TaskStage::Closed);
                        return Poll::Ready(());
                    };
                    match made {
                        Ok(svc) => {
                            let conn = Connection::new(io, svc, cfg, peer, transport, shutdown);
                            this.stage.set(TaskStage::Serving { conn });
                        }
                        Err(e) => {
                            // The server's own failure, not the peer's.
                            warn!(
                                error = &*e as &dyn std::error::Error,
                                "make-service failed; closing the connection"
                            );
                            drop(io);
                            this.stage.set(TaskStage::Closed);
                            return Poll::Ready(());
                        }
                    }
                }
                TaskStageProj::Serving { conn } => {
                    match ready!(conn.poll_until_switch(cx)) {
                        Ok(Ended::Closed) => {}
                        #[cfg(feature = "upgrades")]
                        Ok(Ended::Switched(upgraded)) => {
                            // The connection (and its service) goes first, as when
                            // the task ends; the permit then moves to the entry.
                            this.stage.set(TaskStage::Closed);
                            if let Some(permit) = this.permit.take() {
                                let reg = &mut *this.registered;
                                if reg.registry.switched(reg.id, upgraded, permit) {
                                    reg.armed = false;
                                }
                            }
                        }
                        Err(e) => debug!(
                            error = &e as &dyn std::error::Error,
                            "connection ended with an error"
                        ),
                    }
                    return Poll::Ready(());
                }
                TaskStageProj::Closed => return Poll::Ready(()),
            }
        }
    }
}

/// A connection task's place in the [`Registry`], given back however the task
/// ends: done, cancelled, or unwound by a panicking service (else a service that
/// panics on some request would let clients grow the registry without bound).
/// Given back only once the task has been polled: `spawn` holds the registry's
/// lock until then, and a task dropped unpolled (a runtime shutting down drops
/// what is spawned on it) must not take the lock again.
struct Registered {
    registry: Arc<Registry>,
    id: usize,
    armed: bool,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if self.armed {
            self.registry.remove(self.id);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Body;
    use http::{Request, Response};
    use std::convert::Infallible;
    use tokio::io::AsyncWriteExt;

    /// Spawns a connection whose service answers with `answer`, sends it one
    /// request, and waits for its task to end: the registry's entries left.
    async fn entries_left_after(answer: fn() -> Response<String>) -> usize {
        let (mut client, server) = tokio::io::duplex(4096);
        let accepted = Accepted {
            io: server,
            peer: None,
            transport: Transport::Cleartext,
            service: std::future::ready(Ok(tower_service_fn(move |_| answer()))),
        };
        let limit = Arc::new(Semaphore::new(1));
        let permit = limit.clone().acquire_owned().await.expect("permit");
        let registry = Arc::new(Registry::default());
        registry.spawn(accepted, Arc::new(Config::default()), permit);
        assert_eq!(registry.lock().len(), 1);
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        // The task has ended once its permit is back.
        let _ = limit.acquire().await.expect("permit back");
        let left = registry.lock().len();
        left
    }

    /// A service answering every request with `answer(request)`.
    fn tower_service_fn<F>(
        answer: F,
    ) -> impl tower_service::Service<
        Request<Body>,
        Response = Response<String>,
        Error = Infallible,
        Future = std::future::Ready<Result<Response<String>, Infallible>>,
    > + Clone
    where
        F: Fn(Request<Body>) -> Response<String> + Clone,
    {
        #[derive(Clone)]
        struct Svc<F>(F);
        impl<F: Fn(Request<Body>) -> Response<String>> tower_service::Service<Request<Body>> for Svc<F> {
            type Response = Response<String>;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response<String>, Infallible>>;
            fn poll_ready(
                &mut self,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Infallible>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn call(&mut self, req: Request<Body>) -> Self::Future {
                std::future::ready(Ok((self.0)(req)))
            }
        }
        Svc(answer)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_ends_leaves_no_registry_entry() {
        assert_eq!(entries_left_after(|| Response::new("ok".into())).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_whose_service_panics_leaves_no_registry_entry() {
        assert_eq!(entries_left_after(|| panic!("the service failed")).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_make_service_closes_the_connection_and_leaves_no_entry() {
        use tokio::io::AsyncReadExt;
        let (mut client, server) = tokio::io::duplex(4096);
        let service: std::future::Ready<Result<Svc, BoxError>> =
            std::future::ready(Err("no service for this peer".into()));
        let accepted = Accepted {
            io: server,
            peer: None,
            transport: Transport::Cleartext,
            service,
        };
        let limit = Arc::new(Semaphore::new(1));
        let permit = limit.clone().acquire_owned().await.expect("permit");
        let registry = Arc::new(Registry::default());
        registry.spawn(accepted, Arc::new(Config::default()), permit);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.expect("read");
        assert!(got.is_empty(), "nothing is written: {got:?}");
        let _ = limit.acquire().await.expect("permit back");
        assert_eq!(registry.lock().len(), 0);
    }

    /// A make-service future that gives `svc` and tells `started` that the task
    /// has begun, so a test cancels a task that has run, not one still queued.
    fn made<S: Send + 'static>(
        svc: S,
        started: Arc<tokio::sync::Notify>,
    ) -> impl Future<Output = Result<S, BoxError>> + Send + 'static {
        let mut svc = Some(svc);
        poll_fn(move |_| {
            started.notify_one();
            Poll::Ready(svc.take().ok_or_else(|| "polled again".into()))
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_connection_leaves_no_registry_entry() {
        let (_client, server) = tokio::io::duplex(4096);
        let started = Arc::new(tokio::sync::Notify::new());
        let svc = tower_service_fn(|_| Response::new("ok".into()));
        let accepted = Accepted {
            io: server,
            peer: None,
            transport: Transport::Cleartext,
            service: made(svc, started.clone()),
        };
        let limit = Arc::new(Semaphore::new(1));
        let permit = limit.clone().acquire_owned().await.expect("permit");
        let registry = Arc::new(Registry::default());
        registry.spawn(accepted, Arc::new(Config::default()), permit);
        started.notified().await;
        assert_eq!(registry.lock().len(), 1);
        registry.abort_all();
        let _ = limit.acquire().await.expect("permit back");
        assert_eq!(registry.lock().len(), 0);
    }

    /// A service that notes, each time one of its clones is dropped, whether the
    /// connection's permit was still out and its registry entry still there.
    #[derive(Clone)]
    struct Svc {
        limit: Arc<Semaphore>,
        registry: Arc<Registry>,
        drops: Arc<Mutex<Vec<(usize, usize)>>>,
        dropped: Arc<tokio::sync::Notify>,
    }

    impl Drop for Svc {
        fn drop(&mut self) {
            let seen = (self.limit.available_permits(), self.registry.lock().len());
            self.drops.lock().expect("drops").push(seen);
            self.dropped.notify_one();
        }
    }

    impl tower_service::Service<Request<Body>> for Svc {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<String>, Infallible>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Infallible>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<Body>) -> Self::Future {
            std::future::ready(Ok(Response::new("ok".into())))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_connection_drops_its_service_before_the_permit_and_the_entry() {
        let (_client, server) = tokio::io::duplex(4096);
        let limit = Arc::new(Semaphore::new(1));
        let registry = Arc::new(Registry::default());
        let drops = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(tokio::sync::Notify::new());
        let svc = Svc {
            limit: limit.clone(),
            registry: registry.clone(),
            drops: drops.clone(),
            dropped: dropped.clone(),
        };
        let started = Arc::new(tokio::sync::Notify::new());
        let accepted = Accepted {
            io: server,
            peer: None,
            transport: Transport::Cleartext,
            service: made(svc, started.clone()),
        };
        let permit = limit.clone().acquire_owned().await.expect("permit");
        registry.spawn(accepted, Arc::new(Config::default()), permit);
        // The connection waits for its client, holding its service; cancelled
        // then, the task drops all it holds at once.
        started.notified().await;
        assert!(drops.lock().expect("drops").is_empty());
        registry.abort_all();
        // Nothing waits on the semaphore meanwhile: a released permit would go
        // straight to a waiter, and the free count would not show it.
        dropped.notified().await;
        assert_eq!(
            *drops.lock().expect("drops"),
            [(0, 1)],
            "(free permits, entries) when the service dropped"
        );
        let _ = limit.acquire().await.expect("permit back");
        assert_eq!(registry.lock().len(), 0);
    }

    /// A service that switches every request to `websocket` and holds the
    /// upgraded transport until `release` is notified (at once if `None`).
    #[cfg(feature = "upgrades")]
    fn switcher(
        release: Option<Arc<tokio::sync::Notify>>,
    ) -> impl tower_service::Service<
        Request<Body>,
        Response = Response<String>,
        Error = Infallible,
        Future = std::future::Ready<Result<Response<String>, Infallible>>,
    > + Clone
           + Send
           + 'static {
        tower_service_fn(move |mut req| {
            let on = hyper::upgrade::on(&mut req);
            let release = release.clone();
            tokio::spawn(async move {
                let io = on.await.expect("upgraded");
                if let Some(release) = release {
                    release.notified().await;
                }
                drop(io);
            });
            Response::builder()
                .status(101)
                .header("upgrade", "websocket")
                .body(String::new())
                .expect("response")
        })
    }

    /// Spawns a connection served by `switcher(release)`, asks it to switch to `websocket`
    /// and reads the `101`.
    #[cfg(feature = "upgrades")]
    async fn switched(
        release: Option<Arc<tokio::sync::Notify>>,
    ) -> (tokio::io::DuplexStream, Arc<Semaphore>, Arc<Registry>) {
        use tokio::io::AsyncReadExt;
        let (mut client, server) = tokio::io::duplex(4096);
        let accepted = Accepted {
            io: server,
            peer: None,
            transport: Transport::Cleartext,
            service: std::future::ready(Ok(switcher(release))),
        };
        let limit = Arc::new(Semaphore::new(1));
        let permit = limit.clone().acquire_owned().await.expect("permit");
        let registry = Arc::new(Registry::default());
        registry.spawn(accepted, Arc::new(Config::default()), permit);
        client
            .write_all(
                b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
            )
            .await
            .expect("write");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            client.read_exact(&mut byte).await.expect("the 101");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{:?}",
            String::from_utf8_lossy(&head)
        );
        (client, limit, registry)
    }

    #[cfg(feature = "upgrades")]
    #[tokio::test(start_paused = true)]
    async fn a_switched_connection_keeps_its_permit_and_entry_until_its_transport_goes() {
        let release = Arc::new(tokio::sync::Notify::new());
        let (_client, limit, registry) = switched(Some(release.clone())).await;
        // The service holds the transport: the connection still counts...
        assert_eq!(limit.available_permits(), 0);
        assert!(matches!(
            registry.lock().iter().map(|(_, e)| e).collect::<Vec<_>>()[..],
            [Entry::Switched { .. }]
        ));
        // ...and stops counting once the service lets it go.
        release.notify_one();
        let _ = limit.acquire().await.expect("permit back");
        assert_eq!(registry.lock().len(), 0);
    }

    #[cfg(feature = "upgrades")]
    #[tokio::test(start_paused = true)]
    async fn a_switched_transport_dropped_at_once_leaves_no_entry() {
        let (_client, limit, registry) = switched(None).await;
        let _ = limit.acquire().await.expect("permit back");
        assert_eq!(registry.lock().len(), 0);
    }

    #[cfg(feature = "upgrades")]
    #[tokio::test(start_paused = true)]
    async fn abort_all_gives_back_the_permit_of_a_switched_connection_at_once() {
        let release = Arc::new(tokio::sync::Notify::new());
        let (_client, limit, registry) = switched(Some(release.clone())).await;
        registry.abort_all();
        // Back before the service lets the transport go.
        assert_eq!(limit.available_permits(), 1);
        assert_eq!(registry.lock().len(), 0);
        release.notify_one();
    }
}

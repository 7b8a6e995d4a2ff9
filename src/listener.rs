//! Where connections come from: the [`Listener`] trait `serve` accepts from, its
//! implementations for TCP and Unix sockets, and [`ListenerAddr`], which says what
//! of a listener's peer address the requests see.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use crate::policy::Transport;

/// A source of connections for [`Builder::serve`](crate::Builder::serve) and
/// [`serve`](crate::serve): each [`accept`](Listener::accept) gives one transport
/// and its peer's address.
///
/// Implemented for `tokio::net::TcpListener` and, on Unix, `tokio::net::UnixListener`.
/// Implement it for a listener of your own, for example one that wraps TCP in TLS:
/// the connection cap, graceful shutdown and the drain apply to every listener, and
/// the peer's address reaches every request (see [`ListenerAddr`]) and, with a
/// make-service, the service itself (see [`MakeConnectionService`](crate::MakeConnectionService)).
///
/// An `accept` error is handled as for TCP: a connection error (refused, aborted,
/// reset) is logged and the next connection is accepted; any other error (such as
/// `EMFILE`) is logged and accepting pauses briefly before it goes on. `accept` should
/// therefore do nothing slow per connection (a TLS handshake in it would hold up every
/// other client): hand back a transport that does its handshake when first read, or
/// accept in a task of your own and hand the finished connections over.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use tokio::net::{TcpListener, TcpStream};
///
/// /// TCP that refuses one address.
/// struct Refusing {
///     tcp: TcpListener,
///     banned: std::net::IpAddr,
/// }
///
/// impl h2c_mux::Listener for Refusing {
///     type Io = TcpStream;
///     type Addr = SocketAddr;
///
///     async fn accept(&mut self) -> std::io::Result<(TcpStream, SocketAddr)> {
///         loop {
///             // TcpListener's own `Listener::accept` sets TCP_NODELAY.
///             let (io, peer) = h2c_mux::Listener::accept(&mut self.tcp).await?;
///             if peer.ip() != self.banned {
///                 return Ok((io, peer));
///             }
///         }
///     }
///
///     fn local_addr(&self) -> std::io::Result<SocketAddr> {
///         self.tcp.local_addr()
///     }
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let tcp = TcpListener::bind("127.0.0.1:8080").await?;
/// let listener = Refusing { tcp, banned: [10, 0, 0, 9].into() };
/// h2c_mux::serve(listener, h2c_mux::demo::Demo::new(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
pub trait Listener: Send + 'static {
    /// The transport of one accepted connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The peer's address (and the listener's own, from
    /// [`local_addr`](Listener::local_addr)).
    type Addr: ListenerAddr;

    /// Waits for the next connection. `serve` drops the future unfinished when its
    /// shutdown completes, and drops the listener after it.
    ///
    /// ```no_run
    /// use h2c_mux::Listener;
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let mut listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// let (stream, peer) = Listener::accept(&mut listener).await?;
    /// # let _ = (stream, peer);
    /// # Ok(())
    /// # }
    /// ```
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>> + Send;

    /// What the transport of `io`, just accepted, negotiated: cleartext, or TLS
    /// with its ALPN protocol. It decides how the connection starts (see
    /// [`Transport`]): over TLS, ALPN `h2` is HTTP/2 at once, anything else
    /// HTTP/1.1 that no `Upgrade: h2c` switches. The default says
    /// [`Transport::Cleartext`], right for TCP and Unix sockets; a listener that
    /// terminates TLS says what its handshake chose.
    ///
    /// ```no_run
    /// use std::net::SocketAddr;
    /// use tokio::net::TcpStream;
    /// use tokio_rustls::server::TlsStream;
    ///
    /// /// Finished TLS handshakes, handed over by a task of its own.
    /// struct TlsListener {
    ///     ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    ///     local: SocketAddr,
    /// }
    ///
    /// impl h2c_mux::Listener for TlsListener {
    ///     type Io = TlsStream<TcpStream>;
    ///     type Addr = SocketAddr;
    ///
    ///     async fn accept(&mut self) -> std::io::Result<(Self::Io, SocketAddr)> {
    ///         self.ready.recv().await.ok_or_else(|| std::io::Error::other("acceptor stopped"))
    ///     }
    ///
    ///     fn local_addr(&self) -> std::io::Result<SocketAddr> {
    ///         Ok(self.local)
    ///     }
    ///
    ///     fn transport(&self, io: &Self::Io) -> h2c_mux::Transport {
    ///         h2c_mux::Transport::tls(io.get_ref().1.alpn_protocol())
    ///     }
    /// }
    /// ```
    ///
    /// `examples/tls.rs` in the repository is such a listener, whole.
    fn transport(&self, io: &Self::Io) -> Transport {
        let _ = io;
        Transport::Cleartext
    }

    /// The address the listener is bound to.
    ///
    /// ```no_run
    /// use h2c_mux::Listener;
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// println!("listening on {}", Listener::local_addr(&listener)?);
    /// # Ok(())
    /// # }
    /// ```
    fn local_addr(&self) -> io::Result<Self::Addr>;
}

/// A [`Listener`]'s address type: what of it the requests see.
///
/// When [`remote_addr`](ListenerAddr::remote_addr) gives a socket address, every
/// request of the connection carries it as the [`RemoteAddr`](crate::RemoteAddr)
/// extension (and [`decline_proxied`](crate::decline_proxied) reads it); a Unix
/// socket's address gives none. The address itself, whatever its type, is what a
/// make-service is called with (see
/// [`MakeConnectionService`](crate::MakeConnectionService)): that is how a service
/// learns a Unix peer, or anything else a listener of your own knows.
///
/// ```no_run
/// use std::net::SocketAddr;
///
/// /// What a listener of your own knows about its peer.
/// #[derive(Clone, Debug)]
/// struct Peer {
///     addr: SocketAddr,
///     tenant: u32,
/// }
///
/// impl h2c_mux::ListenerAddr for Peer {
///     fn remote_addr(&self) -> Option<SocketAddr> {
///         Some(self.addr)
///     }
/// }
/// ```
pub trait ListenerAddr: Send + 'static {
    /// The socket address requests carry as [`RemoteAddr`](crate::RemoteAddr), if any.
    ///
    /// ```no_run
    /// use h2c_mux::ListenerAddr;
    ///
    /// let addr: std::net::SocketAddr = "192.0.2.7:4000".parse().unwrap();
    /// assert_eq!(addr.remote_addr(), Some(addr));
    /// ```
    fn remote_addr(&self) -> Option<SocketAddr>;
}

impl ListenerAddr for SocketAddr {
    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(*self)
    }
}

#[cfg(unix)]
impl ListenerAddr for tokio::net::unix::SocketAddr {
    /// None: a Unix peer has no socket address (and usually no path either).
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// Sets `TCP_NODELAY` on every accepted stream: an upgrade writes the `101` and the
/// first HTTP/2 frames as one small segment that must not wait on Nagle.
impl Listener for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> io::Result<(Self::Io, Self::Addr)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        if let Err(e) = stream.set_nodelay(true) {
            debug!(error = %e, "set_nodelay failed");
        }
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        tokio::net::TcpListener::local_addr(self)
    }
}

#[cfg(unix)]
impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> io::Result<(Self::Io, Self::Addr)> {
        tokio::net::UnixListener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        tokio::net::UnixListener::local_addr(self)
    }
}

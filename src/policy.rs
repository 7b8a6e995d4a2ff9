//! What the embedder sees and decides: what the transport negotiated, the protocol
//! a request came over, and the upgrade policy.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// How a request reached the server; [`Protocol::of`] tells it for every request
/// handed to the service.
///
/// An HTTP/2 request carries its `Protocol` in its extensions (only it can tell an
/// upgraded connection from prior knowledge). An HTTP/1.0 or HTTP/1.1 request
/// carries none: its [`version`](http::Request::version) says it, and an extension
/// would cost every request an allocation and a hashed insert. Code that reads the
/// extension itself (`req.extensions().get::<Protocol>()`, or axum's
/// `Extension<Protocol>` extractor) finds it on HTTP/2 requests only; use
/// [`Protocol::of`] to cover both.
///
/// ```
/// use h2c_mux::Protocol;
///
/// fn describe(req: &http::Request<h2c_mux::Body>) -> &'static str {
///     Protocol::of(req).map_or("unknown", |p| p.as_str())
/// }
/// ```
///
/// More ways to reach the server may be added, so a `match` on it needs a
/// wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// Plain HTTP/1.0 or HTTP/1.1.
    Http1,
    /// HTTP/2 reached through `Upgrade: h2c` (RFC 7540 §3.2): stream 1 (the
    /// upgrade request itself) and every later stream. With a streamed upgrade body
    /// the service sees stream 1 before the `101`; if its answer then has to go out
    /// over HTTP/1.1 (see [`Builder::stream_upgrade_body`](crate::Builder::stream_upgrade_body)),
    /// that request still says `H2cUpgrade` and the connection stays HTTP/1.1; its
    /// [`AnsweredOver`] extension tells which protocol carried the answer.
    H2cUpgrade,
    /// HTTP/2 with prior knowledge: the client opened with the preface (RFC 9113 §3.3).
    H2PriorKnowledge,
    /// HTTP/2 over TLS, chosen by ALPN `h2` (RFC 9113 §3.2): the connection was
    /// served with [`Transport::Tls`] and [`Alpn::H2`], as HTTP/2 from its first
    /// byte.
    H2Tls,
}

impl Protocol {
    /// How `req` reached the server: the `Protocol` in its extensions if it has one
    /// (HTTP/2), else [`Http1`](Protocol::Http1) for an HTTP/1.0 or HTTP/1.1
    /// request. `None` only for a request h2c-mux did not make (an HTTP/2 one
    /// without the extension, or another version).
    ///
    /// ```
    /// use h2c_mux::Protocol;
    ///
    /// let req = http::Request::get("/").body(()).unwrap();
    /// assert_eq!(Protocol::of(&req), Some(Protocol::Http1));
    ///
    /// let mut req = http::Request::get("/").version(http::Version::HTTP_2).body(()).unwrap();
    /// assert_eq!(Protocol::of(&req), None);
    /// req.extensions_mut().insert(Protocol::H2cUpgrade);
    /// assert_eq!(Protocol::of(&req), Some(Protocol::H2cUpgrade));
    /// ```
    pub fn of<B>(req: &http::Request<B>) -> Option<Protocol> {
        Protocol::find(req.extensions(), req.version())
    }

    /// [`Protocol::of`] for a request split into its head and body (after
    /// [`Request::into_parts`](http::Request::into_parts)).
    ///
    /// ```
    /// let (head, _body) = http::Request::get("/").body(()).unwrap().into_parts();
    /// assert_eq!(h2c_mux::Protocol::of_parts(&head), Some(h2c_mux::Protocol::Http1));
    /// ```
    pub fn of_parts(head: &http::request::Parts) -> Option<Protocol> {
        Protocol::find(&head.extensions, head.version)
    }

    fn find(extensions: &http::Extensions, version: http::Version) -> Option<Protocol> {
        if let Some(p) = extensions.get::<Protocol>() {
            return Some(*p);
        }
        match version {
            http::Version::HTTP_10 | http::Version::HTTP_11 => Some(Protocol::Http1),
            _ => None,
        }
    }

    /// A short name for logs: `http/1.1`, `h2c-upgrade`, `h2-prior-knowledge` or
    /// `h2-tls`.
    ///
    /// ```
    /// assert_eq!(h2c_mux::Protocol::H2cUpgrade.as_str(), "h2c-upgrade");
    /// assert_eq!(h2c_mux::Protocol::H2Tls.as_str(), "h2-tls");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1.1",
            Protocol::H2cUpgrade => "h2c-upgrade",
            Protocol::H2PriorKnowledge => "h2-prior-knowledge",
            Protocol::H2Tls => "h2-tls",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a connection's transport negotiated below HTTP, which decides how the
/// connection starts. h2c-mux does no TLS itself: a [`Listener`](crate::Listener)
/// that terminates TLS says so from its
/// [`transport`](crate::Listener::transport) method, and a connection served by
/// hand from
/// [`Builder::serve_connection_with_transport`](crate::Builder::serve_connection_with_transport).
///
/// - [`Cleartext`](Transport::Cleartext) (TCP, a Unix socket): the first bytes
///   tell HTTP/2 with prior knowledge from HTTP/1.1, and `Upgrade: h2c` may
///   switch, as the [`Builder`](crate::Builder) allows.
/// - [`Tls`](Transport::Tls) with ALPN [`h2`](Alpn::H2): HTTP/2 from the first
///   byte, nothing sniffed; its requests say [`Protocol::H2Tls`].
/// - `Tls` with ALPN `http/1.1`, another protocol, or none: HTTP/1.1 only.
///   `Upgrade: h2c` never switches (h2c is HTTP/2 over cleartext TCP, RFC 9113
///   §3.1; such a request is answered over HTTP/1.1 with
///   [`DeclineReason::Tls`]), and the HTTP/2 preface is answered `505`: over TLS,
///   HTTP/2 is chosen with ALPN only (RFC 9113 §3.3).
///
/// ```
/// use h2c_mux::{Alpn, Transport};
///
/// // What a rustls server connection's `alpn_protocol()` gives, for example.
/// let alpn: Option<&[u8]> = Some(b"h2");
/// assert_eq!(Transport::tls(alpn), Transport::Tls { alpn: Some(Alpn::H2) });
/// assert_eq!(Transport::default(), Transport::Cleartext);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    /// No TLS: plain TCP or a Unix socket.
    #[default]
    Cleartext,
    /// TLS, with the protocol ALPN chose, if the client offered any the server
    /// accepts.
    Tls {
        /// The ALPN protocol, or `None` when none was negotiated.
        alpn: Option<Alpn>,
    },
}

impl Transport {
    /// TLS whose ALPN chose the protocol identified by `alpn` (its bytes as they
    /// went over the wire, such as `b"h2"`), or none.
    ///
    /// ```
    /// use h2c_mux::{Alpn, Transport};
    ///
    /// assert_eq!(Transport::tls(None), Transport::Tls { alpn: None });
    /// assert_eq!(
    ///     Transport::tls(Some(b"http/1.1")),
    ///     Transport::Tls { alpn: Some(Alpn::Http11) }
    /// );
    /// ```
    pub fn tls(alpn: Option<&[u8]>) -> Transport {
        Transport::Tls {
            alpn: alpn.map(Alpn::from_id),
        }
    }
}

/// An ALPN protocol (RFC 7301), as far as choosing the HTTP version goes.
///
/// ```
/// use h2c_mux::Alpn;
///
/// assert_eq!(Alpn::from_id(b"h2"), Alpn::H2);
/// assert_eq!(Alpn::from_id(b"acme-tls/1"), Alpn::Other);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alpn {
    /// `h2`: HTTP/2 over TLS (RFC 9113 §3.2).
    H2,
    /// `http/1.1`.
    Http11,
    /// Any other protocol: served as HTTP/1.1.
    Other,
}

impl Alpn {
    /// The protocol whose identification sequence is `id`. ALPN compares the
    /// bytes exactly (RFC 7301 §3.2), so `H2` is not `h2`.
    ///
    /// ```
    /// assert_eq!(h2c_mux::Alpn::from_id(b"http/1.1"), h2c_mux::Alpn::Http11);
    /// assert_eq!(h2c_mux::Alpn::from_id(b"H2"), h2c_mux::Alpn::Other);
    /// ```
    pub fn from_id(id: &[u8]) -> Alpn {
        match id {
            b"h2" => Alpn::H2,
            b"http/1.1" => Alpn::Http11,
            _ => Alpn::Other,
        }
    }
}

/// The answer of an upgrade policy (see [`Builder::upgrade_policy`](crate::Builder::upgrade_policy)).
///
/// ```
/// use h2c_mux::UpgradeDecision;
///
/// let d = UpgradeDecision::decline("uploads stay on http/1.1");
/// assert!(!d.is_upgrade());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeDecision {
    /// Switch this connection to HTTP/2; the request becomes stream 1.
    Upgrade,
    /// Answer this request over HTTP/1.1 and keep the connection on HTTP/1.1.
    Decline(Cow<'static, str>),
}

impl UpgradeDecision {
    /// Declines with a reason that is logged and handed to the service.
    ///
    /// ```
    /// let d = h2c_mux::UpgradeDecision::decline(format!("tenant {} is on http/1.1", 7));
    /// assert!(matches!(d, h2c_mux::UpgradeDecision::Decline(_)));
    /// ```
    pub fn decline(reason: impl Into<Cow<'static, str>>) -> Self {
        UpgradeDecision::Decline(reason.into())
    }

    /// True for [`UpgradeDecision::Upgrade`].
    ///
    /// ```
    /// assert!(h2c_mux::UpgradeDecision::Upgrade.is_upgrade());
    /// ```
    pub fn is_upgrade(&self) -> bool {
        matches!(self, UpgradeDecision::Upgrade)
    }
}

/// Why an `Upgrade: h2c` request was answered over HTTP/1.1 instead.
///
/// The request handed to the service carries an [`UpgradeDeclined`] with this reason
/// in its extensions; the reason is also logged at `debug`.
///
/// ```
/// use h2c_mux::{DeclineReason, UpgradeDeclined};
///
/// fn was_too_big(req: &http::Request<h2c_mux::Body>) -> bool {
///     matches!(
///         req.extensions().get::<UpgradeDeclined>(),
///         Some(UpgradeDeclined { reason: DeclineReason::BodyTooLarge { .. } })
///     )
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeclineReason {
    /// The builder turned the upgrade off.
    Disabled,
    /// The connection is TLS ([`Transport::Tls`]): h2c is HTTP/2 over cleartext
    /// TCP (RFC 9113 §3.1), and over TLS HTTP/2 is chosen with ALPN, never with
    /// `Upgrade` (`h2c` or `h2`).
    Tls,
    /// RFC 9110 §7.8: an `Upgrade` in an HTTP/1.0 request is ignored.
    Http10,
    /// The upgrade is never done for CONNECT.
    Connect,
    /// RFC 7540 §3.3: `h2` names HTTP/2 over TLS and is never honoured in cleartext.
    TlsToken,
    /// RFC 7540 §3.2.1: `Connection` must list both `Upgrade` and `HTTP2-Settings`.
    ConnectionTokens,
    /// RFC 7540 §3.2.1: the request must carry exactly one `HTTP2-Settings`.
    SettingsCount(usize),
    /// The `HTTP2-Settings` value is not a valid SETTINGS payload.
    InvalidSettings(String),
    /// The request cannot be carried as HTTP/2 stream 1.
    InvalidRequest(String),
    /// The request body is larger than the upgrade body bound.
    BodyTooLarge {
        /// The configured bound, in bytes.
        limit: usize,
    },
    /// The request carries this forwarding field, so it came through a proxy that
    /// forwards upgrades: switching would open a tunnel past the proxy (see
    /// [`Builder::h2c_through_proxies`](crate::Builder::h2c_through_proxies)).
    Proxied(&'static str),
    /// The embedder's policy declined.
    Policy(Cow<'static, str>),
}

impl fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclineReason::Disabled => f.write_str("h2c upgrade is disabled"),
            DeclineReason::Tls => f.write_str("no upgrade over tls: alpn chooses http/2"),
            DeclineReason::Http10 => f.write_str("upgrade is ignored in http/1.0"),
            DeclineReason::Connect => f.write_str("upgrade is ignored for connect"),
            DeclineReason::TlsToken => f.write_str("upgrade token h2 requires tls"),
            DeclineReason::ConnectionTokens => {
                f.write_str("connection does not list upgrade and http2-settings")
            }
            DeclineReason::SettingsCount(0) => f.write_str("no http2-settings header"),
            DeclineReason::SettingsCount(n) => write!(f, "{n} http2-settings headers"),
            DeclineReason::InvalidSettings(e) => write!(f, "invalid http2-settings: {e}"),
            DeclineReason::InvalidRequest(e) => write!(f, "request unfit for stream 1: {e}"),
            DeclineReason::BodyTooLarge { limit } => {
                write!(f, "request body exceeds the upgrade bound of {limit} bytes")
            }
            DeclineReason::Proxied(name) => write!(f, "request came through a proxy ({name})"),
            DeclineReason::Policy(r) => write!(f, "declined by policy: {r}"),
        }
    }
}

/// Request extension: present when the request asked for `Upgrade: h2c` (or `h2`)
/// and was answered over HTTP/1.1 instead.
///
/// ```
/// fn why(req: &http::Request<h2c_mux::Body>) -> Option<String> {
///     req.extensions()
///         .get::<h2c_mux::UpgradeDeclined>()
///         .map(|d| d.reason.to_string())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeDeclined {
    /// Why the upgrade was declined.
    pub reason: DeclineReason,
}

/// Request extension of a streamed upgrade's stream 1 (see
/// [`Protocol::H2cUpgrade`]): which protocol carried its answer. The service is
/// called before the `101`, so at first nothing is decided ([`get`](Self::get) is
/// `None`); once the server has switched, or has chosen to answer over HTTP/1.1, it
/// is [`H2cUpgrade`](Protocol::H2cUpgrade) or [`Http1`](Protocol::Http1). It is
/// decided by the time the response body is dropped, so a log line written then
/// names the protocol that carried the answer. No other request carries it:
/// [`Protocol::of`] tells theirs.
///
/// ```
/// fn answered_over(req: &http::Request<h2c_mux::Body>) -> Option<h2c_mux::AnsweredOver> {
///     // Keep a clone; ask it once the response has been sent.
///     req.extensions().get::<h2c_mux::AnsweredOver>().cloned()
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct AnsweredOver(Arc<AtomicU8>);

impl AnsweredOver {
    // 0, the default: not decided yet.
    const HTTP1: u8 = 1;
    const H2C_UPGRADE: u8 = 2;

    /// The protocol that carried (or carries) the answer, once decided.
    ///
    /// ```
    /// let answer = h2c_mux::AnsweredOver::default();
    /// assert_eq!(answer.get(), None);
    /// ```
    pub fn get(&self) -> Option<Protocol> {
        match self.0.load(Ordering::Acquire) {
            Self::HTTP1 => Some(Protocol::Http1),
            Self::H2C_UPGRADE => Some(Protocol::H2cUpgrade),
            _ => None,
        }
    }

    /// Records the decision: `true` once switched to HTTP/2, `false` for HTTP/1.1.
    pub(crate) fn decide(&self, switched: bool) {
        let v = if switched {
            Self::H2C_UPGRADE
        } else {
            Self::HTTP1
        };
        self.0.store(v, Ordering::Release);
    }
}

/// Request extension: the peer's address, on every request (HTTP/1.1, after an h2c
/// upgrade, with prior knowledge) of a connection from
/// [`Builder::serve`](crate::Builder::serve) on a listener whose address is a socket
/// address (TCP, or TLS over TCP: see [`ListenerAddr`](crate::ListenerAddr); a Unix
/// socket gives none), or from
/// [`Builder::serve_connection_with_peer`](crate::Builder::serve_connection_with_peer).
///
/// ```
/// fn peer(req: &http::Request<h2c_mux::Body>) -> Option<std::net::SocketAddr> {
///     req.extensions().get::<h2c_mux::RemoteAddr>().map(|a| a.0)
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub std::net::SocketAddr);

/// Fields that show a request came through a proxy (RFC 9110 §7.6.3 `Via`, RFC 7239
/// `Forwarded`, and the de-facto `X-Forwarded-*` / `X-Real-IP`).
const PROXY_FIELDS: &[&str] = &[
    "via",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// The first forwarding field `head` carries, if any: the sign that it came
/// through a proxy.
pub(crate) fn proxy_field(head: &http::HeaderMap) -> Option<&'static str> {
    PROXY_FIELDS
        .iter()
        .copied()
        .find(|name| head.contains_key(*name))
}

/// An upgrade policy that declines `Upgrade: h2c` for requests that came through a
/// reverse proxy, known by their forwarding fields or by the proxy's address.
///
/// Requests with forwarding fields are declined by default already (see
/// [`Builder::h2c_through_proxies`](crate::Builder::h2c_through_proxies)); this
/// policy adds the proxies' addresses, for proxies that forward upgrades without
/// saying so in a field.
///
/// **The threat (h2c smuggling):** a reverse proxy that forwards `Upgrade` and
/// `Connection` verbatim lets a client switch its proxied connection to HTTP/2. The
/// proxy then sees an opaque tunnel, and every later request on it bypasses the
/// proxy's routing, access rules and logging. Serving h2c behind such a proxy is
/// only safe when the upgrade is refused for proxied requests.
///
/// A request counts as proxied when it carries `Via`, `Forwarded`,
/// `X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto` or `X-Real-IP`, or when
/// the peer's address (the [`RemoteAddr`] extension, set by
/// [`Builder::serve`](crate::Builder::serve) and
/// [`Builder::serve_connection_with_peer`](crate::Builder::serve_connection_with_peer))
/// is one of `proxies`. A declined request
/// is still answered, over HTTP/1.1. Clients that reach the server directly keep
/// the upgrade, and prior-knowledge HTTP/2 is unaffected (a proxy cannot be talked
/// into it by a client).
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
///
/// let mut builder = h2c_mux::Builder::new();
/// builder.upgrade_policy(h2c_mux::decline_proxied([IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))]));
/// ```
pub fn decline_proxied(
    proxies: impl IntoIterator<Item = IpAddr>,
) -> impl Fn(&http::request::Parts) -> UpgradeDecision + Send + Sync + 'static {
    let proxies: Vec<IpAddr> = proxies.into_iter().collect();
    move |head: &http::request::Parts| {
        if let Some(name) = proxy_field(&head.headers) {
            return UpgradeDecision::Decline(Cow::Owned(format!(
                "request came through a proxy ({name})"
            )));
        }
        match head.extensions.get::<RemoteAddr>() {
            Some(RemoteAddr(addr)) if proxies.contains(&addr.ip()) => {
                UpgradeDecision::decline("peer is a listed proxy")
            }
            _ => UpgradeDecision::Upgrade,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn head(fields: &[(&str, &str)], peer: Option<[u8; 4]>) -> http::request::Parts {
        let mut b = http::Request::builder().uri("/");
        for (k, v) in fields {
            b = b.header(*k, *v);
        }
        let (mut parts, ()) = b.body(()).unwrap().into_parts();
        if let Some(ip) = peer {
            parts
                .extensions
                .insert(RemoteAddr(SocketAddr::from((ip, 4000))));
        }
        parts
    }

    #[test]
    fn proxied_requests_are_declined() {
        let policy = decline_proxied([IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))]);
        for name in PROXY_FIELDS {
            let d = policy(&head(&[(name, "x")], None));
            assert!(!d.is_upgrade(), "{name}");
        }
        assert!(!policy(&head(&[], Some([10, 0, 0, 5]))).is_upgrade());
        assert!(policy(&head(&[], Some([10, 0, 0, 6]))).is_upgrade());
        assert!(policy(&head(&[("user-agent", "curl")], None)).is_upgrade());
    }

    #[test]
    fn reasons_display() {
        assert_eq!(
            DeclineReason::SettingsCount(2).to_string(),
            "2 http2-settings headers"
        );
        assert_eq!(
            DeclineReason::Policy("no".into()).to_string(),
            "declined by policy: no"
        );
        assert_eq!(Protocol::H2PriorKnowledge.to_string(), "h2-prior-knowledge");
        assert_eq!(
            DeclineReason::Tls.to_string(),
            "no upgrade over tls: alpn chooses http/2"
        );
    }

    #[test]
    fn alpn_ids() {
        let cases: &[(Option<&[u8]>, Option<Alpn>)] = &[
            (None, None),
            (Some(b"h2"), Some(Alpn::H2)),
            (Some(b"http/1.1"), Some(Alpn::Http11)),
            (Some(b"H2"), Some(Alpn::Other)),
            (Some(b"h2c"), Some(Alpn::Other)),
            (Some(b"http/1.0"), Some(Alpn::Other)),
            (Some(b""), Some(Alpn::Other)),
        ];
        for (id, alpn) in cases {
            assert_eq!(
                Transport::tls(*id),
                Transport::Tls { alpn: *alpn },
                "{id:?}"
            );
        }
    }
}

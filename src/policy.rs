//! What the embedder sees and decides: the negotiated protocol and the upgrade policy.

use std::borrow::Cow;
use std::fmt;

/// How a request reached the server. Every request handed to the service carries
/// one in its extensions.
///
/// ```
/// use h2c_mux::Protocol;
///
/// fn describe(req: &http::Request<h2c_mux::Body>) -> &'static str {
///     req.extensions().get::<Protocol>().map_or("unknown", |p| p.as_str())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plain HTTP/1.0 or HTTP/1.1.
    Http1,
    /// HTTP/2 reached through `Upgrade: h2c` (RFC 7540 §3.2).
    H2cUpgrade,
    /// HTTP/2 with prior knowledge: the client opened with the preface (RFC 9113 §3.3).
    H2PriorKnowledge,
}

impl Protocol {
    /// A short name for logs: `http/1.1`, `h2c-upgrade` or `h2-prior-knowledge`.
    ///
    /// ```
    /// assert_eq!(h2c_mux::Protocol::H2cUpgrade.as_str(), "h2c-upgrade");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1.1",
            Protocol::H2cUpgrade => "h2c-upgrade",
            Protocol::H2PriorKnowledge => "h2-prior-knowledge",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    pub fn decline(reason: impl Into<Cow<'static, str>>) -> Self {
        UpgradeDecision::Decline(reason.into())
    }

    /// True for [`UpgradeDecision::Upgrade`].
    pub fn is_upgrade(&self) -> bool {
        matches!(self, UpgradeDecision::Upgrade)
    }
}

/// Why an `Upgrade: h2c` request was answered over HTTP/1.1 instead.
///
/// The request handed to the service carries an [`UpgradeDeclined`] with this reason
/// in its extensions; the reason is also logged at `debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeclineReason {
    /// The builder turned the upgrade off.
    Disabled,
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
    /// The embedder's policy declined.
    Policy(Cow<'static, str>),
}

impl fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclineReason::Disabled => f.write_str("h2c upgrade is disabled"),
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

/// Request extension: the peer's address, when the connection came from
/// [`Builder::serve`](crate::Builder::serve).
///
/// ```
/// fn peer(req: &http::Request<h2c_mux::Body>) -> Option<std::net::SocketAddr> {
///     req.extensions().get::<h2c_mux::RemoteAddr>().map(|a| a.0)
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub std::net::SocketAddr);

//! The axum WebSocket echo app, written as its authors would write it for
//! `axum::serve`: the one app `tests/websocket.rs` serves through h2c-mux and the
//! benchmark's `examples/ws_server.rs` serves through both h2c-mux and
//! `axum::serve`, so the two servers compare on the same `Router`.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::routing::get;
use axum::Router;

/// A WebSocket echo of text and binary messages at `/ws`, beside a plain route.
pub fn echo_app() -> Router {
    Router::new().route("/", get(|| async { "plain\n" })).route(
        "/ws",
        get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(echo) }),
    )
}

async fn echo(mut socket: WebSocket) {
    // After the client's close, reading on sends the library's reply and then
    // ends: returning at the close would drop the socket with the reply unsent.
    while let Some(Ok(msg)) = socket.recv().await {
        if matches!(msg, Message::Text(_) | Message::Binary(_)) && socket.send(msg).await.is_err() {
            return;
        }
    }
}

//! The graceful-shutdown signal one connection shares with whoever may ask it to
//! close: the [`Connection`](crate::Connection) handle and the accept loop's
//! registry. Every protocol layer polls it; it knows none of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// A request to finish in-flight work and close, shared by a
/// [`Connection`](crate::Connection) and the task driving it.
#[derive(Default)]
pub(crate) struct Shutdown {
    triggered: AtomicBool,
    waker: AtomicWaker,
}

impl Shutdown {
    pub(crate) fn trigger(&self) {
        self.triggered.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub(crate) fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::Acquire)
    }

    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_triggered() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.is_triggered() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

//! Reading what a handler left of a request body before the answer goes out.
//!
//! Many clients (Python's, curl with a file) write their whole body before
//! they read the answer. If the CA answers early (a refused credential, a
//! path or query that does not parse, an unknown route, a body over the limit,
//! a `GET` that came with a body) and closes the connection on unread bytes,
//! the kernel resets it and the client sees a broken pipe instead of the
//! answer that explains it. So every request's body is handed back to
//! [`drain_unread_body`] when the handler drops it unfinished, and that layer
//! reads and drops the rest, up to [`UNREAD_BODY_DRAIN`] bytes and within the
//! request deadline (the timeout layer wraps this one), before it answers.
//! One layer for every route means no handler can forget it.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::sync::oneshot;

/// How much of a body the CA still reads, and drops, after its answer is
/// decided. The bound (with the request deadline) keeps a hostile client from
/// making the CA read forever; what is left past it is reset.
const UNREAD_BODY_DRAIN: usize = 4 * 1024 * 1024;

/// Middleware: run the handler, then read what it left of the body.
pub(super) async fn drain_unread_body(req: Request, next: Next) -> Response {
    let expects_continue = expects_continue(req.headers());
    let (leftover, mut returned) = oneshot::channel();
    let req = req.map(|inner| {
        Body::new(HandsBackUnread {
            inner: Some(inner),
            started: false,
            leftover: Some(leftover),
        })
    });
    let response = next.run(req).await;
    // Empty when the handler still holds its body (it moved it elsewhere) and
    // closed when it read it to the end: nothing to do in either case.
    if let Ok(rest) = returned.try_recv() {
        // A client that sent `Expect: 100-continue` holds its body back until
        // the server asks for it, which hyper does on the first read. If the
        // handler never read, the client has sent nothing: reading now would
        // invite a body nobody wants, and unasked it takes the answer and
        // sends nothing.
        if rest.started || !expects_continue {
            drain(rest.body).await;
        }
    }
    response
}

fn expects_continue(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

/// Read and drop up to [`UNREAD_BODY_DRAIN`] bytes of `body`.
async fn drain(body: Body) {
    use futures_util::StreamExt as _;
    let mut frames = body.into_data_stream();
    let mut read = 0usize;
    while read <= UNREAD_BODY_DRAIN {
        match frames.next().await {
            Some(Ok(more)) => read += more.len(),
            _ => break,
        }
    }
}

/// A request body that, dropped before its end, sends itself back to the
/// layer.
struct HandsBackUnread {
    inner: Option<Body>,
    /// Whether the handler ever asked for a frame.
    started: bool,
    leftover: Option<oneshot::Sender<Leftover>>,
}

/// What a handler left of a body.
struct Leftover {
    body: Body,
    started: bool,
}

impl http_body::Body for HandsBackUnread {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        this.started = true;
        match this.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for HandsBackUnread {
    fn drop(&mut self) {
        if let (Some(inner), Some(leftover)) = (self.inner.take(), self.leftover.take()) {
            if !http_body::Body::is_end_stream(&inner) {
                // The layer has stopped waiting only if the handler outlived
                // the response; then the rest is dropped with the connection.
                let _ = leftover.send(Leftover {
                    body: inner,
                    started: self.started,
                });
            }
        }
    }
}

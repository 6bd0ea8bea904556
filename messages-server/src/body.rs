//! Response bodies: bytes sent as they are, in up to three parts, never copied together (a
//! cached page is three: the envelope's opening, a slice of the cached window, the envelope's
//! close, which hyper writes with one vectored write), or a stream fed by a bounded channel
//! (server-sent events).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

/// A response body: up to three parts of known length, held inline (no allocation), or a
/// stream of chunks from a bounded channel, which ends when every sender is gone. A stream's
/// senders count what they queue with `metrics::stream_bytes_queued`; the body counts what
/// leaves the queue, so `live_stream_buffered_bytes` is what streams hold for their readers.
#[derive(Debug, Default)]
pub struct Body {
    parts: [Bytes; 3],
    next: usize,
    remaining: u64,
    stream: Option<mpsc::Receiver<Bytes>>,
}

impl Body {
    /// A body of `parts`, sent in order; empty parts are skipped.
    pub fn from_parts(parts: [Bytes; 3]) -> Self {
        let remaining = parts.iter().map(|p| p.len() as u64).sum();
        Body {
            parts,
            next: 0,
            remaining,
            stream: None,
        }
    }

    /// A body of whatever arrives on `chunks`, of unknown length.
    pub fn stream(chunks: mpsc::Receiver<Bytes>) -> Self {
        Body {
            parts: Default::default(),
            next: 0,
            remaining: 0,
            stream: Some(chunks),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Body::default()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::from_parts([bytes, Bytes::new(), Bytes::new()])
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::from(Bytes::from(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::from(Bytes::from(text))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body::from(Bytes::from_static(text.as_bytes()))
    }
}

/// What a stream's channel still holds when its body goes (the connection closed) leaves the
/// count of queued bytes with it.
impl Drop for Body {
    fn drop(&mut self) {
        if let Some(chunks) = &mut self.stream {
            chunks.close();
            while let Ok(chunk) = chunks.try_recv() {
                crate::metrics::stream_bytes_taken(chunk.len());
            }
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(chunks) = &mut this.stream {
            return chunks.poll_recv(cx).map(|chunk| {
                chunk.map(|c| {
                    crate::metrics::stream_bytes_taken(c.len());
                    Ok(Frame::data(c))
                })
            });
        }
        while let Some(part) = this.parts.get_mut(this.next) {
            this.next += 1;
            if !part.is_empty() {
                let part = std::mem::take(part);
                this.remaining -= part.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(part))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_none() && self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        match self.stream {
            Some(_) => SizeHint::default(),
            None => SizeHint::with_exact(self.remaining),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn parts_arrive_in_order_with_an_exact_length() {
        let body = Body::from_parts([
            Bytes::from_static(b"{\"items\":["),
            Bytes::new(),
            Bytes::from_static(b"]}"),
        ]);
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(12));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"{\"items\":[]}");
        assert!(hyper::body::Body::is_end_stream(&Body::empty()));
    }

    #[tokio::test]
    async fn a_stream_ends_when_its_senders_are_gone() {
        let (tx, rx) = mpsc::channel(4);
        let body = Body::stream(rx);
        assert!(!hyper::body::Body::is_end_stream(&body));
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), None);
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        tx.send(Bytes::from_static(b"b")).await.unwrap();
        drop(tx);
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"ab");
    }
}

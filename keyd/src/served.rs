//! A connection the gRPC servers serve: the stream, what every request on
//! it is told about the peer, and the place it holds under a connection
//! limit (its uid's slot on the Unix socket, one of the signer API's
//! connection permits). The place is given back when tonic drops the
//! connection, however it ends.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

pub(crate) struct Served<S, I, P> {
    stream: S,
    info: I,
    _place: P,
}

impl<S, I, P> Served<S, I, P> {
    pub(crate) fn new(stream: S, info: I, place: P) -> Served<S, I, P> {
        Served {
            stream,
            info,
            _place: place,
        }
    }

    pub(crate) fn info(&self) -> &I {
        &self.info
    }

    /// The same connection, holding `place` (and giving back the old one).
    pub(crate) fn holding<Q>(self, place: Q) -> Served<S, I, Q> {
        Served::new(self.stream, self.info, place)
    }
}

impl<S, I, P> Connected for Served<S, I, P>
where
    I: Clone + Send + Sync + 'static,
{
    type ConnectInfo = I;

    fn connect_info(&self) -> I {
        self.info.clone()
    }
}

impl<S: AsyncRead + Unpin, I: Unpin, P: Unpin> AsyncRead for Served<S, I, P> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin, I: Unpin, P: Unpin> AsyncWrite for Served<S, I, P> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

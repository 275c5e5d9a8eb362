//! One full OpenSSL TLS 1.3 handshake in memory: client and server
//! `SslStream`s over a pair of in-memory pipes, stepped in turn until both
//! are done, then one application byte, like the rustls rows.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::rc::Rc;

use openssl::ssl::{HandshakeError, MidHandshakeSslStream, SslStream};

use super::openssl_baseline::OsslPair;

type Queue = Rc<RefCell<VecDeque<u8>>>;

/// One direction in, one out; reading an empty pipe would block.
#[derive(Debug)]
struct Pipe {
    inbox: Queue,
    outbox: Queue,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.inbox.borrow_mut();
        if q.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = q.len().min(buf.len());
        for (slot, byte) in buf.iter_mut().zip(q.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbox.borrow_mut().extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Side {
    Mid(MidHandshakeSslStream<Pipe>),
    Done(SslStream<Pipe>),
}

fn side(r: Result<SslStream<Pipe>, HandshakeError<Pipe>>) -> Side {
    match r {
        Ok(s) => Side::Done(s),
        Err(HandshakeError::WouldBlock(m)) => Side::Mid(m),
        Err(e) => panic!("OpenSSL handshake: {e}"),
    }
}

fn step(s: Side) -> Side {
    match s {
        Side::Mid(m) => side(m.handshake()),
        done => done,
    }
}

/// Client and server handshake, then one byte from client to server.
pub fn handshake(pair: &OsslPair) {
    let (a, b): (Queue, Queue) = Default::default();
    let client_pipe = Pipe {
        inbox: b.clone(),
        outbox: a.clone(),
    };
    let server_pipe = Pipe {
        inbox: a,
        outbox: b,
    };
    let mut client = side(pair.client_ssl().expect("client").connect(client_pipe));
    let mut server = side(pair.server_ssl().expect("server").accept(server_pipe));
    for _ in 0..16 {
        server = step(server);
        client = step(client);
        if let (Side::Done(_), Side::Done(_)) = (&client, &server) {
            break;
        }
    }
    let (Side::Done(mut c), Side::Done(mut s)) = (client, server) else {
        panic!("OpenSSL handshake did not finish");
    };
    c.write_all(b"x").expect("client write");
    let mut byte = [0u8; 1];
    s.read_exact(&mut byte).expect("server read");
    black_box((c, s));
}

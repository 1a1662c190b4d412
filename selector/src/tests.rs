//! The selector against real descriptors: TCP sockets on loopback and pipes.

use super::*;
use mio::net::{TcpListener, TcpStream};
use mio::unix::pipe;
use std::io::{Read, Write};
use std::thread;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Client,
    Origin,
}

type Sel = Selector<u32, End>;

fn poll_until(sel: &mut Sel, want: impl Fn(&Ready<u32, End>) -> bool) -> Vec<Ready<u32, End>> {
    for _ in 0..50 {
        let batch = sel.poll(Some(Duration::from_millis(100))).unwrap();
        let found = batch.iter().any(&want);
        let copy = batch.clone();
        sel.end_batch(batch);
        if found {
            return copy;
        }
    }
    panic!("no matching event in 5 s");
}

fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ours = TcpStream::connect(addr).unwrap();
    let (theirs, _) = listener.accept().unwrap();
    (ours, theirs)
}

#[test]
fn reports_owner_and_endpoint() {
    let mut sel = Sel::new(16).unwrap();
    let (ours, mut theirs) = pair();
    let token = sel.register(&ours, 7, End::Origin, Interest::READ).unwrap();
    theirs.write_all(b"hi").unwrap();
    let batch = poll_until(&mut sel, |r| matches!(r, Ready::Io { readable: true, .. }));
    assert!(batch.contains(&Ready::Io {
        token,
        owner: 7,
        endpoint: End::Origin,
        readable: true,
        writable: false,
        closed: false
    }));
}

#[test]
fn no_interest_means_no_events_until_restored() {
    let (mut tx, mut rx) = pipe::new().unwrap();
    let mut sel = Sel::new(16).unwrap();
    let token = sel.register(&rx, 1, End::Client, Interest::NONE).unwrap();
    tx.write_all(b"x").unwrap();
    let batch = sel.poll(Some(Duration::from_millis(200))).unwrap();
    assert!(
        batch.is_empty(),
        "a source with no interest is not polled: {batch:?}"
    );
    sel.end_batch(batch);
    // Restoring interest reports the data that arrived meanwhile: nothing is missed.
    sel.set_interest(token, Interest::READ).unwrap();
    poll_until(&mut sel, |r| {
        matches!(
            r,
            Ready::Io {
                owner: 1,
                readable: true,
                ..
            }
        )
    });
    let mut buf = [0u8; 4];
    assert_eq!(rx.read(&mut buf).unwrap(), 1);
    assert_eq!(sel.interest(token), Some(Interest::READ));
}

#[test]
fn interest_changes_between_read_and_write() {
    let mut sel = Sel::new(16).unwrap();
    let (ours, _theirs) = pair();
    let token = sel.register(&ours, 2, End::Client, Interest::READ).unwrap();
    sel.set_interest(token, Interest::WRITE).unwrap();
    poll_until(&mut sel, |r| {
        matches!(
            r,
            Ready::Io {
                owner: 2,
                writable: true,
                ..
            }
        )
    });
    sel.set_interest(token, Interest::NONE).unwrap();
    sel.set_interest(token, Interest::BOTH).unwrap();
    poll_until(&mut sel, |r| {
        matches!(
            r,
            Ready::Io {
                owner: 2,
                writable: true,
                ..
            }
        )
    });
}

#[test]
fn removed_slots_are_reused_only_after_the_batch() {
    let mut sel = Sel::new(16).unwrap();
    let (a, _ta) = pair();
    let (b, _tb) = pair();
    let ta = sel.register(&a, 1, End::Client, Interest::WRITE).unwrap();
    let batch = sel.poll(Some(Duration::from_millis(100))).unwrap();
    sel.remove(ta);
    assert!(!sel.is_live(ta));
    // Registered during the batch: must not take the removed token.
    let tb = sel.register(&b, 2, End::Client, Interest::WRITE).unwrap();
    assert_ne!(ta, tb);
    sel.end_batch(batch);
    let (c, _tc) = pair();
    let tc = sel.register(&c, 3, End::Origin, Interest::WRITE).unwrap();
    assert_eq!(tc, ta, "freed after the batch");
    assert_eq!(sel.len(), 2);
    assert!(sel.set_interest(Token(999), Interest::READ).is_err());
}

#[test]
fn hang_up_shows_as_readable() {
    let mut sel = Sel::new(16).unwrap();
    let (ours, theirs) = pair();
    sel.register(&ours, 5, End::Origin, Interest::READ).unwrap();
    drop(theirs);
    poll_until(&mut sel, |r| {
        matches!(
            r,
            Ready::Io {
                owner: 5,
                readable: true,
                ..
            }
        )
    });
}

#[test]
fn waker_from_another_thread() {
    let mut sel = Sel::new(16).unwrap();
    let waker = sel.waker();
    let t = thread::spawn(move || waker.wake().unwrap());
    poll_until(&mut sel, |r| *r == Ready::Wake);
    t.join().unwrap();
}

#[test]
fn accepts_on_a_listener() {
    let mut sel = Sel::new(16).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    sel.register(&listener, 0, End::Client, Interest::READ)
        .unwrap();
    let _c = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    poll_until(&mut sel, |r| {
        matches!(
            r,
            Ready::Io {
                owner: 0,
                readable: true,
                ..
            }
        )
    });
    assert!(listener.accept().is_ok());
}

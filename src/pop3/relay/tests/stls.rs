//! STLS in the relay: the client's STLS answered in order and nothing behind it run, login
//! refused while TLS is required, CAPA as each client may see it, and the proxy's own STLS to
//! a `starttls` origin with the greeting held until the origin side is in TLS.

use super::*;

/// A relay whose proxy has a certificate, through the greeting and the probe; the client's
/// socket hands out up to `chunk` bytes a read.
fn offering_with(require: bool, chunk: usize) -> Rig {
    let mut r = Rig::new(chunk, 256);
    r.relay.tls.offered = true;
    r.relay.tls.require = require;
    r.hello(CAPA_PIPE);
    assert_eq!(r.sent_to_client(), b"+OK ready\r\n");
    r
}

fn offering(require: bool) -> Rig {
    offering_with(require, 4)
}

#[test]
fn stls_is_answered_in_order_and_what_follows_it_in_the_clear_is_never_run() {
    // One write of the client's, read whole (as the kernel hands out one segment).
    let mut r = offering_with(false, 1024);
    r.client_sends(b"NOOP\r\nSTLS\r\nUSER evil\r\nPASS x\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_origin(),
        b"NOOP\r\n",
        "nothing behind STLS is forwarded"
    );
    assert!(!r.relay.client_tls_due(), "the NOOP reply is still owed");
    r.client_sends(b"\x16\x03\x01 hello"); // the client's handshake: not read in the clear
    r.origin_sends(b"+OK noop\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_client(),
        b"+OK noop\r\n+OK Begin TLS negotiation\r\n"
    );
    assert!(r.relay.client_tls_due());
    assert_eq!(
        r.client.io.input.len(),
        9,
        "the handshake bytes stay for TLS"
    );
    r.relay.client_tls_started();
    r.client.io.input.clear();
    r.client_sends(b"CAPA\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"CAPA\r\n");
    r.origin_sends(b"+OK\r\nUSER\r\nSTLS\r\nPIPELINING\r\n.\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_client(),
        b"+OK\r\nUSER\r\nPIPELINING\r\n.\r\n",
        "no STLS inside TLS"
    );
    r.client_sends(b"STLS\r\n");
    r.settle();
    assert_eq!(r.sent_to_client(), b"-ERR Already in TLS\r\n");
}

#[test]
fn capa_offers_stls_until_login() {
    let mut r = offering(false);
    r.client_sends(b"CAPA\r\n");
    r.settle();
    r.sent_to_origin();
    r.origin_sends(b"+OK\r\nUSER\r\nSTLS\r\n.\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_client(),
        b"+OK\r\nUSER\r\nPIPELINING\r\nSTLS\r\n.\r\n"
    );
    r.client_sends(b"USER a\r\nSTLS\r\nCAPA\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"USER a\r\nCAPA\r\n");
    r.origin_sends(b"+OK a\r\n+OK\r\nUSER\r\n.\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_client(),
        b"+OK a\r\n-ERR STLS only before login\r\n+OK\r\nUSER\r\nPIPELINING\r\n.\r\n"
    );
    assert!(!r.relay.client_tls_due());
}

#[test]
fn without_a_certificate_stls_is_refused_and_never_offered() {
    let mut r = Rig::new(4, 256);
    r.hello(CAPA_PIPE);
    r.sent_to_client();
    r.client_sends(b"STLS\r\nCAPA\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"CAPA\r\n");
    r.origin_sends(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_client(),
        b"-ERR STLS is not available through this proxy\r\n+OK\r\nUSER\r\nPIPELINING\r\n.\r\n"
    );
}

#[test]
fn required_tls_refuses_login_and_hides_login_methods_until_stls() {
    let mut r = offering(true);
    r.client_sends(b"USER a\r\nPASS b\r\nAPOP a b\r\nAUTH PLAIN\r\nCAPA\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_origin(),
        b"CAPA\r\n",
        "no login reaches the origin"
    );
    r.origin_sends(b"+OK\r\nTOP\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\n.\r\n");
    r.settle();
    let refused = b"-ERR [AUTH] TLS required: use STLS first\r\n";
    let want = [
        &refused[..],
        refused,
        refused,
        refused,
        b"+OK\r\nTOP\r\nPIPELINING\r\nSTLS\r\n.\r\n",
    ]
    .concat();
    assert_eq!(r.sent_to_client(), want);
    r.client_sends(b"STLS\r\n");
    r.settle();
    assert!(
        r.relay.client_tls_due(),
        "a refused login does not make STLS too late"
    );
    r.relay.client_tls_started();
    r.sent_to_client();
    r.client_sends(b"CAPA\r\nUSER a\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"CAPA\r\nUSER a\r\n");
    r.origin_sends(b"+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n+OK a\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_client(),
        b"+OK\r\nUSER\r\nSASL PLAIN\r\nPIPELINING\r\n.\r\n+OK a\r\n"
    );
}

/// A relay toward a `starttls` origin, at the start.
fn starttls_origin(chunk: usize) -> Rig {
    let mut r = Rig::new(chunk, 256);
    r.relay.tls.origin_starttls = true;
    r
}

#[test]
fn starttls_origin_greeting_waits_for_tls_and_the_probe() {
    for chunk in [1, 3, 64] {
        let mut r = starttls_origin(chunk);
        r.client_sends(b"USER early\r\n");
        r.origin_sends(b"+OK ready <1.2@x>\r\n");
        r.settle();
        assert_eq!(r.sent_to_origin(), b"STLS\r\n", "STLS before anything else");
        assert_eq!(r.sent_to_client(), b"", "the greeting is held");
        r.origin_sends(b"+OK go ahead\r\n");
        r.settle();
        assert!(r.relay.origin_tls_due());
        assert_eq!(r.sent_to_origin(), b"", "nothing in the clear after +OK");
        r.relay.origin_tls_started();
        r.settle();
        assert_eq!(
            r.sent_to_origin(),
            b"CAPA\r\n",
            "the probe goes through TLS"
        );
        r.origin_sends(b"+OK\r\nUSER\r\nPIPELINING\r\n.\r\n");
        r.settle();
        assert!(r.relay.hello_done);
        assert_eq!(
            r.sent_to_client(),
            b"+OK ready <1.2@x>\r\n",
            "chunk {chunk}"
        );
        assert_eq!(r.sent_to_origin(), b"USER early\r\n");
    }
}

#[test]
fn starttls_origin_that_refuses_is_a_failure_and_gets_no_login() {
    let mut r = starttls_origin(5);
    r.client_sends(b"USER a\r\nPASS secret\r\n");
    r.origin_sends(b"+OK ready\r\n");
    r.settle();
    r.origin_sends(b"-ERR no TLS here\r\n");
    r.settle();
    assert_eq!(
        r.relay.origin_refused_tls(),
        Some("origin refused STLS: -ERR no TLS here")
    );
    assert!(!r.relay.origin_tls_due());
    assert_eq!(
        r.sent_to_origin(),
        b"STLS\r\n",
        "no credentials in the clear"
    );
    assert_eq!(
        r.sent_to_client(),
        b"",
        "the session's -ERR will be the greeting"
    );
}

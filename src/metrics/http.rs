//! A small HTTP/1.1 server (std only, see docs/DEPENDENCIES.md): `GET /metrics` (and
//! `HEAD`), one request per connection (`Connection: close`), each connection on its
//! own short-lived thread with read and write timeouts, so a client that hangs holds
//! only its thread, never tracing nor other scrapes. Anything that is not a complete
//! request line gets 400 and is closed.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{scrape, Shared};
use crate::sys;

/// How long a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a request head may be.
const MAX_REQUEST: usize = 8192;
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// How often the accept loop looks whether the session stopped it.
const POLL_MS: i32 = 100;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Accepts until the session stops the server.
pub(super) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let active = Arc::new(AtomicUsize::new(0));
    while !shared.stopped.load(Ordering::SeqCst) {
        if !matches!(
            sys::poll_readable(&[listener.as_fd()], POLL_MS).as_deref(),
            Ok([true])
        ) {
            continue;
        }
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            continue; // dropped: closed at once
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (shared, counter) = (Arc::clone(&shared), Arc::clone(&active));
        let spawned = std::thread::Builder::new()
            .name("rbt-metrics-conn".into())
            .spawn(move || {
                let _ = serve(stream, &shared);
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst); // the connection closed with it
        }
    }
}

/// Reads one request and answers it.
fn serve(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let Some(head) = read_head(&mut stream)? else {
        return respond(&mut stream, "400 Bad Request", "bad request\n", true);
    };
    let mut words = head.lines().next().unwrap_or("").split(' ');
    let (method, target, version) = (words.next(), words.next(), words.next());
    let well_formed = matches!(version, Some(v) if v.starts_with("HTTP/1."))
        && words.next().is_none()
        && target.is_some_and(|t| t.starts_with('/'));
    if !well_formed {
        return respond(&mut stream, "400 Bad Request", "bad request\n", true);
    }
    let body = method == Some("GET");
    if !body && method != Some("HEAD") {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "GET /metrics\n",
            true,
        );
    }
    let path = target.unwrap_or("/").split('?').next().unwrap_or("/");
    if path != "/metrics" {
        return respond(
            &mut stream,
            "404 Not Found",
            "metrics are at /metrics\n",
            body,
        );
    }
    match scrape(shared) {
        Some(text) => respond(&mut stream, "200 OK", &text, body),
        None => respond(
            &mut stream,
            "503 Service Unavailable",
            "tracing ended\n",
            body,
        ),
    }
}

/// The request head up to the blank line; `None` if it is not text, too long, or the
/// client stops sending first. The whole head must come within [`CLIENT_TIMEOUT`] (a
/// byte now and then does not keep a connection); a timeout is an error: the connection
/// is just closed.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<String>> {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&head, b"\r\n\r\n").or_else(|| find(&head, b"\n\n")) {
            head.truncate(end);
            return Ok(String::from_utf8(head).ok());
        }
        if head.len() > MAX_REQUEST {
            return Ok(None);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn respond(stream: &mut TcpStream, status: &str, body: &str, with_body: bool) -> io::Result<()> {
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out)?;
    stream.flush()
}

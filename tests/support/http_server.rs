//! A small HTTP/1.1 server on 127.0.0.1 for fetch tests, able to inject
//! faults that well-behaved server libraries refuse to produce (a body
//! longer than Content-Length, a TCP reset mid-body).
//!
//! Requests are parsed with `httparse`; responses are written by hand so the
//! framing can be broken on purpose. Every response carries
//! `Connection: close`, so one connection = one request. Each path has a
//! script of behaviours consumed one per request (the last one repeats) and
//! a request counter.
//!
//! It also plays an OCI registry and its token endpoint for the auth and
//! lying-registry tests: a route matches the request target exactly or,
//! failing that, the target without its query; [`Reply::Challenge`]
//! answers 401 with a `WWW-Authenticate` header; and every request's
//! target and `Authorization` header are recorded per route.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the server does for one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with the body and a correct Content-Length.
    Ok(Vec<u8>),
    /// 200, the body sent slowly in `chunk`-byte pieces with a pause between.
    Slow {
        body: Vec<u8>,
        chunk: usize,
        pause: Duration,
    },
    /// A bodiless response with this status.
    Status(u16),
    /// Content-Length says `body.len()`, only `send` bytes are sent, then FIN.
    Short { body: Vec<u8>, send: usize },
    /// `body` is sent in full followed by `extra`, Content-Length = `declared`.
    Long {
        body: Vec<u8>,
        extra: Vec<u8>,
        declared: usize,
    },
    /// Content-Length `body.len()`, `send` bytes, then a TCP RST (SO_LINGER 0).
    Reset { body: Vec<u8>, send: usize },
    /// Headers and `send` bytes, then silence until the server stops.
    Stall { body: Vec<u8>, send: usize },
    /// 302 to `location`.
    Redirect(String),
    /// `Transfer-Encoding: chunked` (no Content-Length): the body in one
    /// chunk, then the terminating zero chunk only if `complete`, then FIN.
    Chunked { body: Vec<u8>, complete: bool },
    /// 401 with `WWW-Authenticate: <challenge>`.
    Challenge(String),
    /// `status` with these extra headers and the body (correct
    /// Content-Length).
    Headers {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// 200 with the body if the request's `Authorization` is `expect`, else
    /// 401 with `WWW-Authenticate: <challenge>`.
    Authorized {
        expect: String,
        challenge: String,
        body: Vec<u8>,
    },
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The request target, query included.
    pub target: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Route {
    script: Vec<Reply>,
    served: usize,
    seen: Vec<Seen>,
}

struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    stop: AtomicBool,
}

/// The server; it stops (and wakes stalled handlers) when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                thread::spawn(move || handle(conn, &s));
            }
        });
        Server { addr, shared }
    }

    /// Sets the script of `path` (e.g. "/a.tar") and resets its counter.
    pub fn route(&self, path: &str, script: Vec<Reply>) {
        assert!(!script.is_empty());
        self.shared.routes.lock().unwrap().insert(
            path.to_string(),
            Route {
                script,
                served: 0,
                seen: Vec::new(),
            },
        );
    }

    /// Requests received for `path` so far.
    pub fn count(&self, path: &str) -> usize {
        self.shared
            .routes
            .lock()
            .unwrap()
            .get(path)
            .map_or(0, |r| r.served)
    }

    /// The requests received for `path` so far, in order.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.shared
            .routes
            .lock()
            .unwrap()
            .get(path)
            .map_or_else(Vec::new, |r| r.seen.clone())
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

fn read_request(conn: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let authorization = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned());
                return req.path.map(|p| Seen {
                    target: p.to_string(),
                    authorization,
                });
            }
            Ok(httparse::Status::Partial) => continue,
            Err(_) => return None,
        }
    }
}

fn head(status: u16, len: Option<usize>, extra: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        302 => "Found",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut h = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n{extra}");
    if let Some(n) = len {
        h.push_str(&format!("Content-Length: {n}\r\n"));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

fn handle(mut conn: TcpStream, shared: &Shared) {
    let Some(seen) = read_request(&mut conn) else {
        return;
    };
    let reply = {
        let mut routes = shared.routes.lock().unwrap();
        let bare = seen
            .target
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let key = if routes.contains_key(&seen.target) {
            seen.target.clone()
        } else {
            bare
        };
        match routes.get_mut(&key) {
            Some(r) => {
                let reply = r.script[r.served.min(r.script.len() - 1)].clone();
                r.served += 1;
                r.seen.push(seen.clone());
                match reply {
                    Reply::Authorized {
                        expect,
                        challenge,
                        body,
                    } => {
                        if seen.authorization.as_deref() == Some(expect.as_str()) {
                            Reply::Ok(body)
                        } else {
                            Reply::Challenge(challenge)
                        }
                    }
                    other => other,
                }
            }
            None => Reply::Status(404),
        }
    };
    let _ = serve(&mut conn, reply, shared);
}

fn serve(conn: &mut TcpStream, reply: Reply, shared: &Shared) -> std::io::Result<()> {
    match reply {
        Reply::Ok(body) => {
            conn.write_all(&head(200, Some(body.len()), ""))?;
            conn.write_all(&body)?;
        }
        Reply::Slow { body, chunk, pause } => {
            conn.write_all(&head(200, Some(body.len()), ""))?;
            for piece in body.chunks(chunk) {
                conn.write_all(piece)?;
                conn.flush()?;
                thread::sleep(pause);
            }
        }
        Reply::Status(code) => conn.write_all(&head(code, Some(0), ""))?,
        Reply::Short { body, send } => {
            conn.write_all(&head(200, Some(body.len()), ""))?;
            conn.write_all(&body[..send])?;
        }
        Reply::Long {
            body,
            extra,
            declared,
        } => {
            conn.write_all(&head(200, Some(declared), ""))?;
            conn.write_all(&body)?;
            conn.write_all(&extra)?;
        }
        Reply::Reset { body, send } => {
            conn.write_all(&head(200, Some(body.len()), ""))?;
            conn.write_all(&body[..send])?;
            conn.flush()?;
            thread::sleep(Duration::from_millis(50));
            socket2::SockRef::from(&*conn).set_linger(Some(Duration::ZERO))?;
            // Dropping the socket with SO_LINGER 0 sends RST.
        }
        Reply::Stall { body, send } => {
            conn.write_all(&head(200, Some(body.len()), ""))?;
            conn.write_all(&body[..send])?;
            conn.flush()?;
            while !shared.stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(50));
            }
        }
        Reply::Chunked { body, complete } => {
            conn.write_all(&head(200, None, "Transfer-Encoding: chunked\r\n"))?;
            conn.write_all(format!("{:x}\r\n", body.len()).as_bytes())?;
            conn.write_all(&body)?;
            conn.write_all(b"\r\n")?;
            if complete {
                conn.write_all(b"0\r\n\r\n")?;
            }
        }
        Reply::Challenge(challenge) => {
            let extra = format!("WWW-Authenticate: {challenge}\r\n");
            conn.write_all(&head(401, Some(0), &extra))?;
        }
        Reply::Headers {
            status,
            headers,
            body,
        } => {
            let extra: String = headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\r\n"))
                .collect();
            conn.write_all(&head(status, Some(body.len()), &extra))?;
            conn.write_all(&body)?;
        }
        Reply::Authorized { .. } => unreachable!("resolved in handle"),
        Reply::Redirect(location) => {
            conn.write_all(&head(302, Some(0), &format!("Location: {location}\r\n")))?;
        }
    }
    conn.flush()
}

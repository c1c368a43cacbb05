//! A scripted HTTP server on 127.0.0.1 for the refine backends' failure paths and the Gemini
//! request's shape: it records each request and answers as told (or not at all). The real
//! model is tested against llama.cpp's server; this is for what a real server rarely does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One recorded request.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// What was answered (for [`Answer::Forward`]: the upstream server's body).
    pub response: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with each request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status and body (JSON content type).
    Reply(u16, String),
    /// Reads the request, then sends nothing for this long.
    Silence(Duration),
    /// POSTs the request's body to this origin (same path) and passes its answer back: a
    /// recording proxy in front of a real server.
    Forward(String),
}

pub struct ScriptedServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl ScriptedServer {
    pub fn start(answer: Answer) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                let answer = answer.clone();
                std::thread::spawn(move || serve(stream, &answer, &seen));
            }
        });
        ScriptedServer { url, requests }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, answer: &Answer, seen: &Mutex<Vec<Recorded>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let mut r = Recorded {
        method: parts.next().unwrap_or("").into(),
        path: parts.next().unwrap_or("").into(),
        ..Recorded::default()
    };
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim().split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            r.headers.push((k.trim().into(), v.trim().into()));
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    r.body = String::from_utf8_lossy(&body).into_owned();
    let mut stream = stream;
    let (status, body) = match answer {
        Answer::Reply(status, body) => (*status, body.clone()),
        Answer::Silence(d) => {
            seen.lock().unwrap().push(r);
            std::thread::sleep(*d);
            return;
        }
        Answer::Forward(origin) => {
            let mut upstream = ureq::post(format!("{origin}{}", r.path))
                .header("Content-Type", "application/json")
                .send(r.body.clone())
                .expect("the upstream server answers");
            let status = upstream.status().as_u16();
            (status, upstream.body_mut().read_to_string().unwrap())
        }
    };
    r.response = body.clone();
    seen.lock().unwrap().push(r);
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

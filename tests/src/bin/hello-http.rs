//! A tiny single-process HTTP/1.1 server for the container tests: it runs the same on the
//! host and, built static, in a `FROM scratch` image. `/missing` answers 404, anything else
//! 200 with the body `hello\n`; keep-alive and pipelined requests are answered in order.
//!
//! usage: hello-http ADDRESS (e.g. 127.0.0.1:8080); prints "listening" once bound.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| String::from("127.0.0.1:8080"));
    let listener = TcpListener::bind(&address).unwrap_or_else(|error| {
        eprintln!("hello-http: cannot listen on {address}: {error}");
        std::process::exit(1);
    });
    println!("listening");
    for stream in listener.incoming().flatten() {
        // A thread per connection, in this one process: its counts are all the server's.
        std::thread::spawn(move || serve(stream));
    }
}

fn serve(mut stream: TcpStream) {
    let mut pending = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let mut replies = Vec::new();
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let missing = pending.starts_with(b"GET /missing ");
            replies.extend_from_slice(if missing {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 6\r\n\r\nhello\n".as_slice()
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n".as_slice()
            });
            pending.drain(..end + 4);
        }
        if !replies.is_empty() && stream.write_all(&replies).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

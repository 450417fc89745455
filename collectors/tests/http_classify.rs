//! Tests of the HTTP classifier in bpf/http_scan.h, the very code the BPF program runs,
//! compiled for the host by build.rs (linked into every target of this package) and
//! called through FFI (`src/http_scan_ffi.rs`, shared with the fuzz target).

#[path = "../src/http_scan_ffi.rs"]
mod http_scan_ffi;

use http_scan_ffi::Found;

/// The scan bound of the BPF program.
const SCAN_MAX: usize = 1024;

/// One scan as the BPF program does it (or, with `steps_only`, without the single pass).
fn scan(buffer: &[u8], writing: bool, steps_only: bool) -> Found {
    let (status, found) = http_scan_ffi::scan(buffer, writing, steps_only);
    assert!(status >= 0, "the scan ran out of steps on {buffer:?}");
    found
}

/// What the classifier finds in one syscall buffer: requests counted when reading,
/// status codes when writing. Every buffer a test classifies is also scanned by the steps
/// alone, which must agree with the single pass wherever that applies.
fn classify(buffer: &[u8], writing: bool) -> (u32, Vec<u16>) {
    // The next message's start decides whether the program copies more iovecs.
    let result = |found: Found| {
        let ncodes = usize::try_from(found.ncodes).expect("at most 8");
        (
            found.requests,
            found.codes[..ncodes].to_vec(),
            found.next_message,
        )
    };
    let (requests, codes, next_message) = result(scan(buffer, writing, false));
    let by_steps = result(scan(buffer, writing, true));
    assert_eq!(
        (requests, &codes, next_message),
        (by_steps.0, &by_steps.1, by_steps.2),
        "the single pass and the steps disagree on {:?}",
        String::from_utf8_lossy(buffer)
    );
    (requests, codes)
}

fn requests(buffer: &[u8]) -> u32 {
    classify(buffer, false).0
}

fn codes(buffer: &[u8]) -> Vec<u16> {
    classify(buffer, true).1
}

#[test]
fn request_lines_of_every_method_and_both_versions() {
    for method in [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ] {
        for version in ["HTTP/1.0", "HTTP/1.1"] {
            let request = format!("{method} /a?b=c {version}\r\nHost: x\r\n\r\n");
            assert_eq!(requests(request.as_bytes()), 1, "{request:?}");
        }
    }
}

#[test]
fn things_that_are_not_request_lines() {
    for text in [
        "get / HTTP/1.1\r\n\r\n",
        "FETCH / HTTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1",
        "GET / HTTP/1.1\n\n",
        "GET /HTTP/1.1\r\n\r\n",
        "GETX / HTTP/1.1\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "short",
    ] {
        assert_eq!(requests(text.as_bytes()), 0, "{text:?}");
    }
}

/// As the BPF program tests a server end's first read (`let_go_unless_http`).
fn could_start_request(start: &[u8]) -> bool {
    let first8: &[u8; 8] = start[..8].try_into().expect("8 bytes");
    http_scan_ffi::could_start_request(first8)
}

#[test]
fn a_server_end_is_let_go_only_where_no_request_can_follow() {
    // Every request line the classifier counts, and starts it does not count but after
    // which requests may come.
    let counted = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ]
    .map(|method| format!("{method} / HTTP/1.1\r\n"));
    for start in counted.iter().map(String::as_bytes).chain([
        &b"PROPFIND /dav HTTP/1.1\r\n"[..],
        b"MKCALENDAR /c HTTP/1.1\r\n",
        b"M-SEARCH * HTTP/1.1\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\r\nGET / HTTP/1.1\r\n",
        b"\nGET / HTTP/1.1\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 1111 80\r\n",
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11",
        b"get foo\r\n\r\n",
    ]) {
        assert!(
            could_start_request(start),
            "{:?}",
            String::from_utf8_lossy(start)
        );
    }
    // TLS, PostgreSQL's startup, Redis, MySQL's handshake reply, JSON, whitespace first,
    // a line that ends before any space.
    for start in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01"[..],
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
        b"*3\r\n$3\r\nSET\r\n",
        b"\x55\x00\x00\x01\x8d\xa6\xff\x09",
        b"{\"jsonrpc\": \"2.0\"}",
        b" GET / HTTP/1.1\r\n",
        b"GET\r\nHost: x\r\n",
        b"QUIT\r\n\r\n",
    ] {
        assert!(
            !could_start_request(start),
            "{:?}",
            String::from_utf8_lossy(start)
        );
    }
    // Random starts, against the grammar written out here: a token and a space, a token
    // longer than 7, or an empty line.
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    let grammar = |start: &[u8]| match start.iter().position(|&c| !is_tchar(c)) {
        None => true,
        Some(0) => start[0] == b'\r' || start[0] == b'\n',
        Some(at) => start[at] == b' ',
    };
    let alphabet = b"GETPOST-_~!0 \r\n";
    let mut rng = Rng(7);
    for _ in 0..20000 {
        let start: Vec<u8> = (0..8)
            .map(|_| match rng.below(4) {
                0 => rng.next() as u8,
                _ => alphabet[rng.below(alphabet.len() as u64) as usize],
            })
            .collect();
        assert_eq!(could_start_request(&start), grammar(&start), "{start:?}");
    }
}

#[test]
fn pipelined_requests_each_count_including_after_bodies() {
    let five = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5);
    assert_eq!(requests(five.as_bytes()), 5);
    let with_body = "POST /f HTTP/1.1\r\nContent-Length: 9\r\n\r\nGET / abcGET /b HTTP/1.0\r\n\r\n";
    // The 9-byte body "GET / abc" is skipped, not mistaken for a request.
    assert_eq!(requests(with_body.as_bytes()), 2);
    let case = "PUT /x HTTP/1.1\r\ncontent-LENGTH:  3\r\n\r\nabcDELETE /x HTTP/1.1\r\n\r\n";
    assert_eq!(
        requests(case.as_bytes()),
        2,
        "header names are case-insensitive"
    );
}

#[test]
fn status_lines_any_code_from_100_to_599() {
    assert_eq!(
        codes(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        [200]
    );
    assert_eq!(codes(b"HTTP/1.0 404 Not Found\r\n\r\n"), [404]);
    // The official plugin reported 202 as 102 and 503 as 501.
    assert_eq!(codes(b"HTTP/1.1 202 Accepted\r\n\r\n"), [202]);
    assert_eq!(codes(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"), [503]);
    assert_eq!(
        codes(b"HTTP/1.1 204\r\n\r\n"),
        [204],
        "an empty reason phrase"
    );
    assert_eq!(codes(b"HTTP/1.1 100 Continue\r\n\r\n"), [100]);
    assert_eq!(codes(b"HTTP/1.1 599 X\r\n\r\n"), [599]);
    for text in [
        "HTTP/1.1 600 X\r\n",
        "HTTP/1.1 099 X\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n",
    ] {
        assert_eq!(codes(text.as_bytes()), Vec::<u16>::new(), "{text:?}");
    }
}

#[test]
fn pipelined_responses_with_bodies_each_count() {
    let one = |code: u16| format!("HTTP/1.1 {code} X\r\nContent-Length: 6\r\n\r\nhello\n");
    let batch: String = [200, 404, 200, 500].map(one).concat();
    assert_eq!(codes(batch.as_bytes()), [200, 404, 200, 500]);
}

#[test]
fn the_single_pass_takes_the_common_shapes_and_leaves_the_rest() {
    let single = |buffer: &[u8], writing: bool| scan(buffer, writing, false).single_pass == 1;
    // wrk's request; nginx's response headers (its body goes in another iovec).
    assert!(single(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n",
        false
    ));
    let nginx =
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 05:47:54 GMT\r\n\
Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n";
    assert!(single(nginx, true));
    // Its body is not in the buffer: the next message would start after it.
    assert_eq!(
        scan(nginx, true, false).next_message as usize,
        nginx.len() + 2
    );
    // Two messages, a body after the headers, or no blank line: the steps do it.
    assert!(!single(&get_twice(), false));
    assert!(!single(
        b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
        false
    ));
    assert!(!single(b"GET / HTTP/1.1\r\nHost: x\r\n", false));
}

#[test]
fn content_length_right_after_a_short_c_header_is_found_at_every_alignment() {
    // Both line feeds before a 'c' can fall in one word, where the single pass defers to
    // the steps; either way the body must be skipped.
    for pad in 0..16 {
        let headers = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\nc: 1\r\nContent-Length: 5\r\n\r\n",
            "a".repeat(pad)
        );
        classify(headers.as_bytes(), true);
        let next = scan(headers.as_bytes(), true, false).next_message as usize;
        assert_eq!(next, headers.len() + 5, "{headers:?}");
    }
}

fn get_twice() -> Vec<u8> {
    [&b"GET / HTTP/1.1\r\n\r\n"[..], b"GET / HTTP/1.1\r\n\r\n"].concat()
}

#[test]
fn direction_matters_clients_are_not_servers() {
    // A client writing a request and reading a response counts nothing.
    assert_eq!(classify(b"GET / HTTP/1.1\r\n\r\n", true), (0, vec![]));
    assert_eq!(classify(b"HTTP/1.1 200 OK\r\n\r\n", false), (0, vec![]));
}

#[test]
fn bounds_are_as_documented() {
    // Nothing starting past the scan window is counted.
    let mut late = "GET / HTTP/1.1\r\nX-Pad: ".to_owned();
    late.push_str(&"a".repeat(SCAN_MAX));
    late.push_str("\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_eq!(requests(late.as_bytes()), 1);
    // At most 8 status codes per buffer.
    let many = "HTTP/1.1 200 OK\r\n\r\n".repeat(12);
    assert_eq!(codes(many.as_bytes()).len(), 8);
}

#[test]
fn nothing_is_read_past_the_end_of_the_buffer() {
    // The scratch buffer past the end holds stale bytes (line feeds in the host copy).
    assert_eq!(requests(b"GET / HTTP/1.1\r"), 0, "the line feed is missing");
    assert_eq!(
        codes(b"HTTP/1.1 200"),
        Vec::<u16>::new(),
        "the 13th byte is missing"
    );
    assert_eq!(requests(b"GET  HTTP/1.1\r\n\r\n"), 0, "an empty target");
    // A Content-Length cut off by the end of the buffer.
    for cut in [
        "POST / HTTP/1.1\r\nContent-Len",
        "POST / HTTP/1.1\r\nContent-Length: 1",
    ] {
        assert_eq!(requests(cut.as_bytes()), 1, "{cut:?}");
    }
}

#[test]
fn the_worst_buffers_end_within_the_bpf_step_limit() {
    // `classify` asserts that every scan ends within the BPF program's bpf_loop bound.
    for filler in ["\n", "\r\n", "\r\n\r\n", "a\n", "Content-Length: 0\r\n\r\n"] {
        let mut buffer = String::from("GET / HTTP/1.1\r\n");
        while buffer.len() < SCAN_MAX + 64 {
            buffer.push_str(filler);
        }
        requests(buffer.as_bytes());
        codes(format!("HTTP/1.1 200 OK\r\n{}", &buffer[16..]).as_bytes());
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Lower-case letters, `min` to `min + extra - 1` of them.
    fn token(&mut self, min: u64, extra: u64) -> String {
        let len = min + self.below(extra);
        (0..len)
            .map(|_| char::from(b'a' + self.below(26) as u8))
            .collect()
    }
}

#[test]
fn generated_pipelines_of_requests_count_exactly() {
    let methods = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for _ in 0..2000 {
        let mut buffer = String::new();
        let mut expected = 0;
        for _ in 0..1 + rng.below(6) {
            let method = methods[rng.below(9) as usize];
            let version = if rng.below(2) == 0 {
                "HTTP/1.0"
            } else {
                "HTTP/1.1"
            };
            let path = format!("/{}", rng.token(0, 40));
            let mut message = format!("{method} {path} {version}\r\n");
            let line_end = buffer.len() + message.len();
            for _ in 0..rng.below(4) {
                message.push_str(&format!("X-{}: {}\r\n", rng.token(1, 8), rng.token(0, 20)));
            }
            let body = if rng.below(3) == 0 {
                rng.token(0, 30)
            } else {
                String::new()
            };
            if !body.is_empty() || rng.below(2) == 0 {
                message.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            message.push_str("\r\n");
            message.push_str(&body);
            buffer.push_str(&message);
            if line_end <= SCAN_MAX {
                expected += 1;
            }
        }
        assert_eq!(requests(buffer.as_bytes()), expected, "{buffer:?}");
        // The first request's headers alone (classify compares both scans on them).
        classify(first_headers(&buffer), false);
    }
}

/// The first message's headers with their blank line, as a peer may write them apart
/// from the body: the single pass applies, and must find the Content-Length as the steps
/// do.
fn first_headers(buffer: &str) -> &[u8] {
    let end = buffer.find("\r\n\r\n").map_or(buffer.len(), |at| at + 4);
    &buffer.as_bytes()[..end]
}

#[test]
fn generated_pipelines_of_responses_give_exact_codes() {
    let mut rng = Rng(0x0dd_ba11_c0ff_ee00);
    for _ in 0..2000 {
        let mut buffer = String::new();
        let mut expected = Vec::new();
        for _ in 0..1 + rng.below(6) {
            let code = 100 + rng.below(500) as u16;
            let version = if rng.below(2) == 0 {
                "HTTP/1.0"
            } else {
                "HTTP/1.1"
            };
            let reason = rng.token(0, 12);
            let line = if reason.is_empty() {
                format!("{version} {code}\r\n")
            } else {
                format!("{version} {code} {reason}\r\n")
            };
            let status_end = buffer.len() + 13;
            let body = rng.token(0, 40);
            buffer.push_str(&format!(
                "{line}Content-Length: {}\r\nServer: t\r\n\r\n{body}",
                body.len()
            ));
            if status_end <= SCAN_MAX && expected.len() < 8 {
                expected.push(code);
            }
        }
        assert_eq!(codes(buffer.as_bytes()), expected, "{buffer:?}");
        classify(first_headers(&buffer), true);
    }
}

#[test]
fn random_bytes_never_count_much_and_never_crash() {
    let mut rng = Rng(42);
    for _ in 0..5000 {
        let len = rng.below(2048) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let (requests, codes) = classify(&bytes, rng.below(2) == 0);
        assert_eq!((requests, codes.len()), (0, 0), "random bytes are not HTTP");
    }
}

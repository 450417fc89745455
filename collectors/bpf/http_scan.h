/* The HTTP classifier: one definition, compiled into the BPF program and, for tests,
 * into the host (collectors/bpf/http_scan_host.c, called from Rust).
 *
 * It reads a buffer one byte at a time and counts
 *   - request lines:  METHOD SP target SP HTTP/1.0|HTTP/1.1 CRLF
 *   - status lines:   HTTP/1.0|HTTP/1.1 SP 3-digit code (100-599) SP|CR
 * at the start of the buffer and where the previous message ends: after its blank line
 * (CRLF CRLF), plus its Content-Length body if it has one. So requests or responses
 * pipelined in one syscall are each counted (not after chunked bodies, and not after a
 * response to HEAD that announces a Content-Length without a body). State is a few integers (the last
 * 16 bytes are kept in two u64 windows), so it suits the BPF verifier.
 *
 * The includer defines __u8, __u16, __u32, __u64 and HTTP_INLINE.
 */
#ifndef HTTP_SCAN_H
#define HTTP_SCAN_H

/* Bytes of each syscall buffer that are scanned: requests or responses that start later
 * are not counted. */
#define HTTP_SCAN_MAX 1024
/* Status lines recorded per buffer. */
#define HTTP_SCAN_MAX_CODES 8

#define HTTP_DIR_READ 0
#define HTTP_DIR_WRITE 1

struct http_scan {
	__u64 w1;       /* last 8 bytes, newest in the low byte */
	__u64 w2;       /* the 8 bytes before those */
	__u64 head;     /* the first bytes of the current message (up to 8) */
	__u32 msg_off;  /* offset in the current message */
	__u32 requests; /* request lines counted */
	__u32 content_length; /* the current message's Content-Length, if seen */
	__u32 skip;     /* body bytes left before the next message */
	__u8 in_first_line;
	__u8 method_ok;
	__u8 ncodes;
	__u8 in_content_length; /* reading the Content-Length value */
	__u16 codes[HTTP_SCAN_MAX_CODES];
};

/* Bytes packed big-endian into an integer, for comparing short strings. */
#define HTTP_P2(a, b) (((__u64)(a) << 8) | (__u64)(b))
#define HTTP_P3(a, b, c) ((HTTP_P2(a, b) << 8) | (__u64)(c))
#define HTTP_P4(a, b, c, d) ((HTTP_P3(a, b, c) << 8) | (__u64)(d))
#define HTTP_P5(a, b, c, d, e) ((HTTP_P4(a, b, c, d) << 8) | (__u64)(e))
#define HTTP_P6(a, b, c, d, e, f) ((HTTP_P5(a, b, c, d, e) << 8) | (__u64)(f))
#define HTTP_P7(a, b, c, d, e, f, g) ((HTTP_P6(a, b, c, d, e, f) << 8) | (__u64)(g))
#define HTTP_P8(a, b, c, d, e, f, g, h) ((HTTP_P7(a, b, c, d, e, f, g) << 8) | (__u64)(h))

/* Is `method` (its `len` bytes packed) one of the nine request methods? */
static HTTP_INLINE int http_is_method(__u64 method, __u32 len)
{
	switch (len) {
	case 3:
		return method == HTTP_P3('G', 'E', 'T') || method == HTTP_P3('P', 'U', 'T');
	case 4:
		return method == HTTP_P4('H', 'E', 'A', 'D') || method == HTTP_P4('P', 'O', 'S', 'T');
	case 5:
		return method == HTTP_P5('P', 'A', 'T', 'C', 'H') || method == HTTP_P5('T', 'R', 'A', 'C', 'E');
	case 6:
		return method == HTTP_P6('D', 'E', 'L', 'E', 'T', 'E');
	case 7:
		return method == HTTP_P7('O', 'P', 'T', 'I', 'O', 'N', 'S') ||
		       method == HTTP_P7('C', 'O', 'N', 'N', 'E', 'C', 'T');
	default:
		return 0;
	}
}

static HTTP_INLINE int http_is_version(__u64 eight)
{
	return eight == HTTP_P8('H', 'T', 'T', 'P', '/', '1', '.', '1') ||
	       eight == HTTP_P8('H', 'T', 'T', 'P', '/', '1', '.', '0');
}

/* Worth scanning? `first8` is the buffer's first 8 bytes, packed. Cheap, so that most
 * socket traffic (bodies, other protocols) costs one comparison. */
static HTTP_INLINE int http_scan_wanted(__u64 first8, int dir)
{
	if (dir == HTTP_DIR_WRITE)
		return (first8 >> 8) == HTTP_P7('H', 'T', 'T', 'P', '/', '1', '.');
	/* A method and its space are within the first 8 bytes. */
	for (__u32 len = 3; len <= 7; len++) {
		__u64 prefix = first8 >> (8 * (8 - len - 1));
		if ((prefix & 0xff) == ' ' && http_is_method(prefix >> 8, len))
			return 1;
	}
	return 0;
}

static HTTP_INLINE void http_scan_init(struct http_scan *s)
{
	__builtin_memset(s, 0, sizeof(*s));
	s->in_first_line = 1;
}

static HTTP_INLINE __u8 http_byte(__u64 window, __u32 back)
{
	return (window >> (8 * back)) & 0xff;
}

/* A status line is complete at message offset 12: "HTTP/1.x NNN" and a space or CR. */
static HTTP_INLINE void http_check_status_line(struct http_scan *s)
{
	/* Message bytes 0..12: 0..4 are the low 5 bytes of w2, 5..12 are w1. */
	__u64 first8 = (s->w2 << 24) | (s->w1 >> 40);
	if (!http_is_version(first8))
		return;
	__u8 space = http_byte(s->w1, 4), d1 = http_byte(s->w1, 3), d2 = http_byte(s->w1, 2),
	     d3 = http_byte(s->w1, 1), after = http_byte(s->w1, 0);
	if (space != ' ' || (after != ' ' && after != '\r'))
		return;
	if (d1 < '1' || d1 > '5' || d2 < '0' || d2 > '9' || d3 < '0' || d3 > '9')
		return;
	if (s->ncodes < HTTP_SCAN_MAX_CODES) {
		__u32 index = s->ncodes & (HTTP_SCAN_MAX_CODES - 1);
		s->codes[index] = (d1 - '0') * 100 + (d2 - '0') * 10 + (d3 - '0');
		s->ncodes++;
	}
}

static HTTP_INLINE void http_start_message(struct http_scan *s)
{
	s->msg_off = 0;
	s->head = 0;
	s->in_first_line = 1;
	s->method_ok = 0;
	s->content_length = 0;
	s->in_content_length = 0;
}

/* "\ncontent-length:" with every byte OR 0x20, which lower-cases letters only. */
#define HTTP_CL_HI HTTP_P8('\n' | 0x20, 'c', 'o', 'n', 't', 'e', 'n', 't')
#define HTTP_CL_LO HTTP_P8('-', 'l', 'e', 'n', 'g', 't', 'h', ':')
#define HTTP_LOWER 0x2020202020202020ULL

/* Bodies longer than this are not skipped: the scan window is far smaller anyway. */
#define HTTP_MAX_SKIP (1U << 20)

static HTTP_INLINE void http_scan_step(struct http_scan *s, __u8 c)
{
	__u32 off = s->msg_off;
	s->w2 = (s->w2 << 8) | (s->w1 >> 56);
	s->w1 = (s->w1 << 8) | c;
	/* Most header bytes are letters: past the first line, outside a Content-Length value
	 * and a body, a byte above ':' only moves the windows. */
	if (c > ':' && !(s->in_first_line | s->in_content_length) && !s->skip) {
		s->msg_off = off + 1;
		return;
	}
	if (s->skip) {
		if (--s->skip == 0)
			http_start_message(s);
		return;
	}
	if (!s->in_first_line) {
		if (s->in_content_length) {
			if (c >= '0' && c <= '9' && s->content_length < HTTP_MAX_SKIP)
				s->content_length = s->content_length * 10 + (c - '0');
			else if (c != ' ' && c != '\t')
				s->in_content_length = 0;
		} else if (c == ':' && (s->w1 | HTTP_LOWER) == HTTP_CL_LO && (s->w2 | HTTP_LOWER) == HTTP_CL_HI) {
			s->in_content_length = 1;
			s->content_length = 0;
		}
	}
	if (off < 8)
		s->head = (s->head << 8) | c;
	if (s->in_first_line) {
		/* head holds the method and this space: off bytes of method. */
		if (c == ' ' && !s->method_ok && off >= 3 && off <= 7)
			s->method_ok = http_is_method(s->head >> 8, off);
		if (off == 12)
			http_check_status_line(s);
		if (c == '\n' && off > 0 && http_byte(s->w1, 1) == '\r') {
			/* " HTTP/1.x" right before CRLF ends a request line. */
			__u64 version = (s->w1 >> 16) | (s->w2 << 48);
			if (s->method_ok && http_byte(s->w2, 2) == ' ' && http_is_version(version))
				s->requests++;
			s->in_first_line = 0;
		}
	}
	if ((s->w1 & 0xffffffff) == HTTP_P4('\r', '\n', '\r', '\n')) {
		/* The end of the headers: the next message follows the body, if any. */
		__u32 body = s->content_length;
		http_start_message(s);
		s->skip = body <= HTTP_MAX_SKIP ? body : 0;
		return;
	}
	s->msg_off = off + 1;
}

#endif

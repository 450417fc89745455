/* The HTTP classifier: one definition, compiled into the BPF program and, for tests,
 * into the host (collectors/bpf/http_scan_host.c, called from Rust).
 *
 * It counts, in one syscall's buffer,
 *   - request lines:  METHOD SP target SP HTTP/1.0|HTTP/1.1 CRLF
 *   - status lines:   HTTP/1.0|HTTP/1.1 SP 3-digit code (100-599) SP|CR
 * at the start of the buffer and where the previous message ends: after its blank line
 * (CRLF CRLF), plus its Content-Length body if it has one. So requests or responses
 * pipelined in one syscall are each counted (not after chunked bodies, and not after a
 * response to HEAD that announces a Content-Length without a body).
 *
 * The buffer is read eight bytes at a time: a word without a line feed costs a few
 * instructions, and all the work happens at line feeds (a header ends, a request line
 * ends, Content-Length starts) and at message starts. In BPF every byte-at-a-time step
 * cost about 12 ns; this is why. http_scan_step does one unit of work per call, so the
 * BPF program can drive it from bpf_loop with the state in map memory, which the
 * verifier checks once rather than once per offset. Before the steps, http_scan_single
 * tries the common case (one message, its headers ending where the buffer ends) in one
 * loop without steps; tests check that both give the same result on every vector.
 *
 * The includer defines __u8, __u16, __u32, __u64, __s64 and HTTP_INLINE. Words are read as
 * little-endian (x86_64 and the BPF target built for it).
 */
#ifndef HTTP_SCAN_H
#define HTTP_SCAN_H

/* Bytes of each syscall buffer that are scanned: requests or responses that start later
 * are not counted. */
#define HTTP_SCAN_MAX 1024
/* The buffer the scan reads: offsets are masked to HTTP_SCAN_BUF - 1 (so the verifier sees
 * every load in bounds), and 8 more bytes may be read past any masked offset. */
#define HTTP_SCAN_BUF (2 * HTTP_SCAN_MAX)
#define HTTP_SCAN_BUF_SIZE (HTTP_SCAN_BUF + 8)
/* Status lines recorded per buffer. */
#define HTTP_SCAN_MAX_CODES 8
/* Steps a scan of HTTP_SCAN_MAX bytes can take, at most: one per line feed and one per
 * word (a step reads at least one word or handles a line feed). */
#define HTTP_SCAN_MAX_STEPS (2 * HTTP_SCAN_MAX + HTTP_SCAN_MAX / 8)

#define HTTP_DIR_READ 0
#define HTTP_DIR_WRITE 1

struct http_scan {
	__u64 newlines;       /* line feeds of the current word not yet handled, bit 7 of each byte */
	__u32 word;           /* offset of the current word */
	__u32 next_word;      /* offset of the next word to read */
	__u32 len;            /* bytes in the buffer, at most HTTP_SCAN_MAX */
	__u32 msg;            /* offset where the current message starts */
	__u32 content_length; /* the current message's Content-Length, if seen */
	__u32 requests;       /* request lines counted */
	__u8 dir;             /* HTTP_DIR_READ counts requests, HTTP_DIR_WRITE status lines */
	__u8 msg_pending;     /* the current message's start is not yet classified */
	__u8 in_first_line;   /* the current message's first line has not ended */
	__u8 method_len;      /* length of the request method the message starts with, or 0 */
	__u8 ncodes;
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

/* The length of the request method `first8` (a message's first 8 bytes, packed) starts
 * with, followed by a space; 0 if it starts with none. */
static HTTP_INLINE __u32 http_method_len(__u64 first8)
{
	for (__u32 len = 3; len <= 7; len++) {
		__u64 prefix = first8 >> (8 * (8 - len - 1));
		if ((prefix & 0xff) == ' ' && http_is_method(prefix >> 8, len))
			return len;
	}
	return 0;
}

/* A token character (RFC 9110: a method is a token): letters, digits and !#$%&'*+-.^_`|~. */
static HTTP_INLINE int http_is_tchar(__u8 c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return 1;
	default:
		return 0;
	}
}

/* Could a connection whose first 8 bytes (packed) are `first8` carry an HTTP/1 request,
 * counted or not? A request line starts with a method (any token, so methods this
 * classifier does not count too) and a space; a method longer than 7 shows no space in 8
 * bytes. A server may skip empty lines before the request line, and a PROXY protocol
 * header may come first: "PROXY " (v1) is a token and a space, v2 starts with "\r\n". So
 * 0 only where no HTTP/1 request can follow: TLS records, most binary protocols. */
static HTTP_INLINE int http_could_start_request(__u64 first8)
{
	for (int i = 0; i < 8; i++) {
		__u8 c = first8 >> (56 - 8 * i);
		if (c == ' ')
			return i > 0;
		if (c == '\r' || c == '\n')
			return i == 0;
		if (!http_is_tchar(c))
			return 0;
	}
	return 1;
}

/* Worth scanning? `first8` is the buffer's first 8 bytes, packed. Cheap, so that most
 * socket traffic (bodies, other protocols) costs one comparison. */
static HTTP_INLINE int http_scan_wanted(__u64 first8, int dir)
{
	if (dir == HTTP_DIR_WRITE)
		return (first8 >> 8) == HTTP_P7('H', 'T', 'T', 'P', '/', '1', '.');
	return http_method_len(first8) != 0;
}

/* The 8 bytes at `off`, little-endian (the first byte in the low bits). */
static HTTP_INLINE __u64 http_load(const __u8 *buf, __u32 off)
{
	const __u8 *at = buf + (off & (HTTP_SCAN_BUF - 1));
#ifdef __bpf__
	/* One unaligned 8-byte load: the verifier allows it on x86_64 (no strict alignment)
	 * and the JIT emits one mov, where memcpy would be eight byte loads and shifts. */
	return *(const __u64 *)at;
#else
	__u64 word;
	__builtin_memcpy(&word, at, sizeof(word));
	return word;
#endif
}

/* The 8 bytes at `off`, packed big-endian as HTTP_P8 packs them. */
static HTTP_INLINE __u64 http_load_packed(const __u8 *buf, __u32 off)
{
	return __builtin_bswap64(http_load(buf, off));
}

static HTTP_INLINE __u8 http_at(const __u8 *buf, __u32 off)
{
	return buf[off & (HTTP_SCAN_BUF - 1)];
}

#define HTTP_ONES 0x0101010101010101ULL
#define HTTP_LOW7 0x7f7f7f7f7f7f7f7fULL

/* Bit 7 of each byte of `word` that equals `c`, and no other bit (exact, unlike the
 * shorter has-zero-byte test, which can flag a byte after a match). */
static HTTP_INLINE __u64 http_bytes_equal(__u64 word, __u8 c)
{
	__u64 x = word ^ (HTTP_ONES * c);
	return ~(((x & HTTP_LOW7) + HTTP_LOW7) | x | HTTP_LOW7);
}

/* The index (0-7) of the lowest byte flagged in `bits` (bit 7 of bytes, at least one set):
 * a multiply, since BPF has no count-trailing-zeros instruction. */
static HTTP_INLINE __u32 http_lowest_byte(__u64 bits)
{
	__u64 lowest = (bits & (~bits + 1)) >> 7; /* 1 << (8 * index) */
	return (lowest * 0x0001020304050607ULL) >> 56;
}

/* The scan starts a message at `off`: it is classified once its first 13 bytes are in. */
static HTTP_INLINE void http_start_message(struct http_scan *s, __u32 off)
{
	s->msg = off;
	s->next_word = off;
	s->newlines = 0;
	s->msg_pending = 1;
	s->in_first_line = 1;
	s->method_len = 0;
	s->content_length = 0;
}

/* A scan of the `len` bytes (at most HTTP_SCAN_MAX) at the start of the buffer. */
static HTTP_INLINE void http_scan_init(struct http_scan *s, int dir, __u32 len)
{
	__builtin_memset(s, 0, sizeof(*s));
	s->dir = dir;
	s->len = len < HTTP_SCAN_MAX ? len : HTTP_SCAN_MAX;
	http_start_message(s, 0);
}

/* A request starts with its method; a response's status line is whole in 13 bytes. */
static HTTP_INLINE void http_classify_start(struct http_scan *s, const __u8 *buf)
{
	__u64 first8 = http_load_packed(buf, s->msg);
	if (s->dir == HTTP_DIR_READ) {
		s->method_len = http_method_len(first8);
		return;
	}
	if (!http_is_version(first8))
		return;
	/* " NNN" and a space or CR at offsets 8 to 12. */
	__u64 rest = http_load_packed(buf, s->msg + 8) >> 24;
	__u8 space = rest >> 32, d1 = rest >> 24, d2 = rest >> 16, d3 = rest >> 8, after = rest;
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

/* "\ncontent-length:" with every byte OR 0x20, which lower-cases letters only. */
#define HTTP_CL_HI HTTP_P8('\n' | 0x20, 'c', 'o', 'n', 't', 'e', 'n', 't')
#define HTTP_CL_LO HTTP_P8('-', 'l', 'e', 'n', 'g', 't', 'h', ':')
#define HTTP_LOWER 0x2020202020202020ULL
#define HTTP_CRLFCRLF 0x0a0d0a0dU /* "\r\n\r\n" read little-endian */

/* Bodies longer than this are not skipped: the scan window is far smaller anyway. */
#define HTTP_MAX_SKIP (1U << 20)

/* The decimal value after a Content-Length colon at `off` (spaces and tabs skipped). */
static HTTP_INLINE __u32 http_content_length(const __u8 *buf, __u32 off, __u32 len)
{
	__u32 value = 0;
	for (int i = 0; i < 16; i++, off++) {
		if (off >= len)
			break;
		__u8 c = http_at(buf, off);
		if (c >= '0' && c <= '9') {
			if (value < HTTP_MAX_SKIP)
				value = value * 10 + (c - '0');
		} else if (c != ' ' && c != '\t') {
			break;
		}
	}
	return value;
}

/* Does the message's first line, ending with the line feed at `p`, make it a request?
 * "METHOD SP target SP HTTP/1.x CR LF", the target at least one byte. */
static HTTP_INLINE int http_is_request_line(const struct http_scan *s, const __u8 *buf, __u32 p)
{
	return s->method_len && p >= s->msg + s->method_len + 12 && http_at(buf, p - 1) == '\r' &&
	       http_at(buf, p - 10) == ' ' && http_is_version(http_load_packed(buf, p - 9));
}

/* Is the header line after the line feed at `p` "Content-Length:"? */
static HTTP_INLINE int http_is_content_length(const struct http_scan *s, const __u8 *buf, __u32 p)
{
	return p + 16 <= s->len && (http_load_packed(buf, p) | HTTP_LOWER) == HTTP_CL_HI &&
	       (http_load_packed(buf, p + 8) | HTTP_LOWER) == HTTP_CL_LO;
}

/* The line feed at `p` (inside the current message): a request line ends, the headers
 * end (the blank line "\r\n" follows), or a header line starts. */
static HTTP_INLINE void http_line_feed(struct http_scan *s, const __u8 *buf, __u32 p)
{
	__u32 msg = s->msg;
	if (s->in_first_line) {
		s->in_first_line = 0;
		if (http_is_request_line(s, buf, p))
			s->requests++;
	}
	if (p >= msg + 1 && p + 2 < s->len && (__u32)http_load(buf, p - 1) == HTTP_CRLFCRLF) {
		/* The end of the headers: the next message follows the body, if any. */
		__u32 body = s->content_length <= HTTP_MAX_SKIP ? s->content_length : 0;
		http_start_message(s, p + 3 + body);
		return;
	}
	if (http_is_content_length(s, buf, p))
		s->content_length = http_content_length(buf, p + 16, s->len);
}

/* Line feeds in the word at `off` that can matter once the first line is over: one
 * before a "Content-Length" line (the next byte is 'c' or 'C') or before the blank line
 * (the next byte is '\r'). Other header lines cost no step. */
static HTTP_INLINE __u64 http_header_line_feeds(const __u8 *buf, __u32 off, __u64 line_feeds)
{
	__u64 next = http_load(buf, off + 1);
	return line_feeds & (http_bytes_equal(next | HTTP_LOWER, 'c') | http_bytes_equal(next, '\r'));
}

/* Hides a value from the optimizer: clang recognizes the branch-free idioms below and
 * turns them back into compare-and-branch, which is what they avoid. */
#define HTTP_OPAQUE(x) __asm__("" : "+r"(x))

/* 1 if `x` is not zero, else 0, without a branch. */
static HTTP_INLINE __u64 http_nonzero(__u64 x)
{
	__u64 sign = x | (0 - x);
	HTTP_OPAQUE(sign);
	return sign >> 63;
}

/* The lowest min(n, 8) bytes of a word, all ones, without a branch: two shifts, because
 * shifting by 64 or more is undefined (and x86 takes the count modulo 64). */
static HTTP_INLINE __u64 http_bytes_below(__u32 n)
{
	__s64 over = (__s64)n - 8;
	__s64 negative = over >> 63;
	HTTP_OPAQUE(negative);
	__u64 m = 8 + (over & negative); /* min(n, 8) */
	return (~0ULL >> (32 - 4 * m)) >> (32 - 4 * m);
}

/* `then` if `take` (0 or 1), else `otherwise`, without a branch. */
static HTTP_INLINE __u32 http_select(__u64 take, __u32 then, __u32 otherwise)
{
	__u32 mask = 0 - (__u32)take;
	HTTP_OPAQUE(mask);
	return (then & mask) | (otherwise & ~mask);
}

/* Stores 8 zero bytes at `off`. */
static HTTP_INLINE void http_store_zero(__u8 *buf, __u32 off)
{
	__u8 *at = buf + (off & (HTTP_SCAN_BUF - 1));
#ifdef __bpf__
	*(__u64 *)at = 0;
#else
	__builtin_memset(at, 0, 8);
#endif
}

/* The common case, in one pass with no steps: the buffer is one message whose headers end
 * where the buffer ends ("\r\n\r\n" last, and no earlier line feed followed by a carriage
 * return), such as one request without a body, or a response's headers written apart from
 * its body. The result is the steps' result: the first line is classified, the
 * Content-Length found, and nothing else can start inside the buffer. Returns 1 if it
 * applied; 0 (nothing changed but the 8 bytes after the buffer, which no scan reads as
 * data) if the buffer needs the steps. A step costs a call and reloading the state: on a
 * small request and its response headers this saves most of the scan's time.
 *
 * The 8 bytes after the buffer are zeroed first, so no word needs masking: the final line
 * feed (the blank line's own) is followed by a zero, which is neither a carriage return nor
 * a 'c', and so counts for nothing. A word without a line feed, most of them, then costs a
 * load, the line feed test and a branch.
 *
 * The loop body branches only to skip work: the BPF verifier walks all 128 iterations, and
 * branches that do not rejoin would multiply the paths it checks past its limit. */
static HTTP_INLINE int http_scan_single(struct http_scan *s, __u8 *buf, int dir)
{
	__u32 len = s->len;
	if (len < 16 || (__u32)http_load(buf, len - 4) != HTTP_CRLFCRLF)
		return 0;
	http_store_zero(buf, len);
	__u32 end = len - 3; /* the line feed before the blank line, where the headers end */
	__u32 first_line_feed = 0, content_length_at = 0;
	/* Line feeds followed by a carriage return: the one at `end`, and any other is a blank
	 * line inside (more than one message). Counted per word, and two in a word flagged. */
	__u64 words_with_blank = 0, two_in_a_word = 0;
#ifdef __clang__
#pragma clang loop unroll(disable)
#endif
	for (__u32 i = 0; i < HTTP_SCAN_MAX / 8; i++) {
		__u32 off = i * 8;
		if (off > end)
			break;
		__u64 line_feeds = http_bytes_equal(http_load(buf, off), '\n');
		if (!line_feeds)
			continue; /* most words */
		/* Only a request's first line is checked where it ends (`dir` is a constant for the
		 * compiler in BPF, so a response's scan does none of this). */
		if (dir == HTTP_DIR_READ)
			first_line_feed = http_select(1 ^ http_nonzero(first_line_feed),
						      off + http_lowest_byte(line_feeds), first_line_feed);
		__u64 next = http_load(buf, off + 1);
		__u64 blank = line_feeds & http_bytes_equal(next, '\r');
		words_with_blank += http_nonzero(blank);
		two_in_a_word |= blank & (blank - 1);
		/* A header line starting with 'c' or 'C' after one of these line feeds. Two in one
		 * word are rare and left to the steps. */
		__u64 before_c = line_feeds & http_bytes_equal(next | HTTP_LOWER, 'c');
		if (!before_c)
			continue;
		two_in_a_word |= before_c & (before_c - 1);
		__u32 p = off + http_lowest_byte(before_c);
		__u64 differs = ((http_load_packed(buf, p) | HTTP_LOWER) ^ HTTP_CL_HI) |
				((http_load_packed(buf, p + 8) | HTTP_LOWER) ^ HTTP_CL_LO);
		__u64 room = (__u64)len - (p + 16); /* negative if the line cannot fit */
		HTTP_OPAQUE(room);
		__u64 fits = 1 ^ (room >> 63);
		__u64 is_content_length = (1 ^ http_nonzero(differs)) & fits;
		content_length_at = http_select(is_content_length, p + 16, content_length_at);
	}
	if (words_with_blank != 1 || two_in_a_word)
		return 0;
	if (dir == HTTP_DIR_READ) {
		s->method_len = http_method_len(http_load_packed(buf, 0));
		if (http_is_request_line(s, buf, first_line_feed))
			s->requests++;
	} else {
		http_classify_start(s, buf);
	}
	__u32 body = content_length_at ? http_content_length(buf, content_length_at, len) : 0;
	http_start_message(s, len + (body <= HTTP_MAX_SKIP ? body : 0));
	return 1;
}

/* A message that starts too late for its first line to fit is not counted, and neither
 * is a status line past HTTP_SCAN_MAX_CODES: the scan is over. */
static HTTP_INLINE int http_scan_over(const struct http_scan *s)
{
	return s->msg_pending && (s->msg + 13 > s->len || s->ncodes >= HTTP_SCAN_MAX_CODES);
}

/* Words read per step while looking for the next line feed: fewer steps (each costs a
 * call and reloading the state from map memory in BPF), still a small callback. */
#define HTTP_WORDS_PER_STEP 4

/* One unit of work: classify a message start, or find the next line feed (up to
 * HTTP_WORDS_PER_STEP words on) and handle it. Returns 1 when the scan is over. */
static HTTP_INLINE int http_scan_step(struct http_scan *s, const __u8 *buf)
{
	if (s->msg_pending) {
		if (http_scan_over(s))
			return 1;
		s->msg_pending = 0;
		http_classify_start(s, buf);
	}
	__u64 bits = s->newlines;
	if (!bits) {
		__u32 off = s->next_word, len = s->len;
		for (int i = 0; i < HTTP_WORDS_PER_STEP; i++) {
			if (off >= len) {
				s->next_word = off;
				return 1;
			}
			bits = http_bytes_equal(http_load(buf, off), '\n');
			if (bits && !s->in_first_line)
				bits = http_header_line_feeds(buf, off, bits);
			if (len - off < 8)
				bits &= (1ULL << (8 * (len - off))) - 1;
			off += 8;
			if (bits)
				break;
		}
		s->next_word = off;
		if (!bits)
			return 0;
		s->word = off - 8;
	}
	s->newlines = bits & (bits - 1);
	http_line_feed(s, buf, s->word + http_lowest_byte(bits));
	/* Saves the step that would only find this out. */
	return http_scan_over(s);
}

#endif

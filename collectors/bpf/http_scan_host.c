/* The classifier compiled for the host, so Rust tests exercise the very code the BPF
 * program runs (same header, same prefilter, same scan bound, same step limit). */
#include <stdint.h>
#include <string.h>

typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int64_t __s64;
#define HTTP_INLINE inline __attribute__((always_inline))

#include "http_scan.h"

/* What one scan found. */
struct scope_http_found {
	uint32_t requests;
	uint32_t ncodes;
	uint16_t codes[HTTP_SCAN_MAX_CODES];
	uint32_t single_pass; /* 1 if http_scan_single did the scan */
	uint32_t next_message; /* where a message after the last one counted would start */
};

/* Scans `buf` as the BPF program scans a syscall buffer of `len` bytes in direction
 * `dir` (with `steps_only`, without trying the single pass first, so that tests can
 * compare the two). Returns 0 if the prefilter skipped it, 1 if it was scanned into `out`,
 * and -1 if the scan did not end within the BPF program's step limit (a bug). */
int scope_http_scan(const unsigned char *buf, uint32_t len, int dir, int steps_only,
		    struct scope_http_found *out)
{
	memset(out, 0, sizeof(*out));
	/* The BPF scratch buffer holds stale bytes past `len`: line feeds here, so that a scan
	 * reading past the end shows in the tests. */
	unsigned char copy[HTTP_SCAN_BUF_SIZE];
	memset(copy, '\n', sizeof(copy));
	uint32_t n = len < HTTP_SCAN_MAX ? len : HTTP_SCAN_MAX;
	memcpy(copy, buf, n);
	if (n < 8 || !http_scan_wanted(http_load_packed(copy, 0), dir))
		return 0;
	struct http_scan scan;
	http_scan_init(&scan, dir, n);
	int ended = !steps_only && http_scan_single(&scan, copy, dir);
	out->single_pass = ended;
	for (int step = 0; step < HTTP_SCAN_MAX_STEPS && !ended; step++)
		ended = http_scan_step(&scan, copy);
	out->requests = scan.requests;
	out->next_message = scan.msg;
	out->ncodes = scan.ncodes;
	memcpy(out->codes, scan.codes, sizeof(out->codes));
	return ended ? 1 : -1;
}

/* http_could_start_request on a stream's first 8 bytes (`buf` holds at least 8). */
int scope_http_could_start_request(const unsigned char *buf)
{
	return http_could_start_request(http_load_packed(buf, 0));
}

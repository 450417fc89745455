/* The classifier compiled for the host, so Rust tests exercise the very code the BPF
 * program runs (same header, same prefilter, same scan bound). */
#include <stdint.h>
#include <string.h>

typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
#define HTTP_INLINE inline __attribute__((always_inline))

#include "http_scan.h"

/* Scans `buf` as the BPF program scans a syscall buffer of `len` bytes in direction
 * `dir`. Returns 0 if the prefilter skipped it, 1 if it was scanned into `out`. */
int scope_http_scan(const unsigned char *buf, uint32_t len, int dir, struct http_scan *out)
{
	http_scan_init(out);
	if (len < 8)
		return 0;
	__u64 first8 = 0;
	for (int i = 0; i < 8; i++)
		first8 = (first8 << 8) | buf[i];
	if (!http_scan_wanted(first8, dir))
		return 0;
	uint32_t n = len < HTTP_SCAN_MAX ? len : HTTP_SCAN_MAX;
	for (uint32_t i = 0; i < n; i++) {
		/* As in the BPF program: the rest is body, nothing more to find. */
		if (out->skip >= n - i)
			break;
		http_scan_step(out, buf[i]);
	}
	return 1;
}

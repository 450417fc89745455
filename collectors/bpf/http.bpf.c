// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* HTTP requests received and responses sent, per process, from one raw tracepoint.
 *
 * raw_tracepoint/sys_exit runs at every syscall exit; the saved registers still hold the
 * syscall number and arguments, so no enter hook, no per-thread map and no tracefs are
 * needed, and it works on kernels without kprobes or fentry (x86_64 only).
 *
 * Per syscall, cheapest test first: a read-/write-family syscall that moved >= 8 bytes;
 * the buffer's first 8 bytes look like a request or status line (one user read); the fd
 * is a stream socket of the wanted family (a walk of the fd table). Only then are up to
 * HTTP_SCAN_MAX bytes copied and scanned, and the process's counters updated.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define HTTP_INLINE __always_inline
#include "http_scan.h"

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define SOCK_STREAM 1
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define MSG_PEEK 2
#define TS_COMPAT 0x0002

/* x86_64 syscall numbers. */
#define NR_read 0
#define NR_write 1
#define NR_readv 19
#define NR_writev 20
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47

/* Distinct status codes kept per process (and per CPU). */
#define MAX_CODES 16

/* Set by the loader: also count AF_UNIX stream sockets. Off by default, because Scope's
 * own plugin traffic is HTTP over unix sockets. */
const volatile __u8 count_unix = 0;

struct http_counts {
	__u64 start_time; /* the process's start, to tell a reused pid from the old one */
	__u64 requests;
	__u64 responses[MAX_CODES];
	__u16 codes[MAX_CODES];
};

/* Per process (tgid) and per CPU, so updates need no atomics; LRU bounds the memory, and
 * a process's entry is deleted when its whole thread group has exited. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct http_counts);
} COUNTS SEC(".maps");

/* The scan state lives in map memory, not on the stack: values loaded from a map are
 * unknown to the verifier, so bpf_loop's callback is verified once instead of once per
 * possible offset (which exceeds the 1M-instruction limit). */
struct scratch {
	struct http_scan scan;
	__u8 buf[HTTP_SCAN_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} SCRATCH SEC(".maps");

struct user_iovec {
	void *iov_base;
	__u64 iov_len;
};

/* The user-space struct msghdr (fixed by the x86_64 ABI). */
struct user_msghdr {
	void *msg_name;
	int msg_namelen;
	struct user_iovec *msg_iov;
	__u64 msg_iovlen;
};

struct scan_ctx {
	struct http_scan *state;
	__u8 *buf;
	__u32 len;
};

/* One byte per bpf_loop iteration: unrolling several steps per callback multiplies the
 * verifier's paths past its 1M-instruction limit. */
static long scan_byte(__u32 index, void *data)
{
	struct scan_ctx *ctx = data;
	/* The rest of the buffer is body: nothing more to find, stop instead of counting it down. */
	if (ctx->state->skip >= ctx->len - index)
		return 1;
	http_scan_step(ctx->state, ctx->buf[index & (HTTP_SCAN_MAX - 1)]);
	return 0;
}

/* iovecs scanned per readv/writev/recvmsg/sendmsg (their bytes share the scan budget). */
#define MAX_IOVECS 8

/* Copies `n` bytes at `ptr` and feeds them to the scan. */
static __always_inline int scan_span(struct scratch *scratch, const void *ptr, __u64 n)
{
	if (n == 0 || n > HTTP_SCAN_MAX)
		return -1;
	if (bpf_probe_read_user(scratch->buf, n, ptr))
		return -1;
	struct scan_ctx ctx = { .state = &scratch->scan, .buf = scratch->buf, .len = n };
	bpf_loop(n, scan_byte, &ctx, 0);
	return 0;
}

static __always_inline int wanted_socket(struct task_struct *task, unsigned long fd)
{
	/* No max_fds check: the syscall has just used this fd, so it is inside the table (an fd
	 * closed meanwhile reads as NULL). */
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return 0;
	unsigned short family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6 || (family == AF_UNIX && count_unix);
}

static __always_inline void record(struct task_struct *task, struct http_scan *scan, int dir)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct http_counts *counts = bpf_map_lookup_elem(&COUNTS, &tgid);
	if (!counts) {
		struct http_counts fresh = {};
		fresh.start_time = BPF_CORE_READ(task, group_leader, start_time);
		bpf_map_update_elem(&COUNTS, &tgid, &fresh, BPF_NOEXIST);
		counts = bpf_map_lookup_elem(&COUNTS, &tgid);
		if (!counts)
			return;
	}
	if (dir == HTTP_DIR_READ) {
		counts->requests += scan->requests;
		return;
	}
	for (int i = 0; i < HTTP_SCAN_MAX_CODES; i++) {
		if (i >= scan->ncodes)
			break;
		__u16 code = scan->codes[i];
		for (int slot = 0; slot < MAX_CODES; slot++) {
			if (counts->codes[slot] == code || counts->codes[slot] == 0) {
				counts->codes[slot] = code;
				counts->responses[slot]++;
				break;
			}
		}
	}
}

SEC("raw_tracepoint/sys_exit")
int http_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	long ret = (long)ctx->args[1];
	if (ret < 8)
		return 0;
	/* One copy of the saved registers: every helper call costs tens of nanoseconds, and
	 * this runs at every syscall exit. */
	struct syscall_regs regs;
	if (bpf_probe_read_kernel(&regs, sizeof(regs), (void *)ctx->args[0] + PT_REGS_R10_OFFSET))
		return 0;
	long nr = regs.orig_ax;
	int dir;
	switch (nr) {
	case NR_read:
	case NR_readv:
	case NR_recvfrom:
	case NR_recvmsg:
		dir = HTTP_DIR_READ;
		break;
	case NR_write:
	case NR_writev:
	case NR_sendto:
	case NR_sendmsg:
		dir = HTTP_DIR_WRITE;
		break;
	default:
		return 0;
	}
	unsigned long fd = regs.di;
	unsigned long arg1 = regs.si;
	if (nr == NR_recvfrom && (regs.r10 & MSG_PEEK))
		return 0; /* peeked data is read again: count it then */
	if (nr == NR_recvmsg && (regs.dx & MSG_PEEK))
		return 0;

	/* Where the bytes are: one buffer, or a vector of them. */
	const void *first_buf = (const void *)arg1;
	__u64 first_len = ret;
	struct user_iovec *iov = 0;
	__u64 iovcnt = 0;
	if (nr == NR_readv || nr == NR_writev) {
		iov = (struct user_iovec *)arg1;
		iovcnt = regs.dx;
	} else if (nr == NR_recvmsg || nr == NR_sendmsg) {
		struct user_msghdr msg;
		if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)arg1))
			return 0;
		iov = msg.msg_iov;
		iovcnt = msg.msg_iovlen;
	}
	if (iov) {
		struct user_iovec first;
		if (!iovcnt || bpf_probe_read_user(&first, sizeof(first), iov))
			return 0;
		first_buf = first.iov_base;
		first_len = first.iov_len < (__u64)ret ? first.iov_len : (__u64)ret;
	}
	if (first_len < 8)
		return 0;

	__u8 first[8];
	if (bpf_probe_read_user(first, sizeof(first), first_buf))
		return 0;
	__u64 first8 = 0;
	for (int i = 0; i < 8; i++)
		first8 = (first8 << 8) | first[i];
	if (!http_scan_wanted(first8, dir))
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	/* 32-bit tasks use other syscall numbers and registers: what looked like HTTP was not. */
	if (BPF_CORE_READ(task, thread_info.status) & TS_COMPAT)
		return 0;
	if (!wanted_socket(task, fd))
		return 0;

	__u32 zero = 0;
	struct scratch *scratch = bpf_map_lookup_elem(&SCRATCH, &zero);
	if (!scratch)
		return 0;
	http_scan_init(&scratch->scan);
	/* Only the bytes the syscall moved, and at most HTTP_SCAN_MAX of them. */
	__u64 budget = (__u64)ret < HTTP_SCAN_MAX ? (__u64)ret : HTTP_SCAN_MAX;
	if (!iov) {
		scan_span(scratch, first_buf, budget);
	} else {
		for (int i = 0; i < MAX_IOVECS; i++) {
			struct user_iovec part;
			/* Stop when all that is left is body (a response's payload iovecs). */
			if (i >= iovcnt || budget == 0 || scratch->scan.skip >= budget ||
			    bpf_probe_read_user(&part, sizeof(part), &iov[i]))
				break;
			__u64 n = part.iov_len < budget ? part.iov_len : budget;
			if (n && scan_span(scratch, part.iov_base, n))
				break;
			budget -= n;
		}
	}
	if (scratch->scan.requests == 0 && scratch->scan.ncodes == 0)
		return 0;
	record(task, &scratch->scan, dir);
	return 0;
}

/* A process's counters go when its last thread exits, so a reused pid starts at zero. */
SEC("raw_tracepoint/sched_process_exit")
int http_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	__u32 tgid = BPF_CORE_READ(task, tgid);
	bpf_map_delete_elem(&COUNTS, &tgid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* HTTP requests received and responses sent, per process, from raw tracepoints.
 *
 * sock_recv_length and sock_send_length fire inside sock_recvmsg/sock_sendmsg (kernel 6.4
 * and later) for every socket read and write, and for nothing else: files, pipes and
 * syscalls other than socket I/O run no BPF at all. They give the socket and the byte
 * count; the syscall's saved registers give its number and the user buffer. No kprobes,
 * fentry or tracefs are needed (x86_64 only).
 *
 * Per socket read or write, cheapest test first: at least 8 bytes moved; not a socket
 * that connected (a client end); a read-/write-family syscall; its first bytes (up to
 * HTTP_SCAN_MAX, one copy) look like a request or status line; the socket is a stream
 * socket of the wanted family and the one the syscall names. Only then is the copy
 * scanned and the process's counters updated. Two more programs keep the state bounded:
 * TCP state changes (SOCKETS) and process exits (COUNTS).
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define HTTP_INLINE __always_inline
#include "http_scan.h"

#define SOCK_STREAM 1
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define MSG_PEEK 2
#define TS_COMPAT 0x0002
#define PF_KTHREAD 0x00200000

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

/* TCP sockets seen before, by address:
 *   - sockets that connected (SYN_SENT to ESTABLISHED): the client end of a connection, on
 *     which nothing is counted (a client sends requests and receives responses), so their
 *     reads and writes cost one lookup instead of a copy;
 *   - sockets already found to be the socket their process's fd names: the checks take five
 *     kernel reads, the lookup one.
 * An entry goes when its socket closes (its memory may become another socket). */
struct socket_owner {
	__u32 tgid;
	__u32 fd;
	__u32 client;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct socket_owner);
} SOCKETS SEC(".maps");

/* The scan state lives in map memory, not on the stack: values loaded from a map are
 * unknown to the verifier, so bpf_loop's callback is verified once instead of once per
 * possible offset (which exceeds the 1M-instruction limit). */
struct scratch {
	struct http_scan scan;
	__u8 buf[HTTP_SCAN_BUF_SIZE];
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

/* bpf_loop passes only a stack pointer to its callback. */
struct scan_ctx {
	struct scratch *scratch;
};

static long scan_step(__u32 index, void *data)
{
	struct scratch *scratch = ((struct scan_ctx *)data)->scratch;
	return http_scan_step(&scratch->scan, scratch->buf);
}

/* iovecs copied per readv/writev/recvmsg/sendmsg (their bytes share HTTP_SCAN_MAX). */
#define MAX_IOVECS 8

/* Copies iovecs 1 to `count` - 1 after the `filled` bytes already copied, up to `budget`
 * bytes in all; returns the bytes now in the buffer. */
static __always_inline __u32 copy_more_iovecs(struct scratch *scratch, const struct user_iovec *vec,
					      __u32 count, __u32 filled, __u32 budget)
{
	for (int i = 1; i < MAX_IOVECS; i++) {
		if (i >= count || filled >= budget)
			break;
		__u64 n = vec[i].iov_len < budget - filled ? vec[i].iov_len : budget - filled;
		if (n > HTTP_SCAN_MAX)
			n = HTTP_SCAN_MAX;
		if (n && bpf_probe_read_user(scratch->buf + (filled & (HTTP_SCAN_MAX - 1)), n, vec[i].iov_base))
			break;
		filled += n;
	}
	return filled;
}

/* Scans the first `len` bytes of the scratch buffer. */
static __always_inline void scan(struct scratch *scratch, int dir, __u32 len)
{
	http_scan_init(&scratch->scan, dir, len);
	struct scan_ctx scan_ctx = { .scratch = scratch };
	bpf_loop(HTTP_SCAN_MAX_STEPS, scan_step, &scan_ctx, 0);
}

/* Is `sk` the socket behind the syscall's `fd`? Kernel code running inside a syscall (an
 * NFS write, say) also sends on sockets; only the socket the user named carries the user's
 * bytes. Checked only for traffic that looks like HTTP. */
static __always_inline int is_syscall_socket(struct task_struct *task, unsigned long fd, struct sock *sk)
{
	/* No max_fds check: the syscall is using this fd, so it is inside the table. */
	struct file **fds = task->files->fdt->fd;
	struct file *file = 0;
	if (!fds || bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	/* For a socket file private_data is its struct socket; for any other file the
	 * comparison fails. */
	struct socket *sock = BPF_CORE_READ(file, private_data);
	return sock && BPF_CORE_READ(sock, sk) == sk;
}

/* A TCP (or, if asked, unix) stream socket, and the one the syscall's fd names? */
static __always_inline int wanted_socket(struct task_struct *task, unsigned long fd, struct sock *sk,
					 struct socket_owner *known)
{
	__u64 key = (__u64)sk;
	struct socket_owner owner = { .tgid = task->tgid, .fd = fd };
	if (known && known->tgid == owner.tgid && known->fd == owner.fd)
		return 1;
	if (BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return 0;
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	int inet = family == AF_INET || family == AF_INET6;
	if (!(inet || (family == AF_UNIX && count_unix)))
		return 0;
	if (!is_syscall_socket(task, fd, sk))
		return 0;
	/* Only TCP: its close is seen (below), so an entry never outlives its socket. */
	if (inet)
		bpf_map_update_elem(&SOCKETS, &key, &owner, BPF_ANY);
	return 1;
}

static __always_inline void record(struct task_struct *task, struct http_scan *scan, int dir)
{
	__u32 tgid = task->tgid;
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

/* The body of both socket hooks: `dir` says which one. */
static __always_inline int on_socket_io(struct bpf_raw_tracepoint_args *ctx, int dir)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	long ret = (int)ctx->args[1];
	int flags = (int)ctx->args[2];
	if (ret < 8)
		return 0;
	if (flags & MSG_PEEK)
		return 0; /* peeked data is read again: count it then */
	__u64 key = (__u64)sk;
	struct socket_owner *known = bpf_map_lookup_elem(&SOCKETS, &key);
	if (known && known->client)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	/* Kernel threads have no syscall registers; 32-bit tasks use other numbers. */
	if ((task->flags & PF_KTHREAD) || (task->thread_info.status & TS_COMPAT))
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long nr = regs->orig_ax;
	int wanted_dir;
	switch (nr) {
	case NR_read:
	case NR_readv:
	case NR_recvfrom:
	case NR_recvmsg:
		wanted_dir = HTTP_DIR_READ;
		break;
	case NR_write:
	case NR_writev:
	case NR_sendto:
	case NR_sendmsg:
		wanted_dir = HTTP_DIR_WRITE;
		break;
	default:
		return 0; /* sendfile, splice, io_uring...: documented blind spots */
	}
	if (wanted_dir != dir)
		return 0;
	unsigned long fd = regs->di;
	unsigned long arg1 = regs->si;

	__u32 zero = 0;
	struct scratch *scratch = bpf_map_lookup_elem(&SCRATCH, &zero);
	if (!scratch)
		return 0;
	/* Only the bytes the syscall moved, and at most HTTP_SCAN_MAX of them, in one copy per
	 * buffer: reading the first 8 bytes first would cost a helper call more for HTTP. */
	__u32 budget = ret < HTTP_SCAN_MAX ? ret : HTTP_SCAN_MAX;
	const void *buf = (const void *)arg1;
	const struct user_iovec *iov = 0;
	__u64 iovcnt = 0;
	if (nr == NR_readv || nr == NR_writev) {
		iov = (const struct user_iovec *)arg1;
		iovcnt = regs->dx;
	} else if (nr == NR_recvmsg || nr == NR_sendmsg) {
		struct user_msghdr msg;
		if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)arg1))
			return 0;
		iov = msg.msg_iov;
		iovcnt = msg.msg_iovlen;
	}
	struct user_iovec vec[MAX_IOVECS];
	__u32 count = 0;
	__u32 len = budget;
	if (iov) {
		/* One copy of the vector: every helper call costs tens of nanoseconds. */
		count = iovcnt < MAX_IOVECS ? iovcnt : MAX_IOVECS;
		if (count == 0 || bpf_probe_read_user(vec, count * sizeof(vec[0]), iov))
			return 0;
		buf = vec[0].iov_base;
		len = vec[0].iov_len < budget ? vec[0].iov_len : budget;
	}
	if (bpf_probe_read_user(scratch->buf, len, buf))
		return 0;
	if (len < 8 && count > 1) {
		len = copy_more_iovecs(scratch, vec, count, len, budget);
		count = 1;
	}
	if (len < 8 || !http_scan_wanted(http_load_packed(scratch->buf, 0), dir))
		return 0;
	if (!wanted_socket(task, fd, sk, known))
		return 0;
	scan(scratch, dir, len);
	/* The other iovecs are copied only if the first does not show them to be body (a
	 * server's header iovec and payload iovecs): then everything is scanned again. */
	if (count > 1 && len < budget && scratch->scan.msg < budget &&
	    scratch->scan.ncodes < HTTP_SCAN_MAX_CODES) {
		len = copy_more_iovecs(scratch, vec, count, len, budget);
		scan(scratch, dir, len);
	}
	if (scratch->scan.requests == 0 && scratch->scan.ncodes == 0)
		return 0;
	record(task, &scratch->scan, dir);
	return 0;
}

/* sock_recvmsg_nosec and sock_sendmsg_nosec fire these for every socket read and write
 * (kernel 6.4 and later), and nothing else does: files, pipes and syscalls other than
 * socket I/O run no BPF at all. The arguments are (sk, ret, flags). */
SEC("raw_tracepoint/sock_recv_length")
int http_sock_recv(struct bpf_raw_tracepoint_args *ctx)
{
	return on_socket_io(ctx, HTTP_DIR_READ);
}

SEC("raw_tracepoint/sock_send_length")
int http_sock_send(struct bpf_raw_tracepoint_args *ctx)
{
	return on_socket_io(ctx, HTTP_DIR_WRITE);
}

/* TCP state changes, (sk, old state, new state): a socket that connects is a client's; one
 * that closes leaves SOCKETS. */
SEC("raw_tracepoint/inet_sock_set_state")
int http_socket_state(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 key = ctx->args[0];
	int old_state = ctx->args[1], new_state = ctx->args[2];
	if (new_state == TCP_CLOSE) {
		bpf_map_delete_elem(&SOCKETS, &key);
	} else if (old_state == TCP_SYN_SENT && new_state == TCP_ESTABLISHED) {
		struct socket_owner client = { .client = 1 };
		bpf_map_update_elem(&SOCKETS, &key, &client, BPF_ANY);
	}
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

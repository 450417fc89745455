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
 * that connected (a client end) nor one whose stream did not start as HTTP; a
 * read-/write-family syscall; its first bytes (up to
 * HTTP_SCAN_MAX, one copy) look like a request or status line; the socket is a stream
 * socket of the wanted family and the one the syscall names. Only then is the copy
 * scanned and the process's counters updated. A response on a server's end with one
 * request unanswered costs less: its status line is copied, and nothing is scanned
 * (answered_alone). Two more programs keep the state bounded
 * and exact: TCP state changes (SOCKETS) and process exits (EXITED, below).
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define HTTP_INLINE __always_inline
#include "http_scan.h"

#define SOCK_STREAM 1
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define IPPROTO_TCP 6
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

/* The bench's cost breakdown (tests/benches/plugin.rs, section ebpf-stages) builds this
 * program with HTTP_STOP_RECV or HTTP_STOP_SEND set to a stage, 1 to 5, at which that
 * direction's program returns; the kernel's accounting of each build tells what the stages
 * before the stop cost. The plugin's build sets neither, and the stops compile away. */
#ifndef HTTP_STOP_RECV
#define HTTP_STOP_RECV 0
#endif
#ifndef HTTP_STOP_SEND
#define HTTP_STOP_SEND 0
#endif
#define HTTP_STOP_AT(dir, stage) ((dir) == HTTP_DIR_READ ? HTTP_STOP_RECV == (stage) : HTTP_STOP_SEND == (stage))

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
 * user space deletes a process's entry once it has exited and been folded into its
 * parent's (EXITED). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct http_counts);
} COUNTS SEC(".maps");

/* Per CPU, the counts of the process that last recorded on it and are not yet in COUNTS.
 * User space adds them to COUNTS[tgid] when the start times match. */
struct pending_counts {
	__u32 tgid;
	__u32 seq; /* odd while the counts move to COUNTS */
	struct http_counts counts;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pending_counts);
} PENDING SEC(".maps");

/* TCP sockets seen before, by address:
 *   - sockets that connected (SYN_SENT to ESTABLISHED): the client end of a connection, on
 *     which nothing is counted (a client sends requests and receives responses), so their
 *     reads and writes cost one array load instead of a copy;
 *   - server ends accepted since (SYN_RECV to ESTABLISHED) and not yet read from, and those
 *     whose stream turned out not to be HTTP (let_go_unless_http): one load too;
 *   - sockets already found to be the socket their process's fd names: the checks take five
 *     kernel reads, the slot one load.
 * A direct-mapped cache, not a hash map: an array lookup is inlined by the verifier, where a
 * hash lookup is a call and a bucket walk (about 50 ns here, and it ran four times per HTTP
 * request). Two sockets that share a slot take turns; the one evicted is checked again when
 * next seen, which costs time, never correctness (a client end also counts nothing when
 * checked in full). A slot is cleared when its socket closes (its memory may become another
 * socket). */
#define SOCKET_SLOTS 16384
/* Owners that are no process's fd. A client end: */
#define CLIENT_OWNER (~0ULL)
/* A server's end let go (let_go_unless_http); with CLIENT_OWNER, the owners at or above
 * it are of sockets on which nothing is counted. */
#define LET_GO_OWNER (~0ULL - 1)
/* A server's end accepted and not yet read from: its next read holds the stream's start. */
#define FRESH_OWNER (~0ULL - 2)

struct socket_slot {
	__u64 sk;
	__u64 owner; /* tgid << 32 | fd, or CLIENT_OWNER */
	/* Slots are written without locks: a slot mixing two writers' fields fails this check
	 * (odd multiplier: a mixed slot passes only if the sockets' address difference times it
	 * equals their owners' difference). */
	__u64 check;
	/* A server's end: requests counted and not yet answered (see answered_alone). Not
	 * covered by `check`: a wrong value costs a full scan, or, in a race with another
	 * socket taking the slot, reads one status line where a scan would find more. */
	__u64 unanswered;
};

#define SOCKET_CHECK_MUL 0x9e3779b97f4a7c15ULL

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SOCKET_SLOTS);
	__type(key, __u32);
	__type(value, struct socket_slot);
} SOCKETS SEC(".maps");

static __always_inline struct socket_slot *socket_slot(__u64 sk)
{
	/* Fibonacci hashing: sockets are slab objects, so the low address bits repeat. */
	__u32 index = (sk * SOCKET_CHECK_MUL) >> 50;
	return bpf_map_lookup_elem(&SOCKETS, &index);
}

/* The owner cached for `sk`, or 0 if its slot holds another socket (or nothing). */
static __always_inline __u64 cached_owner(const struct socket_slot *slot, __u64 sk)
{
	__u64 owner = slot->owner;
	if (slot->sk != sk || slot->check != sk * SOCKET_CHECK_MUL + owner)
		return 0;
	return owner;
}

static __always_inline void cache_owner(struct socket_slot *slot, __u64 sk, __u64 owner)
{
	slot->sk = sk;
	slot->owner = owner;
	slot->check = sk * SOCKET_CHECK_MUL + owner;
	slot->unanswered = 0;
}

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

/* Not static: the verifier checks a global function once, on its own, instead of at each
 * call site for every state the caller can be in (which exceeds its limit here). One per
 * direction, so that each is compiled for its own. */
__attribute__((noinline)) int scan_single_read(struct scratch *scratch)
{
	if (!scratch)
		return 0;
	return http_scan_single(&scratch->scan, scratch->buf, HTTP_DIR_READ);
}

__attribute__((noinline)) int scan_single_write(struct scratch *scratch)
{
	if (!scratch)
		return 0;
	return http_scan_single(&scratch->scan, scratch->buf, HTTP_DIR_WRITE);
}

/* Scans the first `len` bytes of the scratch buffer. */
static __always_inline void scan(struct scratch *scratch, int dir, __u32 len)
{
	http_scan_init(&scratch->scan, dir, len);
	if (dir == HTTP_DIR_READ ? scan_single_read(scratch) : scan_single_write(scratch))
		return;
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
					 struct socket_slot *slot, __u64 cached, __u64 owner)
{
	if (cached == owner)
		return 1;
	if (BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return 0;
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	int inet = family == AF_INET || family == AF_INET6;
	if (!(inet || (family == AF_UNIX && count_unix)))
		return 0;
	if (!is_syscall_socket(task, fd, sk))
		return 0;
	/* Only TCP: its close is seen (below), so a slot never outlives its socket. */
	if (inet)
		cache_owner(slot, (__u64)sk, owner);
	return 1;
}

/* Adds `n` responses with status `code` to `counts`; a code past its MAX_CODES slots is
 * dropped. */
static __always_inline void add_responses(struct http_counts *counts, __u16 code, __u64 n)
{
	for (int slot = 0; slot < MAX_CODES; slot++) {
		if (counts->codes[slot] == code || counts->codes[slot] == 0) {
			counts->codes[slot] = code;
			counts->responses[slot] += n;
			return;
		}
	}
}

/* Makes `tgid` (started at `start_time`) the CPU's pending process: the previous one's
 * counts move to COUNTS, and the new one gets its COUNTS entry if it has none, so that
 * user space sees the process from its first request on. Returns 0 if that fails. */
static __always_inline int switch_pending(struct pending_counts *pending, __u32 tgid, __u64 start_time)
{
	/* Odd while the counts move: user space reading then could see them twice or not at
	 * all, and reads again. Volatile, so that the compiler keeps the stores in order (x86
	 * keeps them in order for other CPUs). */
	volatile __u32 *seq = &pending->seq;
	*seq = *seq + 1;
	__u32 old_tgid = pending->tgid;
	struct http_counts *old = old_tgid ? bpf_map_lookup_elem(&COUNTS, &old_tgid) : 0;
	/* No entry: user space has folded the exited process into its parent, and deleted it. */
	if (old && old->start_time == pending->counts.start_time) {
		old->requests += pending->counts.requests;
		for (int i = 0; i < MAX_CODES; i++) {
			if (pending->counts.codes[i] == 0)
				break;
			add_responses(old, pending->counts.codes[i], pending->counts.responses[i]);
		}
	}
	__builtin_memset(&pending->counts, 0, sizeof(pending->counts));
	pending->tgid = 0;
	*seq = *seq + 1;
	struct http_counts *counts = bpf_map_lookup_elem(&COUNTS, &tgid);
	if (!counts || counts->start_time != start_time) {
		/* No entry yet, or this CPU's copy of it is still zero (the entry was made on
		 * another CPU): this CPU's copy starts from zero with the start time. */
		struct http_counts fresh = { .start_time = start_time };
		if (bpf_map_update_elem(&COUNTS, &tgid, &fresh, BPF_ANY))
			return 0;
	}
	pending->tgid = tgid;
	pending->counts.start_time = start_time;
	return 1;
}

/* Adds a scan's requests or status codes to the process's counts. They go to the CPU's
 * pending slot when the same process had it last, which is the common case (a busy server
 * on a CPU): an array lookup, inlined, instead of a hash lookup, a call. */
static __always_inline void record(struct task_struct *task, struct http_scan *scan, int dir)
{
	__u32 zero = 0;
	struct pending_counts *pending = bpf_map_lookup_elem(&PENDING, &zero);
	if (!pending)
		return;
	__u32 tgid = task->tgid;
	__u64 start_time = task->group_leader->start_time;
	if ((pending->tgid != tgid || pending->counts.start_time != start_time) &&
	    !switch_pending(pending, tgid, start_time))
		return;
	if (dir == HTTP_DIR_READ) {
		pending->counts.requests += scan->requests;
		return;
	}
	for (int i = 0; i < HTTP_SCAN_MAX_CODES; i++) {
		if (i >= scan->ncodes)
			break;
		add_responses(&pending->counts, scan->codes[i], 1);
	}
}

/* A write on a server's end with exactly one request counted and unanswered holds that
 * request's response and nothing after it: a second response would answer a request the
 * server has not read yet, or one whose read the scan did not count (then the requests
 * were not exact either). So its status line, 16 bytes, is all that is copied and read,
 * where the headers (hundreds of bytes) would be copied and scanned. An interim response
 * (1xx) may have the final one behind it, so it takes the full path. Returns 1 if it
 * counted the response. */
static __always_inline int answered_alone(struct task_struct *task, struct scratch *scratch,
					  struct socket_slot *slot, const void *buf, __u32 len)
{
	if (len < 16 || bpf_probe_read_user(scratch->buf, 16, buf))
		return 0;
	/* A stop keeps the request answered, or the next response would take the full path. */
	if (HTTP_STOP_AT(HTTP_DIR_WRITE, 4)) {
		slot->unanswered = 0;
		return 1;
	}
	http_scan_init(&scratch->scan, HTTP_DIR_WRITE, 16);
	http_classify_start(&scratch->scan, scratch->buf);
	if (HTTP_STOP_AT(HTTP_DIR_WRITE, 5)) {
		slot->unanswered = 0;
		return 1;
	}
	if (scratch->scan.ncodes != 1 || scratch->scan.codes[0] < 200)
		return 0;
	slot->unanswered = 0;
	record(task, &scratch->scan, HTTP_DIR_WRITE);
	return 1;
}

/* Keeps the server end's count of unanswered requests after a full scan, if the slot is
 * still this socket's. */
static __always_inline void note_unanswered(struct socket_slot *slot, __u64 sk, __u64 owner,
					    const struct http_scan *scan, int dir)
{
	if (cached_owner(slot, sk) != owner)
		return;
	if (dir == HTTP_DIR_READ) {
		slot->unanswered += scan->requests;
		return;
	}
	__u64 finals = 0;
	for (int i = 0; i < HTTP_SCAN_MAX_CODES; i++) {
		if (i >= scan->ncodes)
			break;
		finals += scan->codes[i] >= 200;
	}
	slot->unanswered = slot->unanswered > finals ? slot->unanswered - finals : 0;
}

/* Did a read of `ret` bytes start at the stream's first byte? The bytes the socket's user
 * has consumed are those received less those still queued (a FIN counts in both). These
 * are read without the socket's lock: in this order, data arriving meanwhile can only make
 * them look more, never equal to `ret` when they are not, as long as the kernel adds to
 * bytes_received before it moves rcv_nxt (its source does; nothing forces the compiler to
 * keep that order, so a reading can be wrong only when the first read after an accept
 * races with arriving data of exactly the size already consumed). */
static __always_inline int at_stream_start(struct tcp_sock *tp, long ret)
{
	__u32 rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
	__u64 received = BPF_CORE_READ(tp, bytes_received);
	__u32 copied = BPF_CORE_READ(tp, copied_seq);
	return received - (__u32)(rcv_nxt - copied) == (__u64)ret;
}

/* A server's end whose stream starts with bytes no HTTP/1 request can follow (TLS, most
 * binary protocols: http_could_start_request) never carries one: it is let go, and its
 * reads and writes then cost one load, where each copied up to HTTP_SCAN_MAX bytes and
 * tested them. Only on the first read after the accept, and only if that read holds the
 * stream's first bytes (none went by splice or zero-copy before it): a first read shorter
 * than 8 bytes, or the start of a request cut anywhere, never lets it go. TCP only: its
 * close clears the slot. */
static __always_inline void let_go_unless_http(struct sock *sk, struct socket_slot *slot, long ret,
					       __u64 first8)
{
	if (http_could_start_request(first8) || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP ||
	    !at_stream_start((struct tcp_sock *)sk, ret))
		return;
	cache_owner(slot, (__u64)sk, LET_GO_OWNER);
}

/* The body of both socket hooks: `dir` says which one. */
static __always_inline int on_socket_io(struct bpf_raw_tracepoint_args *ctx, int dir)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	long ret = (int)ctx->args[1];
	int flags = (int)ctx->args[2];
	if (ret <= 0 || (flags & MSG_PEEK))
		return 0; /* peeked data is read again: count it then */
	struct socket_slot *slot = socket_slot((__u64)sk);
	if (!slot)
		return 0;
	__u64 cached = cached_owner(slot, (__u64)sk);
	if (cached >= LET_GO_OWNER)
		return 0;
	/* The first read of an accepted socket, whatever reads it (a kernel thread, io_uring,
	 * a read shorter than 8 bytes): only this one may let the socket go, below. */
	int first_read = 0;
	if (cached == FRESH_OWNER && dir == HTTP_DIR_READ) {
		first_read = 1;
		slot->sk = 0;
		cached = 0;
	}
	if (ret < 8 || HTTP_STOP_AT(dir, 1))
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
	if (wanted_dir != dir || HTTP_STOP_AT(dir, 2))
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
	if (HTTP_STOP_AT(dir, 3))
		return 0;
	__u64 owner = (__u64)task->tgid << 32 | (__u32)fd;
	if (dir == HTTP_DIR_WRITE && cached == owner && slot->unanswered == 1 &&
	    answered_alone(task, scratch, slot, buf, len))
		return 0;
	if (bpf_probe_read_user(scratch->buf, len, buf) || HTTP_STOP_AT(dir, 4))
		return 0;
	if (len < 8 && count > 1) {
		len = copy_more_iovecs(scratch, vec, count, len, budget);
		count = 1;
	}
	if (len < 8)
		return 0;
	__u64 first8 = http_load_packed(scratch->buf, 0);
	if (!http_scan_wanted(first8, dir)) {
		if (first_read)
			let_go_unless_http(sk, slot, ret, first8);
		return 0;
	}
	if (!wanted_socket(task, fd, sk, slot, cached, owner))
		return 0;
	scan(scratch, dir, len);
	if (HTTP_STOP_AT(dir, 5))
		return 0;
	/* The other iovecs are copied only if the first does not show them to be body (a
	 * server's header iovec and payload iovecs): then everything is scanned again. */
	if (count > 1 && len < budget && scratch->scan.msg < budget &&
	    scratch->scan.ncodes < HTTP_SCAN_MAX_CODES) {
		len = copy_more_iovecs(scratch, vec, count, len, budget);
		scan(scratch, dir, len);
	}
	if (scratch->scan.requests == 0 && scratch->scan.ncodes == 0)
		return 0;
	note_unanswered(slot, (__u64)sk, owner, &scratch->scan, dir);
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

/* TCP state changes, (sk, old state, new state): a socket that connects is a client's, one
 * accepted is fresh; one that closes leaves SOCKETS. */
SEC("raw_tracepoint/inet_sock_set_state")
int http_socket_state(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 sk = ctx->args[0];
	int old_state = ctx->args[1], new_state = ctx->args[2];
	struct socket_slot *slot = socket_slot(sk);
	if (!slot)
		return 0;
	if (new_state == TCP_CLOSE) {
		if (slot->sk == sk)
			slot->sk = 0;
	} else if (old_state == TCP_SYN_SENT && new_state == TCP_ESTABLISHED) {
		cache_owner(slot, sk, CLIENT_OWNER);
	} else if (old_state == TCP_SYN_RECV && new_state == TCP_ESTABLISHED) {
		cache_owner(slot, sk, FRESH_OWNER);
	}
	return 0;
}

/* A process whose whole thread group exited, noted for user space, which adds what its
 * counters hold and were not yet reported to its parent's (as the kernel adds an exited
 * child's CPU time to its parent's cutime), then deletes both entries. So a server that
 * forks per connection (inetd-style, busybox httpd, CGI) counts every request at the
 * listening process, whose children live less than an interval. */
struct exit_note {
	__u64 start_time;
	__u64 parent_start_time;
	__u64 exited_at; /* bpf_ktime_get_ns(): children are folded before their parents */
	__u32 parent;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct exit_note);
} EXITED SEC(".maps");

SEC("raw_tracepoint/sched_process_exit")
int http_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	__u32 tgid = BPF_CORE_READ(task, tgid);
	/* A process that never counted (nor had a child that did) needs nothing. */
	if (!bpf_map_lookup_elem(&COUNTS, &tgid))
		return 0;
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	struct exit_note note = {
		.start_time = BPF_CORE_READ(task, group_leader, start_time),
		.parent_start_time = BPF_CORE_READ(parent, group_leader, start_time),
		.exited_at = bpf_ktime_get_ns(),
		.parent = BPF_CORE_READ(parent, tgid),
	};
	/* The parent gets an entry first, so that user space, once it sees the note, lists
	 * the parent too; and the parent's own exit is noted in turn. */
	__u32 parent_tgid = note.parent;
	if (parent_tgid && !bpf_map_lookup_elem(&COUNTS, &parent_tgid)) {
		struct http_counts fresh = { .start_time = note.parent_start_time };
		bpf_map_update_elem(&COUNTS, &parent_tgid, &fresh, BPF_NOEXIST);
	}
	/* If EXITED is full, the counts stay with the exited process (until LRU eviction). */
	bpf_map_update_elem(&EXITED, &tgid, &note, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

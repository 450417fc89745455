/* The few kernel types the HTTP program reads, declared by hand with CO-RE relocations
 * (preserve_access_index): libbpf/aya match them by name against the running kernel's
 * BTF, so no kernel headers are needed to build or run. Only the fields used are
 * declared; their order and the struct sizes do not matter. */
#ifndef VMLINUX_MIN_H
#define VMLINUX_MIN_H

typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef _Bool bool;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_PERCPU_HASH = 10,
};

#define BPF_ANY 0
#define BPF_NOEXIST 1

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
	int counter;
} atomic_t;

/* x86_64: the user registers saved at syscall entry. */
struct pt_regs {
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
};

struct thread_info {
	__u32 status;
};

struct signal_struct {
	atomic_t live;
};

struct file {
	void *private_data;
};

struct fdtable {
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct sock_common {
	unsigned short skc_family;
};

struct sock {
	struct sock_common __sk_common;
	__u16 sk_type;
	__u16 sk_protocol;
};
struct tcp_sock {
	__u64 bytes_received;
	__u32 rcv_nxt;
	__u32 copied_seq;
};

struct socket {
	struct sock *sk;
};

struct task_struct {
	struct thread_info thread_info;
	unsigned int flags;
	int tgid;
	__u64 start_time;
	struct task_struct *group_leader;
	struct task_struct *real_parent;
	struct files_struct *files;
	struct signal_struct *signal;
};

#pragma clang attribute pop

#endif

// SPDX-License-Identifier: GPL-2.0
/* Corpus (libbpf-tools execsnoop style): tracepoint on execve, task_struct CO-RE reads of the
 * parent, credentials and comm, events to a ring buffer. Built against a vmlinux.h dumped
 * from the running kernel at test time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct event {
	pid_t pid;
	pid_t ppid;
	uid_t uid;
	int args_count;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

const volatile uid_t targ_uid = -1;

SEC("tracepoint/syscalls/sys_enter_execve")
int tracepoint__syscalls__sys_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct event *e;
	uid_t uid = BPF_CORE_READ(task, cred, uid.val);

	if (targ_uid != (uid_t)-1 && targ_uid != uid)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = BPF_CORE_READ(task, tgid);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = uid;
	e->args_count = ctx->args[1] ? 1 : 0;
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

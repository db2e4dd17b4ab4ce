"""Our cffi struct layouts equal the machine's uapi <linux/bpf.h>, field by field.

Fields newer than the installed header (tcx in link_create, ...) cannot be checked here; the
link tests prove them against the running kernel instead.
"""

from __future__ import annotations

import shutil
import subprocess

from bpfglobals.kernel import abi
from bpfglobals.kernel.abi import ffi

# (our struct, our field, expression in the system header)
FIELDS = (
    [
        ("bpf_map_create_attr", f, f"((union bpf_attr *)0)->{f}")
        for f in (
            "map_type",
            "key_size",
            "value_size",
            "max_entries",
            "map_flags",
            "inner_map_fd",
            "numa_node",
            "map_name",
            "map_ifindex",
            "btf_fd",
            "btf_key_type_id",
            "btf_value_type_id",
            "btf_vmlinux_value_type_id",
            "map_extra",
        )
    ]
    + [
        ("bpf_map_elem_attr", "map_fd", "((union bpf_attr *)0)->map_fd"),
        ("bpf_map_elem_attr", "key", "((union bpf_attr *)0)->key"),
        ("bpf_map_elem_attr", "value", "((union bpf_attr *)0)->value"),
        ("bpf_map_elem_attr", "flags", "((union bpf_attr *)0)->flags"),
    ]
    + [
        ("bpf_prog_load_attr", f, f"((union bpf_attr *)0)->{f}")
        for f in (
            "prog_type",
            "insn_cnt",
            "insns",
            "license",
            "log_level",
            "log_size",
            "log_buf",
            "kern_version",
            "prog_flags",
            "prog_name",
            "prog_ifindex",
            "expected_attach_type",
            "prog_btf_fd",
            "func_info_rec_size",
            "func_info",
            "func_info_cnt",
            "line_info_rec_size",
            "line_info",
            "line_info_cnt",
            "attach_btf_id",
            "attach_prog_fd",
            "core_relo_cnt",
            "fd_array",
            "core_relos",
            "core_relo_rec_size",
        )
    ]
    + [
        ("bpf_obj_attr", f, f"((union bpf_attr *)0)->{f}")
        for f in ("pathname", "bpf_fd", "file_flags")
    ]
    + [
        ("bpf_test_run_attr", f, f"((union bpf_attr *)0)->test.{f}")
        for f in (
            "prog_fd",
            "retval",
            "data_size_in",
            "data_size_out",
            "data_in",
            "data_out",
            "repeat",
            "duration",
            "ctx_size_in",
            "ctx_size_out",
            "ctx_in",
            "ctx_out",
            "flags",
            "cpu",
            "batch_size",
        )
    ]
    + [
        ("bpf_get_id_attr", f, f"((union bpf_attr *)0)->{f}")
        for f in ("start_id", "next_id", "open_flags")
    ]
    + [
        ("bpf_info_attr", f, f"((union bpf_attr *)0)->info.{f}")
        for f in ("bpf_fd", "info_len", "info")
    ]
    + [
        ("bpf_btf_load_attr", f, f"((union bpf_attr *)0)->{f}")
        for f in ("btf", "btf_log_buf", "btf_size", "btf_log_size", "btf_log_level")
    ]
    + [
        ("bpf_link_create_attr", "prog_fd", "((union bpf_attr *)0)->link_create.prog_fd"),
        ("bpf_link_create_attr", "target", "((union bpf_attr *)0)->link_create.target_fd"),
        ("bpf_link_create_attr", "attach_type", "((union bpf_attr *)0)->link_create.attach_type"),
        ("bpf_link_create_attr", "flags", "((union bpf_attr *)0)->link_create.flags"),
        (
            "bpf_link_create_attr",
            "target_btf_id",
            "((union bpf_attr *)0)->link_create.target_btf_id",
        ),
        ("bpf_link_update_attr", "link_fd", "((union bpf_attr *)0)->link_update.link_fd"),
        ("bpf_link_update_attr", "new_prog_fd", "((union bpf_attr *)0)->link_update.new_prog_fd"),
        ("bpf_link_update_attr", "flags", "((union bpf_attr *)0)->link_update.flags"),
        ("bpf_link_update_attr", "old_prog_fd", "((union bpf_attr *)0)->link_update.old_prog_fd"),
        ("bpf_link_detach_attr", "link_fd", "((union bpf_attr *)0)->link_detach.link_fd"),
        ("bpf_raw_tp_open_attr", "name", "((union bpf_attr *)0)->raw_tracepoint.name"),
        ("bpf_raw_tp_open_attr", "prog_fd", "((union bpf_attr *)0)->raw_tracepoint.prog_fd"),
    ]
    + [
        ("perf_event_attr", f, f"((struct perf_event_attr *)0)->{f}")
        for f in (
            "type",
            "size",
            "config",
            "sample_period",
            "sample_type",
            "read_format",
            "wakeup_events",
            "bp_type",
            "config1",
        )
    ]
    + [
        ("bpf_prog_info", f, f"((struct bpf_prog_info *)0)->{f}")
        for f in (
            "type",
            "id",
            "tag",
            "jited_prog_len",
            "xlated_prog_len",
            "xlated_prog_insns",
            "load_time",
            "nr_map_ids",
            "map_ids",
            "name",
            "ifindex",
            "netns_dev",
            "btf_id",
            "func_info",
            "nr_line_info",
            "prog_tags",
            "run_time_ns",
            "recursion_misses",
            "verified_insns",
            "attach_btf_obj_id",
            "attach_btf_id",
        )
    ]
    + [
        ("bpf_map_info", f, f"((struct bpf_map_info *)0)->{f}")
        for f in (
            "type",
            "id",
            "key_size",
            "value_size",
            "max_entries",
            "map_flags",
            "name",
            "ifindex",
            "btf_vmlinux_value_type_id",
            "netns_dev",
            "netns_ino",
            "btf_id",
            "btf_key_type_id",
            "btf_value_type_id",
            "map_extra",
        )
    ]
    + [
        ("bpf_btf_info", f, f"((struct bpf_btf_info *)0)->{f}")
        for f in ("btf", "btf_size", "id", "name", "name_len", "kernel_btf")
    ]
    + [
        ("bpf_link_info", "type", "((struct bpf_link_info *)0)->type"),
        ("bpf_link_info", "prog_id", "((struct bpf_link_info *)0)->prog_id"),
        ("bpf_link_info", "xdp", "((struct bpf_link_info *)0)->xdp.ifindex"),
        ("bpf_link_info", "cgroup", "((struct bpf_link_info *)0)->cgroup.cgroup_id"),
    ]
)


def test_struct_offsets_match_the_system_header(tmp_path) -> None:
    cc = shutil.which("clang") or shutil.which("cc")
    assert cc, "a C compiler is needed: run `make setup`"
    lines = [f'printf("%zu\\n", (size_t)&{expr});' for _, _, expr in FIELDS]
    lines += [
        'printf("%zu\\n", sizeof(struct bpf_map_info));',
        'printf("%zu\\n", sizeof(struct bpf_btf_info));',
    ]
    src = tmp_path / "offsets.c"
    src.write_text(
        "#include <stdio.h>\n#include <stddef.h>\n"
        "#include <linux/bpf.h>\n#include <linux/perf_event.h>\n"
        "int main(void) {\n" + "\n".join(lines) + "\nreturn 0; }\n"
    )
    exe = tmp_path / "offsets"
    subprocess.run([cc, "-w", str(src), "-o", str(exe)], check=True, capture_output=True, text=True)
    theirs = [
        int(x)
        for x in subprocess.run(
            [str(exe)], check=True, capture_output=True, text=True
        ).stdout.split()
    ]
    ours = [ffi.offsetof(f"struct {s}", f) for s, f, _ in FIELDS]
    ours += [ffi.sizeof("struct bpf_map_info"), ffi.sizeof("struct bpf_btf_info")]
    mismatches = [
        (FIELDS[i][0] + "." + FIELDS[i][1] if i < len(FIELDS) else "sizeof", o, t)
        for i, (o, t) in enumerate(zip(ours, theirs, strict=True))
        if o != t
    ]
    assert mismatches == []


def test_the_preparsed_declarations_are_current() -> None:
    """abi_ool.py (regenerate: python -m bpfglobals.kernel.abi) matches abi_cdef.CDEF."""
    from bpfglobals.kernel import abi_ool

    assert abi_ool.CDEF == abi.CDEF
    assert abi.ffi is abi_ool.ffi

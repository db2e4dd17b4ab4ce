"""The C declarations (cffi cdef) of the bpf(2) attribute and info structs.

Layouts follow include/uapi/linux/bpf.h. Each command gets its own struct: the kernel accepts
an attr shorter than `union bpf_attr` and zero-extends it (bpf_check_uarg_tail_zero), which
is what libbpf does with offsetofend. `abi_ool.py` is generated from this text (see abi.py);
tests/kernel/test_abi_layout.py checks both the layouts and that the generated file is current.
"""

CDEF = """
    long syscall(long number, ...);
    int close(int fd);

    struct bpf_map_create_attr {
        uint32_t map_type; uint32_t key_size; uint32_t value_size; uint32_t max_entries;
        uint32_t map_flags; uint32_t inner_map_fd; uint32_t numa_node; char map_name[16];
        uint32_t map_ifindex; uint32_t btf_fd; uint32_t btf_key_type_id;
        uint32_t btf_value_type_id; uint32_t btf_vmlinux_value_type_id; uint64_t map_extra;
    };
    struct bpf_map_elem_attr {
        uint32_t map_fd; uint32_t _pad; uint64_t key; uint64_t value; uint64_t flags;
    };
    struct bpf_map_freeze_attr { uint32_t map_fd; };
    struct bpf_prog_load_attr {
        uint32_t prog_type; uint32_t insn_cnt; uint64_t insns; uint64_t license;
        uint32_t log_level; uint32_t log_size; uint64_t log_buf; uint32_t kern_version;
        uint32_t prog_flags; char prog_name[16]; uint32_t prog_ifindex;
        uint32_t expected_attach_type; uint32_t prog_btf_fd; uint32_t func_info_rec_size;
        uint64_t func_info; uint32_t func_info_cnt; uint32_t line_info_rec_size;
        uint64_t line_info; uint32_t line_info_cnt; uint32_t attach_btf_id;
        uint32_t attach_prog_fd; uint32_t core_relo_cnt; uint64_t fd_array;
        uint64_t core_relos; uint32_t core_relo_rec_size; uint32_t log_true_size;
    };
    struct bpf_obj_attr {
        uint64_t pathname; uint32_t bpf_fd; uint32_t file_flags; int32_t path_fd;
    };
    struct bpf_test_run_attr {
        uint32_t prog_fd; uint32_t retval; uint32_t data_size_in; uint32_t data_size_out;
        uint64_t data_in; uint64_t data_out; uint32_t repeat; uint32_t duration;
        uint32_t ctx_size_in; uint32_t ctx_size_out; uint64_t ctx_in; uint64_t ctx_out;
        uint32_t flags; uint32_t cpu; uint32_t batch_size;
    };
    struct bpf_get_id_attr { uint32_t start_id; uint32_t next_id; uint32_t open_flags; };
    struct bpf_info_attr { uint32_t bpf_fd; uint32_t info_len; uint64_t info; };
    struct bpf_btf_load_attr {
        uint64_t btf; uint64_t btf_log_buf; uint32_t btf_size; uint32_t btf_log_size;
        uint32_t btf_log_level; uint32_t btf_log_true_size;
    };
    struct bpf_link_create_attr {
        uint32_t prog_fd; uint32_t target; uint32_t attach_type; uint32_t flags;
        union {
            uint32_t target_btf_id;
            struct { uint64_t bpf_cookie; } perf_event;
            struct { uint32_t relative_fd; uint32_t _pad; uint64_t expected_revision; } tcx;
            struct { uint32_t pf; uint32_t hooknum; int32_t priority; uint32_t flags; } netfilter;
        };
    };
    struct bpf_link_update_attr {
        uint32_t link_fd; uint32_t new_prog_fd; uint32_t flags; uint32_t old_prog_fd;
    };
    struct bpf_link_detach_attr { uint32_t link_fd; };
    struct bpf_raw_tp_open_attr {
        uint64_t name; uint32_t prog_fd; uint32_t _pad; uint64_t cookie;
    };
    /* PERF_ATTR_SIZE_VER0 (64 bytes): all a tracepoint perf event needs */
    struct perf_event_attr {
        uint32_t type; uint32_t size; uint64_t config; uint64_t sample_period;
        uint64_t sample_type; uint64_t read_format; uint64_t flags; uint32_t wakeup_events;
        uint32_t bp_type; uint64_t config1;
    };

    struct bpf_prog_info {
        uint32_t type; uint32_t id; uint8_t tag[8]; uint32_t jited_prog_len;
        uint32_t xlated_prog_len; uint64_t jited_prog_insns; uint64_t xlated_prog_insns;
        uint64_t load_time; uint32_t created_by_uid; uint32_t nr_map_ids; uint64_t map_ids;
        char name[16]; uint32_t ifindex; uint32_t gpl_compatible_bits; uint64_t netns_dev;
        uint64_t netns_ino; uint32_t nr_jited_ksyms; uint32_t nr_jited_func_lens;
        uint64_t jited_ksyms; uint64_t jited_func_lens; uint32_t btf_id;
        uint32_t func_info_rec_size; uint64_t func_info; uint32_t nr_func_info;
        uint32_t nr_line_info; uint64_t line_info; uint64_t jited_line_info;
        uint32_t nr_jited_line_info; uint32_t line_info_rec_size;
        uint32_t jited_line_info_rec_size; uint32_t nr_prog_tags; uint64_t prog_tags;
        uint64_t run_time_ns; uint64_t run_cnt; uint64_t recursion_misses;
        uint32_t verified_insns; uint32_t attach_btf_obj_id; uint32_t attach_btf_id;
        uint32_t _pad;
    };
    struct bpf_map_info {
        uint32_t type; uint32_t id; uint32_t key_size; uint32_t value_size;
        uint32_t max_entries; uint32_t map_flags; char name[16]; uint32_t ifindex;
        uint32_t btf_vmlinux_value_type_id; uint64_t netns_dev; uint64_t netns_ino;
        uint32_t btf_id; uint32_t btf_key_type_id; uint32_t btf_value_type_id;
        uint32_t _pad; uint64_t map_extra;
    };
    struct bpf_btf_info {
        uint64_t btf; uint32_t btf_size; uint32_t id; uint64_t name; uint32_t name_len;
        uint32_t kernel_btf;
    };
    struct bpf_link_info {
        uint32_t type; uint32_t id; uint32_t prog_id; uint32_t _pad;
        union {
            struct { uint32_t ifindex; } xdp;
            struct { uint32_t ifindex; uint32_t attach_type; } tcx;
            struct { uint64_t cgroup_id; uint32_t attach_type; } cgroup;
            struct { uint32_t netns_ino; uint32_t attach_type; } netns;
            uint64_t raw[8];
        };
    };
"""

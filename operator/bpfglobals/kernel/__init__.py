"""The thin bpf(2) layer over cffi (no libbpf): typed commands, owned FDs, typed errors."""

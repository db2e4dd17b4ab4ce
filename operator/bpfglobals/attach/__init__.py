"""Attach programs through pinned bpf_links and swap them atomically (BPF_LINK_UPDATE)."""

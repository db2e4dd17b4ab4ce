"""bpfglobals: the global variables of eBPF programs as Kubernetes custom resources."""

__version__ = "0.1.0"

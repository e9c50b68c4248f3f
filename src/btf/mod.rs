//! Kernel types from BTF (`/sys/kernel/btf/vmlinux`), indexed once, looked up by name.

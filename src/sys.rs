//! Every raw system call rbt makes (bpf, perf_event_open, mmap, ioctl), each behind a
//! safe wrapper. The only module with `unsafe`; every block says why it is sound.

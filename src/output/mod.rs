//! Output: decode event records and print them exactly like bpftrace (text and JSON).

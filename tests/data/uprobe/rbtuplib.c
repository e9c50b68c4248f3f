/* A shared library for tests/uprobes_vs_bpftrace.rs (built -shared -fPIC). */
__attribute__((noinline)) long rbt_lib_add(long a, long b)
{
	__asm__ volatile("");
	return a * 100 + b;
}

/* The uprobe tests' target (tests/uprobes_vs_bpftrace.rs): calls rbt_target(i, 10*i)
 * for i = 1..5 and libc's atoi once. With the argument "wait" it first waits (up to
 * 30 s) until a tracer attached with -p has put a uprobe on rbt_target: the kernel
 * then shows this process an int3 (0xcc) at the function's first byte. Also calls
 * rbt_stack_args(1..8) once: its 7th and 8th arguments are passed on the stack (sarg0,
 * sarg1). Built static, -no-pie and PIE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__attribute__((noinline)) int rbt_target(int a, long b)
{
	__asm__ volatile("");
	return a + (int)b;
}

__attribute__((noinline)) long rbt_stack_args(long a, long b, long c, long d, long e, long f,
					     long g, long h)
{
	__asm__ volatile("");
	return a + b + c + d + e + f + g + h;
}

int main(int argc, char **argv)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };
	const volatile unsigned char *first = (const volatile unsigned char *)(void *)rbt_target;
	int sum = 0;

	if (argc > 1 && strcmp(argv[1], "wait") == 0) {
		int ticks = 0;

		while (*first != 0xcc)
			if (++ticks > 3000 || nanosleep(&tick, NULL) != 0)
				return 2;
		/* Let the tracer finish attaching (its other probes, its programs). */
		for (ticks = 0; ticks < 50; ticks++)
			nanosleep(&tick, NULL);
	}
	for (int i = 1; i <= 5; i++)
		sum += rbt_target(i, i * 10L);
	if (rbt_stack_args(1, 2, 3, 4, 5, 6, 7, 8) != 36)
		return 1;
	return sum + atoi("7") == 172 ? 0 : 1;
}

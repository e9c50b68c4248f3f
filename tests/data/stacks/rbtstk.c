/* The stack tests' target (tests/stacks_vs_bpftrace.rs), built with frame pointers and
 * symbols: waits (up to 30 s) until a tracer has put a uprobe on stk_inner (the kernel
 * then shows an int3, 0xcc, at its first byte), calls main -> stk_outer -> stk_inner
 * three times, calls stk_done (the tracers exit there), then blocks reading stdin until
 * EOF so that it is alive while the tracers symbolise its addresses. stk_counter is a
 * variable for uaddr(). */
#include <time.h>
#include <unistd.h>

volatile long stk_counter;

__attribute__((noinline)) int stk_inner(int a)
{
	stk_counter++;
	return a + 1;
}

__attribute__((noinline)) int stk_outer(int a)
{
	return stk_inner(a) * 2;
}

__attribute__((noinline)) void stk_done(void)
{
	__asm__ volatile("");
}

int main(void)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };
	const volatile unsigned char *first = (const volatile unsigned char *)(void *)stk_inner;
	const volatile unsigned char *done = (const volatile unsigned char *)(void *)stk_done;
	char buf[64];
	int sum = 0;
	int ticks = 0;

	while (*first != 0xcc || *done != 0xcc)
		if (++ticks > 3000 || nanosleep(&tick, NULL) != 0)
			return 2;
	/* Let the tracer finish attaching (its other probes, its programs). */
	for (ticks = 0; ticks < 30; ticks++)
		nanosleep(&tick, NULL);
	for (int i = 0; i < 3; i++)
		sum += stk_outer(i);
	stk_done();
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return sum == 12 ? 0 : 1;
}

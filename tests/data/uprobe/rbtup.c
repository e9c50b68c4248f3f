/* The uprobe tests' target (tests/uprobes_vs_bpftrace.rs): calls rbt_target(i, 10*i)
 * for i = 1..5 and libc's atoi once. With the argument "wait" it first waits for a
 * line on stdin, so a tracer can attach with -p. Built static, -no-pie and PIE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) int rbt_target(int a, long b)
{
	__asm__ volatile("");
	return a + (int)b;
}

int main(int argc, char **argv)
{
	char line[16];
	int sum = 0;

	if (argc > 1 && strcmp(argv[1], "wait") == 0 && !fgets(line, sizeof line, stdin))
		return 2;
	for (int i = 1; i <= 5; i++)
		sum += rbt_target(i, i * 10L);
	return sum + atoi("7") == 172 ? 0 : 1;
}

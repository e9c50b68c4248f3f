/* Calls rbt_lib_add(i, -i) of librbtup.so for i = 1..3 (tests/uprobes_vs_bpftrace.rs). */
long rbt_lib_add(long a, long b);

int main(void)
{
	long sum = 0;

	for (int i = 1; i <= 3; i++)
		sum += rbt_lib_add(i, -i);
	return sum == 594 ? 0 : 1;
}

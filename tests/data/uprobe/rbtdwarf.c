/* Functions whose parameters rbt reads from DWARF (tests/dwarf_vs_bpftrace.rs):
 * base, pointer, struct-pointer, enum and typedef parameters, a struct with a string,
 * an array, a nested struct and a union. Built with -g -O0. */
#include <stdint.h>

enum rbt_color { RBT_RED = 1, RBT_BLUE = 7 };
typedef unsigned long rbt_len_t;

struct rbt_inner {
  short s;
  long l;
};

union rbt_num {
  int i;
  char c[4];
};

struct rbt_rec {
  int id;
  char name[12];
  int vals[3];
  struct rbt_inner in;
  union rbt_num num;
  const char *label;
};

__attribute__((noinline)) int rbt_base(int a, char c, unsigned short us, long l,
                                       int8_t i8, uint64_t u64)
{
  return a + c + us + (int)l + i8 + (int)u64;
}

__attribute__((noinline)) int rbt_ptrs(const char *str, int *ip, void *v,
                                       char **pp)
{
  return str[0] + *ip + (v != 0) + (pp != 0);
}

__attribute__((noinline)) long rbt_rec(struct rbt_rec *r, enum rbt_color color,
                                       rbt_len_t len)
{
  return r->id + color + (long)len;
}

int main(void)
{
  int n = 42;
  char *words[] = { "one", 0 };
  struct rbt_rec r = { .id = 7,
                       .name = "seven",
                       .vals = { 1, -2, 3 },
                       .in = { .s = -5, .l = 123456789012 },
                       .num = { .i = 0x41424344 },
                       .label = "lbl" };
  int total = rbt_base(-3, 'z', 65535, -9000000000, -8, 18000000000000000000ull);
  total += rbt_ptrs("hello", &n, &n, words);
  total += (int)rbt_rec(&r, RBT_BLUE, 99);
  return total == 0;
}

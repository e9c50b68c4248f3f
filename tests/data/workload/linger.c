/* LD_PRELOADed into a workload's short-lived processes: each stays 2 s after its
 * exit() with its mappings intact, so both tracers can symbolise its addresses
 * (usym, func) when they print. Without it, whether a tracer resolves an address of a
 * process that just exited depends only on how fast it reads its events. */
#include <unistd.h>

__attribute__((destructor)) static void linger(void) { sleep(2); }

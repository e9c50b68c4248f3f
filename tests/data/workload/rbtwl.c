/* A deterministic syscall workload for comparing tracers: its comm is "rbtwl" and it
 * makes a fixed number of each syscall with fixed arguments, so a script filtered by
 * comm sees the same events under any tracer. Built static by the tests (gcc). */
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    static char buf[4096];
    int null = open("/dev/null", O_WRONLY);
    int zero = open("/dev/zero", O_RDONLY);
    if (null < 0 || zero < 0)
        return 1;
    /* writes of 0..63 bytes, then 100, 1000 and 4000 */
    for (int size = 0; size < 64; size++)
        if (write(null, buf, size) != size)
            return 2;
    const int big[] = {100, 1000, 4000};
    for (int i = 0; i < 3; i++)
        if (write(null, buf, big[i]) != big[i])
            return 2;
    /* reads of 1, 2, 4, ... 2048 bytes */
    for (int size = 1; size <= 2048; size *= 2)
        if (read(zero, buf, size) != size)
            return 3;
    for (int i = 0; i < 7; i++)
        syscall(SYS_getppid);
    close(null);
    close(zero);
    return 0;
}

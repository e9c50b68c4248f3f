// probe: times one tracer run for the benchmarks (bench/run.sh runs it inside the VM).
//
// usage: probe [-m MARK | -e ERRMARK] [-g GREP] [-s SENTINEL] [-w WORKLOAD] [-q QUIET_MS] [-t TIMEOUT_MS]
//              -- TRACER ARGS...
//        probe -w WORKLOAD                 (no tracer: time the workload alone)
//
// Starts TRACER with its stdout on a pseudo-terminal (so every tool line-buffers as
// it would for a user) and its stderr on a pipe, and measures:
//   startup_ms  exec -> the first stdout line starting with MARK (default "TIME"),
//               or with -e, the first stderr line starting with ERRMARK (the host
//               benchmark's __BPFTRACE_NOTIFY_PROBES_ATTACHED: every probe is live)
//   ready_ms    exec -> the first traced event of SENTINEL, a command (split on
//               spaces) whose events contain the word "sentinel", rerun every 100 ms
//               after the header until one shows: a tracer may print its header
//               before its probes are attached, and events before that are not lost
//               but never seen
//   workload_ms wall time of WORKLOAD (split on spaces, stdout to /dev/null), run
//               once the header (and, with -s, a sentinel event) is seen
//   events      stdout lines after the header containing GREP (default "acceptload")
//   lost        sum of N over "Lost N events" lines (stdout or stderr)
//   hwm_kb      VmHWM of the tracer, read once output has been quiet for QUIET_MS
//               (default 300), just before SIGINT
// Prints one line of key=value pairs, then the tracer's stderr lines prefixed "stderr: ".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static const char *mark = "TIME", *grep = "acceptload";
static int mark_on_stderr;
static double t_exec, t_header = -1;
static long events, sentinels, lost;
static char errbuf[8192];
static size_t errlen;

struct stream {
    int fd;
    int is_stdout;
    char line[4096];
    size_t len;
};

static void on_line(struct stream *s, const char *line) {
    long n;
    if (sscanf(line, "Lost %ld events", &n) == 1) {
        lost += n;
        return;
    }
    if (!s->is_stdout && mark_on_stderr && t_header < 0 && strncmp(line, mark, strlen(mark)) == 0) {
        t_header = now_ms();
        return;
    }
    if (!s->is_stdout) {
        size_t l = strlen(line);
        if (errlen + l + 10 < sizeof errbuf) errlen += sprintf(errbuf + errlen, "stderr: %s\n", line);
        return;
    }
    if (t_header < 0) {
        if (!mark_on_stderr && strncmp(line, mark, strlen(mark)) == 0) t_header = now_ms();
    } else if (strstr(line, "sentinel")) {
        sentinels++;
    } else if (strstr(line, grep)) {
        events++;
    }
}

// Reads what is available; returns 0 at EOF (EIO on a pty whose slave closed).
static int pump(struct stream *s) {
    char buf[65536];
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) return 1;
    if (n <= 0) return 0;
    for (ssize_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c == '\r') continue;
        if (c == '\n' || s->len == sizeof s->line - 1) {
            s->line[s->len] = 0;
            on_line(s, s->line);
            s->len = 0;
            if (c == '\n') continue;
        }
        s->line[s->len++] = c;
    }
    return 1;
}

// Polls both streams for up to `ms`; returns how many reads made progress.
static int wait_output(struct stream *ss, int ms) {
    struct pollfd p[2];
    int np = 0, progress = 0;
    for (int i = 0; i < 2; i++)
        if (ss[i].fd >= 0) p[np++] = (struct pollfd){.fd = ss[i].fd, .events = POLLIN};
    if (np == 0) {
        usleep(ms * 1000);
        return 0;
    }
    if (poll(p, np, ms) <= 0) return 0;
    for (int i = 0, j = 0; i < 2; i++) {
        if (ss[i].fd < 0) continue;
        if (p[j++].revents) {
            if (pump(&ss[i])) {
                progress++;
            } else {
                close(ss[i].fd);
                ss[i].fd = -1;
            }
        }
    }
    return progress;
}

static char **split(char *cmd) {
    static char *argv[64];
    int n = 0;
    for (char *t = strtok(cmd, " "); t && n < 63; t = strtok(NULL, " ")) argv[n++] = t;
    argv[n] = NULL;
    return argv;
}

// Starts the workload with its stdout on /dev/null.
static pid_t spawn_workload(char *cmd) {
    char **argv = split(cmd);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execvp(argv[0], argv);
        die(argv[0]);
    }
    return pid;
}

static void check_workload(int status) {
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fprintf(stderr, "probe: workload failed\n");
}

static long vm_hwm_kb(pid_t pid) {
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

int main(int argc, char **argv) {
    char *workload = NULL, *sentinel = NULL;
    int quiet_ms = 300, timeout_ms = 60000, opt;
    while ((opt = getopt(argc, argv, "m:e:g:s:w:q:t:")) != -1) {
        switch (opt) {
        case 'm': mark = optarg; break;
        case 'e': mark = optarg; mark_on_stderr = 1; break;
        case 'g': grep = optarg; break;
        case 's': sentinel = optarg; break;
        case 'w': workload = optarg; break;
        case 'q': quiet_ms = atoi(optarg); break;
        case 't': timeout_ms = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: probe [-m MARK | -e ERRMARK] [-g GREP] [-s SENTINEL] [-w WORKLOAD] [-q QUIET_MS] [-t TIMEOUT_MS] -- TRACER ARGS...\n");
            return 2;
        }
    }
    if (optind == argc) { // the workload alone
        if (!workload) return 2;
        int status;
        double t0 = now_ms();
        waitpid(spawn_workload(workload), &status, 0);
        check_workload(status);
        printf("workload_ms=%.1f\n", now_ms() - t0);
        return 0;
    }

    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) die("pty");
    char *slave_name = ptsname(master);
    int slave = open(slave_name, O_RDWR | O_NOCTTY);
    if (slave < 0) die(slave_name);
    struct termios tio;
    tcgetattr(slave, &tio);
    cfmakeraw(&tio);
    tcsetattr(slave, TCSANOW, &tio);
    int errpipe[2];
    if (pipe(errpipe)) die("pipe");

    t_exec = now_ms();
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        setsid();
        dup2(slave, 1);
        dup2(errpipe[1], 2);
        close(master);
        close(errpipe[0]);
        execvp(argv[optind], argv + optind);
        die(argv[optind]);
    }
    close(slave);
    close(errpipe[1]);
    struct stream ss[2] = {{.fd = master, .is_stdout = 1}, {.fd = errpipe[0]}};

    while (t_header < 0 && now_ms() - t_exec < timeout_ms && (ss[0].fd >= 0 || ss[1].fd >= 0))
        wait_output(ss, 100);
    double ready_ms = -1;
    if (t_header >= 0 && sentinel) {
        while (sentinels == 0 && now_ms() - t_exec < timeout_ms && ss[0].fd >= 0) {
            char cmd[512];
            snprintf(cmd, sizeof cmd, "%s", sentinel);
            int status;
            waitpid(spawn_workload(cmd), &status, 0);
            check_workload(status);
            double t0 = now_ms();
            while (sentinels == 0 && now_ms() - t0 < 100) wait_output(ss, 20);
        }
        if (sentinels) ready_ms = now_ms() - t_exec;
    }
    double workload_ms = -1;
    if (t_header >= 0 && workload && (!sentinel || sentinels)) {
        // Keep reading the tracer's output while the workload runs, so the tracer
        // never blocks on a full terminal.
        int status;
        double t0 = now_ms();
        pid_t w = spawn_workload(workload);
        while (waitpid(w, &status, WNOHANG) == 0) wait_output(ss, 20);
        workload_ms = now_ms() - t0;
        check_workload(status);
    }
    // Let the tracer drain: stop once output has been quiet for quiet_ms (or at the
    // timeout, for a tracer that never stops printing).
    if (t_header >= 0)
        while (wait_output(ss, quiet_ms) > 0 && now_ms() - t_exec < timeout_ms)
            ;
    long hwm = vm_hwm_kb(pid);
    kill(pid, SIGINT);
    double t_int = now_ms();
    int status = 0;
    while (ss[0].fd >= 0 || ss[1].fd >= 0) {
        if (now_ms() - t_int > 30000) {
            kill(pid, SIGKILL);
            break;
        }
        wait_output(ss, 100);
        if (waitpid(pid, &status, WNOHANG) == pid) {
            while (wait_output(ss, 50) > 0)
                ;
            pid = 0;
            break;
        }
    }
    if (pid) waitpid(pid, &status, 0);
    printf("startup_ms=%.1f ready_ms=%.1f hwm_kb=%ld events=%ld lost=%ld workload_ms=%.1f exit=%d\n",
           t_header < 0 ? -1.0 : t_header - t_exec, ready_ms, hwm, events, lost, workload_ms,
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    fputs(errbuf, stdout);
    return t_header < 0;
}

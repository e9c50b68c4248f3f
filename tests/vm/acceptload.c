// acceptload: a reproducible loopback TCP accept workload for the golden
// end-to-end suite (tests/golden_vm.rs). It opens listeners, connects clients
// to them in batches and accepts every batch while the rest is still queued,
// so a tracer of inet_csk_accept sees known addresses, ports and backlogs.
//
// usage: acceptload [-c CPU] [-N COMM] [-F] [-x] [-n N] [-B BATCH] -l SPEC...
//   -l FAM:PORT:BACKLOG  a listener (repeatable, served in order). FAM is
//                        4 (127.0.0.1), 6 (::1) or m (v6 listener on ::,
//                        IPv4 client: the peer shows as ::ffff:127.0.0.1)
//   -n N      connections per listener (default 10)
//   -B BATCH  connections queued before accepting them (default 64; capped at
//             the listener's backlog so no SYN is ever dropped)
//   -c CPU    pin to CPU: a tracer's per-CPU buffers then keep event order
//   -N COMM   set the process name (prctl PR_SET_NAME; the kernel keeps 15 chars)
//   -F        do the work in a forked child (its own PID), wait for it
//   -x        connect only, never accept (no inet_csk_accept returns)
// Prints one line per accept, "accept PID RPORT LPORT", in accept order (the
// ground truth for event order), then "accepted TOTAL".
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LISTENERS 16

struct listener {
    char fam;
    int port, backlog, fd;
    struct sockaddr_storage addr; // where clients connect
    socklen_t addrlen;
    int client_fam;
};

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void usage(void) {
    fprintf(stderr, "usage: acceptload [-c CPU] [-N COMM] [-F] [-x] [-n N] [-B BATCH] -l FAM:PORT:BACKLOG...\n");
    exit(2);
}

static void open_listener(struct listener *l) {
    int one = 1, zero = 0;
    struct sockaddr_storage bind_addr;
    socklen_t bind_len;
    memset(&bind_addr, 0, sizeof bind_addr);
    memset(&l->addr, 0, sizeof l->addr);
    if (l->fam == '4') {
        struct sockaddr_in *a = (void *)&bind_addr;
        a->sin_family = AF_INET;
        a->sin_port = htons(l->port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind_len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (void *)&bind_addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(l->port);
        a->sin6_addr = l->fam == '6' ? in6addr_loopback : in6addr_any;
        bind_len = sizeof *a;
    }
    l->fd = socket(bind_addr.ss_family, SOCK_STREAM, 0);
    if (l->fd < 0) die("socket");
    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l->fam == 'm' && setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero)) die("IPV6_V6ONLY");
    if (bind(l->fd, (void *)&bind_addr, bind_len) || listen(l->fd, l->backlog)) die("bind/listen");
    if (l->fam == 'm') { // IPv4 client to the dual-stack listener
        struct sockaddr_in *a = (void *)&l->addr;
        a->sin_family = AF_INET;
        a->sin_port = htons(l->port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        l->addrlen = sizeof *a;
        l->client_fam = AF_INET;
    } else {
        l->addr = bind_addr;
        l->addrlen = bind_len;
        l->client_fam = bind_addr.ss_family;
    }
}

static int peer_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (void *)&ss, &sl)) die("getpeername");
    return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

// Serves every listener in order; returns the number of accepts.
static int serve(struct listener *ls, int nls, int n, int batch, int accept_none) {
    int total = 0, *cs = malloc(sizeof(int) * (batch > 0 ? batch : 1));
    if (!cs) die("malloc");
    for (int j = 0; j < nls; j++) {
        struct listener *l = &ls[j];
        int per = batch < l->backlog ? batch : l->backlog;
        if (per < 1) per = 1;
        for (int done = 0; done < n;) {
            int k = n - done < per ? n - done : per;
            for (int i = 0; i < k; i++) {
                cs[i] = socket(l->client_fam, SOCK_STREAM, 0);
                if (cs[i] < 0 || connect(cs[i], (void *)&l->addr, l->addrlen)) die("connect");
            }
            for (int i = 0; i < k && !accept_none; i++) {
                int a = accept(l->fd, NULL, NULL);
                if (a < 0) die("accept");
                printf("accept %d %d %d\n", (int)getpid(), peer_port(a), l->port);
                close(a);
                total++;
            }
            for (int i = 0; i < k; i++) close(cs[i]);
            done += k;
        }
    }
    free(cs);
    return total;
}

int main(int argc, char **argv) {
    struct listener ls[MAX_LISTENERS];
    int nls = 0, n = 10, batch = 64, cpu = -1, fork_child = 0, accept_none = 0, opt;
    const char *comm = NULL;
    while ((opt = getopt(argc, argv, "l:n:B:c:N:Fx")) != -1) {
        switch (opt) {
        case 'l':
            if (nls == MAX_LISTENERS) usage();
            if (sscanf(optarg, "%c:%d:%d", &ls[nls].fam, &ls[nls].port, &ls[nls].backlog) != 3 ||
                !strchr("46m", ls[nls].fam))
                usage();
            nls++;
            break;
        case 'n': n = atoi(optarg); break;
        case 'B': batch = atoi(optarg); break;
        case 'c': cpu = atoi(optarg); break;
        case 'N': comm = optarg; break;
        case 'F': fork_child = 1; break;
        case 'x': accept_none = 1; break;
        default: usage();
        }
    }
    if (nls == 0 || optind != argc) usage();
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set)) die("sched_setaffinity");
    }
    for (int j = 0; j < nls; j++) open_listener(&ls[j]);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (fork_child) {
        fflush(stdout);
        pid_t child = fork();
        if (child < 0) die("fork");
        if (child > 0) {
            int status;
            if (waitpid(child, &status, 0) < 0) die("waitpid");
            return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        }
    }
    if (comm && prctl(PR_SET_NAME, comm)) die("prctl");
    int total = serve(ls, nls, n, batch, accept_none);
    printf("accepted %d\n", total);
    return 0;
}

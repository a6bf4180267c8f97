/*
 * policy_load: a load generator for Postfix SMTPD policy servers (bench/policy builds and runs it).
 *
 * Written in C so that on a 2-core machine the client costs the servers under test as little CPU
 * as possible: a Python client tops out near 5,000 requests/s here, below what relayguard serves.
 *
 * Each of -c connections behaves like one smtpd process: one persistent connection, at most one
 * request outstanding, the next request sent when the reply is complete ("\n\n"). Requests carry
 * the attribute set Postfix 3.8 sends, in smtpd_check.c order. A message is the --sequence of
 * protocol states (RCPT repeated --rcpts times); each message has a fresh instance and queue id and
 * a SASL user drawn uniformly from --users (one client IP per user).
 *
 * Closed loop by default; --rate R paces the requests (R per second over all connections, open
 * loop with a schedule, latency measured from the scheduled send time so queueing is not hidden).
 * Only requests sent after the warm-up and answered inside the measured window count.
 *
 * Output: one JSON object on stdout (requests, requests_per_s, messages_per_s, latency_ms
 * percentiles, errors, actions by first word).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQ 4096
#define MAX_REPLY 8192
#define MAX_STEPS 64
#define MAX_ACTIONS 16

enum { ST_RCPT, ST_DATA, ST_EOM, ST_OTHER };

struct conn {
    int fd;
    int id;
    int step;             /* index into the message's steps */
    int nsteps;
    int steps[MAX_STEPS];
    char rcpts[MAX_STEPS][64];
    char user[64], ip[32], inst[64], qid[16];
    char req[MAX_REQ];
    int req_len, req_off;
    char reply[MAX_REPLY];
    int reply_len;
    double sent_at;        /* when the request was (or was due to be) sent */
    double due;            /* --rate: when the next request is due */
    int waiting;           /* a request is outstanding */
    int connecting;        /* a non-blocking connect is under way */
    double retry_at;       /* when to connect again after a failure */
    unsigned long long messages;
};

static const char *state_name[] = {"RCPT", "DATA", "END-OF-MESSAGE"};
static char other_state[MAX_STEPS][32];

static struct {
    int unix_socket;
    char host[256];
    int port;
    char path[108];
    int conns;
    double duration, warmup, rate;
    int users, rcpts, nseq;
    int seq[16];
    char context[64];
    unsigned long long seed;
} opt = {.conns = 1, .duration = 10, .warmup = 1, .users = 1000, .rcpts = 1, .seed = 1};

static double *lat;
static size_t nlat, caplat;
static unsigned long long errors, counted, messages_done;
static char action_name[MAX_ACTIONS][32];
static unsigned long long action_count[MAX_ACTIONS];
static int nactions;
static double t_start, t_begin, t_end;
static int epfd;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long rng_state;
static unsigned long long rnd(void) { /* splitmix64 */
    unsigned long long z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void die(const char *what) {
    fprintf(stderr, "policy_load: %s: %s\n", what, strerror(errno));
    exit(3);
}

static void usage(void) {
    fprintf(stderr,
            "usage: policy_load --target tcp:HOST:PORT|unix:PATH [-c N] [-d SECONDS] [-w SECONDS]\n"
            "       [--rate REQ_PER_S] [--users N] [--sequence S1,S2] [--rcpts N]\n"
            "       [--policy-context TEXT] [--seed N]\n");
    exit(3);
}

static int add_step_name(const char *name) {
    if (!strcmp(name, "RCPT")) return ST_RCPT;
    if (!strcmp(name, "DATA")) return ST_DATA;
    if (!strcmp(name, "END-OF-MESSAGE")) return ST_EOM;
    static int nother;
    if (nother >= MAX_STEPS || strlen(name) >= 32) usage();
    strcpy(other_state[nother], name);
    return ST_OTHER + nother++;
}

static void parse_args(int argc, char **argv) {
    int have_target = 0;
    opt.nseq = 1;
    opt.seq[0] = ST_DATA;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--target")) {
            if (!strncmp(v, "unix:", 5)) {
                opt.unix_socket = 1;
                snprintf(opt.path, sizeof opt.path, "%s", v + 5);
            } else if (!strncmp(v, "tcp:", 4) || !strncmp(v, "inet:", 5)) {
                const char *hp = strchr(v, ':') + 1;
                const char *colon = strrchr(hp, ':');
                if (!colon) usage();
                snprintf(opt.host, sizeof opt.host, "%.*s", (int)(colon - hp), hp);
                opt.port = atoi(colon + 1);
            } else usage();
            have_target = 1;
        } else if (!strcmp(a, "-c")) opt.conns = atoi(v);
        else if (!strcmp(a, "-d")) opt.duration = atof(v);
        else if (!strcmp(a, "-w")) opt.warmup = atof(v);
        else if (!strcmp(a, "--rate")) opt.rate = atof(v);
        else if (!strcmp(a, "--users")) opt.users = atoi(v);
        else if (!strcmp(a, "--rcpts")) opt.rcpts = atoi(v);
        else if (!strcmp(a, "--seed")) opt.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--policy-context")) snprintf(opt.context, sizeof opt.context, "%s", v);
        else if (!strcmp(a, "--sequence")) {
            char buf[512];
            snprintf(buf, sizeof buf, "%s", v);
            opt.nseq = 0;
            for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
                if (opt.nseq >= 16) usage();
                opt.seq[opt.nseq++] = add_step_name(s);
            }
        } else usage();
        i++;
    }
    if (!have_target || opt.conns < 1 || opt.users < 1 || opt.rcpts < 1 || opt.nseq < 1) usage();
    if (opt.rcpts > 32) opt.rcpts = 32;
}

static void new_message(struct conn *c) {
    unsigned long long uid = rnd() % (unsigned long long)opt.users;
    snprintf(c->user, sizeof c->user, "user%05llu@example.com", uid);
    snprintf(c->ip, sizeof c->ip, "10.%llu.%llu.%llu", (uid >> 16) & 255, (uid >> 8) & 255,
             (uid & 255) ? (uid & 255) : 1);
    snprintf(c->inst, sizeof c->inst, "%x.%x.%llx.%llu", (unsigned)getpid(), (unsigned)c->id,
             ++c->messages, rnd() % (1ULL << 30));
    snprintf(c->qid, sizeof c->qid, "%010llX", rnd() % (1ULL << 40));
    c->nsteps = 0;
    int r = 0;
    for (int i = 0; i < opt.nseq && c->nsteps < MAX_STEPS; i++) {
        if (opt.seq[i] == ST_RCPT) {
            for (int k = 0; k < opt.rcpts && c->nsteps < MAX_STEPS; k++) {
                snprintf(c->rcpts[c->nsteps], 64, "rcpt%06llu@example.net", rnd() % 1000000);
                c->steps[c->nsteps++] = ST_RCPT;
                r++;
            }
        } else {
            c->rcpts[c->nsteps][0] = 0;
            c->steps[c->nsteps++] = opt.seq[i];
        }
    }
    if (!r) snprintf(c->rcpts[0], 64, "rcpt%06llu@example.net", rnd() % 1000000);
    c->step = 0;
}

static void build_request(struct conn *c) {
    int st = c->steps[c->step];
    const char *state = st < ST_OTHER ? state_name[st] : other_state[st - ST_OTHER];
    int whole = st == ST_DATA || st == ST_EOM;
    const char *rcpt = st == ST_RCPT ? c->rcpts[c->step] : (opt.rcpts == 1 && whole ? c->rcpts[0] : "");
    int count = whole ? opt.rcpts : 0;
    c->req_len = snprintf(
        c->req, MAX_REQ,
        "request=smtpd_access_policy\nprotocol_state=%s\nprotocol_name=ESMTP\n"
        "client_address=%s\nclient_name=unknown\nclient_port=%llu\nreverse_client_name=unknown\n"
        "server_address=127.0.0.1\nserver_port=587\nhelo_name=client.example.net\nsender=%s\n"
        "recipient=%s\nrecipient_count=%d\nqueue_id=%s\ninstance=%s\nsize=%d\netrn_domain=\n"
        "stress=\nsasl_method=PLAIN\nsasl_username=%s\nsasl_sender=\nccert_subject=\n"
        "ccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n"
        "encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\n"
        "encryption_keysize=256\npolicy_context=%s\ncompatibility_level=3.6\n"
        "mail_version=3.8.6\n\n",
        state, c->ip, 1024 + rnd() % 64000, c->user, rcpt, count, whole ? c->qid : "", c->inst,
        st == ST_EOM ? 2048 : 0, c->user, opt.context);
    c->req_off = 0;
}

/* A non-blocking connect: the socket (connected or connecting), or -1 on an immediate failure
 * (a unix socket whose backlog is full answers EAGAIN at once). */
static int connect_one(int *pending) {
    int fd;
    int rc;
    *pending = 0;
    if (opt.unix_socket) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", opt.path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) die("socket");
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(opt.port)};
        if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) {
            fprintf(stderr, "policy_load: only IPv4 literal hosts: %s\n", opt.host);
            exit(3);
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) die("socket");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    }
    if (rc < 0 && errno == EINPROGRESS) { *pending = 1; return fd; }
    if (rc < 0) { close(fd); return -1; }
    return fd;
}

static void tally(const char *reply, int len) {
    const char *p = reply + 7; /* after "action=" */
    int n = 0;
    while (p + n < reply + len && p[n] != ' ' && p[n] != '\n' && n < 31) n++;
    char word[32];
    memcpy(word, p, n);
    word[n] = 0;
    for (int i = 0; i < nactions; i++)
        if (!strcmp(action_name[i], word)) { action_count[i]++; return; }
    if (nactions < MAX_ACTIONS) {
        strcpy(action_name[nactions], word);
        action_count[nactions++] = 1;
    }
}

static void record(double sent, double done) {
    if (sent < t_begin || done > t_end) return;
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 65536;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) die("realloc");
    }
    lat[nlat++] = (done - sent) * 1000.0;
}

static void arm(struct conn *c, unsigned events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
}

static void reconnect(struct conn *c) {
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->waiting = 0;
    c->connecting = 0;
    int pending;
    int fd = connect_one(&pending);
    if (fd < 0) {
        errors++;
        c->retry_at = now() + 0.1;
        return;
    }
    c->fd = fd;
    c->connecting = pending;
    struct epoll_event ev = {.events = pending ? EPOLLOUT : 0, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    new_message(c);
}

static void connected(struct conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errors++;
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->retry_at = now() + 0.1;
        return;
    }
    c->connecting = 0;
    arm(c, 0);
}

static void try_send(struct conn *c, double t) {
    if (!c->waiting) {
        build_request(c);
        c->sent_at = opt.rate > 0 ? c->due : t;
        c->reply_len = 0;
        c->waiting = 1;
    }
    while (c->req_off < c->req_len) {
        ssize_t n = write(c->fd, c->req + c->req_off, c->req_len - c->req_off);
        if (n < 0) {
            if (errno == EAGAIN) { arm(c, EPOLLOUT | EPOLLIN); return; }
            errors++;
            reconnect(c);
            return;
        }
        c->req_off += n;
    }
    arm(c, EPOLLIN);
}

static void on_readable(struct conn *c) {
    for (;;) {
        ssize_t n = read(c->fd, c->reply + c->reply_len, MAX_REPLY - 1 - c->reply_len);
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) { errors++; reconnect(c); return; }
        c->reply_len += n;
        c->reply[c->reply_len] = 0;
        char *end = strstr(c->reply, "\n\n");
        if (!end) {
            if (c->reply_len >= MAX_REPLY - 1) { errors++; reconnect(c); }
            continue;
        }
        double t = now();
        if (strncmp(c->reply, "action=", 7) != 0) errors++;
        else if (c->sent_at >= t_begin && t <= t_end) { tally(c->reply, (int)(end - c->reply)); counted++; }
        record(c->sent_at, t);
        c->waiting = 0;
        if (++c->step >= c->nsteps) {
            if (c->sent_at >= t_begin && t <= t_end) messages_done++;
            new_message(c);
        }
        if (opt.rate > 0) {
            c->due += opt.conns / opt.rate;
            arm(c, 0);
        } else {
            try_send(c, t);
        }
        return;
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p) {
    if (!nlat) return 0;
    size_t i = (size_t)(p / 100.0 * (nlat - 1) + 0.5);
    return lat[i];
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    rng_state = opt.seed;
    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1");
    struct conn *conns = calloc(opt.conns, sizeof *conns);
    if (!conns) die("calloc");
    t_start = now();
    t_begin = t_start + opt.warmup;
    t_end = t_begin + opt.duration;
    for (int i = 0; i < opt.conns; i++) {
        conns[i].id = i;
        conns[i].fd = -1;
        reconnect(&conns[i]);
        /* spread the paced connections over one period */
        conns[i].due = t_start + (opt.rate > 0 ? i / opt.rate : 0);
    }
    struct epoll_event evs[256];
    for (;;) {
        double t = now();
        if (t >= t_end) break;
        double wait_s = 0.05;
        for (int i = 0; i < opt.conns; i++)
            if (conns[i].fd < 0 && conns[i].retry_at <= t) reconnect(&conns[i]);
        if (opt.rate > 0) {
            double next = t_end;
            for (int i = 0; i < opt.conns; i++) {
                struct conn *c = &conns[i];
                if (c->fd < 0 || c->waiting || c->connecting) continue;
                if (c->due <= t) try_send(c, t);
                else if (c->due < next) next = c->due;
            }
            double wait = next - now();
            wait_s = wait < 0 ? 0 : wait > 0.05 ? 0.05 : wait;
        } else {
            for (int i = 0; i < opt.conns; i++)
                if (conns[i].fd >= 0 && !conns[i].waiting && !conns[i].connecting)
                    try_send(&conns[i], t);
        }
        /* a nanosecond timeout: with epoll_wait's milliseconds, a paced client would spin
           through every sub-millisecond wait and take a core from the server it measures */
        struct timespec ts = {(time_t)wait_s, (long)((wait_s - (time_t)wait_s) * 1e9)};
        int n = epoll_pwait2(epfd, evs, 256, &ts, NULL);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (c->connecting) {
                connected(c);
                continue;
            }
            if (evs[i].events & (EPOLLERR | EPOLLHUP) && !(evs[i].events & EPOLLIN)) {
                errors++;
                reconnect(c);
                continue;
            }
            if (evs[i].events & EPOLLOUT && c->req_off < c->req_len) try_send(c, now());
            if (evs[i].events & EPOLLIN) on_readable(c);
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp);
    printf("{\"connections\": %d, \"duration_s\": %.3f, \"rate\": %.1f, \"requests\": %llu, "
           "\"requests_per_s\": %.1f, \"messages_per_s\": %.1f, \"errors\": %llu, "
           "\"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
           "\"actions\": {",
           opt.conns, opt.duration, opt.rate, counted, counted / opt.duration,
           messages_done / opt.duration, errors, pct(50), pct(90), pct(99),
           nlat ? lat[nlat - 1] : 0.0);
    for (int i = 0; i < nactions; i++)
        printf("%s\"%s\": %llu", i ? ", " : "", action_name[i], action_count[i]);
    printf("}}\n");
    return 0;
}

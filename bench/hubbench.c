/*
 * hubbench connect | hold | publish: MQTT 3.1.1 over mutual TLS, loopback.
 *
 * One epoll loop drives every connection through
 *   TCP connect -> TLS handshake (device chain: leaf + intermediate)
 *   -> CONNECT -> CONNACK -> mode-specific -> DISCONNECT + close_notify.
 * The loop is level-triggered: after each step a connection asks for EPOLLIN
 * or EPOLLOUT depending on what OpenSSL said it wants.
 *
 * What each mode measures:
 *   connect  new connections, C at once, for --seconds: handshakes/s,
 *            p50/p99 of TCP SYN -> CONNACK, failures by reason. With --resume
 *            every device connects once first (untimed) so that the timed
 *            phase offers a session (TLS 1.3 ticket / TLS 1.2 session) on each.
 *   hold     N connections kept open (PINGREQ every keep-alive); the server's
 *            VmRSS before and after, per connection.
 *   publish  D connected devices (untimed), then for --seconds each keeps W
 *            QoS 1 PUBLISHes of S bytes in flight (QoS 0: W batches of 64
 *            PUBLISHes, each closed by a PINGREQ whose PINGRESP counts it).
 * With --server-pid, utime+stime of the server from /proc/PID/stat before and
 * after the timed phase gives its CPU per operation.
 */

#include "hubbench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_REASONS   32
#define PARTIAL_BYTES 256   /* an incoming packet split across reads */
#define READ_BYTES    65536 /* one shared read buffer */
#define QOS0_BATCH    64    /* QoS 0: PUBLISHes between two PINGREQs */

/* ---- options --------------------------------------------------------------- */

enum mode { M_CONNECT, M_HOLD, M_PUBLISH };

struct opts {
    enum mode mode;
    const char *host;
    int port;
    const char *ca_file;  /* server trust; no verification without it */
    const char *pki_dir;  /* dev-NNNNN.pem/.key */
    int devices;          /* how many of them to use */
    int concurrency;      /* connections being set up at once */
    double seconds;       /* timed phase (connect, publish) or hold time */
    long count;           /* connect: stop after this many (0 = time only) */
    int tls;              /* 0 any, 12, 13 */
    bool resume;          /* connect: offer the previous session */
    long server_pid;      /* for /proc CPU and RSS; 0 = none */
    int hold_n;           /* hold: connections; 0 = as many as RLIMIT_NOFILE allows */
    int qos;              /* publish */
    int size_bytes;       /* publish payload */
    int window;           /* publish: in flight per device */
    int keepalive_s;      /* CONNECT keep-alive and PINGREQ period */
    int sources;          /* 127.0.0.x source addresses to rotate (0 = auto) */
    double timeout_s;     /* one connection's setup, and the final drain */
    const char *username; /* template; {id} is the device id */
    const char *topic;    /* template */
    bool quiet;
};

static struct opts o = {
    .host = "127.0.0.1",
    .port = 8883,
    .devices = 1000,
    .concurrency = 32,
    .seconds = 5,
    .tls = 0,
    .qos = 1,
    .size_bytes = 64,
    .window = 16,
    .keepalive_s = 60,
    .timeout_s = 15,
    .username = "localhost/{id}/?api-version=2021-04-12",
    .topic = "devices/{id}/messages/events/",
};

/* ---- time, /proc ----------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Server CPU (utime + stime) in seconds, or -1. */
static double proc_cpu_s(long pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after
     * the last ')'. utime and stime are fields 14 and 15 (state is 3). */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Server VmRSS in KiB, or -1. */
static long proc_rss_kib(long pid)
{
    if (pid <= 0)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- results ---------------------------------------------------------------- */

struct lat {
    double *v; /* milliseconds */
    size_t n, cap;
};

static void lat_add(struct lat *l, double ms)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        double *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return; /* a dropped sample, not a failed run */
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double lat_pct(struct lat *l, double pct)
{
    if (l->n == 0)
        return NAN;
    size_t i = (size_t)ceil(pct / 100.0 * (double)l->n);
    return l->v[i > 0 ? i - 1 : 0];
}

static struct {
    char name[96];
    long count;
} reasons[MAX_REASONS];
static long failed_total;

static void fail_count(const char *reason)
{
    char name[sizeof(reasons[0].name)];
    snprintf(name, sizeof(name), "%s", reason);
    for (char *p = name; *p; p++)
        if (*p == ' ' || *p == ',' || *p == '=')
            *p = '_';
    failed_total++;
    for (int i = 0; i < MAX_REASONS; i++) {
        if (reasons[i].name[0] == '\0') {
            memcpy(reasons[i].name, name, sizeof(name));
            reasons[i].count = 1;
            return;
        }
        if (strcmp(reasons[i].name, name) == 0 || i == MAX_REASONS - 1) {
            reasons[i].count++; /* the last slot also takes every further reason */
            return;
        }
    }
}

/* ---- devices ---------------------------------------------------------------- */

struct device {
    char id[24];
    X509 *leaf;
    X509 *chain; /* the intermediate; shared between devices that have the same */
    EVP_PKEY *key;
    SSL_SESSION *session; /* last one the server gave us */
    bool busy;            /* a connection uses it now */
};

static struct device *devs;
static int dev_count;

static char *file_read(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf != NULL && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *b = realloc(buf, cap * 2);
            if (b == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    *len_out = len;
    return buf;
}

/* Loads dev-00001..dev-N; the intermediate is parsed once per distinct PEM. */
static int devices_load(const char *dir, int n)
{
    devs = calloc((size_t)n, sizeof(*devs));
    if (devs == NULL)
        return -1;
    char *last_chain_pem = NULL;
    X509 *last_chain = NULL;
    for (int i = 0; i < n; i++) {
        struct device *d = &devs[i];
        snprintf(d->id, sizeof(d->id), HUBBENCH_DEVICE_FMT, i + 1);
        char path[4096];
        size_t len;
        snprintf(path, sizeof(path), "%s/%s.pem", dir, d->id);
        char *pem = file_read(path, &len);
        if (pem == NULL) {
            fprintf(stderr, "hubbench: %s: %s\n", path, strerror(errno));
            return -1;
        }
        char *second = strstr(pem + 1, "-----BEGIN CERTIFICATE-----");
        BIO *b = BIO_new_mem_buf(pem, second ? (int)(second - pem) : (int)len);
        d->leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        if (second != NULL) {
            if (last_chain_pem != NULL && strcmp(last_chain_pem, second) == 0) {
                X509_up_ref(last_chain);
            } else {
                X509_free(last_chain);
                free(last_chain_pem);
                b = BIO_new_mem_buf(second, -1);
                last_chain = PEM_read_bio_X509(b, NULL, NULL, NULL);
                BIO_free(b);
                last_chain_pem = strdup(second);
                if (last_chain != NULL)
                    X509_up_ref(last_chain);
            }
            d->chain = last_chain;
        }
        free(pem);
        snprintf(path, sizeof(path), "%s/%s.key", dir, d->id);
        FILE *f = fopen(path, "r");
        d->key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f != NULL)
            fclose(f);
        if (d->leaf == NULL || d->key == NULL) {
            fprintf(stderr, "hubbench: cannot load %s/%s.pem/.key\n", dir, d->id);
            return -1;
        }
    }
    X509_free(last_chain);
    free(last_chain_pem);
    dev_count = n;
    return 0;
}

/* ---- connections ------------------------------------------------------------ */

enum cstate { C_TCP, C_TLS, C_WAIT_CONNACK, C_UP, C_CLOSED };

struct conn {
    int fd;
    SSL *ssl;
    struct device *dev;
    enum cstate state;
    bool counted; /* its figures go into the timed phase */
    bool on_out;  /* registered for EPOLLOUT */
    bool ping_out;
    int batches_out; /* QoS 0: batches whose closing PINGRESP has not come */
    double t_start, t_ping;
    unsigned char partial[PARTIAL_BYTES];
    size_t partial_len;
    size_t skip; /* bytes of an oversized packet still to drop */
    unsigned char *out;
    size_t out_len, out_cap;
    /* publish */
    uint16_t next_pid;
    int inflight;
    struct inflight {
        uint16_t pid;
        double t;
    } * slots; /* power-of-two table, index pid & mask */
    unsigned mask;
    struct conn *next_dead; /* closed, freed by reap() once no caller holds it */
};

static int ep;
static SSL_CTX *ctx;
static unsigned char rbuf[READ_BYTES];
static int ex_conn; /* SSL ex_data index of the conn */
/* Every open connection by fd (hold and publish walk it; NULL = none). */
static struct conn **conns;
static size_t conns_cap;

/* Run-wide counters; the mode code reads them. */
static struct {
    long launched, up, active, connecting;
    long ok;        /* completed operations in the timed phase */
    long resumed;   /* of the connects counted, how many were resumed */
    long acked;     /* publish: PUBACKs (QoS 1) or messages written (QoS 0) */
    long unmatched; /* PUBACKs for no PUBLISH in flight */
    long pingresp;
    bool sending;   /* publish: the timed phase is on */
    struct lat lat; /* connect latency or PUBACK latency, ms */
    struct in_addr src_base;
    unsigned long next_src;
} run;

static unsigned char *payload; /* publish body, size_bytes */

/* Closed connections wait here until the event batch is over: callers up the
 * stack (conn_read -> conn_input -> on_connack) still look at c->state. */
static struct conn *dead;

static void reap(void)
{
    while (dead != NULL) {
        struct conn *c = dead;
        dead = c->next_dead;
        free(c->out);
        free(c->slots);
        free(c);
    }
}

static void template_fill(char *out, size_t cap, const char *tmpl, const char *id)
{
    size_t n = 0;
    for (const char *p = tmpl; *p && n + 1 < cap;) {
        if (strncmp(p, "{id}", 4) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "%s", id);
            if (n >= cap)
                n = cap - 1;
            p += 4;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

static int out_reserve(struct conn *c, size_t more)
{
    if (c->out_len + more <= c->out_cap)
        return 0;
    size_t cap = c->out_cap ? c->out_cap : 256;
    while (cap < c->out_len + more)
        cap *= 2;
    unsigned char *b = realloc(c->out, cap);
    if (b == NULL)
        return -1;
    c->out = b;
    c->out_cap = cap;
    return 0;
}

/* The MQTT fixed header: type byte and remaining length (varint). */
static size_t put_header(unsigned char *p, unsigned char type, size_t rl)
{
    size_t n = 0;
    p[n++] = type;
    do {
        unsigned char b = rl % 128;
        rl /= 128;
        p[n++] = (unsigned char)(b | (rl > 0 ? 0x80 : 0));
    } while (rl > 0);
    return n;
}

static size_t put_str(unsigned char *p, const char *s, size_t len)
{
    p[0] = (unsigned char)(len >> 8);
    p[1] = (unsigned char)len;
    memcpy(p + 2, s, len);
    return len + 2;
}

static int queue_connect(struct conn *c)
{
    char user[512];
    template_fill(user, sizeof(user), o.username, c->dev->id);
    size_t id_len = strlen(c->dev->id), user_len = strlen(user);
    size_t rl = 10 + 2 + id_len + 2 + user_len;
    if (out_reserve(c, rl + 5) != 0)
        return -1;
    unsigned char *p = c->out + c->out_len;
    size_t n = put_header(p, 0x10, rl);
    n += put_str(p + n, "MQTT", 4);
    p[n++] = 4;    /* 3.1.1 */
    p[n++] = 0x82; /* username, clean session */
    p[n++] = (unsigned char)(o.keepalive_s >> 8);
    p[n++] = (unsigned char)o.keepalive_s;
    n += put_str(p + n, c->dev->id, id_len);
    n += put_str(p + n, user, user_len);
    c->out_len += n;
    return 0;
}

static int queue_simple(struct conn *c, unsigned char type)
{
    if (out_reserve(c, 2) != 0)
        return -1;
    c->out[c->out_len++] = type;
    c->out[c->out_len++] = 0;
    return 0;
}

static int queue_publish(struct conn *c, double t)
{
    char topic[256];
    template_fill(topic, sizeof(topic), o.topic, c->dev->id);
    size_t tl = strlen(topic);
    size_t rl = 2 + tl + (o.qos ? 2 : 0) + (size_t)o.size_bytes;
    if (out_reserve(c, rl + 5) != 0)
        return -1;
    unsigned char *p = c->out + c->out_len;
    size_t n = put_header(p, o.qos ? 0x32 : 0x30, rl);
    n += put_str(p + n, topic, tl);
    if (o.qos) {
        if (++c->next_pid == 0)
            c->next_pid = 1;
        p[n++] = (unsigned char)(c->next_pid >> 8);
        p[n++] = (unsigned char)c->next_pid;
        struct inflight *s = &c->slots[c->next_pid & c->mask];
        s->pid = c->next_pid;
        s->t = t;
        c->inflight++;
    }
    memcpy(p + n, payload, (size_t)o.size_bytes);
    c->out_len += n + (size_t)o.size_bytes;
    return 0;
}

static void conn_close(struct conn *c, const char *reason)
{
    if (c->state == C_CLOSED)
        return;
    if (reason != NULL && c->counted)
        fail_count(reason);
    if (c->state < C_UP)
        run.connecting--;
    else
        run.up--;
    run.active--;
    c->state = C_CLOSED;
    if (c->ssl != NULL) {
        /* close_notify, without waiting for the peer's: a TLS 1.2 session
         * stays resumable only after a proper shutdown. */
        if (reason == NULL && SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    conns[c->fd] = NULL;
    close(c->fd);
    c->dev->busy = false;
    c->next_dead = dead;
    dead = c;
}

static void want_out(struct conn *c, bool on)
{
    if (c->on_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->on_out = on;
}

static const char *ssl_reason(void)
{
    static char buf[96];
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, sizeof(buf), "%s", r ? r : "no_reason");
    ERR_clear_error();
    return buf;
}

/* Flushes c->out; returns -1 when the connection died (closed here). */
static int conn_flush(struct conn *c)
{
    while (c->out_len > 0) {
        int n = SSL_write(c->ssl, c->out, (int)c->out_len);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                want_out(c, e == SSL_ERROR_WANT_WRITE);
                return 0;
            }
            char why[128];
            snprintf(why, sizeof(why), "write:%s",
                     e == SSL_ERROR_SYSCALL ? strerror(errno) : ssl_reason());
            conn_close(c, why);
            return -1;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    want_out(c, false);
    return 0;
}

static void on_connack(struct conn *c, const unsigned char *b, size_t len, double t)
{
    if (len < 2 || b[1] != 0) {
        char why[32];
        snprintf(why, sizeof(why), "connack_rc_%d", len < 2 ? -1 : b[1]);
        conn_close(c, why);
        return;
    }
    c->state = C_UP;
    run.connecting--;
    run.up++;
    if (o.mode == M_CONNECT) {
        if (c->counted) {
            run.ok++;
            lat_add(&run.lat, (t - c->t_start) * 1e3);
            if (SSL_session_reused(c->ssl))
                run.resumed++;
        }
        if (queue_simple(c, 0xE0) == 0 && conn_flush(c) == 0)
            conn_close(c, NULL);
        else if (c->state != C_CLOSED)
            conn_close(c, "disconnect_write");
        return;
    }
    if (o.mode == M_HOLD && c->counted)
        run.ok++;
    c->t_ping = t + o.keepalive_s;
}

static void on_puback(struct conn *c, const unsigned char *b, size_t len, double t)
{
    if (len < 2)
        return;
    uint16_t pid = (uint16_t)(b[0] << 8 | b[1]);
    struct inflight *s = &c->slots[pid & c->mask];
    if (s->pid != pid) {
        run.unmatched++;
        return;
    }
    s->pid = 0;
    c->inflight--;
    run.acked++;
    lat_add(&run.lat, (t - s->t) * 1e3);
    if (run.sending)
        queue_publish(c, t);
}

/* Parses whole packets from b; keeps a partial one for the next read. */
static void conn_input(struct conn *c, const unsigned char *b, size_t len, double t)
{
    while (len > 0 && c->state != C_CLOSED) {
        if (c->skip > 0) {
            size_t k = c->skip < len ? c->skip : len;
            c->skip -= k;
            b += k;
            len -= k;
            continue;
        }
        size_t rl = 0, i = 1;
        unsigned mult = 1;
        bool complete = false;
        while (i < len && i < 5) {
            rl += (size_t)(b[i] & 0x7F) * mult;
            mult *= 128;
            if ((b[i++] & 0x80) == 0) {
                complete = true;
                break;
            }
        }
        if (!complete || i + rl > len) {
            if (complete && i + rl > PARTIAL_BYTES) { /* too big to keep: drop it */
                c->skip = i + rl - len;
                return;
            }
            if (len > PARTIAL_BYTES) {
                conn_close(c, "protocol:bad_length");
                return;
            }
            memmove(c->partial, b, len);
            c->partial_len = len;
            return;
        }
        const unsigned char *body = b + i;
        switch (b[0] & 0xF0) {
        case 0x20:
            if (c->state == C_WAIT_CONNACK)
                on_connack(c, body, rl, t);
            break;
        case 0x40:
            on_puback(c, body, rl, t);
            break;
        case 0xD0:
            c->ping_out = false;
            if (c->batches_out > 0) {
                /* PINGRESP comes after the server read every PUBLISH before
                 * the PINGREQ: the batch counts as delivered. */
                c->batches_out--;
                run.acked += QOS0_BATCH;
            }
            run.pingresp++;
            break;
        default:
            break; /* nothing else was asked for */
        }
        b += i + rl;
        len -= i + rl;
    }
}

static void conn_read(struct conn *c, double t)
{
    for (;;) {
        size_t have = c->partial_len;
        memcpy(rbuf, c->partial, have);
        c->partial_len = 0;
        int n = SSL_read(c->ssl, rbuf + have, (int)(sizeof(rbuf) - have));
        if (n <= 0) {
            c->partial_len = have;
            memcpy(c->partial, rbuf, have);
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ)
                return;
            if (e == SSL_ERROR_WANT_WRITE) {
                want_out(c, true);
                return;
            }
            const char *why = e == SSL_ERROR_ZERO_RETURN ? "closed_by_server"
                              : e == SSL_ERROR_SYSCALL
                                  ? (errno ? "reset_by_server" : "eof_from_server")
                                  : ssl_reason();
            char buf[128];
            snprintf(buf, sizeof(buf), "%s%s", c->state == C_WAIT_CONNACK ? "before_connack:" : "",
                     why);
            conn_close(c, buf);
            return;
        }
        conn_input(c, rbuf, have + (size_t)n, t);
        if (c->state == C_CLOSED)
            return;
    }
}

static void conn_handshake(struct conn *c, double t)
{
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        c->state = C_WAIT_CONNACK;
        if (queue_connect(c) != 0) {
            conn_close(c, "oom");
            return;
        }
        if (conn_flush(c) == 0)
            conn_read(c, t);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        want_out(c, e == SSL_ERROR_WANT_WRITE);
        return;
    }
    char why[128];
    snprintf(why, sizeof(why), "tls_handshake:%s",
             e == SSL_ERROR_SYSCALL ? (errno ? strerror(errno) : "eof") : ssl_reason());
    conn_close(c, why);
}

static void on_event(struct conn *c, uint32_t events, double t)
{
    if (c->state == C_CLOSED)
        return; /* closed earlier in this batch */
    if (c->state == C_TCP) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0) {
            char why[96];
            snprintf(why, sizeof(why), "tcp_connect:%s", strerror(err));
            conn_close(c, why);
            return;
        }
        c->state = C_TLS;
    }
    if (c->state == C_TLS) {
        conn_handshake(c, t);
        return;
    }
    if ((events & EPOLLOUT) && conn_flush(c) != 0)
        return;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(c, t);
    if (c->state != C_CLOSED && c->out_len > 0)
        conn_flush(c);
}

static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct conn *c = SSL_get_ex_data(ssl, ex_conn);
    if (c == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    SSL_SESSION_free(c->dev->session);
    c->dev->session = sess;
    return 1; /* we keep the reference */
}

/* Starts one connection for dev; returns -1 (and counts why) when it could not. */
static int conn_start(struct device *dev, bool counted, double t)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->dev = dev;
    c->counted = counted;
    c->t_start = t;
    c->state = C_TCP;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (c->fd < 0) {
        char why[96];
        snprintf(why, sizeof(why), "socket:%s", strerror(errno));
        if (counted)
            fail_count(why);
        free(c);
        return -1;
    }
    conns[c->fd] = c;
    int one = 1;
    /* A lone CONNECT or DISCONNECT must not wait on Nagle. */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    inet_pton(AF_INET, o.host, &dst.sin_addr);
    if (o.sources > 1) {
        /* Each source address has its own ephemeral port range toward dst. */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr =
            htonl(ntohl(run.src_base.s_addr) + (uint32_t)(run.next_src++ % (unsigned)o.sources));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        bind(c->fd, (struct sockaddr *)&src, sizeof(src));
    }
    c->ssl = SSL_new(ctx);
    dev->busy = true;
    run.launched++;
    run.active++;
    run.connecting++;
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_use_certificate(c->ssl, dev->leaf) != 1 || SSL_use_PrivateKey(c->ssl, dev->key) != 1 ||
        (dev->chain != NULL && SSL_add1_chain_cert(c->ssl, dev->chain) != 1)) {
        conn_close(c, "ssl_setup");
        return -1;
    }
    SSL_set_ex_data(c->ssl, ex_conn, c);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    if (o.resume && dev->session != NULL)
        SSL_set_session(c->ssl, dev->session);
    if (o.mode == M_PUBLISH && o.qos) {
        unsigned cap = 4;
        while (cap < (unsigned)o.window * 4)
            cap *= 2;
        c->slots = calloc(cap, sizeof(*c->slots));
        c->mask = cap - 1;
        if (c->slots == NULL) {
            conn_close(c, "oom");
            return -1;
        }
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->on_out = true;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS) {
        char why[96];
        snprintf(why, sizeof(why), "tcp_connect:%s", strerror(errno));
        conn_close(c, why);
        return -1;
    }
    return 0;
}

/* ---- the loop ---------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* One epoll wait and dispatch; at most wait_ms. */
static void loop_once(int wait_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, wait_ms);
    double t = now_s();
    for (int i = 0; i < n; i++)
        on_event(evs[i].data.ptr, evs[i].events, t);
    reap();
}

/* Every 100 ms: PINGREQ for connections idle for a keep-alive, and the end of
 * connections whose setup outlived --timeout. Runs during ramps too: a slow
 * ramp must not let the first connections hit the server's keep-alive. */
static void sweep(void)
{
    static double last;
    double t = now_s();
    if (t - last < 0.1)
        return;
    last = t;
    for (size_t i = 0; i < conns_cap; i++) {
        struct conn *c = conns[i];
        if (c == NULL)
            continue;
        if (c->state < C_UP && t - c->t_start > o.timeout_s) {
            conn_close(c, c->state == C_TCP   ? "timeout:tcp_connect"
                          : c->state == C_TLS ? "timeout:tls_handshake"
                                              : "timeout:connack");
        } else if (c->state == C_UP && t >= c->t_ping && !c->ping_out && !run.sending) {
            c->ping_out = true;
            c->t_ping = t + o.keepalive_s;
            if (queue_simple(c, 0xC0) == 0)
                conn_flush(c);
        }
    }
    reap();
}

static struct device *device_next(bool need_session)
{
    static int cursor;
    for (int k = 0; k < dev_count; k++) {
        struct device *d = &devs[cursor];
        cursor = (cursor + 1) % dev_count;
        if (!d->busy && (!need_session || d->session != NULL))
            return d;
    }
    return NULL;
}

/* Keeps `concurrency` connections being set up until `total` were launched
 * (or `until` passes), then waits for the setup ones to finish or time out.
 * Connections that come up stay up (hold, publish) or close (connect). */
static void ramp(long total, double until, bool counted, bool need_session)
{
    long launched = 0;
    double t = now_s();
    while (!interrupted) {
        while (run.connecting < o.concurrency && launched < total && t < until) {
            struct device *d = device_next(need_session);
            if (d == NULL)
                break;
            launched++;
            conn_start(d, counted, t);
        }
        if (run.connecting == 0 && (launched >= total || t >= until))
            break;
        if (t >= until + o.timeout_s)
            break; /* the stragglers are counted as timeouts by the caller */
        loop_once(5);
        sweep();
        t = now_s();
    }
}

/* ---- modes --------------------------------------------------------------------- */

struct cpu_mark {
    double server, self, t;
};

static void cpu_mark(struct cpu_mark *m)
{
    m->server = proc_cpu_s(o.server_pid);
    m->self = self_cpu_s();
    m->t = now_s();
}

static void print_failures(void)
{
    for (int i = 0; i < MAX_REASONS && reasons[i].name[0]; i++)
        printf("  failed: %-40s %ld\n", reasons[i].name, reasons[i].count);
}

static void failures_kv(char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < MAX_REASONS && reasons[i].name[0] && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s:%ld", n ? "," : "", reasons[i].name,
                              reasons[i].count);
}

static void report(const char *mode, const struct cpu_mark *a, const struct cpu_mark *b, long ops,
                   const char *extra)
{
    double secs = b->t - a->t;
    double server_ms = (a->server >= 0 && b->server >= 0) ? (b->server - a->server) * 1e3 : -1;
    double per_op_us = (server_ms >= 0 && ops > 0) ? server_ms * 1e3 / (double)ops : -1;
    if (run.lat.n > 0)
        qsort(run.lat.v, run.lat.n, sizeof(double), cmp_double);
    double p50 = lat_pct(&run.lat, 50), p99 = lat_pct(&run.lat, 99);
    char fails[1024];
    failures_kv(fails, sizeof(fails));
    printf("  operations ok      %ld in %.2f s = %.1f/s\n", ops, secs, ops / (secs > 0 ? secs : 1));
    printf("  failed             %ld\n", failed_total);
    print_failures();
    if (run.lat.n > 0)
        printf("  latency            p50 %.2f ms, p99 %.2f ms (%zu samples)\n", p50, p99,
               run.lat.n);
    if (per_op_us >= 0)
        printf("  server cpu         %.0f ms total, %.1f us per operation (%.0f%% of one core)\n",
               server_ms, per_op_us, server_ms / 10.0 / (secs > 0 ? secs : 1));
    printf("  hubbench cpu       %.0f ms\n", (b->self - a->self) * 1e3);
    printf("RESULT mode=%s ok=%ld failed=%ld seconds=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f "
           "server_cpu_ms=%.1f server_us_per_op=%.1f tool_cpu_ms=%.0f%s%s failures=%s\n",
           mode, ops, failed_total, secs, ops / (secs > 0 ? secs : 1), p50, p99, server_ms,
           per_op_us, (b->self - a->self) * 1e3, extra[0] ? " " : "", extra,
           fails[0] ? fails : "none");
    fflush(stdout);
}

/* Closes whatever is still open; those still setting up count as timeouts. */
static void close_all(struct conn **list, size_t n, bool graceful)
{
    for (size_t i = 0; i < n; i++) {
        struct conn *c = list[i];
        if (c == NULL)
            continue;
        if (c->state == C_UP && graceful) {
            queue_simple(c, 0xE0);
            if (conn_flush(c) != 0)
                continue;
            conn_close(c, NULL);
        } else {
            conn_close(c, c->state == C_UP ? NULL : "timeout");
        }
    }
}

static int mode_connect(void)
{
    const char *tls = o.tls == 12 ? "1.2" : o.tls == 13 ? "1.3" : "any";
    if (!o.quiet)
        printf("hubbench connect: %s:%d tls=%s resume=%s concurrency=%d devices=%d %.1fs\n", o.host,
               o.port, tls, o.resume ? "yes" : "no", o.concurrency, dev_count, o.seconds);
    if (o.resume) {
        /* Every device once, untimed, so the timed phase can offer a session. */
        ramp(dev_count, now_s() + o.seconds + 30, false, false);
        int with = 0;
        for (int i = 0; i < dev_count; i++)
            with += devs[i].session != NULL;
        printf("  warm-up            %d/%d devices hold a session\n", with, dev_count);
    }
    struct cpu_mark a, b;
    cpu_mark(&a);
    long total = o.count > 0 ? o.count : 1L << 40;
    ramp(total, a.t + o.seconds, true, false);
    cpu_mark(&b);
    if (run.connecting > 0)
        printf("  %ld connections still in setup after the timeout\n", run.connecting);
    char extra[128];
    snprintf(extra, sizeof(extra), "tls=%s resume=%d resumed=%ld", tls, o.resume ? 1 : 0,
             run.resumed);
    if (o.resume)
        printf("  resumed            %ld of %ld\n", run.resumed, run.ok);
    report("connect", &a, &b, run.ok, extra);
    return run.ok > 0 ? 0 : 2;
}

static int mode_hold(void)
{
    printf("hubbench hold: %s:%d n=%d concurrency=%d sources=%d hold %.1fs\n", o.host, o.port,
           o.hold_n, o.concurrency, o.sources, o.seconds);
    long rss0 = proc_rss_kib(o.server_pid);
    struct cpu_mark a, b;
    cpu_mark(&a);
    ramp(o.hold_n, a.t + 600, true, false);
    cpu_mark(&b);
    long up = run.up;
    printf("  established        %ld of %d in %.2f s (%.0f/s)\n", up, o.hold_n, b.t - a.t,
           (double)up / (b.t - a.t));
    /* Let the server settle (lazy frees, deferred work), then read its RSS. */
    double settle = now_s() + 1.0;
    while (now_s() < settle)
        loop_once(50);
    long rss1 = proc_rss_kib(o.server_pid);
    double end = now_s() + o.seconds;
    while (!interrupted && now_s() < end) {
        loop_once(100);
        sweep();
    }
    long still = run.up;
    double per_conn = (rss0 > 0 && rss1 > 0 && up > 0) ? (double)(rss1 - rss0) / (double)up : -1;
    if (rss0 > 0)
        printf("  server rss         %ld KiB before, %ld KiB with %ld connections: %.2f KiB each\n",
               rss0, rss1, up, per_conn);
    printf("  still up after     %ld (%.1f s hold)\n", still, o.seconds);
    char extra[160];
    snprintf(extra, sizeof(extra),
             "n=%d up=%ld still_up=%ld rss0_kib=%ld rss1_kib=%ld kib_per_conn=%.2f", o.hold_n, up,
             still, rss0, rss1, per_conn);
    report("hold", &a, &b, up, extra);
    close_all(conns, conns_cap, true);
    return up > 0 ? 0 : 2;
}

static int mode_publish(void)
{
    printf("hubbench publish: %s:%d devices=%d qos=%d size=%d window=%d %.1fs\n", o.host, o.port,
           dev_count, o.qos, o.size_bytes, o.window, o.seconds);
    payload = malloc((size_t)o.size_bytes + 1);
    if (payload == NULL)
        return 1;
    memset(payload, 'x', (size_t)o.size_bytes);
    ramp(dev_count, now_s() + 120, false, false);
    long up = run.up;
    printf("  connected          %ld of %d devices\n", up, dev_count);
    if (up == 0) {
        print_failures();
        printf("RESULT mode=publish ok=0 failed=%d\n", dev_count);
        return 2;
    }
    struct cpu_mark a, b;
    cpu_mark(&a);
    run.sending = true;
    double end = a.t + o.seconds;
    for (size_t i = 0; i < conns_cap; i++) {
        struct conn *c = conns[i];
        if (c == NULL)
            continue;
        for (int k = 0; o.qos && k < o.window; k++)
            queue_publish(c, a.t);
        if (conn_flush(c) != 0)
            continue;
    }
    while (!interrupted && now_s() < end) {
        loop_once(10);
        if (o.qos == 0) {
            /* QoS 0 has no acknowledgement: each batch of PUBLISHes ends
             * with a PINGREQ, and at most --window batches are unanswered,
             * so the kernel's buffers never hide a backlog. */
            for (size_t i = 0; i < conns_cap; i++) {
                struct conn *c = conns[i];
                if (c == NULL || c->state != C_UP || c->batches_out >= o.window)
                    continue;
                double t = now_s();
                while (c->batches_out < o.window) {
                    for (int k = 0; k < QOS0_BATCH; k++)
                        queue_publish(c, t);
                    queue_simple(c, 0xC0);
                    c->batches_out++;
                }
                conn_flush(c);
            }
        }
    }
    run.sending = false;
    /* Drain: what is in flight when the time is up still counts. */
    double drain_end = now_s() + o.timeout_s;
    for (;;) {
        long inflight = 0;
        for (size_t i = 0; i < conns_cap; i++)
            if (conns[i] != NULL && conns[i]->state == C_UP)
                inflight += o.qos ? conns[i]->inflight : conns[i]->batches_out;
        if (inflight == 0 || interrupted || now_s() > drain_end) {
            if (inflight > 0) {
                printf("  %ld %s unanswered after %.0f s\n", inflight,
                       o.qos ? "PUBLISHes" : "PINGREQs", o.timeout_s);
                for (long k = 0; k < inflight; k++)
                    fail_count(o.qos ? "puback_timeout" : "pingresp_timeout");
            }
            break;
        }
        loop_once(10);
    }
    cpu_mark(&b);
    if (run.unmatched)
        printf("  unmatched PUBACKs  %ld\n", run.unmatched);
    char extra[96];
    snprintf(extra, sizeof(extra), "qos=%d size=%d window=%d devices=%ld", o.qos, o.size_bytes,
             o.window, up);
    report("publish", &a, &b, run.acked, extra);
    close_all(conns, conns_cap, true);
    return run.acked > 0 ? 0 : 2;
}

/* ---- setup ------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: hubbench connect|hold|publish [options]\n"
            "       hubbench mkpki DIR N\n"
            "       hubbench chain [--seconds S]\n"
            "options:\n"
            "  --host A --port P         server (default 127.0.0.1:8883)\n"
            "  --ca FILE                 verify the server against FILE (default: no check)\n"
            "  --pki DIR                 device certificates dev-NNNNN.pem/.key (required)\n"
            "  --devices N               use dev-00001..N (default 1000)\n"
            "  --concurrency C           connections in setup at once (default 32)\n"
            "  --seconds S               timed phase / hold time (default 5)\n"
            "  --count N                 connect: stop after N connections\n"
            "  --tls 1.2|1.3             pin the TLS version\n"
            "  --resume                  connect: resume the previous session\n"
            "  --server-pid PID          report the server's CPU and RSS from /proc\n"
            "  --n N                     hold: connections (0 = as many as RLIMIT_NOFILE allows)\n"
            "  --qos 0|1 --size S --window W   publish: W PUBLISHes in flight per device\n"
            "                            (QoS 0: W batches of 64, each closed by a PINGREQ)\n"
            "  --keepalive S             MQTT keep-alive and PINGREQ period (default 60)\n"
            "  --sources K               rotate over K source addresses 127.0.0.1.. (0 = auto)\n"
            "  --timeout S               per-connection setup and drain timeout (default 15)\n"
            "  --username T --topic T    templates, {id} = device id\n");
}

static int parse_args(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--resume") == 0) {
            o.resume = true;
            takes = false;
        } else if (strcmp(a, "--quiet") == 0) {
            o.quiet = true;
            takes = false;
        } else if (v == NULL) {
            fprintf(stderr, "hubbench: %s needs a value\n", a);
            return -1;
        } else if (strcmp(a, "--host") == 0) {
            o.host = v;
        } else if (strcmp(a, "--port") == 0) {
            o.port = atoi(v);
        } else if (strcmp(a, "--ca") == 0) {
            o.ca_file = v;
        } else if (strcmp(a, "--pki") == 0) {
            o.pki_dir = v;
        } else if (strcmp(a, "--devices") == 0) {
            o.devices = atoi(v);
        } else if (strcmp(a, "--concurrency") == 0) {
            o.concurrency = atoi(v);
        } else if (strcmp(a, "--seconds") == 0) {
            o.seconds = atof(v);
        } else if (strcmp(a, "--count") == 0) {
            o.count = atol(v);
        } else if (strcmp(a, "--tls") == 0) {
            o.tls = strcmp(v, "1.2") == 0 ? 12 : strcmp(v, "1.3") == 0 ? 13 : -1;
        } else if (strcmp(a, "--server-pid") == 0) {
            o.server_pid = atol(v);
        } else if (strcmp(a, "--n") == 0) {
            o.hold_n = atoi(v);
        } else if (strcmp(a, "--qos") == 0) {
            o.qos = atoi(v);
        } else if (strcmp(a, "--size") == 0) {
            o.size_bytes = atoi(v);
        } else if (strcmp(a, "--window") == 0) {
            o.window = atoi(v);
        } else if (strcmp(a, "--keepalive") == 0) {
            o.keepalive_s = atoi(v);
        } else if (strcmp(a, "--sources") == 0) {
            o.sources = atoi(v);
        } else if (strcmp(a, "--timeout") == 0) {
            o.timeout_s = atof(v);
        } else if (strcmp(a, "--username") == 0) {
            o.username = v;
        } else if (strcmp(a, "--topic") == 0) {
            o.topic = v;
        } else {
            fprintf(stderr, "hubbench: unknown option %s\n", a);
            return -1;
        }
        if (takes)
            i++;
    }
    if (o.pki_dir == NULL || o.devices < 1 || o.concurrency < 1 || o.seconds < 0 || o.tls < 0 ||
        o.port < 1 || o.port > 65535 || (o.qos != 0 && o.qos != 1) || o.size_bytes < 0 ||
        o.size_bytes > 256 * 1024 || o.window < 1 || o.window > 16384 || o.keepalive_s < 1 ||
        o.keepalive_s > 65535 || o.hold_n < 0 || o.sources < 0 || o.sources > 250) {
        fprintf(stderr, "hubbench: bad or missing option (--pki is required)\n");
        return -1;
    }
    return 0;
}

/* Raises the soft fd limit to the hard one; returns the soft limit. */
static long fd_limit_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

static long ephemeral_ports(void)
{
    long lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &lo, &hi) != 2) {
            lo = 32768;
            hi = 60999;
        }
        fclose(f);
    }
    return hi - lo + 1;
}

static SSL_CTX *client_ctx_new(void)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (c == NULL)
        return NULL;
    int v = o.tls == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(c, o.tls ? v : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(c, o.tls ? v : TLS1_3_VERSION);
    /* Thousands of idle client connections: no read/write buffers while idle. */
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o.ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(c, o.ca_file, NULL) != 1) {
            fprintf(stderr, "hubbench: cannot load CA file %s\n", o.ca_file);
            SSL_CTX_free(c);
            return NULL;
        }
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    }
    /* Sessions live in struct device, not in OpenSSL's cache: an unclean
     * close would otherwise evict them from the internal store. */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, new_session);
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 1;
    }
    if (strcmp(argv[1], "mkpki") == 0)
        return hubbench_mkpki_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "chain") == 0)
        return hubbench_chain_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "connect") == 0)
        o.mode = M_CONNECT;
    else if (strcmp(argv[1], "hold") == 0)
        o.mode = M_HOLD;
    else if (strcmp(argv[1], "publish") == 0)
        o.mode = M_PUBLISH;
    else {
        usage();
        return 1;
    }
    if (parse_args(argc, argv) != 0) {
        usage();
        return 1;
    }
    struct in_addr dst;
    if (inet_pton(AF_INET, o.host, &dst) != 1) {
        fprintf(stderr, "hubbench: --host must be an IPv4 address\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    long fds = fd_limit_raise();
    int need = o.devices;
    if (o.mode == M_HOLD) {
        long most = fds - 32; /* stdio, epoll, files being read */
        if (o.hold_n == 0)
            o.hold_n = (int)(most < o.devices ? most : o.devices);
        if (o.hold_n > most) {
            fprintf(stderr, "hubbench: hold --n %d exceeds RLIMIT_NOFILE (%ld) less 32\n", o.hold_n,
                    fds);
            return 1;
        }
        if (o.hold_n > o.devices) {
            /* One device id per connection: a second connection with the
             * same id would take the first one over. */
            fprintf(stderr, "hubbench: hold --n %d needs as many devices (--devices %d)\n",
                    o.hold_n, o.devices);
            return 1;
        }
        need = o.hold_n;
    } else if (o.concurrency > o.devices) {
        o.concurrency = o.devices; /* never two connections of one device at once */
    }
    if (o.sources == 0) {
        /* Loopback only: 127.0.0.1, .2, ... each have a full ephemeral range
         * toward the server. More than one whenever the connections (or a
         * connect run's TIME_WAITs) could exhaust a single range. */
        long per = ephemeral_ports() * 8 / 10;
        long want = o.mode == M_HOLD ? o.hold_n : 20000;
        o.sources = (int)(want / per + 1);
    }
    if ((ntohl(dst.s_addr) >> 24) != 127)
        o.sources = 1;
    inet_pton(AF_INET, "127.0.0.1", &run.src_base);
    conns_cap = (size_t)fds + 64;
    conns = calloc(conns_cap, sizeof(*conns));
    ep = epoll_create1(EPOLL_CLOEXEC);
    ex_conn = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ctx = client_ctx_new();
    if (conns == NULL || ep < 0 || ctx == NULL)
        return 1;
    double t0 = now_s();
    if (devices_load(o.pki_dir, need) != 0)
        return 1;
    if (!o.quiet)
        printf("hubbench: %d devices loaded in %.1f s\n", dev_count, now_s() - t0);
    int rc = o.mode == M_CONNECT ? mode_connect() : o.mode == M_HOLD ? mode_hold() : mode_publish();
    /* Let close_notify and DISCONNECTs leave before the process exits. */
    double end = now_s() + 0.2;
    while (now_s() < end)
        loop_once(20);
    return rc;
}

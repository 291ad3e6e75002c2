/*
 * Harness for programs that drive a storage backend through the contract
 * (fa_storage.h) only: test_storage_contract.c and test_storage_bench.c.
 *
 * It writes a configuration into a temporary directory, loads it in
 * test-only mode (no listeners), opens the stores, and runs each operation
 * to completion by spinning the event loop.  The backend is whatever the
 * configuration fragment in FACTEUR_STORAGE_CONF_SNIPPET selects
 * ("%%DIR%%" is replaced by the temporary directory), by default the LMDB
 * one; a fragment may start with load_module for a plugin.
 * FACTEUR_TEST_KEEP=1 keeps the directory.  (Functions are static inline
 * so that a program may use only some of them.)
 */

#ifndef FA_STORAGE_TEST_H
#define FA_STORAGE_TEST_H

#include "fa_core.h"
#include "fa_storage.h"
#include <sys/wait.h>

#define T_DEFAULT_SNIPPET \
    "storage lmdb { path %%DIR%%/mail; map_size 1m; inline_max 64k; }\n"

extern fa_module_t  fa_core_module, fa_ssl_module, fa_storage_module;
extern fa_module_t  fa_lmdb_module __attribute__((weak));

static fa_cycle_t    *t_cycle;
static fa_storage_t  *t_st;
static fa_pool_t     *t_pool;
static char           t_dir[PATH_MAX];
static char           t_conf[PATH_MAX + 32];
static int            t_in_call;          /* a callback must not run inside the call */
static int            t_reentrant;        /* ... counted here when it does */

/* ---- set-up ---- */

static inline int
t_write_conf(const char *dir)
{
    const char  *snippet = getenv("FACTEUR_STORAGE_CONF_SNIPPET");
    FILE        *f;

    snippet = snippet && *snippet ? snippet : T_DEFAULT_SNIPPET;
    snprintf(t_conf, sizeof(t_conf), "%s/facteur.conf", dir);
    f = fopen(t_conf, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f, "error_log stderr warn;\n");
    for (const char *p = snippet; *p; p++) {
        if (strncmp(p, "%%DIR%%", 7) == 0) {
            fputs(dir, f);
            p += 6;
        } else {
            fputc(*p, f);
        }
    }
    fputc('\n', f);
    return fclose(f);
}

static fa_module_t  *t_modules[8];

/* load DIR/facteur.conf (written when WRITE) and open its stores */
static inline int
t_setup_dir(const char *dir, int write)
{
    char  *err = NULL, prefix[PATH_MAX + 2];
    int    n = 0;

    if (t_modules[0] == NULL) {
        t_modules[n++] = &fa_core_module;
        t_modules[n++] = &fa_ssl_module;
        t_modules[n++] = &fa_storage_module;
        if (&fa_lmdb_module != NULL) {
            t_modules[n++] = &fa_lmdb_module;
        }
        fa_modules_preinit(t_modules);
    }
    snprintf(t_dir, sizeof(t_dir), "%s", dir);
    if (write && t_write_conf(dir) != 0) {
        return -1;
    }
    snprintf(t_conf, sizeof(t_conf), "%s/facteur.conf", dir);
    snprintf(prefix, sizeof(prefix), "%s/", dir);
    t_cycle = fa_cycle_load(NULL, prefix, t_conf, 1, &err);
    if (t_cycle == NULL) {
        fprintf(stderr, "# configuration: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    fa_cycle = t_cycle;
    t_pool = fa_pool_create(16384, t_cycle->log);
    if (fa_event_init(t_cycle) != FA_OK || t_pool == NULL) {
        return -1;
    }
    t_st = fa_storage_get(t_cycle, NULL);
    if (t_st == NULL) {
        fprintf(stderr, "# the configuration has no storage block\n");
        return -1;
    }
    return fa_storage_open_all(t_cycle) == FA_OK ? 0 : -1;
}

static inline int
t_setup(void)
{
    char  tmpl[] = "/tmp/fa-storage-XXXXXX";

    if (mkdtemp(tmpl) == NULL) {
        return -1;
    }
    return t_setup_dir(tmpl, 1);
}

static inline void
t_teardown(int remove)
{
    char  cmd[PATH_MAX + 16];

    fa_storage_close_all(t_cycle);
    fa_pool_destroy(t_pool);
    fa_event_done(t_cycle);
    fa_cycle_free(t_cycle);
    if (remove && !getenv("FACTEUR_TEST_KEEP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "# could not remove %s\n", t_dir);
        }
    } else if (remove) {
        printf("# kept %s\n", t_dir);
    }
}

static inline fa_str_t
S(const char *text)
{
    fa_str_t  s = { strlen(text), (u_char *) text };
    return s;
}

static inline int
t_str_is(const fa_str_t *s, const char *text)
{
    return s->len == strlen(text) && memcmp(s->data, text, s->len) == 0;
}

static inline long
t_rss_kb(const char *field)
{
    char   line[256];
    long   kb = -1;
    FILE  *f = fopen("/proc/self/status", "r");

    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, strlen(field)) == 0) {
            kb = strtol(line + strlen(field), NULL, 10);
        }
    }
    fclose(f);
    return kb;
}

static inline double
t_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- running operations ---- */

typedef struct {
    int                    done;
    fa_int_t               rc;
    fa_mailbox_info_t     *boxes;
    fa_uint_t              n;
    fa_mailbox_status_t    status;
    fa_mailbox_t          *box;
    fa_message_meta_t     *msgs;
    fa_append_result_t     app;
    uint32_t               uidvalidity;
    fa_uid_set_t           src, dst;
    fa_mailbox_changes_t   ch;
    fa_quota_t             quota;
} t_res_t;

static inline void
t_guard(fa_event_t *ev)
{
    (void) ev;
}

/* one loop iteration that never sleeps longer than 50 ms */
static inline void
t_loop_once(void)
{
    fa_event_t  guard = { .handler = t_guard };

    fa_event_add_timer(&guard, 50);
    fa_event_process(t_cycle);
    fa_event_del_timer(&guard);
}

static inline void
t_spin_until(int *flag, double seconds)
{
    double  end = t_now() + seconds;

    while (!*flag && t_now() < end) {
        t_loop_once();
    }
}

/* the final status of an operation, however the backend completed it */
static inline fa_int_t
t_wait(t_res_t *r, fa_int_t rc)
{
    if (rc != FA_AGAIN) {
        if (r->done) {
            t_reentrant++;                 /* called back and returned a status */
        }
        r->rc = rc;
        return rc;
    }
    t_spin_until(&r->done, 120);
    return r->done ? r->rc : FA_ERROR;
}

static inline void
t_done(t_res_t *r, fa_int_t rc)
{
    if (t_in_call) {
        t_reentrant++;
    }
    r->done = 1;
    r->rc = rc;
}

static inline void
t_done_cb(void *data, fa_int_t rc)
{
    t_done(data, rc);
}

static inline void
t_list_cb(void *data, fa_int_t rc, fa_mailbox_info_t *boxes, fa_uint_t n)
{
    t_res_t  *r = data;

    r->boxes = boxes;
    r->n = n;
    t_done(r, rc);
}

/* copies the keyword table: a status without a pool lives for the callback only */
static inline void
t_status_copy(t_res_t *r, fa_mailbox_status_t *st)
{
    if (st == NULL) {
        return;
    }
    r->status = *st;
    r->status.keywords = fa_palloc(t_pool, (st->nkeywords + 1) * sizeof(fa_str_t));
    for (fa_uint_t i = 0; i < st->nkeywords; i++) {
        r->status.keywords[i].len = st->keywords[i].len;
        r->status.keywords[i].data = fa_pstrdup(t_pool, &st->keywords[i]);
    }
}

static inline void
t_status_cb(void *data, fa_int_t rc, fa_mailbox_status_t *st)
{
    t_status_copy(data, st);
    t_done(data, rc);
}

static inline void
t_open_cb(void *data, fa_int_t rc, fa_mailbox_t *box, fa_mailbox_status_t *st)
{
    t_res_t  *r = data;

    r->box = box;
    t_status_copy(r, st);
    t_done(r, rc);
}

static inline void
t_meta_cb(void *data, fa_int_t rc, fa_message_meta_t *msgs, fa_uint_t n)
{
    t_res_t  *r = data;

    r->msgs = msgs;
    r->n = n;
    t_done(r, rc);
}

static inline void
t_append_cb(void *data, fa_int_t rc, fa_append_result_t *res)
{
    t_res_t  *r = data;

    if (res) {
        r->app = *res;
    }
    t_done(r, rc);
}

static inline void
t_copy_cb(void *data, fa_int_t rc, uint32_t uidvalidity, fa_uid_set_t *src,
    fa_uid_set_t *dst)
{
    t_res_t  *r = data;

    r->uidvalidity = uidvalidity;
    if (src && dst) {
        r->src = *src;
        r->dst = *dst;
    }
    t_done(r, rc);
}

static inline void
t_changes_cb(void *data, fa_int_t rc, fa_mailbox_changes_t *ch)
{
    t_res_t  *r = data;

    if (ch) {
        r->ch = *ch;
    }
    t_done(r, rc);
}

static inline void
t_quota_cb(void *data, fa_int_t rc, fa_quota_t *q)
{
    t_res_t  *r = data;

    if (q) {
        r->quota = *q;
    }
    t_done(r, rc);
}

static inline fa_int_t
t_returned(fa_int_t rc)
{
    t_in_call = 0;
    return rc;
}

/* CALL runs with t_in_call set: a callback from inside it is counted */
#define T_CALL(r, call)                                                       \
    (memset((r), 0, sizeof(*(r))), t_in_call = 1, t_wait((r), t_returned(call)))

#define B  (t_st->backend)

static inline fa_int_t
t_create(const char *user, const char *name, uint32_t use)
{
    fa_str_t  u = S(user), n = S(name);
    t_res_t   r;

    return T_CALL(&r, B->mailbox_create(t_st, &u, &n, use, t_done_cb, &r));
}

static inline fa_int_t
t_delete(const char *user, const char *name)
{
    fa_str_t  u = S(user), n = S(name);
    t_res_t   r;

    return T_CALL(&r, B->mailbox_delete(t_st, &u, &n, t_done_cb, &r));
}

static inline fa_int_t
t_rename(const char *user, const char *from, const char *to)
{
    fa_str_t  u = S(user), f = S(from), t = S(to);
    t_res_t   r;

    return T_CALL(&r, B->mailbox_rename(t_st, &u, &f, &t, t_done_cb, &r));
}

static inline fa_int_t
t_subscribe(const char *user, const char *name, int on)
{
    fa_str_t  u = S(user), n = S(name);
    t_res_t   r;

    return T_CALL(&r, B->mailbox_subscribe(t_st, &u, &n, on, t_done_cb, &r));
}

static inline fa_int_t
t_list(const char *user, t_res_t *r)
{
    fa_str_t  u = S(user);

    return T_CALL(r, B->mailbox_list(t_st, &u, t_pool, t_list_cb, r));
}

/* the entry for NAME in a list result, or NULL */
static inline fa_mailbox_info_t *
t_listed(t_res_t *r, const char *name)
{
    for (fa_uint_t i = 0; i < r->n; i++) {
        if (t_str_is(&r->boxes[i].name, name)) {
            return &r->boxes[i];
        }
    }
    return NULL;
}

static inline fa_int_t
t_status(const char *user, const char *name, fa_mailbox_status_t *st)
{
    fa_str_t  u = S(user), n = S(name);
    t_res_t   r;
    fa_int_t  rc = T_CALL(&r, B->mailbox_status(t_st, &u, &n, t_status_cb, &r));

    *st = r.status;
    return rc;
}

static inline fa_int_t
t_open(const char *user, const char *name, fa_mailbox_t **box, fa_mailbox_status_t *st)
{
    fa_str_t  u = S(user), n = S(name);
    t_res_t   r;
    fa_int_t  rc = T_CALL(&r, B->mailbox_open(t_st, &u, &n, t_pool, t_open_cb, &r));

    *box = r.box;
    if (st) {
        *st = r.status;
    }
    return rc;
}

static inline fa_int_t
t_quota_set(const char *user, uint64_t bytes, uint64_t messages)
{
    fa_str_t    u = S(user);
    fa_quota_t  q = { 0, bytes, 0, messages };
    t_res_t     r;

    return T_CALL(&r, B->quota_set(t_st, &u, &q, t_done_cb, &r));
}

static inline fa_int_t
t_quota_get(const char *user, fa_quota_t *q)
{
    fa_str_t  u = S(user);
    t_res_t   r;
    fa_int_t  rc = T_CALL(&r, B->quota_get(t_st, &u, t_quota_cb, &r));

    *q = r.quota;
    return rc;
}

static inline fa_int_t
t_fetch(fa_mailbox_t *box, uint32_t first, uint32_t last, t_res_t *r)
{
    fa_uid_range_t  range = { first, last };
    fa_uid_set_t    set = { &range, 1 };

    return T_CALL(r, B->fetch_meta(box, &set, t_pool, t_meta_cb, r));
}

static inline fa_int_t
t_changes(fa_mailbox_t *box, uint64_t modseq, t_res_t *r)
{
    return T_CALL(r, B->changes_since(box, modseq, t_pool, t_changes_cb, r));
}

/* ---- message contents: a reproducible stream per seed ---- */

typedef struct {
    uint64_t  s;
} t_rng_t;

static inline uint64_t
t_rng(t_rng_t *g)
{
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return g->s;
}

/* printable text with line breaks, like mail */
static inline void
t_fill(t_rng_t *g, u_char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = t_rng(g);
        buf[i] = (v & 0x3f) == 0 ? '\n' : (u_char) (' ' + (v >> 8) % 95);
    }
}

static u_char  t_chunk[256 * 1024];

/* append SIZE bytes of stream SEED in chunks of random sizes up to MAXCHUNK */
static inline fa_int_t
t_append_stream(const char *user, const char *name, uint64_t seed, uint64_t size,
    size_t maxchunk, uint32_t flags, time_t date, uint64_t hint, fa_append_result_t *res)
{
    fa_str_t              u = S(user), n = S(name);
    fa_append_request_t   req;
    fa_append_t          *a;
    t_rng_t               data = { seed * 2654435761u + 1 }, sizes = { seed + 77 };
    t_res_t               r;
    fa_int_t              rc;

    memset(&req, 0, sizeof(req));
    req.flags = flags;
    req.internal_date = date;
    req.size_hint = hint;
    rc = B->append_begin(t_st, &u, &n, &req, &a);
    if (rc != FA_OK) {
        return rc;
    }
    for (uint64_t done = 0; done < size; ) {
        size_t len = 1 + t_rng(&sizes) % fa_min(maxchunk, sizeof(t_chunk));
        len = (size_t) fa_min((uint64_t) len, size - done);
        t_fill(&data, t_chunk, len);
        rc = B->append_write(a, t_chunk, len);
        if (rc != FA_OK) {
            B->append_abort(a);
            return rc;
        }
        done += len;
    }
    rc = T_CALL(&r, B->append_commit(a, t_append_cb, &r));
    if (res) {
        *res = r.app;
    }
    return rc;
}

static inline fa_int_t
t_append(const char *user, const char *name, uint64_t seed, uint64_t size,
    fa_append_result_t *res)
{
    return t_append_stream(user, name, seed, size, 4096, 0, 0, 0, res);
}

/* read the message back in chunks of random sizes and compare with its stream */
static inline int
t_read_matches(fa_mailbox_t *box, uint32_t uid, uint64_t seed, uint64_t size)
{
    static u_char     got[256 * 1024];
    fa_msg_stream_t  *m;
    t_rng_t           data = { seed * 2654435761u + 1 }, sizes = { seed + 99 };
    uint64_t          off = 0;
    ssize_t           n;
    int               same = 1;

    if (B->message_open(box, uid, &m) != FA_OK) {
        return 0;
    }
    for ( ;; ) {
        size_t want = 1 + t_rng(&sizes) % sizeof(got);
        t_res_t r = { 0 };
        n = B->message_read(m, off, got, want, t_done_cb, &r);
        if (n == FA_AGAIN) {               /* a backend that reads over a network */
            t_spin_until(&r.done, 60);
            continue;
        }
        if (n <= 0) {
            break;
        }
        t_fill(&data, t_chunk, (size_t) n);
        same = same && memcmp(got, t_chunk, (size_t) n) == 0;
        off += (uint64_t) n;
    }
    B->message_close(m);
    return same && n == 0 && off == size;
}

#endif /* FA_STORAGE_TEST_H */

/*
 * Logins (see fa_auth_login.h).
 *
 * A login is a malloc'd handle that travels loop -> pool thread -> loop as a
 * thread pool task.  The loop decides, before anything is hashed, which hash
 * the password is checked against (the user's, or the dummy one) and
 * whether a match counts (real); the thread only verifies.  Everything
 * about a login is touched by one thread at a time: the pool's queues hand
 * it over under their mutex, and cancelling only clears fields the thread
 * never reads.
 */

#include "fa_core.h"
#include "fa_auth_directory.h"
#include "fa_auth_password.h"
#include "fa_auth_login.h"

#define FA_AUTH_LOGIN_THREADS  2

/* what the dummy hash is made from: nobody can log in with it (real is 0) */
#define FA_AUTH_LOGIN_DUMMY    "facteur: no such user"

fa_uint_t  fa_auth_login_queue_max = 1024;

/* one per worker process; only the loop thread writes it after init */
typedef struct {
    char              *path;          /* of the directory */
    fa_auth_dir_t     *dir;           /* NULL until the directory exists */
    fa_thread_pool_t  *threads;       /* NULL: no login service here */
    fa_pool_t         *scratch;       /* the lookup's copies, reset after it */
    fa_log_t          *log;
    fa_queue_t         running;       /* handles given to the pool */
    char               dummy[FA_AUTH_PASSWORD_HASH_SIZE];
    size_t             dummy_len;
} fa_auth_login_ctx_t;

static fa_auth_login_ctx_t  fa_auth_login_ctx;

struct fa_auth_login_s {
    fa_task_t          task;
    fa_queue_t         link;          /* in fa_auth_login_ctx.running */
    fa_auth_login_pt   cb;            /* NULL once cancelled */
    void              *data;
    fa_log_t          *log;
    char              *password;      /* malloc'd; wiped and freed after use */
    size_t             password_len;
    const char        *stored;        /* hash[] or the dummy hash */
    size_t             stored_len;
    fa_int_t           rc;            /* of the verification */
    unsigned           real:1;        /* an enabled user: the result counts */
    unsigned           in_call:1;     /* inside fa_auth_login(): answers are posted */
    unsigned           in_source:1;   /* the source's check or admit runs */
    unsigned           admitting:1;   /* past the check: the source's admit */
    fa_str_t           user;
    u_char             user_buf[FA_AUTH_ADDRESS_MAX + 1];
    char               hash[FA_AUTH_PASSWORD_STORED_MAX + 1];
    /* the login source's part */
    fa_event_t         ev;            /* an answer given inside fa_auth_login() */
    fa_auth_client_t   client;
    char               ip[64];
    void              *source_state;
    u_char             login[FA_AUTH_ADDRESS_MAX + 1];   /* kept for the directory */
    size_t             login_len;     /* > FA_AUTH_ADDRESS_MAX: no such user */
};

static const fa_auth_source_t  *fa_auth_source;

static void fa_auth_login_work(fa_task_t *task);
static void fa_auth_login_done(fa_task_t *task);

static void
fa_auth_login_wipe_password(fa_auth_login_t *h)
{
    if (h->password) {
        explicit_bzero(h->password, h->password_len);
        free(h->password);
        h->password = NULL;
    }
}

static void
fa_auth_login_free(fa_auth_login_t *h)
{
    fa_auth_login_wipe_password(h);
    explicit_bzero(h, sizeof(*h));            /* the user's hash */
    free(h);
}

static fa_auth_login_t *
fa_auth_login_new(const fa_str_t *password, fa_log_t *log, fa_auth_login_pt cb, void *data)
{
    fa_auth_login_t  *h = fa_calloc(sizeof(fa_auth_login_t), log);

    if (h == NULL) {
        return NULL;
    }
    h->password = fa_alloc(password->len + 1, log);
    if (h->password == NULL) {
        free(h);
        return NULL;
    }
    if (password->len) {
        memcpy(h->password, password->data, password->len);
    }
    h->password_len = password->len;
    h->task.work = fa_auth_login_work;
    h->task.done = fa_auth_login_done;
    h->task.data = h;
    h->cb = cb;
    h->data = data;
    h->log = log;
    h->stored = fa_auth_login_ctx.dummy;
    h->stored_len = fa_auth_login_ctx.dummy_len;
    return h;
}

/* what no stored hash can match: decided before the lookup, so it tells nothing */
static int
fa_auth_login_password_valid(const fa_str_t *password)
{
    return password->len > 0 && password->len <= FA_AUTH_PASSWORD_MAX
           && memchr(password->data, '\0', password->len) == NULL;
}

/* opened at init if it existed then; otherwise at the first login after */
static fa_int_t
fa_auth_login_dir(void)
{
    fa_auth_login_ctx_t  *ctx = &fa_auth_login_ctx;

    if (ctx->dir == NULL) {
        ctx->dir = fa_auth_dir_open(ctx->path, 1, ctx->log);
    }
    return ctx->dir ? FA_OK : FA_ERROR;
}

/*
 * The worker's read-only directory handle, for the protocol modules'
 * lookups (local domains, recipients): one handle per worker, opened on
 * first use.  NULL when there is no directory (yet), logged.
 */
fa_auth_dir_t *
fa_auth_worker_dir(void)
{
    if (fa_auth_login_ctx.path == NULL) {
        return NULL;                     /* not in a worker */
    }
    return fa_auth_login_dir() == FA_OK ? fa_auth_login_ctx.dir : NULL;
}

static void
fa_auth_login_set_user(fa_auth_login_t *h, const fa_auth_user_t *u)
{
    size_t  n = u->password.len;

    /* longer than any usable value: verifying an empty one gives FA_ERROR */
    n = n <= FA_AUTH_PASSWORD_STORED_MAX ? n : 0;
    memcpy(h->hash, u->password.data, n);
    h->stored = h->hash;
    h->stored_len = n;
    memcpy(h->user_buf, u->address.data, u->address.len);
    h->user.data = h->user_buf;
    h->user.len = u->address.len;
    h->real = 1;
}

/*
 * In the loop: FA_OK with h pointing at the hash to verify (the dummy one
 * unless an enabled user answers to the login exactly), FA_ERROR if the
 * directory cannot be read.
 */
static fa_int_t
fa_auth_login_lookup(fa_auth_login_t *h, const fa_str_t *login, const fa_str_t *password)
{
    fa_auth_login_ctx_t  *ctx = &fa_auth_login_ctx;
    fa_auth_user_t        u;
    fa_str_t              addr;
    fa_int_t              rc;

    if (!fa_auth_login_password_valid(password)
        || fa_auth_address_normalize(ctx->scratch, login, &addr) != FA_OK
        || addr.data[0] == '@')               /* a catch-all is nobody's login */
    {
        return FA_OK;
    }
    if (fa_auth_login_dir() != FA_OK) {
        return FA_ERROR;
    }
    rc = fa_auth_user_get(ctx->dir, &addr, ctx->scratch, &u);
    if (rc == FA_AUTH_NOTFOUND || rc == FA_AUTH_INVALID) {
        return FA_OK;
    }
    if (rc != FA_OK) {
        return FA_ERROR;
    }
    if (!u.disabled) {
        fa_auth_login_set_user(h, &u);
    }
    return FA_OK;
}

/* look the login up and hand the verification to a pool thread */
static fa_int_t
fa_auth_login_directory(fa_auth_login_t *h)
{
    fa_auth_login_ctx_t  *ctx = &fa_auth_login_ctx;
    fa_str_t              login = { h->login_len, h->login };
    fa_str_t              password = { h->password_len, (u_char *) h->password };
    fa_int_t              rc;

    if (h->login_len > FA_AUTH_ADDRESS_MAX) {
        login.len = 0;                        /* no user has it: the dummy hash */
    }
    rc = fa_auth_login_lookup(h, &login, &password);
    fa_pool_reset(ctx->scratch);
    if (rc == FA_OK) {
        rc = fa_thread_pool_post(ctx->threads, &h->task);
    }
    return rc;
}

static void
fa_auth_login_answer(fa_auth_login_t *h)
{
    fa_queue_remove(&h->link);
    if (h->cb) {
        h->cb(h->data, h->rc, h->rc == FA_OK ? &h->user : NULL);
    }
    fa_auth_login_free(h);
}

static void
fa_auth_login_posted(fa_event_t *ev)
{
    fa_auth_login_answer(ev->data);
}

/* the final answer: now from the loop, or posted when inside fa_auth_login() */
static void
fa_auth_login_deliver(fa_auth_login_t *h, fa_int_t rc)
{
    h->rc = rc == FA_OK || rc == FA_DECLINED ? rc : FA_ERROR;
    if (h->in_call) {
        h->ev.data = h;
        h->ev.handler = fa_auth_login_posted;
        h->ev.log = h->log;
        fa_event_post(&h->ev);
        return;
    }
    fa_auth_login_answer(h);
}

/*
 * The account a source named: an enabled user of the directory, as a
 * password login's is.  A source maps logins to mailboxes; it does not make
 * new ones, nor bring a disabled user back.  FA_OK (h->user is set),
 * FA_DECLINED for a disabled user, FA_ERROR for a name that is not an
 * address or not a user (the source's mistake: a temporary failure, never
 * a login) or a directory that cannot be read.
 */
static fa_int_t
fa_auth_login_source_user(fa_auth_login_t *h, const fa_str_t *user)
{
    fa_auth_login_ctx_t  *ctx = &fa_auth_login_ctx;
    fa_str_t              name = user && user->len ? *user
                                 : (fa_str_t) { h->login_len, h->login };
    fa_str_t              addr;
    fa_auth_user_t        u;
    const char           *why = "which is not an address";
    fa_int_t              rc = FA_ERROR;

    if (name.len <= FA_AUTH_ADDRESS_MAX
        && fa_auth_address_normalize(ctx->scratch, &name, &addr) == FA_OK
        && addr.data[0] != '@' && addr.len <= FA_AUTH_ADDRESS_MAX)
    {
        why = "and the directory cannot be read";
        if (fa_auth_login_dir() == FA_OK) {
            rc = fa_auth_user_get(ctx->dir, &addr, ctx->scratch, &u);
            why = rc == FA_AUTH_NOTFOUND || rc == FA_AUTH_INVALID
                  ? "which is not a user of the directory"
                  : rc != FA_OK ? "and the directory cannot be read"
                  : u.disabled ? "a disabled user" : NULL;
        }
        if (why == NULL) {
            memcpy(h->user_buf, u.address.data, u.address.len);
            h->user.data = h->user_buf;
            h->user.len = u.address.len;
        }
        rc = why == NULL ? FA_OK : rc == FA_OK ? FA_DECLINED : FA_ERROR;
    }
    if (why) {
        char  l[100], n[100];
        /* what the client and the script sent: control bytes escaped */
        fa_log_error(rc == FA_DECLINED ? FA_LOG_INFO : FA_LOG_ERR, h->log, 0,
                     "login: the login source accepted \"%s\" as \"%s\", %s: refused",
                     fa_log_printable((char *) h->login, fa_min(h->login_len, 64), l, sizeof(l)),
                     fa_log_printable((char *) name.data, fa_min(name.len, 64), n, sizeof(n)),
                     why);
    }
    fa_pool_reset(ctx->scratch);
    return rc;
}

/* a login succeeded or failed: the source's admit has its say on success */
static void
fa_auth_login_result(fa_auth_login_t *h, fa_int_t rc)
{
    const fa_auth_source_t  *src = fa_auth_source;

    if (rc == FA_OK && src && src->admit && h->client.protocol) {
        h->admitting = 1;
        rc = src->admit(h, &h->client, &h->user, h->log, &h->source_state);
        if (rc == FA_AGAIN) {
            h->in_source = 1;
            return;
        }
    }
    fa_auth_login_deliver(h, rc);
}

void
fa_auth_source_set(const fa_auth_source_t *source)
{
    fa_auth_source = source;
}

/* a source's late answer, from the loop */
void
fa_auth_source_done(fa_auth_login_t *h, fa_int_t rc, const fa_str_t *user)
{
    h->in_source = 0;
    h->source_state = NULL;
    if (h->admitting) {
        fa_auth_login_deliver(h, rc);
    } else if (rc == FA_DONE) {
        if (fa_auth_login_directory(h) != FA_OK) {
            fa_auth_login_deliver(h, FA_ERROR);
        }
    } else if (rc == FA_OK) {
        fa_auth_login_result(h, fa_auth_login_source_user(h, user));
    } else {
        fa_auth_login_deliver(h, rc);
    }
}

void
fa_auth_logout(const fa_auth_client_t *client, const fa_str_t *user)
{
    if (fa_auth_source && fa_auth_source->logout && user->len) {
        fa_auth_source->logout(client, user);
    }
}

fa_int_t
fa_auth_login(const fa_auth_client_t *client, const fa_str_t *login, const fa_str_t *password,
    fa_log_t *log, fa_auth_login_pt cb, void *data, fa_auth_login_t **handle)
{
    fa_auth_login_ctx_t      *ctx = &fa_auth_login_ctx;
    const fa_auth_source_t   *src = fa_auth_source;
    fa_auth_login_t          *h;
    fa_str_t                  user = fa_null_string;
    fa_int_t                  rc = FA_DONE;

    if (handle) {
        *handle = NULL;
    }
    if (ctx->threads == NULL) {
        fa_log_error(FA_LOG_ERR, log, 0, "login: the auth module does not run in this process");
        return FA_ERROR;
    }
    if ((h = fa_auth_login_new(password, log, cb, data)) == NULL) {
        return FA_ERROR;
    }
    h->login_len = login->len;
    if (login->len <= FA_AUTH_ADDRESS_MAX) {
        memcpy(h->login, login->data, login->len);
    }
    if (client) {
        h->client.protocol = client->protocol;
        fa_snprintf(h->ip, sizeof(h->ip), "%s", client->ip ? client->ip : "");
        h->client.ip = h->ip;
    }
    h->in_call = 1;
    if (src && src->check && client) {
        rc = src->check(h, &h->client, login, password, log, &user, &h->source_state);
        if (rc == FA_AGAIN) {
            h->in_source = 1;
        } else if (rc == FA_OK) {
            fa_auth_login_result(h, fa_auth_login_source_user(h, &user));
        } else if (rc != FA_DONE) {
            fa_auth_login_deliver(h, rc);
        }
    }
    if (rc == FA_DONE && (rc = fa_auth_login_directory(h)) != FA_OK) {
        fa_auth_login_free(h);
        return rc;
    }
    h->in_call = 0;
    fa_queue_insert_tail(&ctx->running, &h->link);   /* answered later, from the loop */
    if (handle) {
        *handle = h;
    }
    return FA_AGAIN;
}

/* in a pool thread */
static void
fa_auth_login_work(fa_task_t *task)
{
    fa_auth_login_t      *h = task->data;
    fa_auth_login_ctx_t  *ctx = &fa_auth_login_ctx;

    h->rc = fa_auth_password_verify(h->stored, h->stored_len, h->password, h->password_len, 0);
    if (h->rc == FA_ERROR && h->real) {
        /* an unusable hash is refused at once: spend a verification anyway */
        (void) fa_auth_password_verify(ctx->dummy, ctx->dummy_len, h->password,
                                       h->password_len, 0);
    }
    fa_auth_login_wipe_password(h);
}

/* the reason is the scheme parser's: it never quotes the hash or a password */
static void
fa_auth_login_log_unusable(fa_auth_login_t *h)
{
    fa_auth_password_info_t  info;
    char                     err[256] = "stored value empty or too long";

    if (h->stored_len) {
        (void) fa_auth_password_check(h->stored, h->stored_len, 0, &info, err, sizeof(err));
    }
    fa_log_error(FA_LOG_ERR, h->log, 0, "login of \"%.*s\" refused: unusable stored "
                 "password: %s", (int) h->user.len, h->user.data, err);
}

/* in the loop */
static void
fa_auth_login_done(fa_task_t *task)
{
    fa_auth_login_t  *h = task->data;
    fa_int_t          rc;

    if (h->cb == NULL) {
        fa_queue_remove(&h->link);       /* cancelled while it ran */
        fa_auth_login_free(h);
        return;
    }
    rc = h->real ? h->rc : FA_DECLINED;
    if (rc != FA_OK && rc != FA_DECLINED) {
        fa_auth_login_log_unusable(h);
        rc = FA_ERROR;
    }
    fa_auth_login_result(h, rc);
}

void
fa_auth_login_cancel(fa_auth_login_t *h)
{
    if (h == NULL) {
        return;
    }
    if (h->in_source || h->ev.posted) {
        /* not in a pool thread: it can go now */
        if (h->in_source && fa_auth_source && fa_auth_source->cancel) {
            fa_auth_source->cancel(h->source_state);
        }
        if (h->ev.posted) {
            fa_event_delete_posted(&h->ev);
        }
        fa_queue_remove(&h->link);
        fa_auth_login_free(h);
        return;
    }
    h->cb = NULL;                     /* done() still frees it, after the thread */
    h->log = NULL;
}

static int
fa_auth_login_dir_exists(const char *path)
{
    char         file[PATH_MAX];
    struct stat  st;

    fa_snprintf(file, sizeof(file), "%s/data.mdb", path);
    return stat(file, &st) == 0;
}

fa_int_t
fa_auth_login_init_worker(const char *dir_path, fa_log_t *log)
{
    fa_auth_login_ctx_t  *ctx = &fa_auth_login_ctx;

    memset(ctx, 0, sizeof(*ctx));
    ctx->log = log;
    fa_queue_init(&ctx->running);
    /* once per worker, not per login: it costs as much as a login */
    if (fa_auth_password_hash(FA_AUTH_LOGIN_DUMMY, sizeof(FA_AUTH_LOGIN_DUMMY) - 1,
                              ctx->dummy, sizeof(ctx->dummy)) != FA_OK)
    {
        fa_log_error(FA_LOG_EMERG, log, 0, "login: cannot make a yescrypt hash");
        return FA_ERROR;
    }
    ctx->dummy_len = strlen(ctx->dummy);
    ctx->path = strdup(dir_path);
    ctx->scratch = fa_pool_create(4096, log);
    ctx->threads = fa_thread_pool_create(FA_AUTH_LOGIN_THREADS, fa_auth_login_queue_max, log);
    if (ctx->path == NULL || ctx->scratch == NULL || ctx->threads == NULL) {
        fa_auth_login_exit_worker();
        return FA_ERROR;
    }
    if (fa_auth_login_dir_exists(dir_path)) {
        (void) fa_auth_login_dir();       /* a failure is logged; retried per login */
    }
    return FA_OK;
}

void
fa_auth_login_exit_worker(void)
{
    fa_auth_login_ctx_t  *ctx = &fa_auth_login_ctx;
    fa_queue_t           *q;

    if (ctx->threads) {
        /* no session is left to call back: the logins still running just end */
        for (q = fa_queue_head(&ctx->running); q != fa_queue_sentinel(&ctx->running); ) {
            fa_queue_t *next = fa_queue_next(q);
            fa_auth_login_cancel(fa_queue_data(q, fa_auth_login_t, link));
            q = next;
        }
        fa_thread_pool_destroy(ctx->threads);     /* runs their done(): frees them */
    }
    fa_auth_dir_close(ctx->dir);
    fa_pool_destroy(ctx->scratch);
    free(ctx->path);
    explicit_bzero(ctx, sizeof(*ctx));
}

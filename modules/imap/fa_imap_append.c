/*
 * APPEND, with MULTIAPPEND (RFC 3502), UIDPLUS's APPENDUID, BINARY's
 * literal8 and APPENDLIMIT.
 *
 *   tag APPEND mailbox [(flags)] [date-time] {n}  message  [(flags) [date] {n} message]...
 *
 * The session collects the command as usual until a line ends with a
 * literal; if that literal is a message (the mailbox name came before
 * it), fa_imap_append_literal takes over: it opens an append in the store
 * and the literal's bytes stream into it (fa_imap_read_stream), so a
 * 50 MB message never sits in memory.  Each message is committed when its
 * last byte is in; the session meanwhile reads the rest of the command
 * line (the next message, or its end), and the tagged reply waits until
 * every commit answered.  A message over max_message_size is refused
 * before a byte of it is read ([TOOBIG]) when the client waits for "+";
 * a non-synchronizing one is read and dropped.
 *
 * Messages of one MULTIAPPEND are committed one by one: a failure of a
 * later one leaves the earlier ones in place (the reply says NO).
 */

#include "fa_imap_int.h"

typedef struct {
    fa_imap_session_t *s;             /* NULL once the command is gone */
    fa_str_t         mailbox;
    fa_append_t     *a;               /* the message being written */
    fa_uint_t        pending;         /* commits in flight */
    fa_uint_t        count;           /* messages */
    fa_int_t         rc;              /* the first failure */
    const char      *why;             /* its text, when not the store's */
    uint32_t         uidvalidity;
    uint32_t        *uids;            /* APPENDUID, malloc'd */
    fa_uint_t        nuids, size;
    unsigned         ended:1;         /* the command's last line is in */
} fa_imap_append_t;

static fa_int_t fa_imap_append_bytes(fa_imap_session_t *s, const u_char *p, size_t n,
    int last);
static void fa_imap_append_complete(fa_imap_session_t *s);

/* "17-Jul-1996 02:44:25 -0700" -> time_t; -1 if malformed */
static time_t
fa_imap_date_time(const fa_str_t *s)
{
    char       buf[64];
    struct tm  tm;
    char      *end;
    int        sign, hh, mm;

    if (s->len < 26 || s->len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s->data, s->len);
    buf[s->len] = '\0';
    memset(&tm, 0, sizeof(tm));
    end = strptime(buf[0] == ' ' ? buf + 1 : buf, "%d-%b-%Y %H:%M:%S ", &tm);
    if (end == NULL || (end[0] != '+' && end[0] != '-') || strlen(end) != 5) {
        return -1;
    }
    sign = end[0] == '-' ? -1 : 1;
    if (sscanf(end + 1, "%2d%2d", &hh, &mm) != 2) {
        return -1;
    }
    return timegm(&tm) - sign * (hh * 3600 + mm * 60);
}

/* the last "{n}\r\n" or "~{n}\r\n" of the buffer: where the arguments end */
static size_t
fa_imap_append_args_end(fa_imap_session_t *s)
{
    size_t  i = s->len;

    while (i > 0 && s->buf[i - 1] != '{') {
        i--;
    }
    if (i > 1 && s->buf[i - 2] == '~') {
        i--;
    }
    return i ? i - 1 : 0;
}

/*
 * Refuse this message.  When the client waits for "+", NO now and the
 * literal never comes; otherwise its bytes are read and dropped and the NO
 * comes with the command's end.
 */
static fa_int_t
fa_imap_append_refuse(fa_imap_session_t *s, fa_int_t rc, int sync, uint64_t size,
    const char *text)
{
    fa_imap_append_t  *ap = s->cmd->data;

    s->len = 0;
    if (ap->rc == FA_OK) {
        ap->rc = rc ? rc : FA_STORAGE_INVALID;
        ap->why = text;
    }
    ap->a = NULL;
    if (!sync) {
        fa_imap_read_stream(s, size, fa_imap_append_bytes);
        return FA_OK;
    }
    /* the client sends nothing more for this command: the end is now */
    ap->ended = 1;
    if (ap->pending) {
        s->input = FA_IMAP_IN_BUSY;     /* the last commit answers */
        return FA_OK;
    }
    fa_imap_append_complete(s);
    return FA_OK;
}

static void
fa_imap_append_reply(fa_imap_session_t *s, fa_imap_append_t *ap)
{
    uint32_t  *u = ap->uids;

    if (ap->rc != FA_OK && ap->why) {
        fa_imap_tagged(s, "NO", "%s", ap->why);
    } else if (ap->rc != FA_OK) {
        fa_imap_storage_no(s, ap->rc, "APPEND");
    } else if (ap->count == 1) {
        fa_imap_tagged(s, "OK", "[APPENDUID %u %u] APPEND completed",
                       (unsigned) ap->uidvalidity, (unsigned) u[0]);
    } else {
        /* a set: consecutive UIDs as ranges */
        char    set[1024];
        size_t  n = 0;
        for (fa_uint_t i = 0; i < ap->nuids && n + 24 < sizeof(set); i++) {
            fa_uint_t j = i;
            while (j + 1 < ap->nuids && u[j + 1] == u[j] + 1) {
                j++;
            }
            n += j > i ? fa_snprintf(set + n, sizeof(set) - n, "%s%u:%u", n ? "," : "",
                                     (unsigned) u[i], (unsigned) u[j])
                       : fa_snprintf(set + n, sizeof(set) - n, "%s%u", n ? "," : "",
                                     (unsigned) u[i]);
            i = j;
        }
        fa_imap_tagged(s, "OK", "[APPENDUID %u %s] APPEND completed",
                       (unsigned) ap->uidvalidity, set);
    }
}

static fa_int_t
fa_imap_append_finish(fa_imap_session_t *s)
{
    fa_imap_append_reply(s, s->cmd->data);
    return FA_OK;
}

/* all in and committed: tell about it (EXISTS first if it is the selected one) */
static void
fa_imap_append_complete(fa_imap_session_t *s)
{
    fa_imap_append_t  *ap = s->cmd->data;

    if (s->view && ap->rc == FA_OK && fa_str_equal(&s->view->name, &ap->mailbox)) {
        s->view->changed = 1;
        if (fa_imap_view_update(s, 1, fa_imap_append_finish) == FA_AGAIN) {
            return;
        }
    }
    fa_imap_append_reply(s, ap);
    fa_imap_done(s);
}

static void
fa_imap_append_committed(void *data, fa_int_t rc, fa_append_result_t *res)
{
    fa_imap_append_t  *ap = data;

    if (rc == FA_OK && ap->nuids == ap->size) {
        uint32_t *u = realloc(ap->uids, (ap->size ? ap->size * 2 : 4) * sizeof(uint32_t));
        if (u) {
            ap->uids = u;
            ap->size = ap->size ? ap->size * 2 : 4;
        }
    }
    if (rc == FA_OK && ap->nuids < ap->size) {
        ap->uids[ap->nuids++] = res->uid;
        ap->uidvalidity = res->uidvalidity;
    } else if (ap->rc == FA_OK) {
        ap->rc = rc == FA_OK ? FA_ERROR : rc;
    }
    ap->pending--;
    if (ap->s == NULL) {
        if (ap->pending == 0) {          /* the session went; the mail is stored */
            free(ap->uids);
            free(ap);
        }
        return;
    }
    if (ap->pending == 0 && ap->ended) {
        fa_imap_append_complete(ap->s);
    }
}

static fa_int_t
fa_imap_append_bytes(fa_imap_session_t *s, const u_char *p, size_t n, int last)
{
    fa_imap_append_t            *ap = s->cmd->data;
    const fa_storage_backend_t  *b = s->store->backend;
    fa_int_t                     rc = FA_OK;

    if (ap->a && n) {
        rc = b->append_write(ap->a, p, n);
        if (rc != FA_OK) {
            b->append_abort(ap->a);
            ap->a = NULL;
            ap->rc = ap->rc == FA_OK ? rc : ap->rc;
        }
    }
    if (last && ap->a) {
        fa_append_t *a = ap->a;
        ap->a = NULL;
        ap->count++;
        rc = b->append_commit(a, fa_imap_append_committed, ap);
        if (rc == FA_AGAIN) {
            ap->pending++;
        } else if (ap->rc == FA_OK) {
            ap->rc = rc == FA_OK ? FA_ERROR : rc;   /* FA_OK without a callback: no UID */
        }
    }
    return FA_OK;
}

/* flags and date before a message literal: args[first..] of n */
static fa_int_t
fa_imap_append_request(fa_imap_session_t *s, fa_imap_arg_t *args, fa_uint_t n,
    fa_append_request_t *req)
{
    fa_uint_t  i = 0;

    memset(req, 0, sizeof(*req));
    if (i < n && args[i].type == FA_IMAP_ARG_LIST) {
        if (fa_imap_flags_parse(s, &args[i], s->cmd->pool, &req->flags, &req->keywords,
                                &req->nkeywords) != FA_OK)
        {
            return FA_DECLINED;
        }
        i++;
    }
    if (i < n && args[i].type == FA_IMAP_ARG_STRING) {
        time_t t = fa_imap_date_time(&args[i].str);
        if (t == (time_t) -1) {
            return FA_DECLINED;
        }
        req->internal_date = t;
        i++;
    }
    return i == n ? FA_OK : FA_DECLINED;
}

/* the command ends (or the session): commits in flight keep the state */
static void
fa_imap_append_cleanup(void *data)
{
    fa_imap_append_t  *ap = data;

    if (ap->a) {
        ap->s->store->backend->append_abort(ap->a);
        ap->a = NULL;
    }
    ap->s = NULL;
    if (ap->pending == 0) {
        free(ap->uids);
        free(ap);
    }
}

static fa_imap_append_t *
fa_imap_append_start(fa_imap_session_t *s)
{
    fa_imap_append_t  *ap;

    if (s->cmd == NULL) {
        fa_pool_t *pool = fa_pool_create(4096, s->c->log);
        s->cmd = pool ? fa_pcalloc(pool, sizeof(fa_imap_cmd_t)) : NULL;
        if (s->cmd == NULL) {
            if (pool) {
                fa_pool_destroy(pool);
            }
            return NULL;
        }
        s->cmd->pool = pool;
    }
    ap = fa_calloc(sizeof(*ap), s->c->log);
    if (ap == NULL) {
        return NULL;
    }
    if (fa_pool_cleanup_add(s->cmd->pool, fa_imap_append_cleanup, ap) == NULL) {
        free(ap);
        return NULL;
    }
    ap->s = s;
    return ap;
}

/* the first message: "tag APPEND mailbox [flags] [date]" is in the buffer */
static fa_int_t
fa_imap_append_first(fa_imap_session_t *s, size_t end, fa_append_request_t *req,
    int *declined)
{
    fa_imap_command_t  *p;
    fa_imap_append_t   *ap = fa_imap_append_start(s);
    const char         *why;
    fa_int_t            rc;

    *declined = 0;
    if (ap == NULL) {
        return FA_ERROR;
    }
    p = &s->cmd->parsed;
    rc = fa_imap_parse(s->cmd->pool, s->buf, end, p, &why);
    if (rc != FA_OK || p->nargs == 0) {
        *declined = rc == FA_OK;         /* no mailbox yet: this literal is the name */
        return rc == FA_ERROR ? FA_ERROR : FA_DECLINED;
    }
    if (s->state == FA_IMAP_NOT_AUTHENTICATED) {
        return FA_DECLINED;              /* the command fails as a whole later */
    }
    /* the buffer is reused for what follows each literal: keep copies */
    p->tag.data = fa_pstrdup(s->cmd->pool, &p->tag);
    p->name.data = fa_pstrdup(s->cmd->pool, &p->name);
    if (p->tag.data == NULL || p->name.data == NULL) {
        return FA_ERROR;
    }
    s->cmd->def = fa_imap_command_find(&p->name);
    s->cmd->data = ap;
    s->appending = 1;
    rc = fa_imap_name_in(s, &p->args[0], s->cmd->pool, &ap->mailbox);
    if (rc != FA_OK) {
        return rc == FA_DECLINED ? FA_STORAGE_INVALID : rc;
    }
    return fa_imap_append_request(s, p->args + 1, p->nargs - 1, req) == FA_OK
           ? FA_OK : FA_STORAGE_INVALID;
}

fa_int_t
fa_imap_append_literal(fa_imap_session_t *s, uint64_t size, int sync, int binary)
{
    fa_append_request_t   req;
    fa_imap_append_t     *ap;
    size_t                end = fa_imap_append_args_end(s);
    int                   declined = 0;
    fa_int_t              rc;

    (void) binary;
    if (s->cmd == NULL || s->cmd->data == NULL) {
        rc = fa_imap_append_first(s, end, &req, &declined);
        if (declined) {
            return FA_DECLINED;
        }
        if (rc == FA_ERROR) {
            return FA_ERROR;
        }
        if (rc != FA_OK) {
            if (s->cmd == NULL || s->cmd->data == NULL) {
                return FA_DECLINED;      /* not logged in, or nonsense: the session's BAD */
            }
            return fa_imap_append_refuse(s, rc, sync, size, rc == FA_STORAGE_INVALID
                                         ? "[CANNOT] Invalid APPEND arguments" : NULL);
        }
    } else {
        fa_imap_arg_t *args;
        fa_uint_t n;
        const char *why;
        rc = fa_imap_parse_args(s->cmd->pool, s->buf, s->buf + end, &args, &n, &why);
        if (rc != FA_OK || fa_imap_append_request(s, args, n, &req) != FA_OK) {
            return rc == FA_ERROR ? FA_ERROR
                   : fa_imap_append_refuse(s, FA_STORAGE_INVALID, sync, size,
                                           "[CANNOT] Invalid APPEND arguments");
        }
    }
    ap = s->cmd->data;
    if (ap->rc != FA_OK) {
        return fa_imap_append_refuse(s, ap->rc, sync, size, ap->why);   /* an earlier one failed */
    }
    if (size > s->conf->max_message_size) {
        return fa_imap_append_refuse(s, FA_STORAGE_INVALID, sync, size,
                                     "[TOOBIG] Message too big");
    }
    req.size_hint = size;
    rc = s->store->backend->append_begin(s->store, &s->user, &ap->mailbox, &req, &ap->a);
    if (rc != FA_OK) {
        ap->a = NULL;
        return fa_imap_append_refuse(s, rc, sync, size, rc == FA_STORAGE_NOTFOUND
                                     ? "[TRYCREATE] No such mailbox" : NULL);
    }
    if (sync) {
        fa_imap_send(s, "+ Ready for literal data");
    }
    s->len = 0;                          /* what follows the literal starts afresh */
    fa_imap_read_stream(s, size, fa_imap_append_bytes);
    if (size == 0) {
        fa_imap_append_bytes(s, NULL, 0, 1);
        s->input = FA_IMAP_IN_COMMAND;
    }
    return FA_OK;
}

/* the command's last line: nothing may follow the last message */
fa_int_t
fa_imap_append(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_imap_append_t  *ap = cmd->data;

    if (ap == NULL) {
        return fa_imap_bad(s, "Syntax: APPEND mailbox [(flags)] [date-time] literal");
    }
    ap->ended = 1;
    if (s->len != 0 && ap->rc == FA_OK) {
        ap->rc = FA_STORAGE_INVALID;     /* garbage after the message */
    }
    if (ap->pending) {
        s->input = FA_IMAP_IN_BUSY;
        return FA_AGAIN;                 /* the last commit answers */
    }
    fa_imap_append_complete(s);
    return FA_AGAIN;
}

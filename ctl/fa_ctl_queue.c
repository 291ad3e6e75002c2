/*
 * facteurctl queue list: the outbound queue, where the SMTP module puts
 * mail for other domains (and recipients it could not deliver locally).
 * The queue is the INBOX of the store account "_queue"; each entry starts
 * with its envelope (modules/smtp/fa_smtp_deliver.c):
 *
 *   X-Facteur-Queue: QID; from=<a@b>; nrcpt=N; ...
 *   X-Facteur-Rcpt: <c@d>; notify=...; reason=...      (N lines)
 *
 * One line per entry: queue id, size, arrival time, sender -> recipients,
 * each with the reason it is queued when there is one ("relay via NAME").
 */

#include "fa_ctl.h"

#define FA_CTL_QUEUE_USER   "_queue"
#define FA_CTL_ENVELOPE_MAX 65536       /* the envelope is read from the start */

/* the value of "key=<...>" or "key=..." up to ";" in a header line */
static void
fa_ctl_queue_field(const char *line, const char *key, char *out, size_t size)
{
    const char  *p = strstr(line, key);
    size_t       n;

    out[0] = '\0';
    if (p == NULL) {
        return;
    }
    p += strlen(key);
    n = strcspn(p, ";\r\n");
    fa_snprintf(out, size, "%.*s", (int) n, p);
}

/* print one entry from its first bytes */
static void
fa_ctl_queue_entry(const fa_message_meta_t *m, char *head)
{
    char        id[64] = "?", from[400], date[32], to[4096] = "";
    char       *line, *save = NULL;
    size_t      n = 0;
    struct tm   tm;
    long        nrcpt = 0;

    for (line = strtok_r(head, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "X-Facteur-Queue: ", 17) == 0) {
            fa_snprintf(id, sizeof(id), "%.*s", (int) strcspn(line + 17, ";\r"), line + 17);
            fa_ctl_queue_field(line, "from=", from, sizeof(from));
            char nr[32];
            fa_ctl_queue_field(line, "nrcpt=", nr, sizeof(nr));
            nrcpt = strtol(nr, NULL, 10);
        } else if (strncmp(line, "X-Facteur-Rcpt: ", 16) == 0 && nrcpt-- > 0
                   && n + 8 < sizeof(to))
        {
            char why[300];
            fa_ctl_queue_field(line, "reason=", why, sizeof(why));
            n += fa_snprintf(to + n, sizeof(to) - n, "%s%.*s%s%s%s", n ? ", " : "",
                             (int) strcspn(line + 16, ";\r"), line + 16,
                             why[0] ? " (" : "", why, why[0] ? ")" : "");
        } else {
            break;                       /* the envelope ends here */
        }
    }
    gmtime_r(&m->internal_date, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    printf("%-18s %8llu %s  %s -> %s\n", id, (unsigned long long) m->size, date, from, to);
}

static fa_int_t
fa_ctl_queue_read_head(fa_ctl_t *ctl, fa_storage_t *st, fa_mailbox_t *box, uint32_t uid,
    char *buf, size_t size)
{
    fa_msg_stream_t  *ms;
    uint64_t          off = 0;
    ssize_t           n = 0;

    if (st->backend->message_open(box, uid, &ms) != FA_OK) {
        return FA_ERROR;
    }
    while (off + 1 < size) {
        fa_ctl_wait_t w = { 0 };
        n = st->backend->message_read(ms, off, (u_char *) buf + off, size - 1 - off,
                                      fa_ctl_done_cb, &w);
        if (n == FA_AGAIN) {
            fa_ctl_wait(ctl, &w, FA_AGAIN);
            continue;
        }
        if (n <= 0) {
            break;
        }
        off += (uint64_t) n;
    }
    st->backend->message_close(ms);
    buf[off] = '\0';
    return n < 0 ? FA_ERROR : FA_OK;
}

static int
fa_ctl_queue_list(fa_ctl_t *ctl, int argc, char **argv)
{
    static char      head[FA_CTL_ENVELOPE_MAX];
    fa_str_t         user = fa_string(FA_CTL_QUEUE_USER), inbox = fa_string("INBOX");
    fa_uid_range_t   all = { 1, UINT32_MAX };
    fa_uid_set_t     set = { &all, 1 };
    fa_ctl_wait_t    w = { 0 }, mw = { 0 };
    fa_storage_t    *st;
    fa_int_t         rc;

    (void) argc;
    (void) argv;
    if ((st = fa_ctl_open_store(ctl)) == NULL) {
        return FA_CTL_FAILED;
    }
    rc = fa_ctl_wait(ctl, &w, st->backend->mailbox_open(st, &user, &inbox, ctl->pool,
                                                        fa_ctl_open_cb, &w));
    if (rc == FA_STORAGE_NOTFOUND) {
        printf("the queue is empty\n");
        return FA_CTL_OK;
    }
    if (rc == FA_OK) {
        rc = fa_ctl_wait(ctl, &mw, st->backend->fetch_meta(w.box, &set, ctl->pool,
                                                           fa_ctl_meta_cb, &mw));
    }
    for (fa_uint_t i = 0; rc == FA_OK && i < mw.n; i++) {
        rc = fa_ctl_queue_read_head(ctl, st, w.box, mw.msgs[i].uid, head, sizeof(head));
        if (rc == FA_OK) {
            fa_ctl_queue_entry(&mw.msgs[i], head);
        }
    }
    if (w.box) {
        st->backend->mailbox_close(w.box);
    }
    if (rc == FA_OK) {
        printf("%lu message%s in the queue\n", (unsigned long) mw.n, mw.n == 1 ? "" : "s");
    }
    return fa_ctl_storage_status(rc, "queue", "outbound");
}

const fa_ctl_command_t  fa_ctl_queue_commands[] = {
    { "queue", "list", "", 0, 0, fa_ctl_queue_list },
    { NULL, NULL, NULL, 0, 0, NULL }
};

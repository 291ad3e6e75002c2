/*
 * Mailbox names on the wire, and the commands on whole mailboxes: CREATE
 * (with USE for CREATE-SPECIAL-USE), DELETE, RENAME, SUBSCRIBE,
 * UNSUBSCRIBE, STATUS, NAMESPACE.
 *
 * Names: the store's are UTF-8 with "/" between levels.  A client that
 * enabled UTF8=ACCEPT or IMAP4rev2 speaks UTF-8; the others speak
 * modified UTF-7 (RFC 3501 5.1.3).  "INBOX" is case-insensitive, and so
 * is its first level ("inbox/x" is "INBOX/x").
 */

#include "fa_imap_int.h"

/* wire -> store */
fa_int_t
fa_imap_name_in(fa_imap_session_t *s, const fa_imap_arg_t *arg, fa_pool_t *pool,
    fa_str_t *name)
{
    const fa_str_t  *raw = fa_imap_arg_string(arg);
    fa_str_t         n;

    if (raw == NULL || raw->len == 0 || raw->len > FA_MAILBOX_NAME_MAX * 2) {
        return FA_DECLINED;
    }
    if (s->utf8) {
        n.data = fa_pnalloc(pool, raw->len + 1);
        if (n.data == NULL) {
            return FA_ERROR;
        }
        memcpy(n.data, raw->data, raw->len);
        n.data[raw->len] = '\0';
        n.len = raw->len;
    } else if (fa_mutf7_decode(pool, raw, &n) != FA_OK) {
        return FA_DECLINED;
    }
    if (n.len >= 5 && strncasecmp((char *) n.data, "INBOX", 5) == 0
        && (n.len == 5 || n.data[5] == FA_MAILBOX_SEPARATOR))
    {
        memcpy(n.data, "INBOX", 5);
    }
    if (fa_storage_mailbox_name_valid(&n) != FA_OK) {
        return FA_DECLINED;
    }
    *name = n;
    return FA_OK;
}

/* store -> wire, as an IMAP string (quoted, or a literal when it must be) */
fa_int_t
fa_imap_name_out(fa_imap_session_t *s, const fa_str_t *name, fa_pool_t *pool, fa_str_t *out)
{
    fa_str_t  enc = *name;
    int       quote = 0;
    u_char   *p;

    if (!s->utf8 && fa_mutf7_encode(pool, name, &enc) != FA_OK) {
        return FA_ERROR;
    }
    for (size_t i = 0; i < enc.len; i++) {
        quote += enc.data[i] == '"' || enc.data[i] == '\\';
    }
    p = fa_pnalloc(pool, enc.len + quote + 3);
    if (p == NULL) {
        return FA_ERROR;
    }
    out->data = p;
    *p++ = '"';
    for (size_t i = 0; i < enc.len; i++) {
        if (enc.data[i] == '"' || enc.data[i] == '\\') {
            *p++ = '\\';
        }
        *p++ = enc.data[i];
    }
    *p++ = '"';
    out->len = (size_t) (p - out->data);
    return FA_OK;
}

/* the store's error as a tagged NO with its RFC 5530 response code */
fa_int_t
fa_imap_storage_no(fa_imap_session_t *s, fa_int_t rc, const char *what)
{
    const char  *code;

    switch (rc) {
    case FA_STORAGE_NOTFOUND:  code = "[NONEXISTENT] "; break;
    case FA_STORAGE_EXISTS:    code = "[ALREADYEXISTS] "; break;
    case FA_STORAGE_OVERQUOTA: code = "[OVERQUOTA] "; break;
    case FA_STORAGE_NOSPACE:   code = "[LIMIT] "; break;
    case FA_STORAGE_TEMPFAIL:  code = "[UNAVAILABLE] "; break;
    case FA_STORAGE_INVALID:   code = "[CANNOT] "; break;
    case FA_STORAGE_CORRUPT:   code = "[CORRUPTION] "; break;
    default:                   code = "[SERVERBUG] "; break;
    }
    return fa_imap_tagged(s, "NO", "%s%s failed: %s", code, what, fa_storage_strerror(rc));
}

/* a command that ends with the store's done callback */
static void
fa_imap_mailbox_done(void *data, fa_int_t rc)
{
    fa_imap_session_t  *s = data;

    if (fa_imap_answered(s)) {
        return;
    }
    if (rc == FA_OK) {
        fa_imap_tagged(s, "OK", "%s completed", s->cmd->def->name);
    } else {
        fa_imap_storage_no(s, rc, s->cmd->def->name);
    }
    fa_imap_done(s);
}

static fa_int_t
fa_imap_mailbox_started(fa_imap_session_t *s, fa_int_t rc)
{
    if (rc == FA_AGAIN) {
        return FA_AGAIN;
    }
    if (rc == FA_DECLINED) {
        return fa_imap_bad(s, "Invalid mailbox name");
    }
    return rc == FA_OK ? fa_imap_tagged(s, "OK", "%s completed", s->cmd->def->name)
                       : fa_imap_storage_no(s, rc, s->cmd->def->name);
}

/* CREATE name [(USE (\Drafts ...))] */
static uint32_t
fa_imap_use_parse(const fa_imap_arg_t *params)
{
    static const struct { const char *name; uint32_t use; } uses[] = {
        { "\\All", FA_USE_ALL }, { "\\Archive", FA_USE_ARCHIVE }, { "\\Drafts", FA_USE_DRAFTS },
        { "\\Flagged", FA_USE_FLAGGED }, { "\\Junk", FA_USE_JUNK }, { "\\Sent", FA_USE_SENT },
        { "\\Trash", FA_USE_TRASH },
    };
    uint32_t  use = 0;

    if (params->type != FA_IMAP_ARG_LIST || params->n != 2
        || !fa_imap_arg_is(&params->list[0], "USE") || params->list[1].type != FA_IMAP_ARG_LIST)
    {
        return (uint32_t) -1;
    }
    for (fa_uint_t i = 0; i < params->list[1].n; i++) {
        fa_uint_t u;
        for (u = 0; u < fa_nelems(uses); u++) {
            if (fa_imap_arg_is(&params->list[1].list[i], uses[u].name)) {
                use |= uses[u].use;
                break;
            }
        }
        if (u == fa_nelems(uses)) {
            return (uint32_t) -2;
        }
    }
    return use;
}

fa_int_t
fa_imap_create(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_str_t  name;
    uint32_t  use = 0;
    fa_int_t  rc;

    if (cmd->parsed.nargs < 1 || cmd->parsed.nargs > 2) {
        return fa_imap_bad(s, "Syntax: CREATE mailbox [(USE (...))]");
    }
    if (cmd->parsed.nargs == 2 && (use = fa_imap_use_parse(&cmd->parsed.args[1])) >= (uint32_t) -2) {
        return use == (uint32_t) -2
               ? fa_imap_tagged(s, "NO", "[USEATTR] Unknown special-use attribute")
               : fa_imap_bad(s, "Invalid CREATE parameters");
    }
    rc = fa_imap_name_in(s, &cmd->parsed.args[0], cmd->pool, &name);
    if (rc == FA_OK) {
        /* a trailing separator only says it is meant to have children */
        if (name.len > 1 && name.data[name.len - 1] == FA_MAILBOX_SEPARATOR) {
            name.len--;
        }
        if (fa_str_eq(&name, "INBOX")) {
            return fa_imap_tagged(s, "NO", "[ALREADYEXISTS] INBOX always exists");
        }
        rc = fa_imap_call(s, s->store->backend->mailbox_create(s->store, &s->user, &name, use,
                                                               fa_imap_mailbox_done, s));
    }
    return fa_imap_mailbox_started(s, rc);
}

fa_int_t
fa_imap_delete(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_str_t  name;
    fa_int_t  rc;

    if (cmd->parsed.nargs != 1) {
        return fa_imap_bad(s, "Syntax: DELETE mailbox");
    }
    rc = fa_imap_name_in(s, &cmd->parsed.args[0], cmd->pool, &name);
    if (rc == FA_OK && fa_str_eq(&name, "INBOX")) {
        return fa_imap_tagged(s, "NO", "[CANNOT] INBOX cannot be deleted");
    }
    if (rc == FA_OK && s->view && fa_str_equal(&s->view->name, &name)) {
        return fa_imap_tagged(s, "NO", "[INUSE] The mailbox is selected");
    }
    if (rc == FA_OK) {
        rc = fa_imap_call(s, s->store->backend->mailbox_delete(s->store, &s->user, &name,
                                                               fa_imap_mailbox_done, s));
    }
    return fa_imap_mailbox_started(s, rc);
}

fa_int_t
fa_imap_rename(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_str_t  from, to;
    fa_int_t  rc;

    if (cmd->parsed.nargs != 2) {
        return fa_imap_bad(s, "Syntax: RENAME from to");
    }
    rc = fa_imap_name_in(s, &cmd->parsed.args[0], cmd->pool, &from);
    if (rc == FA_OK) {
        rc = fa_imap_name_in(s, &cmd->parsed.args[1], cmd->pool, &to);
    }
    if (rc == FA_OK) {
        rc = fa_imap_call(s, s->store->backend->mailbox_rename(s->store, &s->user, &from, &to,
                                                               fa_imap_mailbox_done, s));
    }
    return fa_imap_mailbox_started(s, rc);
}

static fa_int_t
fa_imap_subscription(fa_imap_session_t *s, fa_imap_cmd_t *cmd, int on)
{
    fa_str_t  name;
    fa_int_t  rc;

    if (cmd->parsed.nargs != 1) {
        return fa_imap_bad(s, "Syntax: SUBSCRIBE mailbox");
    }
    rc = fa_imap_name_in(s, &cmd->parsed.args[0], cmd->pool, &name);
    if (rc == FA_OK) {
        rc = fa_imap_call(s, s->store->backend->mailbox_subscribe(s->store, &s->user, &name,
                                                                  on, fa_imap_mailbox_done, s));
    }
    return fa_imap_mailbox_started(s, rc);
}

fa_int_t
fa_imap_subscribe(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    return fa_imap_subscription(s, cmd, 1);
}

fa_int_t
fa_imap_unsubscribe(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    return fa_imap_subscription(s, cmd, 0);
}

fa_int_t
fa_imap_namespace(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    if (cmd->parsed.nargs) {
        return fa_imap_bad(s, "NAMESPACE takes no arguments");
    }
    fa_imap_send(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
    return fa_imap_tagged(s, "OK", "NAMESPACE completed");
}


/* ---- STATUS ---- */

#define FA_IMAP_ST_MESSAGES      0x01
#define FA_IMAP_ST_UIDNEXT       0x02
#define FA_IMAP_ST_UIDVALIDITY   0x04
#define FA_IMAP_ST_UNSEEN        0x08
#define FA_IMAP_ST_DELETED       0x10
#define FA_IMAP_ST_SIZE          0x20
#define FA_IMAP_ST_RECENT        0x40
#define FA_IMAP_ST_HIGHESTMODSEQ 0x80

static const struct {
    const char  *name;
    fa_uint_t    bit;
} fa_imap_status_items[] = {
    { "MESSAGES", FA_IMAP_ST_MESSAGES }, { "UIDNEXT", FA_IMAP_ST_UIDNEXT },
    { "UIDVALIDITY", FA_IMAP_ST_UIDVALIDITY }, { "UNSEEN", FA_IMAP_ST_UNSEEN },
    { "DELETED", FA_IMAP_ST_DELETED }, { "SIZE", FA_IMAP_ST_SIZE },
    { "RECENT", FA_IMAP_ST_RECENT }, { "HIGHESTMODSEQ", FA_IMAP_ST_HIGHESTMODSEQ },
};

/* "(MESSAGES UNSEEN)" -> bits; 0 when malformed */
fa_uint_t
fa_imap_status_parse(const fa_imap_arg_t *list)
{
    fa_uint_t  bits = 0;

    if (list->type != FA_IMAP_ARG_LIST || list->n == 0) {
        return 0;
    }
    for (fa_uint_t i = 0; i < list->n; i++) {
        fa_uint_t k;
        for (k = 0; k < fa_nelems(fa_imap_status_items); k++) {
            if (fa_imap_arg_is(&list->list[i], fa_imap_status_items[k].name)) {
                bits |= fa_imap_status_items[k].bit;
                break;
            }
        }
        if (k == fa_nelems(fa_imap_status_items)) {
            return 0;
        }
    }
    return bits;
}

/* "* STATUS name (MESSAGES 3 ...)" */
fa_int_t
fa_imap_status_line(fa_imap_session_t *s, const fa_str_t *wire, fa_uint_t bits,
    const fa_mailbox_status_t *st)
{
    char    buf[512];
    size_t  n = 0;

    for (size_t k = 0; k < fa_nelems(fa_imap_status_items); k++) {
        fa_uint_t b = fa_imap_status_items[k].bit;
        uint64_t v = b == FA_IMAP_ST_MESSAGES ? st->messages
                   : b == FA_IMAP_ST_UIDNEXT ? st->uidnext
                   : b == FA_IMAP_ST_UIDVALIDITY ? st->uidvalidity
                   : b == FA_IMAP_ST_UNSEEN ? st->unseen
                   : b == FA_IMAP_ST_DELETED ? st->deleted
                   : b == FA_IMAP_ST_SIZE ? st->size
                   : b == FA_IMAP_ST_HIGHESTMODSEQ ? st->highestmodseq : 0;
        if (bits & b) {
            n += fa_snprintf(buf + n, sizeof(buf) - n, "%s%s %llu", n ? " " : "",
                             fa_imap_status_items[k].name, (unsigned long long) v);
        }
    }
    return fa_imap_send(s, "* STATUS %.*s (%s)", (int) wire->len, wire->data, buf);
}

static void
fa_imap_status_done(void *data, fa_int_t rc, fa_mailbox_status_t *st)
{
    fa_imap_session_t  *s = data;
    fa_uint_t           bits;
    fa_str_t            name, wire;

    if (fa_imap_answered(s)) {
        return;
    }
    bits = (fa_uint_t) (uintptr_t) s->cmd->data;
    if (rc == FA_OK && fa_imap_name_in(s, &s->cmd->parsed.args[0], s->cmd->pool, &name) == FA_OK
        && fa_imap_name_out(s, &name, s->cmd->pool, &wire) == FA_OK)
    {
        fa_imap_status_line(s, &wire, bits, st);
        fa_imap_tagged(s, "OK", "STATUS completed");
    } else {
        fa_imap_storage_no(s, rc == FA_OK ? FA_ERROR : rc, "STATUS");
    }
    fa_imap_done(s);
}

fa_int_t
fa_imap_status(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_str_t   name;
    fa_uint_t  bits;
    fa_int_t   rc;

    if (cmd->parsed.nargs != 2 || (bits = fa_imap_status_parse(&cmd->parsed.args[1])) == 0) {
        return fa_imap_bad(s, "Syntax: STATUS mailbox (items)");
    }
    if (bits & FA_IMAP_ST_HIGHESTMODSEQ) {
        s->condstore = 1;               /* RFC 7162 3.1: it enables CONDSTORE */
    }
    cmd->data = (void *) (uintptr_t) bits;
    rc = fa_imap_name_in(s, &cmd->parsed.args[0], cmd->pool, &name);
    if (rc == FA_OK) {
        rc = fa_imap_call(s, s->store->backend->mailbox_status(s->store, &s->user, &name,
                                                               fa_imap_status_done, s));
    }
    return fa_imap_mailbox_started(s, rc);
}

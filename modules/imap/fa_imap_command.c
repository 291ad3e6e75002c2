/*
 * The command table, and the commands that need no store: CAPABILITY,
 * NOOP, LOGOUT, ID, ENABLE, STARTTLS, CHECK.
 */

#include "fa_imap_int.h"

#define NA   FA_IMAP_NOT_AUTH_OK
#define AU   FA_IMAP_AUTH_OK
#define SE   FA_IMAP_SELECTED_OK
#define ANY  (NA | AU | SE)
#define IN   (AU | SE)

static fa_int_t fa_imap_cmd_capability(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
static fa_int_t fa_imap_cmd_noop(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
static fa_int_t fa_imap_cmd_logout(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
static fa_int_t fa_imap_cmd_id(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
static fa_int_t fa_imap_cmd_enable(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
static fa_int_t fa_imap_cmd_starttls(fa_imap_session_t *s, fa_imap_cmd_t *cmd);

static const fa_imap_cmd_def_t  fa_imap_cmds[] = {
    { "CAPABILITY", fa_imap_cmd_capability, ANY, NULL },
    { "NOOP", fa_imap_cmd_noop, ANY, NULL },
    { "LOGOUT", fa_imap_cmd_logout, ANY, NULL },
    { "ID", fa_imap_cmd_id, ANY, NULL },
    { "STARTTLS", fa_imap_cmd_starttls, NA, NULL },
    { "LOGIN", fa_imap_login, NA, NULL },
    { "AUTHENTICATE", fa_imap_authenticate, NA, NULL },
    { "ENABLE", fa_imap_cmd_enable, IN, NULL },
    { "SELECT", fa_imap_select, IN, NULL },
    { "EXAMINE", fa_imap_select, IN, NULL },
    { "CREATE", fa_imap_create, IN, NULL },
    { "DELETE", fa_imap_delete, IN, NULL },
    { "RENAME", fa_imap_rename, IN, NULL },
    { "SUBSCRIBE", fa_imap_subscribe, IN, NULL },
    { "UNSUBSCRIBE", fa_imap_unsubscribe, IN, NULL },
    { "LIST", fa_imap_list, IN, NULL },
    { "LSUB", fa_imap_lsub, IN, NULL },
    { "NAMESPACE", fa_imap_namespace, IN, NULL },
    { "STATUS", fa_imap_status, IN, NULL },
    { "APPEND", fa_imap_append, IN, NULL },
    { "IDLE", fa_imap_idle, IN, NULL },
    { "GETQUOTA", fa_imap_getquota, IN, NULL },
    { "GETQUOTAROOT", fa_imap_getquotaroot, IN, NULL },
    { "SETQUOTA", fa_imap_setquota, IN, NULL },
    { "COMPRESS", fa_imap_compress, IN, NULL },
    { "CHECK", fa_imap_cmd_noop, SE, NULL },
    { "CLOSE", fa_imap_close, SE, NULL },
    { "UNSELECT", fa_imap_unselect, SE, NULL },
    { "EXPUNGE", fa_imap_expunge, SE | FA_IMAP_UID_OK, NULL },
    { "SEARCH", fa_imap_search, SE | FA_IMAP_UID_OK | FA_IMAP_NO_EXPUNGE, NULL },
    { "FETCH", fa_imap_fetch, SE | FA_IMAP_UID_OK | FA_IMAP_NO_EXPUNGE, NULL },
    { "STORE", fa_imap_store, SE | FA_IMAP_UID_OK | FA_IMAP_NO_EXPUNGE, NULL },
    { "COPY", fa_imap_copy, SE | FA_IMAP_UID_OK, NULL },
    { "MOVE", fa_imap_move, SE | FA_IMAP_UID_OK, NULL },
    { "SORT", fa_imap_sort, SE | FA_IMAP_UID_OK | FA_IMAP_NO_EXPUNGE, NULL },
    { "THREAD", fa_imap_thread, SE | FA_IMAP_UID_OK | FA_IMAP_NO_EXPUNGE, NULL },
};

const fa_imap_cmd_def_t *
fa_imap_command_find(const fa_str_t *name)
{
    for (size_t i = 0; i < fa_nelems(fa_imap_cmds); i++) {
        if (fa_str_casecmp(name, fa_imap_cmds[i].name) == 0) {
            return &fa_imap_cmds[i];
        }
    }
    return NULL;
}

/* what this session may use now, space separated */
size_t
fa_imap_capabilities(fa_imap_session_t *s, char *buf, size_t size)
{
    size_t  n;

    n = fa_snprintf(buf, size, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE "
                    "NAMESPACE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE "
                    "LIST-EXTENDED LIST-STATUS ESEARCH UIDPLUS MOVE CONDSTORE QRESYNC "
                    "QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE BINARY SORT SORT=DISPLAY "
                    "THREAD=REFERENCES THREAD=ORDEREDSUBJECT UTF8=ACCEPT STATUS=SIZE "
                    "APPENDLIMIT=%zu", s->conf->max_message_size);
    if (s->state == FA_IMAP_NOT_AUTHENTICATED) {
        if (s->conf->ssl && s->c->ssl == NULL) {
            n += fa_snprintf(buf + n, size - n, " STARTTLS");
        }
        n += fa_snprintf(buf + n, size - n, "%s", fa_imap_login_allowed(s)
                         ? " AUTH=PLAIN" : " LOGINDISABLED");
    } else if (!s->compressed) {
        n += fa_snprintf(buf + n, size - n, " COMPRESS=DEFLATE");
    }
    return n;
}

fa_int_t
fa_imap_capability_line(fa_imap_session_t *s, int untagged)
{
    char  caps[1024];

    fa_imap_capabilities(s, caps, sizeof(caps));
    return untagged ? fa_imap_send(s, "* CAPABILITY %s", caps)
                    : fa_imap_tagged(s, "OK", "[CAPABILITY %s] Logged in", caps);
}

static fa_int_t
fa_imap_cmd_capability(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    if (cmd->parsed.nargs) {
        return fa_imap_bad(s, "CAPABILITY takes no arguments");
    }
    fa_imap_capability_line(s, 1);
    return fa_imap_tagged(s, "OK", "CAPABILITY completed");
}

/* NOOP and CHECK: the moment to hear what others changed */
static fa_int_t
fa_imap_noop_done(fa_imap_session_t *s)
{
    fa_imap_tagged(s, "OK", "%s completed", s->cmd->def->name);
    return FA_OK;
}

static fa_int_t
fa_imap_cmd_noop(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_int_t  rc;

    if (cmd->parsed.nargs) {
        return fa_imap_bad(s, "No arguments expected");
    }
    rc = s->view ? fa_imap_view_update(s, 1, fa_imap_noop_done) : FA_OK;
    return rc == FA_OK ? fa_imap_noop_done(s) : rc;
}

static fa_int_t
fa_imap_cmd_logout(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    (void) cmd;
    fa_imap_send(s, "* BYE Logging out");
    fa_imap_tagged(s, "OK", "LOGOUT completed");
    s->state = FA_IMAP_LOGGED_OUT;
    s->closing = 1;
    return FA_OK;
}

/* RFC 2971: the client's list is read and ignored; ours is short */
static fa_int_t
fa_imap_cmd_id(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_imap_arg_t  *a = cmd->parsed.args;

    if (cmd->parsed.nargs != 1 || !(a->type == FA_IMAP_ARG_LIST || fa_imap_arg_is(a, "NIL"))
        || (a->type == FA_IMAP_ARG_LIST && (a->n % 2 || a->n > 60)))
    {
        return fa_imap_bad(s, "Syntax: ID (field value ...) or ID NIL");
    }
    fa_imap_send(s, "* ID (\"name\" \"Facteur\" \"version\" \"%s\")", FA_VERSION);
    return fa_imap_tagged(s, "OK", "ID completed");
}

/* RFC 5161 */
static fa_int_t
fa_imap_cmd_enable(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    char    done[256] = "";
    size_t  n = 0;

    if (cmd->parsed.nargs == 0) {
        return fa_imap_bad(s, "Syntax: ENABLE capability ...");
    }
    for (fa_uint_t i = 0; i < cmd->parsed.nargs; i++) {
        fa_imap_arg_t *a = &cmd->parsed.args[i];
        const char *name = NULL;
        if (fa_imap_arg_is(a, "IMAP4rev2") && !s->rev2) {
            s->rev2 = s->utf8 = 1;
            name = "IMAP4rev2";
        } else if (fa_imap_arg_is(a, "UTF8=ACCEPT") && !s->utf8) {
            s->utf8 = 1;
            name = "UTF8=ACCEPT";
        } else if (fa_imap_arg_is(a, "CONDSTORE") && !s->condstore) {
            s->condstore = 1;
            name = "CONDSTORE";
        } else if (fa_imap_arg_is(a, "QRESYNC") && !s->qresync) {
            s->qresync = s->condstore = 1;
            name = "QRESYNC";
        }
        if (name && n + strlen(name) + 2 < sizeof(done)) {
            n += fa_snprintf(done + n, sizeof(done) - n, " %s", name);
        }
    }
    fa_imap_send(s, "* ENABLED%s", done);
    return fa_imap_tagged(s, "OK", "ENABLE completed");
}

static fa_int_t
fa_imap_cmd_starttls(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    if (cmd->parsed.nargs) {
        return fa_imap_bad(s, "STARTTLS takes no arguments");
    }
    if (s->c->ssl) {
        return fa_imap_bad(s, "TLS is already active");
    }
    if (s->conf->ssl == NULL) {
        return fa_imap_tagged(s, "NO", "TLS is not available");
    }
    fa_imap_tagged(s, "OK", "Begin TLS negotiation now");
    fa_imap_starttls_begin(s);
    return FA_OK;
}

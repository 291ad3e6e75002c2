/*
 * fa_test_smtp_hooks: a test-only module that attaches handlers to the
 * SMTP phase chains from the configuration, so t/smtp_hooks.t can check
 * the chain semantics the Lua engine will rely on, through real sessions:
 *
 *   test_smtp_hook PHASE VERDICT [CODE "TEXT"] [match=WORD] [wait=MS];
 *   test_smtp_header PHASE NAME VALUE;      # add a header (data_headers)
 *   test_smtp_folder FOLDER;                # route: every local copy there
 *
 * A hook applies when its phase runs and, with match=WORD, when the
 * phase's subject contains WORD: the HELO name, the login, the sender, the
 * recipient, or the Subject header (data phases and route).  With wait=MS
 * the handler answers WAIT and resumes the session from a timer, which is
 * how an I/O-bound hook (DNS, a key-value store) behaves; the timer is
 * cancelled if the session ends first.
 */

#include "fa_core.h"
#include "fa_smtp.h"

typedef struct {
    fa_smtp_phase_t     phase;
    fa_smtp_verdict_t   verdict;
    fa_uint_t           code;
    fa_str_t            text;
    fa_str_t            match;
    fa_msec_t           wait;
    fa_str_t            header_name;      /* test_smtp_header */
    fa_str_t            header_value;
    fa_str_t            folder;           /* test_smtp_folder */
} fa_test_hook_t;

typedef struct {
    fa_event_t            timer;
    fa_smtp_session_t    *s;
    fa_smtp_answer_t      answer;
} fa_test_wait_t;

static char *fa_test_hook_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_test_header_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_test_folder_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf);

static const fa_command_t  fa_test_hooks_commands[] = {
    { "test_smtp_hook", "main", FA_CONF_2MORE | FA_CONF_MULTI, fa_test_hook_set, 0, NULL },
    { "test_smtp_header", "main", FA_CONF_TAKE3 | FA_CONF_MULTI, fa_test_header_set, 0, NULL },
    { "test_smtp_folder", "main", FA_CONF_TAKE1, fa_test_folder_set, 0, NULL },
    fa_null_command
};

fa_module_t  fa_test_smtp_hooks_module = {
    FA_MODULE_V1, "test_smtp_hooks", FA_MODULE_HOOK, fa_test_hooks_commands,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};

static const char *const  fa_test_verdicts[] = {
    "continue", "accept", "reject", "defer", "discard", "disconnect"
};

/* what a phase is about, for match= */
static fa_str_t
fa_test_subject(fa_smtp_session_t *s, fa_smtp_phase_t phase)
{
    static const fa_str_t  subject = fa_string("Subject");
    fa_str_t               none = fa_null_string;
    fa_smtp_header_t      *h;

    switch (phase) {
    case FA_SMTP_PHASE_HELO: return s->helo;
    case FA_SMTP_PHASE_AUTH: return s->user;
    case FA_SMTP_PHASE_MAIL: return s->txn->from.address;
    case FA_SMTP_PHASE_RCPT: return s->rcpt->addr.address;
    case FA_SMTP_PHASE_DATA_HEADERS:
    case FA_SMTP_PHASE_DATA_END:
    case FA_SMTP_PHASE_ROUTE:
        h = fa_smtp_header_get(s->txn, &subject, 0);
        return h ? h->value : none;
    default:
        return none;
    }
}

static int
fa_test_matches(const fa_test_hook_t *h, const fa_str_t *subject)
{
    if (h->match.len == 0) {
        return 1;
    }
    return subject->len >= h->match.len
           && memmem(subject->data, subject->len, h->match.data, h->match.len) != NULL;
}

static void
fa_test_wait_fired(fa_event_t *ev)
{
    fa_test_wait_t     *w = ev->data;
    fa_smtp_session_t  *s = w->s;

    ev->timedout = 0;
    w->s = NULL;
    fa_smtp_resume(s, &w->answer);
}

static void
fa_test_wait_cleanup(void *data)
{
    fa_test_wait_t  *w = data;

    if (w->timer.timer_set) {
        fa_event_del_timer(&w->timer);   /* the session went: never resume it */
    }
}

static fa_smtp_verdict_t
fa_test_handler(fa_smtp_session_t *s, fa_smtp_phase_t phase, void *data,
    fa_smtp_answer_t *answer)
{
    fa_test_hook_t  *h = data;
    fa_str_t         subject = fa_test_subject(s, phase);
    fa_test_wait_t  *w;

    if (!fa_test_matches(h, &subject)) {
        return FA_SMTP_CONTINUE;
    }
    if (h->header_name.len) {
        fa_smtp_header_add(s->txn, &h->header_name, &h->header_value);
        return FA_SMTP_CONTINUE;
    }
    if (h->folder.len) {
        fa_smtp_rcpt_t *r = s->txn->rcpts.elts;
        for (fa_uint_t i = 0; i < s->txn->rcpts.nelts; i++) {
            if (r[i].route == FA_SMTP_ROUTE_LOCAL && r[i].user.len) {
                r[i].mailbox = h->folder;
            }
        }
        return FA_SMTP_CONTINUE;
    }
    answer->code = h->code;
    answer->text = h->text;
    if (h->wait == 0) {
        return h->verdict;
    }
    w = fa_pcalloc(s->c->pool, sizeof(*w));
    if (w == NULL || fa_pool_cleanup_add(s->c->pool, fa_test_wait_cleanup, w) == NULL) {
        return FA_SMTP_DEFER;
    }
    w->s = s;
    w->answer = *answer;
    w->answer.verdict = h->verdict;
    w->timer.data = w;
    w->timer.handler = fa_test_wait_fired;
    w->timer.log = s->c->log;
    fa_event_add_timer(&w->timer, h->wait);
    return FA_SMTP_WAIT;
}

static fa_test_hook_t *
fa_test_hook_new(fa_conf_t *cf, const fa_str_t *phase)
{
    fa_test_hook_t  *h = fa_pcalloc(cf->pool, sizeof(*h));

    if (h == NULL) {
        return NULL;
    }
    for (fa_uint_t p = 0; p < FA_SMTP_NPHASES; p++) {
        if (fa_str_casecmp(phase, fa_smtp_phase_name(p)) == 0) {
            h->phase = p;
            return fa_smtp_handler_add(cf, p, fa_test_handler, h) == FA_OK ? h : NULL;
        }
    }
    fa_conf_error(cf, "unknown phase \"%.*s\"", (int) phase->len, phase->data);
    return NULL;
}

/* test_smtp_hook PHASE VERDICT [CODE "TEXT"] [match=WORD] [wait=MS] */
static char *
fa_test_hook_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_test_hook_t  *h = fa_test_hook_new(cf, &cf->args[1]);
    fa_uint_t        i = 3;

    (void) cmd;
    (void) conf;
    if (h == NULL) {
        return FA_CONF_ERROR;
    }
    h->verdict = FA_SMTP_WAIT;
    for (fa_uint_t v = 0; v < fa_nelems(fa_test_verdicts); v++) {
        if (fa_str_casecmp(&cf->args[2], fa_test_verdicts[v]) == 0) {
            h->verdict = v;
        }
    }
    if (h->verdict == FA_SMTP_WAIT) {
        return fa_conf_error(cf, "unknown verdict \"%s\"", (char *) cf->args[2].data);
    }
    if (i + 1 < cf->nargs && fa_atoi(cf->args[i].data, cf->args[i].len) > 0) {
        h->code = (fa_uint_t) fa_atoi(cf->args[i].data, cf->args[i].len);
        h->text = cf->args[i + 1];
        i += 2;
    }
    for ( ; i < cf->nargs; i++) {
        fa_str_t *a = &cf->args[i];
        if (a->len > 6 && memcmp(a->data, "match=", 6) == 0) {
            h->match.data = a->data + 6;
            h->match.len = a->len - 6;
        } else if (a->len > 5 && memcmp(a->data, "wait=", 5) == 0) {
            h->wait = (fa_msec_t) fa_atoi(a->data + 5, a->len - 5);
        } else {
            return fa_conf_error(cf, "unknown argument \"%s\"", (char *) a->data);
        }
    }
    return FA_CONF_OK;
}

/* test_smtp_header PHASE NAME VALUE */
static char *
fa_test_header_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_test_hook_t  *h = fa_test_hook_new(cf, &cf->args[1]);

    (void) cmd;
    (void) conf;
    if (h == NULL) {
        return FA_CONF_ERROR;
    }
    h->header_name = cf->args[2];
    h->header_value = cf->args[3];
    return FA_CONF_OK;
}

/* test_smtp_folder FOLDER: at route */
static char *
fa_test_folder_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_str_t         route = fa_string("route");
    fa_test_hook_t  *h = fa_test_hook_new(cf, &route);

    (void) cmd;
    (void) conf;
    if (h == NULL) {
        return FA_CONF_ERROR;
    }
    h->folder = cf->args[1];
    return FA_CONF_OK;
}

/*
 * Phase chains (fa_smtp.h): the handlers other modules registered for a
 * phase, run in order until one answers something other than CONTINUE.
 * A handler that answers WAIT parks the session (state BUSY, its input
 * left in the socket) until it calls fa_smtp_resume(); the chain then goes
 * on from the next handler.  The command that started the phase gets the
 * final answer through its continuation ("next").
 */

#include "fa_smtp_int.h"

static const char *const  fa_smtp_phase_names[FA_SMTP_NPHASES] = {
    "connect", "helo", "auth", "mail", "rcpt", "data_headers", "data_end", "route"
};

const char *
fa_smtp_phase_name(fa_smtp_phase_t phase)
{
    return phase < FA_SMTP_NPHASES ? fa_smtp_phase_names[phase] : "unknown";
}

static void
fa_smtp_phase_finish(fa_smtp_session_t *s, fa_smtp_answer_t *a)
{
    fa_smtp_priv_t   *p = fa_smtp_priv(s);
    fa_smtp_next_pt   next = p->next;

    p->next = NULL;
    p->waiting = 0;
    if (next) {
        next(s, a);
    }
}

static void
fa_smtp_phase_step(fa_smtp_session_t *s)
{
    fa_smtp_priv_t     *p = fa_smtp_priv(s);
    fa_array_t         *chain = p->main ? p->main->chains[p->phase] : NULL;
    fa_smtp_handler_t  *h = chain ? chain->elts : NULL;
    fa_smtp_answer_t    a;

    while (chain && p->handler < chain->nelts) {
        memset(&a, 0, sizeof(a));
        fa_uint_t i = p->handler++;
        a.verdict = h[i].handler(s, p->phase, h[i].data, &a);
        if (a.verdict == FA_SMTP_WAIT) {
            p->waiting = 1;
            return;
        }
        if (a.verdict != FA_SMTP_CONTINUE) {
            fa_smtp_phase_finish(s, &a);
            return;
        }
    }
    memset(&a, 0, sizeof(a));
    fa_smtp_phase_finish(s, &a);
}

void
fa_smtp_phase_run(fa_smtp_session_t *s, fa_smtp_phase_t phase, fa_smtp_next_pt next)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    p->phase = phase;
    p->handler = 0;
    p->next = next;
    p->generation++;
    p->state = FA_SMTP_ST_BUSY;
    fa_smtp_phase_step(s);
}

void
fa_smtp_resume(fa_smtp_session_t *s, const fa_smtp_answer_t *answer)
{
    fa_smtp_priv_t    *p = fa_smtp_priv(s);
    fa_smtp_answer_t   a = *answer;

    if (!p->waiting) {
        fa_log_error(FA_LOG_ALERT, s->c->log, 0, "smtp: a %s handler resumed a session "
                     "that was not waiting for it", fa_smtp_phase_name(p->phase));
        return;
    }
    p->waiting = 0;
    if (a.verdict == FA_SMTP_CONTINUE) {
        fa_smtp_phase_step(s);
    } else if (a.verdict == FA_SMTP_WAIT) {
        p->waiting = 1;                 /* nonsense, but harmless: still waiting */
    } else {
        fa_smtp_phase_finish(s, &a);
    }
}

/* the session ends: nothing may continue it */
void
fa_smtp_phase_cancel(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    p->next = NULL;
    p->waiting = 0;
}

void *
fa_smtp_get_ctx(fa_smtp_session_t *s, const fa_module_t *m)
{
    return s->ctx && m->index < FA_MAX_MODULES ? s->ctx[m->index] : NULL;
}

fa_int_t
fa_smtp_set_ctx(fa_smtp_session_t *s, const fa_module_t *m, void *ctx)
{
    if (m->index >= FA_MAX_MODULES) {
        return FA_ERROR;
    }
    if (s->ctx == NULL) {
        s->ctx = fa_pcalloc(s->c->pool, FA_MAX_MODULES * sizeof(void *));
        if (s->ctx == NULL) {
            return FA_ERROR;
        }
    }
    s->ctx[m->index] = ctx;
    return FA_OK;
}

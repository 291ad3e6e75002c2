/*
 * IDLE (RFC 2177): "+ idling", then changes to the selected mailbox are
 * told as they happen, until the client sends DONE (anything else ends the
 * IDLE with BAD).
 *
 * The store's watch marks the view; while s->idling it also starts the
 * update at once (fa_imap_view_changed), which asks the store what
 * changed, sends EXISTS, EXPUNGE and FETCH (FLAGS ...), flushes, and comes
 * back here (fa_imap_idle_resume) to wait for DONE again, or to start the
 * next update if more changed meanwhile.  While an update is in flight the
 * session reads nothing, so DONE is answered only after every update it
 * could have missed.
 *
 * An idling session holds no buffers: the command's tag is copied into its
 * pool and the command buffer given back, so the session layer frees both
 * the command and the read buffer while it waits.  The autologout timer
 * (imap_timeout, 30 minutes at least) runs as for any waiting session:
 * clients re-IDLE before it.
 */

#include "fa_imap_int.h"

static fa_int_t
fa_imap_idle_line(fa_imap_session_t *s, fa_line_t *line)
{
    fa_int_t  rc;

    s->idling = 0;
    if (line->too_long || !fa_str_eqi(&line->text, "DONE")) {
        rc = fa_imap_bad(s, "Expected DONE to end IDLE");
    } else {
        rc = fa_imap_tagged(s, "OK", "IDLE terminated");
    }
    fa_imap_done(s);
    return rc == FA_ERROR ? FA_ERROR : FA_OK;
}

/* updates were sent (or none were pending): wait for DONE, or tell what changed since */
fa_int_t
fa_imap_idle_resume(fa_imap_session_t *s)
{
    s->input = FA_IMAP_IN_LINE;
    if (s->view && s->view->changed) {
        (void) fa_imap_view_update(s, 1, fa_imap_idle_resume);
    }
    return FA_AGAIN;
}

fa_int_t
fa_imap_idle(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_str_t  *tag = &cmd->parsed.tag;
    u_char    *copy;

    if (cmd->parsed.nargs) {
        return fa_imap_bad(s, "IDLE takes no arguments");
    }
    /* the tag points into the command buffer, which is freed while idling */
    copy = fa_pnalloc(cmd->pool, tag->len + 1);
    if (copy == NULL) {
        return FA_ERROR;
    }
    memcpy(copy, tag->data, tag->len);
    tag->data = copy;
    s->len = 0;

    if (fa_imap_send(s, "+ idling") != FA_OK) {
        return FA_ERROR;
    }
    s->idling = 1;
    fa_imap_read_line(s, fa_imap_idle_line);
    /* what changed before IDLE is told now */
    return fa_imap_idle_resume(s);
}

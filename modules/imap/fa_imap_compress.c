/*
 * COMPRESS=DEFLATE (RFC 4978): after the tagged OK, both directions are
 * one raw deflate stream each (RFC 1951, no zlib header: windowBits -15).
 *
 * It is a layer under the session, the way TLS is (core/fa_ssl_conn.c):
 * c->recv and c->send are replaced by functions that inflate and deflate
 * around the ones that were there (plain socket or TLS), so the reader,
 * the writer and everything above them are unchanged.
 *
 *   send   every call deflates what it is given with Z_SYNC_FLUSH, so a
 *          reply is never held back in zlib; the compressed bytes the
 *          socket did not take stay here, and the call answers FA_AGAIN
 *          until they are out, so the writer's queue (and its high water
 *          mark) still counts what the client has not received.  The OK
 *          of COMPRESS itself, and whatever was queued before it, goes
 *          out uncompressed.
 *   recv   inflates into the caller's buffer, never more than it holds.
 *          It answers FA_AGAIN only when the layer below did and zlib
 *          holds neither input nor output: the reader's edge-triggered
 *          invariant (fa_connection.h) holds through the layer.  Bytes the
 *          client pipelined after COMPRESS are already compressed: they
 *          are taken from the reader buffer into the inflater.
 *
 * The streams live in the connection's pool; its cleanup frees them.
 */

#include "fa_imap_int.h"
#include <zlib.h>

#define FA_IMAP_DEFLATE_READ    16384      /* compressed bytes read at once */
#define FA_IMAP_DEFLATE_CHUNK   16384      /* plain bytes deflated per send */

typedef struct {
    fa_connection_t  *c;
    fa_recv_pt        recv;                /* the layer below */
    fa_send_pt        send;
    z_stream          in;
    z_stream          out;
    unsigned          in_ready:1;
    unsigned          out_ready:1;
    unsigned          in_full:1;           /* the last inflate filled its buffer */
    u_char           *ibuf;                /* compressed input, in.next_in inside it */
    size_t            isize;
    u_char           *obuf;                /* compressed output obuf[opos, olast) unsent */
    size_t            osize, opos, olast;
    size_t            owed;                /* plain bytes in obuf, not yet reported sent */
    size_t            plain;               /* bytes to send as they are (COMPRESS's OK) */
} fa_imap_deflate_t;


/* ---- the layer ---- */

static ssize_t
fa_imap_deflate_fail(fa_imap_deflate_t *z, int writing, const char *what, int zrc)
{
    fa_connection_t  *c = z->c;
    z_stream         *zs = writing ? &z->out : &z->in;

    fa_log_error(FA_LOG_INFO, c->log, 0, "COMPRESS: %s failed: %d %s", what, zrc,
                 zs->msg ? zs->msg : "");
    c->error = 1;
    (writing ? c->write : c->read)->error = 1;
    (writing ? c->write : c->read)->ready = 0;
    return FA_ERROR;
}

static ssize_t
fa_imap_inflate_recv(fa_connection_t *c, u_char *buf, size_t size)
{
    fa_imap_session_t  *s = c->data;
    fa_imap_deflate_t  *z = s->deflate;
    ssize_t             n;
    size_t              got;
    int                 zrc;

    size = fa_min(size, (size_t) UINT_MAX);
    for ( ;; ) {
        if (z->in.avail_in > 0 || z->in_full) {
            z->in.next_out = buf;
            z->in.avail_out = (uInt) size;
            zrc = inflate(&z->in, Z_SYNC_FLUSH);
            if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
                return fa_imap_deflate_fail(z, 0, zrc == Z_STREAM_END
                                            ? "inflate (the client ended its stream)"
                                            : "inflate", zrc);
            }
            got = size - z->in.avail_out;
            z->in_full = z->in.avail_out == 0;    /* zlib may hold more output */
            if (got) {
                return (ssize_t) got;
            }
        }
        /* zlib holds nothing: only now may the socket's EAGAIN be the answer */
        n = z->recv(c, z->ibuf, z->isize);
        if (n <= 0) {
            return n;                    /* FA_AGAIN, EOF, FA_ERROR */
        }
        z->in.next_in = z->ibuf;
        z->in.avail_in = (uInt) n;
    }
}

/* deflate len bytes of buf, flushed, into obuf */
static ssize_t
fa_imap_deflate_chunk(fa_imap_deflate_t *z, const u_char *buf, size_t len)
{
    u_char  *p;
    int      zrc;

    z->out.next_in = (Bytef *) buf;
    z->out.avail_in = (uInt) len;
    z->opos = z->olast = 0;
    do {
        if (z->olast == z->osize) {      /* incompressible: deflateBound was not enough */
            p = realloc(z->obuf, z->osize * 2);
            if (p == NULL) {
                return fa_imap_deflate_fail(z, 1, "realloc", Z_MEM_ERROR);
            }
            z->obuf = p;
            z->osize *= 2;
        }
        z->out.next_out = z->obuf + z->olast;
        z->out.avail_out = (uInt) (z->osize - z->olast);
        zrc = deflate(&z->out, Z_SYNC_FLUSH);
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            return fa_imap_deflate_fail(z, 1, "deflate", zrc);
        }
        z->olast = z->osize - z->out.avail_out;
    } while (z->out.avail_in > 0 || z->out.avail_out == 0);
    z->owed = len;
    return FA_OK;
}

/*
 * The writer calls again with the same bytes after FA_AGAIN: the first
 * z->owed of them are already in obuf, and are reported sent once obuf is.
 */
static ssize_t
fa_imap_deflate_send(fa_connection_t *c, const u_char *buf, size_t size)
{
    fa_imap_session_t  *s = c->data;
    fa_imap_deflate_t  *z = s->deflate;
    ssize_t             n;

    if (z->plain) {
        n = z->send(c, buf, fa_min(size, z->plain));
        if (n > 0) {
            z->plain -= (size_t) n;
        }
        return n;
    }
    if (z->owed == 0 && fa_imap_deflate_chunk(z, buf, fa_min(size, FA_IMAP_DEFLATE_CHUNK))
                        != FA_OK)
    {
        return FA_ERROR;
    }
    while (z->opos < z->olast) {
        n = z->send(c, z->obuf + z->opos, z->olast - z->opos);
        if (n <= 0) {
            return n == 0 ? FA_ERROR : n;
        }
        z->opos += (size_t) n;
    }
    n = (ssize_t) z->owed;
    z->owed = 0;
    return n;
}

/*
 * The connection's pool goes: nothing reads or writes after this, but no
 * pointer to freed streams is left in it.  (The session may outlive the
 * connection while store calls are answered; it never does I/O then.)
 */
static void
fa_imap_deflate_cleanup(void *data)
{
    fa_imap_deflate_t  *z = data;

    if (z->in_ready) {
        inflateEnd(&z->in);
    }
    if (z->out_ready) {
        deflateEnd(&z->out);
    }
    free(z->ibuf);
    free(z->obuf);
    if (z->recv) {
        z->c->recv = z->recv;
        z->c->send = z->send;
    }
}


/* ---- the command ---- */

static fa_int_t
fa_imap_deflate_init(fa_imap_session_t *s, fa_imap_deflate_t *z)
{
    fa_reader_t  *in = &s->c->in;
    size_t        unread = in->start ? (size_t) (in->last - in->pos) : 0;

    z->c = s->c;
    if (inflateInit2(&z->in, -15) != Z_OK) {
        return FA_ERROR;
    }
    z->in_ready = 1;
    if (deflateInit2(&z->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        return FA_ERROR;
    }
    z->out_ready = 1;
    z->isize = fa_max((size_t) FA_IMAP_DEFLATE_READ, unread);
    z->osize = deflateBound(&z->out, FA_IMAP_DEFLATE_CHUNK) + 64;
    z->ibuf = malloc(z->isize);
    z->obuf = malloc(z->osize);
    if (z->ibuf == NULL || z->obuf == NULL) {
        return FA_ERROR;
    }
    /* what the client sent after COMPRESS is compressed already */
    if (unread) {
        memcpy(z->ibuf, in->pos, unread);
        z->in.next_in = z->ibuf;
        z->in.avail_in = (uInt) unread;
        fa_conn_reader_discard(s->c);
    }
    return FA_OK;
}

fa_int_t
fa_imap_compress(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_connection_t    *c = s->c;
    fa_imap_deflate_t  *z;

    if (cmd->parsed.nargs != 1 || cmd->parsed.args[0].type != FA_IMAP_ARG_ATOM) {
        return fa_imap_bad(s, "Syntax: COMPRESS DEFLATE");
    }
    if (s->compressed) {
        return fa_imap_tagged(s, "NO", "[COMPRESSIONACTIVE] DEFLATE is active already");
    }
    if (!fa_imap_arg_is(&cmd->parsed.args[0], "DEFLATE")) {
        return fa_imap_bad(s, "Unknown compression mechanism");
    }
    z = fa_pcalloc(c->pool, sizeof(*z));
    if (z == NULL || fa_pool_cleanup_add(c->pool, fa_imap_deflate_cleanup, z) == NULL) {
        return FA_ERROR;
    }
    if (fa_imap_deflate_init(s, z) != FA_OK) {
        fa_log_error(FA_LOG_ERR, c->log, 0, "COMPRESS: zlib could not start");
        return fa_imap_tagged(s, "NO", "[SERVERBUG] Compression is not available now");
    }
    if (fa_imap_tagged(s, "OK", "DEFLATE active") != FA_OK) {
        return FA_ERROR;
    }
    z->plain = fa_conn_out_pending(c);
    z->recv = c->recv;
    z->send = c->send;
    c->recv = fa_imap_inflate_recv;
    c->send = fa_imap_deflate_send;
    s->deflate = z;
    s->compressed = 1;
    return FA_OK;
}

/*
 * Pool-backed growable arrays.  Growth doubles the capacity and copies; the
 * old storage stays in the pool until it is destroyed (pools never free piece
 * by piece), which is fine for the configuration-time arrays this serves.
 */

#include "fa_core.h"

fa_int_t
fa_array_init(fa_array_t *a, fa_pool_t *p, fa_uint_t n, size_t size)
{
    a->nelts = 0;
    a->size = size;
    a->nalloc = n ? n : 1;
    a->pool = p;
    a->elts = fa_palloc(p, a->nalloc * size);
    return a->elts ? FA_OK : FA_ERROR;
}

fa_array_t *
fa_array_create(fa_pool_t *p, fa_uint_t n, size_t size)
{
    fa_array_t  *a;

    a = fa_palloc(p, sizeof(fa_array_t));
    if (a == NULL || fa_array_init(a, p, n, size) != FA_OK) {
        return NULL;
    }
    return a;
}

void *
fa_array_push(fa_array_t *a)
{
    void  *elt, *grown;

    if (a->nelts == a->nalloc) {
        grown = fa_palloc(a->pool, 2 * a->nalloc * a->size);
        if (grown == NULL) {
            return NULL;
        }
        memcpy(grown, a->elts, a->nelts * a->size);
        a->elts = grown;
        a->nalloc *= 2;
    }
    elt = (u_char *) a->elts + a->size * a->nelts++;
    memset(elt, 0, a->size);
    return elt;
}

/*
 * Private to the auth module's directory files: the LMDB handles and the
 * record helpers fa_auth_directory.c and fa_auth_resolve.c share.
 */

#ifndef FA_AUTH_DIRECTORY_LMDB_H
#define FA_AUTH_DIRECTORY_LMDB_H

#include <lmdb.h>

struct fa_auth_dir_s {
    MDB_env    *env;
    MDB_dbi     domains;
    MDB_dbi     users;
    MDB_dbi     aliases;
    fa_log_t   *log;
};

int fa_auth_txn_end(MDB_txn *txn, int rc);
MDB_val fa_auth_key(const fa_str_t *address, u_char *buf);
fa_int_t fa_auth_lmdb_error(fa_auth_dir_t *d, int rc, const char *what);
fa_int_t fa_auth_delete(fa_auth_dir_t *d, MDB_dbi dbi, MDB_val *key);
fa_int_t fa_auth_get(fa_auth_dir_t *d, MDB_dbi dbi, MDB_val *key, fa_pool_t *pool,
    fa_str_t *out);
fa_int_t fa_auth_address_domain_check(fa_auth_dir_t *d, const fa_str_t *address);
fa_int_t fa_auth_list_domain(fa_auth_dir_t *d, MDB_dbi dbi, const fa_str_t *domain,
    fa_auth_each_pt fn, void *data);

#endif /* FA_AUTH_DIRECTORY_LMDB_H */

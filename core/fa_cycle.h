/*
 * A cycle is one loaded configuration and everything made from it: the scope
 * tree, the modules in use, the listeners.  The master builds a new cycle on
 * reload and switches to it only when it loaded completely; otherwise the
 * running one stays and the error is logged.
 */

#ifndef FA_CYCLE_H
#define FA_CYCLE_H

/* main-scope settings, owned by the core module (facteur.c) */
typedef struct {
    fa_int_t        worker_processes;   /* 0 = auto */
    fa_uint_t       worker_connections;
    fa_int_t        daemon;
    fa_str_t        user;
    fa_str_t        group;
    fa_str_t        pid;
    fa_str_t        error_log;
    fa_uint_t       error_log_level;
    fa_msec_t       shutdown_timeout;   /* worker_shutdown_timeout; 0 = wait */
    uid_t           uid;
    gid_t           gid;
} fa_core_conf_t;

struct fa_cycle_s {
    fa_pool_t          *pool;
    fa_log_t           *log;
    fa_log_t            log_storage;
    fa_log_file_t      *log_file;
    fa_conf_scope_t    *root;
    fa_array_t          modules;        /* fa_module_t *, static then dynamic */
    fa_array_t          dl_handles;     /* void * from dlopen */
    fa_array_t          listening;      /* fa_listening_t * */
    fa_array_t          ssl_contexts;   /* fa_ssl_t *, freed with the cycle */
    fa_core_conf_t     *core_conf;
    char               *prefix;         /* -p, ends with '/' */
    char               *conf_file;      /* absolute */
    fa_uint_t           test_only:1;    /* facteur -t */
};

extern fa_cycle_t          *fa_cycle;     /* the cycle in force in this process */
extern fa_module_t          fa_core_module;

fa_cycle_t *fa_cycle_load(fa_cycle_t *old, const char *prefix, const char *conf_file,
    int test_only, char **error);       /* NULL with *error = "FILE:LINE: ..." */
void fa_cycle_free(fa_cycle_t *cycle);

#define fa_core_conf(cycle)  ((cycle)->core_conf)

#endif /* FA_CYCLE_H */

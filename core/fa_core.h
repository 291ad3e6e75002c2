/*
 * Facteur core: the one header every core file and every module includes.
 *
 * It pulls in the system headers, the configure-generated settings and the
 * public headers of each core subsystem, in dependency order.  The core never
 * includes a module header; modules include this one and their own.
 *
 * Status codes: every layer (event handlers, config setters, protocol phases,
 * Lua verdicts) speaks the same small family of codes, so state machines read
 * the same everywhere.
 */

#ifndef FA_CORE_H
#define FA_CORE_H

#include "fa_auto_config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef intptr_t   fa_int_t;
typedef uintptr_t  fa_uint_t;
typedef int64_t    fa_msec_t;      /* milliseconds, monotonic clock */
typedef unsigned char u_char;

#define FA_OK          0
#define FA_ERROR      -1
#define FA_AGAIN      -2      /* would block: an event will call back */
#define FA_BUSY       -3
#define FA_DONE       -4      /* finished (for a reader: peer closed) */
#define FA_DECLINED   -5      /* not mine / continue with the next handler */
#define FA_ABORT      -6

/* config setters return NULL on success or a static error string */
#define FA_CONF_OK     NULL
#define FA_CONF_ERROR  ((char *) -1)

#define fa_min(a, b)   ((a) < (b) ? (a) : (b))
#define fa_max(a, b)   ((a) > (b) ? (a) : (b))
#define fa_nelems(a)   (sizeof(a) / sizeof((a)[0]))
#define fa_align(d, a) (((d) + ((a) - 1)) & ~((a) - 1))

#define FA_INT64_LEN   (sizeof("-9223372036854775808") - 1)
#define FA_SOCKADDR_STRLEN  (sizeof("unix:") - 1 + 108)

typedef struct fa_pool_s         fa_pool_t;
typedef struct fa_log_s          fa_log_t;
typedef struct fa_event_s        fa_event_t;
typedef struct fa_connection_s   fa_connection_t;
typedef struct fa_listening_s    fa_listening_t;
typedef struct fa_cycle_s        fa_cycle_t;
typedef struct fa_module_s       fa_module_t;
typedef struct fa_conf_s         fa_conf_t;
typedef struct fa_command_s      fa_command_t;
typedef struct fa_conf_scope_s   fa_conf_scope_t;
typedef struct fa_ssl_s          fa_ssl_t;
typedef struct fa_ssl_conn_s     fa_ssl_conn_t;
typedef struct fa_stat_s         fa_stat_t;

#include "fa_queue.h"
#include "fa_string.h"
#include "fa_palloc.h"
#include "fa_array.h"
#include "fa_log.h"
#include "fa_times.h"
#include "fa_event.h"
#include "fa_thread_pool.h"
#include "fa_connection.h"
#include "fa_listen.h"
#include "fa_ssl.h"
#include "fa_conf_file.h"
#include "fa_module.h"
#include "fa_stats.h"
#include "fa_cycle.h"
#include "fa_process.h"

#endif /* FA_CORE_H */

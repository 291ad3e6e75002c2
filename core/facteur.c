/*
 * facteur: the command line.
 *
 *   facteur [-p PREFIX] [-c FILE] [-t] [-s reload|quit|stop|reopen] [-v]
 */

#include "fa_core.h"

extern fa_module_t  *fa_modules[];     /* objs/fa_modules.c */

typedef struct {
    const char  *prefix;
    const char  *conf;
    const char  *signal;
    int          test;
} fa_options_t;

static void
fa_usage(FILE *out)
{
    fprintf(out, "usage: facteur [-p PREFIX] [-c FILE] [-t] [-s SIGNAL] [-v]\n"
            "  -p PREFIX  directory relative paths start from (default %s)\n"
            "  -c FILE    configuration file (default PREFIX%s)\n"
            "  -t         check the configuration and exit\n"
            "  -s SIGNAL  tell the running master: reload, quit, stop or reopen\n"
            "  -v         print the version and build options\n",
            FA_PREFIX, FA_CONF_PATH);
}

static int
fa_options_parse(int argc, char **argv, fa_options_t *o)
{
    int  ch;

    memset(o, 0, sizeof(*o));
    while ((ch = getopt(argc, argv, "p:c:s:tvh")) != -1) {
        switch (ch) {
        case 'p': o->prefix = optarg; break;
        case 'c': o->conf = optarg; break;
        case 's': o->signal = optarg; break;
        case 't': o->test = 1; break;
        case 'v':
            printf("facteur version %s\nmodule signature: %s\n", FA_VERSION,
                   FA_MODULE_SIGNATURE);
            exit(0);
        case 'h': fa_usage(stdout); exit(0);
        default:  fa_usage(stderr); return -1;
        }
    }
    if (optind != argc) {
        fa_usage(stderr);
        return -1;
    }
    return 0;
}

/* absolute prefix ending in '/', absolute configuration path */
static int
fa_options_paths(fa_options_t *o, char *prefix, char *conf, size_t size)
{
    char  cwd[PATH_MAX];
    const char *p = o->prefix ? o->prefix : FA_PREFIX;

    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        return -1;
    }
    if (p[0] == '/') {
        fa_snprintf(prefix, size, "%s", p);
    } else {
        fa_snprintf(prefix, size, "%s/%s", cwd, p);
    }
    if (prefix[strlen(prefix) - 1] != '/' && strlen(prefix) + 1 < size) {
        strcat(prefix, "/");
    }
    p = o->conf ? o->conf : FA_CONF_PATH;
    if (p[0] == '/') {
        fa_snprintf(conf, size, "%s", p);
    } else if (o->conf) {
        fa_snprintf(conf, size, "%s/%s", cwd, p);       /* as typed, from here */
    } else {
        fa_snprintf(conf, size, "%s%s", prefix, p);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    fa_options_t  o;
    char          prefix[PATH_MAX], conf[PATH_MAX], *error;
    fa_cycle_t   *cycle;

    if (fa_options_parse(argc, argv, &o) != 0
        || fa_options_paths(&o, prefix, conf, sizeof(prefix)) != 0)
    {
        return 2;
    }
    fa_time_update();
    fa_modules_preinit(fa_modules);
    /* counters exist before modules register theirs while the config loads */
    if (fa_ssl_init(&fa_log_stderr) != FA_OK || fa_stats_init(&fa_log_stderr) != FA_OK) {
        return 1;
    }

    cycle = fa_cycle_load(NULL, prefix, conf, o.test || o.signal, &error);
    if (cycle == NULL) {
        fprintf(stderr, "facteur: [emerg] %s\n", error);
        if (o.test) {
            fprintf(stderr, "facteur: configuration file %s test failed\n", conf);
        }
        free(error);
        return 1;
    }
    if (o.test) {
        fprintf(stderr, "facteur: the configuration file %s syntax is ok\n"
                "facteur: configuration file %s test is successful\n", conf, conf);
        fa_cycle_free(cycle);
        return 0;
    }
    if (o.signal) {
        int rc = fa_signal_send(cycle, o.signal) == FA_OK ? 0 : 1;
        fa_cycle_free(cycle);
        return rc;
    }
    fa_cycle = cycle;
    return fa_master_run(cycle);
}

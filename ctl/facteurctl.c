/*
 * facteurctl [-p PREFIX] [-c FILE] GROUP VERB [ARGS]: see fa_ctl.h.
 */

#include "fa_ctl.h"
#include "fa_storage.h"
#include <termios.h>

extern fa_module_t  *fa_modules[];     /* objs/fa_modules.c */

static const fa_ctl_command_t *const  fa_ctl_tables[] = {
    fa_ctl_directory_commands,
    fa_ctl_import_commands,
    fa_ctl_mailbox_commands,
    fa_ctl_mbox_commands,
    fa_ctl_check_commands,
    fa_ctl_maildir_commands,
    fa_ctl_queue_commands,
    fa_ctl_quota_commands,
};

int
fa_ctl_error(const char *fmt, ...)
{
    va_list  args;

    fputs("facteurctl: ", stderr);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
    return FA_CTL_REFUSED;
}

static void
fa_ctl_usage(FILE *out)
{
    fprintf(out, "usage: facteurctl [-p PREFIX] [-c FILE] COMMAND\n\ncommands:\n");
    for (size_t t = 0; t < fa_nelems(fa_ctl_tables); t++) {
        for (const fa_ctl_command_t *c = fa_ctl_tables[t]; c->group; c++) {
            fprintf(out, "  %s%s%s %s\n", c->group, c->verb[0] ? " " : "", c->verb, c->usage);
        }
    }
}

/* a command is "GROUP VERB", or just "GROUP" when its verb is empty ("stats") */
static const fa_ctl_command_t *
fa_ctl_find(const char *group, const char *verb)
{
    for (size_t t = 0; t < fa_nelems(fa_ctl_tables); t++) {
        for (const fa_ctl_command_t *c = fa_ctl_tables[t]; c->group; c++) {
            if (strcmp(c->group, group) == 0
                && (c->verb[0] == '\0' || (verb && strcmp(c->verb, verb) == 0)))
            {
                return c;
            }
        }
    }
    return NULL;
}

/* one line, without its end; never echoed, never on the command line */
static int
fa_ctl_read_line(FILE *in, char *buf, size_t size)
{
    size_t  n;

    if (fgets(buf, (int) size, in) == NULL) {
        return -1;
    }
    n = strlen(buf);
    if (n == size - 1 && buf[n - 1] != '\n') {
        explicit_bzero(buf, size);
        return -2;                                /* longer than we take */
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }
    return (int) n;
}

static int
fa_ctl_prompt(FILE *tty, const char *prompt, char *buf, size_t size)
{
    struct termios  old, quiet;
    int             n, echo_off;

    fputs(prompt, tty);
    fflush(tty);
    echo_off = tcgetattr(fileno(tty), &old) == 0;
    if (echo_off) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t) ECHO;
        tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    }
    n = fa_ctl_read_line(tty, buf, size);
    if (echo_off) {
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
    }
    fputc('\n', tty);
    return n;
}

int
fa_ctl_read_password(fa_ctl_t *ctl, char *buf, size_t size)
{
    char   again[1100];
    FILE  *tty;
    int    n;

    if (ctl->password_stdin) {
        n = fa_ctl_read_line(stdin, buf, size);
    } else {
        tty = fopen("/dev/tty", "r+");
        if (tty == NULL) {
            return fa_ctl_error("no terminal to ask for the password: use --password-stdin"),
                   -1;
        }
        n = fa_ctl_prompt(tty, "Password: ", buf, size);
        if (n > 0 && (fa_ctl_prompt(tty, "Retype password: ", again, sizeof(again)) != n
                      || strcmp(again, buf) != 0))
        {
            n = -3;
        }
        explicit_bzero(again, sizeof(again));
        fclose(tty);
    }
    if (n <= 0) {
        explicit_bzero(buf, size);
        fa_ctl_error("%s", n == 0 ? "the password is empty"
                           : n == -2 ? "the password is too long"
                           : n == -3 ? "the passwords do not match" : "no password given");
        return -1;
    }
    return n;
}

static int
fa_ctl_run(fa_ctl_t *ctl, const fa_ctl_command_t *cmd, int argc, char **argv)
{
    int  args = 0;

    /* options after the command words; the rest are positional arguments */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--password-stdin") == 0) {
            ctl->password_stdin = 1;
        } else if (strcmp(argv[i], "--allow-plain") == 0) {
            ctl->allow_plain = 1;
        } else if (strncmp(argv[i], "--domain=", 9) == 0 && argv[i][9]) {
            ctl->domain = argv[i] + 9;
        } else if (strncmp(argv[i], "--mailbox=", 10) == 0 && argv[i][10]) {
            ctl->mailbox = argv[i] + 10;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return fa_ctl_error("unknown option \"%s\" for \"%s %s\"", argv[i], cmd->group,
                                cmd->verb);
        } else {
            argv[args++] = argv[i];
        }
    }
    if (args < cmd->min_args || (cmd->max_args >= 0 && args > cmd->max_args)) {
        return fa_ctl_error("usage: facteurctl %s%s%s %s", cmd->group, cmd->verb[0] ? " " : "",
                            cmd->verb, cmd->usage);
    }
    return cmd->run(ctl, args, argv);
}

int
main(int argc, char **argv)
{
    const char              *prefix = ".", *conf = NULL;
    char                     pbuf[PATH_MAX], cbuf[PATH_MAX], cwd[PATH_MAX], *error;
    const fa_ctl_command_t  *cmd;
    fa_ctl_t                 ctl;
    int                      ch, rc;

    while ((ch = getopt(argc, argv, "+p:c:h")) != -1) {
        switch (ch) {
        case 'p': prefix = optarg; break;
        case 'c': conf = optarg; break;
        case 'h': fa_ctl_usage(stdout); return 0;
        default:  fa_ctl_usage(stderr); return FA_CTL_REFUSED;
        }
    }
    if (argc - optind < 1
        || (cmd = fa_ctl_find(argv[optind], argc - optind > 1 ? argv[optind + 1] : NULL))
           == NULL)
    {
        fa_ctl_usage(stderr);
        return FA_CTL_REFUSED;
    }
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        return FA_CTL_FAILED;
    }
    fa_snprintf(pbuf, sizeof(pbuf), "%s%s%s/", prefix[0] == '/' ? "" : cwd,
                prefix[0] == '/' ? "" : "/", prefix);
    if (conf == NULL) {
        fa_snprintf(cbuf, sizeof(cbuf), "%s%s", pbuf, FA_CONF_PATH);
    } else {
        fa_snprintf(cbuf, sizeof(cbuf), "%s%s%s", conf[0] == '/' ? "" : cwd,
                    conf[0] == '/' ? "" : "/", conf);
    }

    fa_time_update();
    fa_modules_preinit(fa_modules);
    memset(&ctl, 0, sizeof(ctl));
    ctl.cycle = fa_cycle_load(NULL, pbuf, cbuf, 1, &error);
    if (ctl.cycle == NULL) {
        fa_ctl_error("%s", error);
        free(error);
        return FA_CTL_FAILED;
    }
    ctl.pool = ctl.cycle->pool;
    fa_uint_t words = cmd->verb[0] ? 2 : 1;
    rc = fa_ctl_run(&ctl, cmd, argc - optind - (int) words, argv + optind + words);
    if (ctl.loop) {
        fa_storage_close_all(ctl.cycle);     /* drains the stores' pending writes */
        fa_event_done(ctl.cycle);
    }
    fa_cycle_free(ctl.cycle);
    return rc;
}

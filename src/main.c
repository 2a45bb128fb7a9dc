/* wsgate: command line, configuration, signals, start and stop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config/config.h"
#include "core/err.h"
#include "core/log.h"
#include "proxy/proxy.h"

#define EXIT_USAGE 2 /* bad command line, bad config, or cannot listen */

static const char usage[] =
    "Usage: wsgate [options]\n"
    "       wsgate check -c FILE\n"
    "\n"
    "A WebSocket reverse proxy: clients connect to the listen address and are\n"
    "relayed, frame by frame, to the backend their path routes to.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     read the YAML configuration FILE\n"
    "      --listen ADDR     listen on ADDR (host:port, [v6]:port, *:port)\n"
    "      --backend URL     route \"/\" to URL (ws://host:port), replacing the\n"
    "                        file's \"/\" route; other routes stay\n"
    "      --workers N       worker threads (default: one per core)\n"
    "      --log-level L     debug, info, warn or error (default: info)\n"
    "  -h, --help            show this help and exit\n"
    "  -V, --version         show the version and exit\n"
    "\n"
    "Commands:\n"
    "  check -c FILE         validate FILE, print each error as\n"
    "                        FILE:LINE:COLUMN: message, exit 0 when valid\n"
    "\n"
    "Flags override values from the file. Logs are JSON lines on stderr.\n"
    "See docs/configuration.md for every setting.\n";

struct cli {
    const char *config;
    const char *listen;
    const char *backend;
    const char *workers;
    const char *log_level;
    bool check;
};

static int die_usage(const char *what, const char *arg)
{
    fprintf(stderr, "wsgate: %s%s (see wsgate --help)\n", what, arg);
    return EXIT_USAGE;
}

/* Returns -1 to continue, or an exit status. */
static int parse_cli(int argc, char **argv, struct cli *cli)
{
    int i = 1;

    if (argc > 1 && strcmp(argv[1], "check") == 0) {
        cli->check = true;
        i = 2;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("wsgate %s\n", WSG_VERSION);
            return 0;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            slot = &cli->config;
        else if (strcmp(a, "--listen") == 0)
            slot = &cli->listen;
        else if (strcmp(a, "--backend") == 0)
            slot = &cli->backend;
        else if (strcmp(a, "--workers") == 0)
            slot = &cli->workers;
        else if (strcmp(a, "--log-level") == 0)
            slot = &cli->log_level;
        else
            return die_usage("unknown argument: ", a);
        if (i + 1 >= argc)
            return die_usage("this option needs a value: ", a);
        *slot = argv[++i];
    }
    if (cli->check && !cli->config)
        return die_usage("check needs -c FILE", "");
    return -1;
}

/* Apply flag overrides to cfg through the configuration's key table.
 * Returns 0 or an exit status. */
static int apply_flags(const struct cli *cli, struct config *cfg)
{
    if (cli->listen && config_set_flag(cfg, "listen", "--listen", cli->listen, stderr) < 0)
        return EXIT_USAGE;
    if (cli->workers && config_set_flag(cfg, "workers", "--workers", cli->workers, stderr) < 0)
        return EXIT_USAGE;
    if (cli->log_level &&
        config_set_flag(cfg, "log_level", "--log-level", cli->log_level, stderr) < 0)
        return EXIT_USAGE;
    if (cli->backend) {
        int rc = config_set_backend(cfg, cli->backend, stderr);
        if (rc == ERR_NOMEM)
            fprintf(stderr, "wsgate: out of memory\n");
        if (rc < 0)
            return EXIT_USAGE;
    }
    if (config_finish(cfg) < 0) {
        fprintf(stderr, "wsgate: out of memory\n");
        return EXIT_USAGE;
    }
    return 0;
}

static int run(struct config *cfg)
{
    static const enum log_sev sev[] = {LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR};
    struct proxy *p;
    struct log_line l;
    sigset_t set;
    size_t bad = 0;
    int sfd;

    log_set_level(sev[cfg->log_level]);
    /* Signals go to a signalfd read by this thread only; workers inherit the
     * blocked mask. SIGPIPE is blocked too (writes use MSG_NOSIGNAL). */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sigdelset(&set, SIGPIPE);
    sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        log_simple(LOG_ERROR, "cannot create signalfd", strerror(errno));
        return 1;
    }
    if (proxy_start(&p, cfg, &bad) < 0) {
        fprintf(stderr, "wsgate: cannot listen on %s: %s\n", cfg->listeners[bad].addr.text,
                strerror(errno));
        close(sfd);
        return EXIT_USAGE;
    }
    /* Backends whose certificates nobody checks are worth a warning. */
    for (size_t i = 0; i < cfg->routing.nupstreams; i++) {
        const struct rc_upstream *up = &cfg->routing.upstreams[i];
        if (up->has_tls && up->tls.insecure_skip_verify &&
            log_begin(&l, LOG_WARN, "backend certificates are not verified")) {
            log_str(&l, "upstream", up->name);
            log_str(&l, "detail",
                    "insecure_skip_verify: true; anyone on the path can impersonate "
                    "these backends");
            log_end(&l);
        }
    }
    /* One line per listener, in the configuration's order. */
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (!log_begin(&l, LOG_INFO, "listening"))
            break;
        log_str(&l, "addr", proxy_addr(p, i));
        log_str(&l, "proto", cfg->listeners[i].has_tls ? "https" : "http");
        if (cfg->listeners[i].has_tls) {
            char names[512];
            tls_conf_names(&cfg->listeners[i].tls, names, sizeof(names));
            log_str(&l, "names", names);
        }
        log_uint(&l, "workers", proxy_workers(p));
        log_uint(&l, "max_connections", proxy_max_connections(p));
        log_str(&l, "version", WSG_VERSION);
        log_end(&l);
    }
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sfd, &si, sizeof(si));
        if (n < 0 && errno == EINTR)
            continue;
        if (n != sizeof(si))
            break;
        if (si.ssi_signo == SIGHUP) {
            log_simple(LOG_WARN, "SIGHUP ignored", "configuration reload is not supported yet");
            continue;
        }
        if (log_begin(&l, LOG_INFO, "shutting down")) {
            log_str(&l, "signal", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
            log_uint(&l, "timeout_ms", cfg->shutdown_timeout_ms);
            log_end(&l);
        }
        break;
    }
    proxy_shutdown(p);
    proxy_join(p);
    close(sfd);
    log_simple(LOG_INFO, "stopped", NULL);
    return 0;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    struct config *cfg = NULL;
    int rc = parse_cli(argc, argv, &cli);

    if (rc >= 0)
        return rc;
    if (cli.config) {
        if (config_load_file(cli.config, stderr, &cfg) < 0) {
            if (!cli.check)
                fprintf(stderr, "wsgate: %s: invalid configuration\n", cli.config);
            return EXIT_USAGE;
        }
    } else {
        cfg = calloc(1, sizeof(*cfg));
        if (!cfg)
            return 1;
        config_defaults(cfg);
    }
    rc = apply_flags(&cli, cfg);
    if (rc == 0 && config_validate(cfg, stderr) < 0)
        rc = EXIT_USAGE;
    if (rc == 0 && cli.check)
        printf("%s: ok\n", cli.config);
    else if (rc == 0)
        rc = run(cfg);
    config_free(cfg);
    return rc;
}

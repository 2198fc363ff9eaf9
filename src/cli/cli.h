/*
 * cli.h - the sluice command line: serve, check, version. Each returns the process exit status.
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H
#include "core/util.h"

#include <stdbool.h>

#define SLUICE_VERSION "0.1.0"

/* cli_option_value - "--name VALUE" or "--name=VALUE" at argv[*i] (i advanced past VALUE); NULL
 * when argv[*i] is not that option, with *missing set when it is but VALUE is missing. */
const char *cli_option_value(int argc, char **argv, int *i, const char *name, bool *missing);
/* cli_main - dispatch argv to a subcommand. */
int cli_main(int argc, char **argv);
/* cli_check - validate the configuration in dir; print every error; 0 if valid, 1 otherwise. */
int cli_check(const char *dir);
/* cli_queue - `sluice queue ARGS`: through the running daemon's control socket, else on the files; the exit status. */
int cli_queue(const char *dir, int argc, char **argv);
struct sl_conf;
/* cli_queue_capture - cli_queue on a loaded configuration, the answer appended to out instead of printed. */
int cli_queue_capture(const struct sl_conf *c, int argc, char **argv, strbuf *out);
/* daemon_serve - run the daemon in the foreground on the configuration in dir. */
int daemon_serve(const char *dir);

#endif

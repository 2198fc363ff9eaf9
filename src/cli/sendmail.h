/*
 * sendmail.h - the sendmail interface (doc/operations.md): `sluice sendmail ARGS`, and the
 * binary itself when it is called as sendmail, mailq or newaliases. A message goes to the
 * running daemon over the local submission socket (SMTP into the daemon's own server session:
 * the 250 comes after the queue commit); while no daemon answers it is left in the pickup
 * directory. Exit statuses are sysexits.h's. Command process only (never inside the daemon).
 */
#ifndef SLUICE_CLI_SENDMAIL_H
#define SLUICE_CLI_SENDMAIL_H

/* cli_sendmail - sendmail's options and recipients in argv[1..] (argv[0]: the program name);
 * confdir: the configuration directory unless -C names another. Returns the exit status. */
int cli_sendmail(int argc, char **argv, const char *confdir);
/* cli_mailq - mailq: the queue listing (`sluice queue list`); options are ignored. */
int cli_mailq(int argc, char **argv, const char *confdir);
/* cli_newaliases - newaliases: there is no aliases file to rebuild; says so and succeeds. */
int cli_newaliases(void);

#endif

/*
 * trace_rewrite.h - "sluice test rewrite": show how the rewrite rules of a configuration route
 * one address, rule by rule, like Messaging Server's "imsimta test -rewrite". Runs in the CLI
 * process only; loads the configuration, touches nothing else.
 */
#ifndef SLUICE_CLI_TRACE_REWRITE_H
#define SLUICE_CLI_TRACE_REWRITE_H

/*
 * cli_test_rewrite - argv holds the arguments after "rewrite": ADDRESS [--source-channel CH]
 * [--from ADDR]; confdir is the configuration directory. Prints each rule tried, then the
 * destination channel, the rewritten address and the routing host. Returns the exit status:
 * 0 routed, 1 not routed (the error text is printed), 2 usage or configuration error.
 */
int cli_test_rewrite(int argc, char **argv, const char *confdir);

#endif

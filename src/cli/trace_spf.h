/*
 * trace_spf.h - "sluice test spf IP MAILFROM [--helo NAME]": evaluate SPF (RFC 7208) for a
 * client address and a MAIL FROM against the DNS servers of a configuration (option.dat
 * dns_servers) and print the result, the mechanism that matched, the explanation or the
 * problem, and the Received-SPF: and Authentication-Results: fields the daemon would write.
 * Runs in the CLI process only, on a private event loop that runs while the check waits.
 */
#ifndef SLUICE_CLI_TRACE_SPF_H
#define SLUICE_CLI_TRACE_SPF_H

/*
 * cli_test_spf - argv holds the arguments after "spf": IP MAILFROM [--helo NAME] (MAILFROM "" or
 * "<>" for the null reverse path, then the HELO name is checked). Returns the exit status: 0 the
 * check ran (whatever its result), 1 it did not finish within 60 s, 2 usage or configuration error.
 */
int cli_test_spf(int argc, char **argv, const char *confdir);

#endif

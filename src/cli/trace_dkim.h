/*
 * trace_dkim.h - "sluice test dkim sign|verify": sign a message read on standard input with a
 * private key, or verify one of its DKIM-Signature fields with a key record given on the command
 * line or fetched from the configured DNS servers, with the engine of src/dkim/. For operators checking keys and for the interop
 * tests with other DKIM implementations. CLI process only.
 */
#ifndef SLUICE_CLI_TRACE_DKIM_H
#define SLUICE_CLI_TRACE_DKIM_H

/*
 * cli_test_dkim - argv holds the arguments after "dkim":
 *   sign --key PEMFILE --domain D --selector S [--canon H/B] [--headers a:b:c] [--oversign] [--time T]
 *        prints the DKIM-Signature field, then the message;
 *   verify --key-record TEXT [--index N]
 *        prints result, reason, d=, s=, a= of signature N (0 = topmost);
 *   verify --dns
 *        verifies every signature with key records from confdir's dns_servers (60 s at most).
 * The message on standard input may use LF line ends (made CRLF). Returns the exit status: 0
 * signed / a pass (every signature passes, --dns), 1 not a pass or signing failed, 2 usage or
 * configuration error.
 */
int cli_test_dkim(int argc, char **argv, const char *confdir);

#endif

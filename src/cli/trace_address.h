/*
 * trace_address.h - "sluice test address": a dry run of every decision for one recipient, as the
 * daemon would make it for a client (the policy of src/policy/ with the configuration and the
 * directory of confdir; DNS asked when reject_mode=auto). Runs in the CLI process only; queues
 * nothing.
 */
#ifndef SLUICE_CLI_TRACE_ADDRESS_H
#define SLUICE_CLI_TRACE_ADDRESS_H
#include "core/util.h"

/*
 * cli_test_address - argv holds the arguments after "address": ADDRESS [--from ADDR]
 * [--client IP] [--source-channel CH]. Prints the decisions (the daemon's debug log lines: the
 * domain and entry found, statuses, limits, group rules, the reject mode) and the replies to
 * EHLO, MAIL and RCPT, all on stdout. Returns 0 when the recipient is accepted, 1 when it is
 * refused, 2 on a usage or configuration error.
 */
int cli_test_address(int argc, char **argv, const char *confdir);

/*
 * trace_address_verify - `sendmail -bv`: the reply to RCPT that each of rcpts would get in a
 * local submission from from (the submit channel, the same engine and policy; log lines below
 * error suppressed): the reply code into codes[i] (0 if the session never got that far) and the
 * last reply line into replies. 0, or -1 when the configuration cannot be loaded (errors printed).
 */
int trace_address_verify(const char *confdir, const strvec *rcpts, const char *from, int *codes, strvec *replies);

#endif

/*
 * trace_mapping.h - "sluice test mapping": run one string through a mapping table of a
 * configuration and show the result, the flags, the entry that decided and every entry tried,
 * like Messaging Server's "imsimta test -mapping". Runs in the CLI process only; reads
 * CONFDIR/mappings (and its includes) itself, touches nothing else.
 */
#ifndef SLUICE_CLI_TRACE_MAPPING_H
#define SLUICE_CLI_TRACE_MAPPING_H

/*
 * cli_test_mapping - argv holds the arguments after "mapping": TABLE STRING [--flags LETTERS]
 * [-C DIR] (-C overrides confdir). Prints the entries tried, then "result = allow | reject |
 * temporary reject | matched | no match", the output, the flags and the deciding entry.
 * Returns the exit status: 0 an entry matched, 1 none did (or the probe failed temporarily),
 * 2 usage or configuration error.
 */
int cli_test_mapping(int argc, char **argv, const char *confdir);

#endif

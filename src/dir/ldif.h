/*
 * ldif.h - private to src/dir: an RFC 2849 LDIF content parser (the subset the embedded
 * directory needs). ldif_parse turns LDIF text into records of (attribute, value, line) in file
 * order; it knows nothing about object classes, dir.c gives the records meaning.
 * Supported: "dn:" starting an entry, "attr: value", "attr:: base64", continuation lines that
 * start with one space, '#' comments (with their continuations), blank lines between entries,
 * attribute options ("attr;lang-en" keeps "attr"), CRLF or LF line ends, "version: 1" first.
 * Not supported (reported as errors): "attr:< URL" values, change records.
 * Pure and reentrant: no globals, any thread may call it.
 */
#ifndef SLUICE_LDIF_H
#define SLUICE_LDIF_H
#include <stddef.h>

#include "conf/conf.h"

/* One attribute value: name is the lower-cased base name (options removed). */
typedef struct {
    char *name;
    char *value;
    int line;
} ldif_attr;

/* One entry: its DN (as written, decoded when base64) and its attribute values in file order. */
typedef struct {
    char *dn;
    int line;
    ldif_attr *attrs;
    size_t n, cap;
} ldif_record;

typedef struct {
    ldif_record *recs;
    size_t n, cap;
} ldif_file;

/* ldif_parse - parse text into out (appending); returns the number of errors added to errs. */
int ldif_parse(const char *file, const char *text, ldif_file *out, conf_errors *errs);
/* ldif_file_free - release every record of f and reset it to empty. */
void ldif_file_free(ldif_file *f);
/* ldif_record_first - the first value of attribute name (lower case) in r, or NULL. */
const ldif_attr *ldif_record_first(const ldif_record *r, const char *name);
/* ldif_record_has_value - whether attribute name has value (compared case-insensitively). */
int ldif_record_has_value(const ldif_record *r, const char *name, const char *value);

#endif

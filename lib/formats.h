/*
 * lib/formats.h - the text of what SageMaker clients send, for plug-ins.
 *
 * The pieces of a request reader that know no model: short messages,
 * numbers (CSV, JSON, model files), the JSON syntax (values, strings,
 * objects, arrays; not what the instances mean), Content-Type parameters,
 * the choice of answer type from Accept, the buffer answers are written
 * through, and reading a model file. lib/instances.h builds the instance
 * reader on them and lib/invoke.h the request around it; a plug-in includes
 * lib/invoke.h, or this file alone for the pieces. Libc and model.h only.
 *
 * Everything here is static, so a plug-in that includes it stays one source
 * file; every name starts with smlib_ (SMLIB_ for macros), so none clashes
 * with the plug-in's own.
 */
#ifndef SMSERVE_FORMATS_H
#define SMSERVE_FORMATS_H

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model.h"     /* model_response_write, for the answer buffer */

#include "attributes.h"

#define SMLIB_MAX_NUMBER_LEN 512       /* longest number token handed to strtod */
#define SMLIB_JSON_MAX_DEPTH 64        /* nesting allowed in a request; bounds recursion */
#define SMLIB_SHOWN 40           /* bytes of a bad token quoted in a message */
#define SMLIB_KEY_CAP 16               /* longest member name a reader looks for, with room */

/* ======================================================================== */
/* Small helpers                                                             */
/* ======================================================================== */

static SMLIB_UNUSED int smlib_is_digit(int c) { return c >= '0' && c <= '9'; }

static SMLIB_UNUSED int smlib_is_blank(int c) { return c == ' ' || c == '\t'; }

static SMLIB_UNUSED int smlib_lower(int c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

/* Case-insensitive comparison of s[0..n) with the whole of lit (media types
 * and parameter names are case-insensitive, RFC 9110 8.3.1). */
static SMLIB_UNUSED int smlib_equal_ci(const char *s, size_t n, const char *lit)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (lit[i] == '\0' || smlib_lower((unsigned char)s[i]) != smlib_lower((unsigned char)lit[i]))
			return 0;
	return lit[n] == '\0';
}

static SMLIB_UNUSED int smlib_equal(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* The first byte at or after p (before end) that is not a space or tab. */
static SMLIB_UNUSED const char *smlib_skip_blanks(const char *p, const char *end)
{
	while (p < end && smlib_is_blank((unsigned char)*p))
		p++;
	return p;
}

/* Trims spaces and tabs from both ends of [*s, *e). */
static SMLIB_UNUSED void smlib_trim(const char **s, const char **e)
{
	while (*s < *e && smlib_is_blank((unsigned char)**s))
		(*s)++;
	while (*e > *s && smlib_is_blank((unsigned char)(*e)[-1]))
		(*e)--;
}

static SMLIB_UNUSED void smlib_format(char *buf, size_t size, const char *fmt,
				      ...) SMLIB_PRINTF_LIKE(3, 4);
static SMLIB_UNUSED void smlib_format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* Copies at most SMLIB_SHOWN bytes of [s, e) into out for a message, with
 * anything unprintable shown as '?', so that messages stay short ASCII. */
static SMLIB_UNUSED const char *smlib_shown(char out[SMLIB_SHOWN + 4], const char *s, const char *e)
{
	size_t n = (size_t)(e - s), i;
	size_t k = n > SMLIB_SHOWN ? SMLIB_SHOWN : n;
	for (i = 0; i < k; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
	}
	if (k < n)
		memcpy(out + k, "...", 3), k += 3;
	out[k] = '\0';
	return out;
}

/* ======================================================================== */
/* Numbers                                                                   */
/* ======================================================================== */
/*
 * One reader for every number: model file, CSV field, JSON value. strtod alone
 * would accept too much ("0x1p3", "inf", "nan", " 5", "1e5junk" as a prefix),
 * so the syntax is checked here first, and strtod is only the slow path.
 *
 *   CSV and model file   [+-] digits [. digits] [e [+-] digits], or .5, 5.
 *   JSON (RFC 8259 6)    - (0 | [1-9] digits) [. digits] [e [+-] digits]
 *
 * Fast path (Clinger, 1990): when the digits form an integer m <= 2^53 and the
 * decimal exponent e is within +-22, m and 10^|e| are both exact doubles and
 * one IEEE multiplication or division rounds correctly. Iris-like data
 * ("5.1" = 51 / 10) always takes it. Anything else (long mantissas, large
 * exponents) goes to strtod, which rounds correctly too.
 */

enum smlib_num_syntax { SMLIB_NUM_CSV, SMLIB_NUM_JSON };
enum { SMLIB_NUM_OK = 0, SMLIB_NUM_BAD = -1, SMLIB_NUM_RANGE = -2, SMLIB_NUM_LONG = -3 };

static SMLIB_UNUSED const double SMLIB_POW10[23] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The slow path: strtod on a NUL-terminated copy of an already checked token. */
static SMLIB_UNUSED int smlib_number_slow(const char *s, size_t n, double *out)
{
	char buf[SMLIB_MAX_NUMBER_LEN + 1];
	char *end;
	if (n > SMLIB_MAX_NUMBER_LEN)
		return SMLIB_NUM_LONG;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	*out = strtod(buf, &end);
	if (end != buf + n) /* cannot happen for a checked token; refuse anyway */
		return SMLIB_NUM_BAD;
	return isinf(*out) ? SMLIB_NUM_RANGE : SMLIB_NUM_OK;
}

/* Reads one number at *pp (before end). On SMLIB_NUM_OK stores it in *out and moves
 * *pp past it; the caller checks what follows. SMLIB_NUM_BAD: no number here, *pp
 * unchanged. SMLIB_NUM_RANGE (too large for a double) and SMLIB_NUM_LONG (longer than
 * SMLIB_MAX_NUMBER_LEN): well-formed but unusable, *pp moved past it. */
static SMLIB_UNUSED int smlib_parse_number(const char **pp, const char *end,
					   enum smlib_num_syntax syn, double *out)
{
	const char *s = *pp, *p = s, *digits;
	uint64_t m = 0;
	long exp10 = 0;
	int neg = 0, exact = 1;
	size_t n_int, n_frac = 0;

	if (p < end && (*p == '-' || (*p == '+' && syn == SMLIB_NUM_CSV)))
		neg = *p++ == '-';
	for (digits = p; p < end && smlib_is_digit(*p); p++) {
		if (m <= (UINT64_MAX - 9) / 10)
			m = m * 10 + (uint64_t)(*p - '0');
		else
			exact = 0, exp10++; /* digit dropped: strtod decides */
	}
	n_int = (size_t)(p - digits);
	if (syn == SMLIB_NUM_JSON && (n_int == 0 || (n_int > 1 && *digits == '0')))
		return SMLIB_NUM_BAD; /* JSON: no ".5", no "01" */
	if (p < end && *p == '.') {
		for (digits = ++p; p < end && smlib_is_digit(*p); p++) {
			if (m <= (UINT64_MAX - 9) / 10)
				m = m * 10 + (uint64_t)(*p - '0'), exp10--;
			else
				exact = 0;
		}
		n_frac = (size_t)(p - digits);
		if (syn == SMLIB_NUM_JSON && n_frac == 0)
			return SMLIB_NUM_BAD; /* JSON: no "5." */
	}
	if (n_int + n_frac == 0)
		return SMLIB_NUM_BAD;
	if (p < end && (*p == 'e' || *p == 'E')) {
		long e = 0;
		int eneg = 0;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		if (p >= end || !smlib_is_digit(*p))
			return SMLIB_NUM_BAD;
		for (; p < end && smlib_is_digit(*p); p++)
			if (e < 100000) /* past this, the value is 0 or inf anyway */
				e = e * 10 + (*p - '0');
		exp10 += eneg ? -e : e;
	}

	if (exact && m == 0) {
		*out = neg ? -0.0 : 0.0;
	} else if (exact && m <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
		double v = (double)m;
		v = exp10 < 0 ? v / SMLIB_POW10[-exp10] : v * SMLIB_POW10[exp10];
		*out = neg ? -v : v;
	} else {
		*pp = p;
		return smlib_number_slow(s, (size_t)(p - s), out);
	}
	*pp = p;
	return SMLIB_NUM_OK;
}

/* The usual decimal, read in one pass: an optional '-', then 1 to 15 digits
 * with at most one '.' among them ("5", "-0.25", "3.", ".5"). With 15
 * digits m < 2^53, so m / 10^k rounds correctly (Clinger's fast path, as
 * above): the double strtod gives. Returns the end of the number, with *out
 * set; or NULL for anything else (more digits, no digit, a '+'), which
 * smlib_parse_number decides. The caller checks what follows. Nothing here
 * has its address taken, so the compiler keeps p, m and the value in
 * registers (passing &p down kept p in memory, and every field waited on a
 * store and a reload of it). */
static inline const char *smlib_decimal_quick(const char *p, const char *end, double *out)
{
	uint64_t m = 0;
	int neg, digits = 0, frac = -1; /* frac: digits after the '.', if any */
	double v;

	neg = p < end && *p == '-';
	p += neg; /* not a branch: signs come at random, and a missed guess costs more */
	for (; p < end; p++) {
		unsigned d = (unsigned)(unsigned char)*p - '0';
		if (d < 10) {
			m = m * 10 + d;
			digits++;
			frac += frac >= 0;
		} else if (*p == '.' && frac < 0) {
			frac = 0;
		} else {
			break;
		}
	}
	if (digits == 0 || digits > 15)
		return NULL;
	v = (double)(int64_t)m; /* m < 2^53: exact, and a signed conversion is one instruction */
	if (frac > 0)
		v /= SMLIB_POW10[frac];
	*out = neg ? -v : v;
	return p;
}

/* ======================================================================== */
/* JSON syntax                                                               */
/* ======================================================================== */
/*
 * A recursive-descent reader over the body, with nothing built in memory:
 * its user (lib/instances.h) walks the document with smlib_js_member and
 * smlib_js_element, reads the values it wants (smlib_parse_number,
 * smlib_js_string with a key buffer) and hands the rest to smlib_js_skip,
 * which checks that they are well-formed. Recursion happens only for
 * nesting, and SMLIB_JSON_MAX_DEPTH bounds it. A syntax error
 * is written to err with its line and column (JSON Lines: its record and
 * column), and the functions return -1.
 *
 * Strings are validated (escapes, no control bytes) but not checked as UTF-8:
 * their content only matters for member names, which are ASCII.
 */

struct smlib_json {
	const char *start;      /* of the body, for line and column in messages */
	const char *line;       /* JSON Lines: start of the current line */
	const char *p, *end;
	int lines;              /* JSON Lines: a newline ends a value */
	char *err;              /* where a syntax error is written ... */
	size_t err_size;        /* ... (err_size bytes) */
	const size_t *record;   /* the record being read, for JSON Lines messages */
};

static SMLIB_UNUSED int smlib_js_peek(const struct smlib_json *s)
{
	return s->p < s->end ? (unsigned char)*s->p : -1;
}

static SMLIB_UNUSED void smlib_js_ws(struct smlib_json *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' ||
				 (*s->p == '\n' && !s->lines)))
		s->p++;
}

/* "malformed JSON at line L, column C: expected X, got Y". Line and column
 * are counted only here, on the error path, so reading stays linear. */
static SMLIB_UNUSED int smlib_js_syntax(struct smlib_json *s, const char *expected)
{
	const char *q, *bol = s->lines ? s->line : s->start;
	unsigned long line = 1, col;
	char got[24];
	int c = smlib_js_peek(s);
	if (!s->lines)
		for (q = s->start; q < s->p; q++)
			if (*q == '\n')
				line++, bol = q + 1;
	col = (unsigned long)(s->p - bol) + 1;
	if (c < 0)
		smlib_format(got, sizeof got, "the end of the body");
	else if (c == '\n')
		smlib_format(got, sizeof got, "the end of the line");
	else if (c >= 0x20 && c < 0x7f)
		smlib_format(got, sizeof got, "'%c'", c);
	else
		smlib_format(got, sizeof got, "byte 0x%02x", (unsigned)c);
	if (s->lines)
		smlib_format(s->err, s->err_size, "record %zu: malformed JSON at column %lu: "
			     "expected %s, got %s", *s->record, col, expected, got);
	else
		smlib_format(s->err, s->err_size, "malformed JSON at line %lu, column %lu: "
			     "expected %s, got %s", line, col, expected, got);
	return -1;
}

static SMLIB_UNUSED int smlib_hex_value(int c)
{
	if (smlib_is_digit(c))
		return c - '0';
	c = smlib_lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The value of the four hex digits at p (of a \uXXXX escape), or -1 if they
 * are not four hex digits. */
static SMLIB_UNUSED int smlib_hex4(const char *p)
{
	int v = 0, i;
	for (i = 0; i < 4; i++) {
		int h = smlib_hex_value(p[i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* Reads the string at s->p (a '"'). With key set, decodes up to SMLIB_KEY_CAP
 * bytes of it there and sets *klen (> SMLIB_KEY_CAP: longer than any name we
 * want). Non-ASCII escapes decode to 0xff, which matches no name. */
static SMLIB_UNUSED int smlib_js_string(struct smlib_json *s, char *key, size_t *klen)
{
	const char *p = s->p + 1;
	size_t n = 0;
	for (;; p++) {
		int c;
		if (p >= s->end) {
			s->p = p;
			return smlib_js_syntax(s, "'\"' to end the string");
		}
		c = (unsigned char)*p;
		if (c == '"')
			break;
		if (c < 0x20) {
			s->p = p;
			return smlib_js_syntax(s, "a string without control characters");
		}
		if (c == '\\') {
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			const char *hit;
			int v;
			if (++p >= s->end || *p == '\0' || (hit = strchr(from, *p)) == NULL) {
				if (p < s->end && *p == 'u' && s->end - p > 4 &&
				    (v = smlib_hex4(p + 1)) >= 0) {
					c = v < 0x80 ? v : 0xff;
					p += 4;
				} else {
					s->p = p;
					return smlib_js_syntax(s, "an escape: \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX");
				}
			} else {
				c = (unsigned char)to[hit - from];
			}
		}
		if (key != NULL && n < SMLIB_KEY_CAP)
			key[n] = (char)c;
		n++;
	}
	s->p = p + 1;
	if (klen != NULL)
		*klen = n;
	return 0;
}

/* Is the reader at something that may follow a value? */
static SMLIB_UNUSED int smlib_js_at_value_end(const struct smlib_json *s)
{
	int c = smlib_js_peek(s);
	return c < 0 || c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' ||
	       c == '\r' || c == '\n';
}

/* The message for a number token at start that smlib_parse_number refused (its
 * result rc) where a feature belongs; `what` and `index` name the place
 * ("field 3", "value 2", "key 1"). Puts s->p back at start; returns -1. */
static SMLIB_UNUSED int smlib_js_number_error(struct smlib_json *s, const char *start, int rc,
					      const char *what, size_t index)
{
	const char *e = start, *kind;
	char got[SMLIB_SHOWN + 4];
	size_t r = *s->record;
	s->p = start;
	if (rc == SMLIB_NUM_RANGE) {
		smlib_format(s->err, s->err_size, "record %zu, %s %zu: number out of range", r, what, index);
		return -1;
	}
	if (rc == SMLIB_NUM_LONG) {
		smlib_format(s->err, s->err_size, "record %zu, %s %zu: expected a number of at most "
			     "%d characters", r, what, index, SMLIB_MAX_NUMBER_LEN);
		return -1;
	}
	switch (smlib_js_peek(s)) {
	case '"': kind = "a string"; break;
	case '[': kind = "an array"; break;
	case '{': kind = "an object"; break;
	default:
		while (e < s->end && !strchr(",]}\" \t\r\n", *e) && *e != '\0')
			e++;
		if (e == start)
			return smlib_js_syntax(s, "a number");
		smlib_format(s->err, s->err_size, "record %zu, %s %zu: expected a number, got '%s'",
			     r, what, index, smlib_shown(got, start, e));
		return -1;
	}
	smlib_format(s->err, s->err_size, "record %zu, %s %zu: expected a number, got %s",
		     r, what, index, kind);
	return -1;
}

/* Object members: call with *first = 1 just past '{'. Returns 1 with the
 * name in key/klen and s->p at the value, 0 past the closing '}', -1 on
 * error; *klen is 0 unless a name was read. */
static SMLIB_UNUSED int smlib_js_member(struct smlib_json *s, int *first, char *key, size_t *klen)
{
	*klen = 0;
	smlib_js_ws(s);
	if (smlib_js_peek(s) == '}') {
		s->p++;
		return 0;
	}
	if (!*first) {
		if (smlib_js_peek(s) != ',')
			return smlib_js_syntax(s, "',' or '}'");
		s->p++;
		smlib_js_ws(s);
	}
	*first = 0;
	if (smlib_js_peek(s) != '"')
		return smlib_js_syntax(s, "a member name in double quotes");
	if (smlib_js_string(s, key, klen))
		return -1;
	smlib_js_ws(s);
	if (smlib_js_peek(s) != ':')
		return smlib_js_syntax(s, "':'");
	s->p++;
	smlib_js_ws(s);
	return 1;
}

/* Array elements: call with *first = 1 just past '['. Returns 1 with s->p at
 * the element, 0 past the closing ']', -1 on error. */
static SMLIB_UNUSED int smlib_js_element(struct smlib_json *s, int *first)
{
	smlib_js_ws(s);
	if (*first && smlib_js_peek(s) == ']') {
		s->p++;
		return 0;
	}
	if (!*first) {
		if (smlib_js_peek(s) == ']') {
			s->p++;
			return 0;
		}
		if (smlib_js_peek(s) != ',')
			return smlib_js_syntax(s, "',' or ']'");
		s->p++;
		smlib_js_ws(s);
		if (smlib_js_peek(s) == ']')
			return smlib_js_syntax(s, "a value after ','");
	}
	*first = 0;
	return 1;
}

static SMLIB_UNUSED int smlib_key_is(const char *key, size_t klen, const char *name)
{
	return klen <= SMLIB_KEY_CAP && smlib_equal(key, klen, name);
}

/* Skips one value of any kind, checking that it is well-formed. */
static SMLIB_UNUSED int smlib_js_skip(struct smlib_json *s, int depth)
{
	int c = smlib_js_peek(s), first = 1, rc;
	char key[SMLIB_KEY_CAP];
	size_t klen;
	double v;

	if (depth > SMLIB_JSON_MAX_DEPTH)
		return smlib_js_syntax(s, "at most 64 levels of nesting");
	switch (c) {
	case '{':
		s->p++;
		while ((rc = smlib_js_member(s, &first, key, &klen)) == 1)
			if (smlib_js_skip(s, depth + 1))
				return -1;
		return rc;
	case '[':
		s->p++;
		while ((rc = smlib_js_element(s, &first)) == 1)
			if (smlib_js_skip(s, depth + 1))
				return -1;
		return rc;
	case '"':
		return smlib_js_string(s, NULL, NULL);
	case 't': case 'f': case 'n': {
		const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
		size_t n = strlen(lit);
		if ((size_t)(s->end - s->p) >= n && memcmp(s->p, lit, n) == 0) {
			s->p += n;
			if (smlib_js_at_value_end(s))
				return 0;
		}
		return smlib_js_syntax(s, "a JSON value");
	}
	default:
		/* a number: any in-syntax one will do, even one too large to use */
		if (smlib_parse_number(&s->p, s->end, SMLIB_NUM_JSON, &v) != SMLIB_NUM_BAD &&
		    smlib_js_at_value_end(s))
			return 0;
		return smlib_js_syntax(s, "a JSON value");
	}
}

/* ======================================================================== */
/* Content-Type (RFC 9110 8.3)                                               */
/* ======================================================================== */

/* The parameters of a Content-Type, from p (its first ';', or its end):
 * charset and the rest are ignored, except label_size, which must be 0 (a
 * label column would be read as a feature). 0, or -1 with msg set. */
static SMLIB_UNUSED int smlib_content_type_params(const char *p, char *msg, size_t size)
{
	char got[SMLIB_SHOWN + 4];
	while (*p == ';') {
		const char *ns = p + 1, *ne, *vs, *ve;
		p = ns + strcspn(ns, ";");
		ne = ns + strcspn(ns, "=;");
		vs = ne < p ? ne + 1 : p;
		ve = p;
		smlib_trim(&ns, &ne);
		smlib_trim(&vs, &ve);
		if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"')
			vs++, ve--;
		if (smlib_equal_ci(ns, (size_t)(ne - ns), "label_size") &&
		    !smlib_equal(vs, (size_t)(ve - vs), "0")) {
			smlib_format(msg, size, "unsupported Content-Type parameter label_size=%s; "
				     "send records without a label column (label_size=0)",
				     smlib_shown(got, vs, ve));
			return -1;
		}
	}
	return 0;
}

/* ======================================================================== */
/* Accept (RFC 9110 12.5.1)                                                  */
/* ======================================================================== */

/* The q of one Accept element's parameters, in thousandths (RFC 9110 12.4.2:
 * "0" to "1" with at most three decimals); 1000 when absent, -1 if malformed. */
static SMLIB_UNUSED int smlib_accept_q(const char *p, const char *e)
{
	while (p < e) {
		const char *ns = p + 1, *pe = ns, *v;
		while (pe < e && *pe != ';')
			pe++;
		v = ns;
		while (v < pe && smlib_is_blank((unsigned char)*v))
			v++;
		if (pe - v >= 2 && smlib_lower((unsigned char)v[0]) == 'q' && v[1] == '=') {
			const char *d = v + 2, *de = pe;
			int q, scale = 100;
			smlib_trim(&d, &de);
			if (d == de || (*d != '0' && *d != '1'))
				return -1;
			q = (*d++ - '0') * 1000;
			if (d < de && *d++ != '.')
				return -1;
			for (; d < de; d++, scale /= 10) {
				if (!smlib_is_digit(*d) || scale == 0)
					return -1;
				q += (*d - '0') * scale;
			}
			return q > 1000 ? -1 : q;
		}
		p = pe;
	}
	return 1000;
}

/* How specifically one media range names type t: 3 exact, 2 "type/ *",
 * 1 "* / *", 0 not at all. */
static SMLIB_UNUSED int smlib_accept_match(const char *s, const char *e, const char *t)
{
	size_t n = (size_t)(e - s), tl = strcspn(t, "/"), i;
	if (smlib_equal_ci(s, n, t))
		return 3;
	if (n == tl + 2 && s[tl] == '/' && s[tl + 1] == '*') {
		for (i = 0; i < tl; i++)
			if (smlib_lower((unsigned char)s[i]) != t[i])
				return 0;
		return 2;
	}
	return smlib_equal(s, n, "*/*") ? 1 : 0;
}

/* Picks the answer's media type from Accept, among the n (at most
 * SMLIB_ACCEPT_MAX_TYPES) that types[] names. Missing or "* / *": dflt. A list: each
 * type gets the q of the most specific range naming it; the best q wins,
 * then the more specific match, then the earlier element, then dflt.
 * Returns the index in types[], or -1 with msg set: "cannot produce Accept
 * '...'; supported: " and the supported list given. */
#define SMLIB_ACCEPT_MAX_TYPES 8
static SMLIB_UNUSED int smlib_accept_choose(const char *accept, const char *const *types, int n,
					    int dflt, const char *supported, char *msg, size_t size)
{
	int q[SMLIB_ACCEPT_MAX_TYPES], spec[SMLIB_ACCEPT_MAX_TYPES], pos[SMLIB_ACCEPT_MAX_TYPES];
	int f, best = -1, i = 0;
	int named = 0;
	const char *p = accept, *s = accept, *e = accept + strlen(accept);
	char got[SMLIB_SHOWN + 4];

	smlib_trim(&s, &e);
	if (smlib_equal(s, (size_t)(e - s), "*/*"))
		return dflt;
	for (f = 0; f < n; f++)
		q[f] = 0, spec[f] = 0, pos[f] = 0;
	while (*p) {
		const char *el = p, *ee = p + strcspn(p, ","), *re = el + strcspn(el, ";,");
		int eq = smlib_accept_q(re, ee);
		smlib_trim(&el, &re);
		named |= el < re;
		for (f = 0; f < n && eq >= 0; f++) {
			int sp = smlib_accept_match(el, re, types[f]);
			if (sp > spec[f])
				spec[f] = sp, q[f] = eq, pos[f] = i;
		}
		p = *ee ? ee + 1 : ee;
		i++;
	}
	/* No type named: an empty Accept, or one of empty list elements, which
	 * count for nothing (RFC 9110 5.6.1): no preference, as with no Accept. */
	if (!named)
		return dflt;
	for (f = 0; f < n; f++) {
		if (q[f] == 0)
			continue;
		if (best < 0 || q[f] > q[best] ||
		    (q[f] == q[best] && (spec[f] > spec[best] ||
		     (spec[f] == spec[best] && (pos[f] < pos[best] ||
		      (pos[f] == pos[best] && f == dflt))))))
			best = f;
	}
	if (best < 0)
		smlib_format(msg, size, "cannot produce Accept '%s'; supported: %s",
			     smlib_shown(got, s, e), supported);
	return best;
}

/* ======================================================================== */
/* The answer buffer                                                         */
/* ======================================================================== */
/*
 * Answers are built in one buffer of cap bytes, which the plug-in sizes to
 * hold a record's answer or more, and handed to the server whenever the next
 * record's might not fit: few large writes, no per-value calls. If the server
 * refuses a write (the answer passed its response limit), writing stops and
 * the server answers 500.
 */

struct smlib_writer {
	model_response *out;
	char *buf;
	size_t len, cap;
	int refused; /* model_response_write said no: stop */
};

static SMLIB_UNUSED void smlib_flush(struct smlib_writer *w)
{
	if (w->len > 0 && !w->refused && model_response_write(w->out, w->buf, w->len) != 0)
		w->refused = 1;
	w->len = 0;
}

/* Makes room for need bytes (need <= cap). */
static SMLIB_UNUSED void smlib_room(struct smlib_writer *w, size_t need)
{
	if (w->cap - w->len < need)
		smlib_flush(w);
}

static SMLIB_UNUSED void smlib_put(struct smlib_writer *w, const char *s, size_t n)
{
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

#define SMLIB_PUT_LIT(w, lit) smlib_put((w), (lit), sizeof(lit) - 1)

/* ======================================================================== */
/* Model files                                                               */
/* ======================================================================== */

/* Reads the whole file into memory, with a '\0' after its size bytes (for a
 * text format), refusing one over max bytes. NULL with err set ("PATH:
 * expected ...", hint added when the file cannot be opened). */
static SMLIB_UNUSED char *smlib_slurp(const char *path, unsigned long max, const char *hint,
				      size_t *size, char *err, size_t err_size)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	if (f == NULL) {
		smlib_format(err, err_size, "%s: expected a readable model file (%s)%s", path,
			     strerror(errno), hint);
		return NULL;
	}
	for (;;) {
		size_t got;
		if (cap - len < 65536) {
			char *nb;
			cap = cap ? cap * 2 : 65536;
			nb = cap <= max + 65536 ? realloc(buf, cap + 1) : NULL;
			if (nb == NULL) {
				smlib_format(err, err_size, "%s: expected a model file of at most "
					     "%lu bytes that fits in memory", path, max);
				goto fail;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		smlib_format(err, err_size, "%s: expected a readable file (%s)", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	*size = len;
	return buf;
fail:
	free(buf);
	fclose(f);
	return NULL;
}

#endif

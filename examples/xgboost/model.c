/*
 * examples/xgboost/model.c - serves SageMaker XGBoost models: the same model
 * artifacts, requests and answers as SageMaker's XGBoost container, from
 * smserve's scratch image.
 *
 *   make MODEL=examples/xgboost/model.c        ./smserve with this plug-in
 *   make build/smserve-xgboost                 the test build
 *
 * What it loads. The model file in the model directory (SageMaker unpacks
 * model.tar.gz there): "xgboost-model" if present, else the directory's only
 * file. XGBoost writes three formats, and real model.tar.gz files hold all
 * three, often under the same name, so the format is read from the bytes:
 *
 *   "binf..."         the legacy binary format (XGBoost 1.x, any file name
 *                     other than *.json / *.ubj; 0.x wrote it without "binf")
 *   "{" then '"'      JSON (save_model("x.json"))
 *   "{" then a marker UBJSON, binary JSON (save_model("x.ubj"); XGBoost 2.1
 *                     and later for a name with no extension)
 *
 * and, inside a Python pickle of a Booster (what many training scripts save),
 * whichever of the three the pickle holds; nothing in the pickle is run.
 * JSON and UBJSON hold the same document, read by one walker through a small
 * pull reader with a back end for each syntax. All three formats end up in
 * the same flat arrays: every tree's nodes, renumbered breadth-first so that
 * a node's right child directly follows its left one, in one array of
 * 12-byte nodes. A malformed or truncated file is reported as "file: byte N:
 * expected ..." and the server exits 1; nothing in the file is trusted
 * (counts are checked against the bytes left, child links against cycles,
 * feature indices against num_feature).
 *
 * What it computes: exactly what XGBoost's own predict computes, in the same
 * float32 arithmetic and order, so that answers equal XGBoost's bit for bit:
 *
 *   margin[g] = base_margin[g] + leaf(tree 0) + leaf(tree 1) + ...   (float,
 *               in tree order, each tree adding to its output group g)
 *
 * where base_margin is base_score through the objective's inverse link
 * (logit for logistic objectives, log for count:poisson, reg:gamma,
 * reg:tweedie and the survival ones; as stored for the others), and a dart
 * model's leaves are scaled by their tree's weight_drop. Then the objective's
 * link: sigmoid (reg:logistic, binary:logistic), exp (count:poisson,
 * reg:gamma, reg:tweedie, survival:cox, survival:aft), softmax
 * (multi:softprob), argmax (multi:softmax), a step (binary:hinge), or none
 * (the other regressions, binary:logitraw, ranking). A missing value (empty
 * CSV field, NaN, JSON null, absent libsvm index or sparse key) goes the way
 * the node's default_left says. When the model records best_iteration, only
 * the trees up to it are used, as SageMaker's container does (it predicts
 * with best_ntree_limit).
 *
 * What it speaks: SageMaker's XGBoost formats.
 *
 *   in   text/csv (also when Content-Type is missing; no label column),
 *        text/libsvm (text/x-libsvm; "label idx:value ...", label optional),
 *        application/json and application/jsonlines in SageMaker's common
 *        data formats ({"instances": [...]}, "features", sparse "keys")
 *   out  text/csv (the default, as in SageMaker's container)  one prediction
 *                 per line; all class probabilities, comma-separated, for
 *                 multi:softprob
 *        application/json       {"predictions":[{"score":0.25},...]}
 *        application/jsonlines  {"score":0.25} per line
 *
 * Numbers go out as the shortest decimal that reads back as the same float32,
 * so a client that parses them gets XGBoost's exact value.
 *
 * How a request flows: as in the default model (model.c), lib/invoke.h
 * negotiates it and lib/instances.h reads each record into one scratch
 * vector; it is predicted here, and its answer appended to a 64 KiB output
 * buffer: nothing is allocated per record. A bad record anywhere makes the
 * whole answer a 400 naming the record and field; unsupported types get 415
 * and 406.
 *
 * Sections, in reading order: limits; the model; small helpers; numbers;
 * finding and reading the model file; the document reader (JSON and
 * UBJSON); building trees; the model walker; the legacy binary format;
 * finishing the model (and telling the formats apart, pickles included);
 * prediction; the output buffer; one record; the plug-in functions.
 */
#define _POSIX_C_SOURCE 200809L /* opendir, stat */

#include "../../model.h"
#include "../../lib/invoke.h"  /* requests: negotiation, the instance reader, the answer */

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


/* ======================================================================== */
/* Limits                                                                    */
/* ======================================================================== */

#define MODEL_FILE "xgboost-model"        /* what SageMaker's XGBoost writes */
#define MAX_MODEL_BYTES (2048UL * 1024 * 1024) /* 2 GiB */
#define MAX_FEATURES (1UL << 24)          /* 64 MiB of scratch per request */
#define MAX_CLASSES 10000UL
#define MAX_TREES (1UL << 24)
#define MAX_NODES (1UL << 30)             /* per model; node links are 32-bit */
#define DOC_MAX_DEPTH 64                  /* nesting in a model file */
#define NAME_CAP 64                       /* longest name or value read as text */
#define NUMBER_TEXT 32                    /* room for one formatted number */

/* ======================================================================== */
/* The model                                                                 */
/* ======================================================================== */

/* What turns the summed margins into the answer. */
enum link {
	LINK_IDENTITY, /* the margin itself */
	LINK_SIGMOID,  /* 1 / (1 + e^-m) */
	LINK_EXP,      /* e^m */
	LINK_SOFTPROB, /* softmax over the groups: one probability per class */
	LINK_ARGMAX,   /* the index of the largest margin, as a number */
	LINK_HINGE     /* 1 if the margin is positive, else 0 */
};

/* How base_score (stored as a prediction) becomes a margin. */
enum base_link { BASE_AS_IS, BASE_LOGIT, BASE_LOG };

struct objective {
	const char *name;
	enum link link;
	enum base_link base;
};

/* The objectives served: every one XGBoost 1.7 predicts with, with its links.
 * binary:logitraw keeps base_score as it is (unlike binary:logistic), as
 * XGBoost does. reg:linear is the old name of reg:squarederror, still in
 * older SageMaker models. The survival models answer e^margin: a hazard
 * ratio for cox, a time for aft. */
static const struct objective OBJECTIVES[] = {
	{"reg:squarederror", LINK_IDENTITY, BASE_AS_IS},
	{"reg:linear", LINK_IDENTITY, BASE_AS_IS},
	{"reg:squaredlogerror", LINK_IDENTITY, BASE_AS_IS},
	{"reg:pseudohubererror", LINK_IDENTITY, BASE_AS_IS},
	{"reg:absoluteerror", LINK_IDENTITY, BASE_AS_IS},
	{"reg:logistic", LINK_SIGMOID, BASE_LOGIT},
	{"binary:logistic", LINK_SIGMOID, BASE_LOGIT},
	{"binary:logitraw", LINK_IDENTITY, BASE_AS_IS},
	{"binary:hinge", LINK_HINGE, BASE_AS_IS},
	{"multi:softprob", LINK_SOFTPROB, BASE_AS_IS},
	{"multi:softmax", LINK_ARGMAX, BASE_AS_IS},
	{"count:poisson", LINK_EXP, BASE_LOG},
	{"reg:tweedie", LINK_EXP, BASE_LOG},
	{"reg:gamma", LINK_EXP, BASE_LOG},
	{"survival:cox", LINK_EXP, BASE_LOG},
	{"survival:aft", LINK_EXP, BASE_LOG},
	{"rank:pairwise", LINK_IDENTITY, BASE_AS_IS},
	{"rank:ndcg", LINK_IDENTITY, BASE_AS_IS},
	{"rank:map", LINK_IDENTITY, BASE_AS_IS},
};
#define N_OBJECTIVES (sizeof OBJECTIVES / sizeof OBJECTIVES[0])
#define OBJECTIVE_LIST "reg:squarederror, reg:linear, reg:squaredlogerror, " \
	"reg:pseudohubererror, reg:absoluteerror, reg:logistic, binary:logistic, " \
	"binary:logitraw, binary:hinge, multi:softprob, multi:softmax, count:poisson, " \
	"reg:tweedie, reg:gamma, survival:cox, survival:aft, rank:pairwise, rank:ndcg, rank:map"

/*
 * One tree node in 12 bytes. Children are adjacent (right = left + 1), so a
 * step down the tree is one addition: left + (go right ? 1 : 0).
 */
struct node {
	float value;   /* split threshold, or the leaf's value (times dart weight) */
	uint32_t info; /* NODE_LEAF | NODE_DEFAULT_LEFT | feature index */
	uint32_t left; /* index of the left child in the model's node array */
};
#define NODE_LEAF 0x80000000U
#define NODE_DEFAULT_LEFT 0x40000000U
#define NODE_FEATURE 0x3fffffffU

struct model {
	const struct objective *obj;
	size_t n_features;   /* num_feature: inputs per record */
	size_t n_groups;     /* outputs summed separately: classes, or 1 */
	size_t n_outputs;    /* numbers per answer: n_groups for softprob, else 1 */
	size_t n_trees;      /* the trees predictions use (to best_iteration) */
	struct node *nodes;  /* every tree's nodes */
	uint32_t *root;      /* n_trees: each tree's first node */
	uint32_t *group;     /* n_trees: the output group each tree adds to */
	float *base;         /* n_groups: the starting margins */
	int csv_lines;         /* CSV answers one line per record (batch), or one line */
	float *x;              /* n_features: a record's features, NaN between records */
	float *margin, *out;   /* n_groups, n_outputs: its margins and answer */
	struct smlib_plugin lib; /* the request side: lib/invoke.h */
};

/* ======================================================================== */
/* Small helpers                                                             */
/* ======================================================================== */

/* Grows *buf (of *cap elements of size each) to hold at least need. Returns
 * 0, or -1 when out of memory or past limit elements. */
static int grow(void **buf, size_t *cap, size_t need, size_t size, size_t limit)
{
	size_t n = *cap ? *cap : 16;
	void *nb;
	if (need <= *cap)
		return 0;
	if (need > limit)
		return -1;
	while (n < need)
		n = n > limit / 2 ? limit : n * 2;
	nb = realloc(*buf, n * size);
	if (nb == NULL)
		return -1;
	*buf = nb;
	*cap = n;
	return 0;
}

/* ======================================================================== */
/* Numbers                                                                   */
/* ======================================================================== */
/*
 * Reading: smlib_parse_number (lib/formats.h): the syntax is checked there, and
 * Clinger's fast path handles the usual CSV field; strtod the rest. A feature
 * is then rounded to float32, as XGBoost stores it (a DMatrix is float32):
 * the same double-then-float rounding that numpy's astype(float32) does in
 * SageMaker's container.
 */

/* A double rounded to float32 as IEEE (and numpy) round it, including to
 * infinity past FLT_MAX, where C's cast would be undefined behaviour. The
 * halfway point between FLT_MAX and 2^128 rounds to even, which is 2^128. */
static float to_float(double d)
{
	if (d > FLT_MAX || d < -FLT_MAX) {
		double mag = fabs(d) < 0x1.ffffffp127 ? FLT_MAX : INFINITY;
		return (float)copysign(mag, d);
	}
	return (float)d;
}

/*
 * Writing: the shortest decimal that reads back as the same float32
 * ("0.31401494", not "0.314014941453933716"). For n = 9 digits down to 1 the
 * candidate is f rounded to n significant digits, accepted while it lies
 * inside f's rounding interval (half the gap to each neighbouring float), or
 * on its edge when f's last bit is 0: a decimal halfway between two floats
 * reads back as the even one (117760700 as 117760704, not 117760696). The
 * candidate C * 10^k is computed with one rounding (Clinger's argument
 * above), which cannot carry it across an edge, as every edge is a double;
 * only on an edge does fma check that the rounding was exact. The
 * difference of two doubles this close is exact (Sterbenz). Nine digits
 * always suffice for a float32; values outside 1e-13..1e21, where 10^k is
 * not exact, go to snprintf("%.9g").
 */

/* Whether c * 10^k (c < 10^10) reads back as f. */
static int reads_back(double c, int k, float f)
{
	double v, fd = f, off, gap;
	uint32_t bits;
	if (k < -22 || k > 22)
		return 0;
	v = k < 0 ? c / SMLIB_POW10[-k] : c * SMLIB_POW10[k];
	off = fabs(v - fd) * 2;
	gap = v >= fd ? (double)nextafterf(f, INFINITY) - fd : fd - (double)nextafterf(f, -INFINITY);
	if (off != gap)
		return off < gap;
	memcpy(&bits, &f, sizeof bits);
	return (bits & 1) == 0 && (k < 0 ? fma(v, SMLIB_POW10[-k], -c) : fma(c, SMLIB_POW10[k], -v)) == 0;
}

/* Lays out digits (n of them, no trailing zeros) with the decimal exponent
 * e of the first, as Python's repr does: positional for 1e-4 <= |v| < 1e16. */
static size_t layout_digits(char *buf, const char *dig, int n, int e, int neg)
{
	char *p = buf;
	int i;
	if (neg)
		*p++ = '-';
	if (e < -4 || e >= 16) { /* d.ddde+XX */
		int ae = e < 0 ? -e : e;
		*p++ = dig[0];
		if (n > 1) {
			*p++ = '.';
			memcpy(p, dig + 1, (size_t)n - 1);
			p += n - 1;
		}
		*p++ = 'e';
		*p++ = e < 0 ? '-' : '+';
		p += sprintf(p, "%02d", ae);
	} else if (e >= 0) { /* ddd.ddd */
		for (i = 0; i <= e; i++)
			*p++ = (char)(i < n ? dig[i] : '0');
		if (n > e + 1) {
			*p++ = '.';
			memcpy(p, dig + e + 1, (size_t)(n - e - 1));
			p += n - e - 1;
		}
	} else { /* 0.000ddd */
		*p++ = '0';
		*p++ = '.';
		for (i = 0; i < -e - 1; i++)
			*p++ = '0';
		memcpy(p, dig, (size_t)n);
		p += n;
	}
	return (size_t)(p - buf);
}

/* Writes finite f as the shortest decimal that reads back as f; returns the
 * length (< NUMBER_TEXT). */
static size_t format_float(char *buf, float f)
{
	double a = fabs((double)f), best = -1, c;
	int e, n, best_e = 0, best_n = 0;
	char dig[12];

	if (f == 0)
		return (size_t)sprintf(buf, signbit(f) ? "-0" : "0");
	e = (int)floor(log10(a));
	if (e >= -13 && e <= 21) {
		/* log10 may be one off next to a power of ten: fix e by the digits */
		c = nearbyint(e > 8 ? a / SMLIB_POW10[e - 8] : a * SMLIB_POW10[8 - e]);
		e += c >= 1e9 ? 1 : c < 1e8 ? -1 : 0;
	}
	if (e >= -13 && e <= 21) {
		for (n = 9; n >= 1; n--) {
			int k = e - n + 1, ce = e;
			c = nearbyint(k < 0 ? a * SMLIB_POW10[-k] : a / SMLIB_POW10[k]);
			if (c >= SMLIB_POW10[n]) /* rounded up to 10^n: the same, one digit fewer */
				c /= 10, k++, ce++;
			if (c < SMLIB_POW10[n - 1] || !reads_back(c, k, (float)a))
				break;
			best = c, best_e = ce, best_n = n;
		}
	}
	if (best < 0) {
		int len = snprintf(buf, NUMBER_TEXT, "%.9g", (double)f);
		return len > 0 ? (size_t)len : 0;
	}
	sprintf(dig, "%.0f", best);
	while (best_n > 1 && dig[best_n - 1] == '0')
		best_n--;
	return layout_digits(buf, dig, best_n, best_e, f < 0);
}

/* ======================================================================== */
/* Finding and reading the model file                                        */
/* ======================================================================== */
/*
 * SageMaker's XGBoost container loads every file in the model directory.
 * Here: "xgboost-model" if it exists (what the container's training writes),
 * else the only regular file whose name does not start with '.'. Several
 * candidates would be a guess, so that is an error naming them.
 */

static int is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int find_model_file(const char *dir, char *path, size_t size, char *err, size_t err_size)
{
	DIR *d;
	struct dirent *e;
	char names[256] = "";
	size_t used, len;
	int found = 0, rc;

	rc = snprintf(path, size, "%s/%s", dir, MODEL_FILE);
	if (rc < 0 || (size_t)rc >= size) {
		smlib_format(err, err_size, "%s: expected a model directory path shorter than %zu bytes",
			     dir, size - sizeof MODEL_FILE - 1);
		return -1;
	}
	if (is_file(path))
		return 0;
	d = opendir(dir);
	if (d == NULL) {
		smlib_format(err, err_size, "%s: expected a model directory (%s)", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		char candidate[4096];
		rc = snprintf(candidate, sizeof candidate, "%s/%s", dir, e->d_name);
		if (e->d_name[0] == '.' || rc < 0 || (size_t)rc >= sizeof candidate ||
		    !is_file(candidate))
			continue;
		if (found++ == 0 && (size_t)rc < size)
			memcpy(path, candidate, (size_t)rc + 1);
		used = strlen(names), len = strlen(e->d_name);
		if (used + len + 3 < sizeof names) { /* list what fits in the message */
			if (found > 1)
				names[used++] = ',', names[used++] = ' ';
			memcpy(names + used, e->d_name, len + 1);
		}
	}
	closedir(d);
	if (found == 1)
		return 0;
	if (found == 0)
		smlib_format(err, err_size, "%s: expected an XGBoost model file (%s, or any one file "
			     "written by save_model), found none", dir, MODEL_FILE);
	else
		smlib_format(err, err_size, "%s: expected one XGBoost model file, or one named %s; "
			     "found %d: %s", dir, MODEL_FILE, found, names);
	return -1;
}

/* ======================================================================== */
/* The document reader: JSON and UBJSON                                      */
/* ======================================================================== */
/*
 * XGBoost's JSON and UBJSON files hold the same document. The walker below
 * reads it through this pull interface, which hides the syntax:
 *
 *   doc_open    enter the object or array that comes next
 *   doc_next    1 if the container has another member or element, 0 at its end
 *   doc_key     an object member's name (after doc_next)
 *   doc_number  a number (any width), doc_text a string, doc_skip any value
 *
 * UBJSON (ubjson.org) in brief: every value starts with a marker byte:
 * Z null, T/F, i U I l L integers of 1, 1, 2, 4, 8 bytes, d D floats of 4
 * and 8 bytes (all big-endian), S string (an integer length, then bytes),
 * [ and { containers closed by ] and }. A container may open with "$x"
 * (every element has type x, so elements carry no marker) and "#n" (n
 * elements, no closing byte): XGBoost writes its float and integer arrays
 * that way. Object member names are an integer length and bytes, without
 * the S. N is a no-op, allowed between values.
 *
 * Errors name the file and byte offset; reading stops at the first.
 */

struct doc {
	const unsigned char *start, *p, *end;
	int ubj;          /* 1: UBJSON, 0: JSON */
	int implicit;     /* UBJSON: the marker of the next value, from "$x" */
	int depth;
	const char *path; /* for messages */
	char *err;
	size_t err_size;
};

/* Where we are in one object or array. */
struct cont {
	int object;
	int first;       /* JSON: nothing read yet */
	long long count; /* UBJSON with "#n": elements left; else -1 */
	int type;        /* UBJSON with "$x": x; else 0 */
};

static void doc_report(struct doc *d, const char *fmt, ...) SMLIB_PRINTF_LIKE(2, 3);
static void doc_report(struct doc *d, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	if (d->err[0] != '\0')
		return; /* keep the first error, the one that explains */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	smlib_format(d->err, d->err_size, "%s: byte %zu: %s", d->path, (size_t)(d->p - d->start), msg);
}

/* Reports an error at the reading position; the value is always -1. A macro,
 * so that every caller (and static analysers, which do not follow variadic
 * functions) sees the -1 that stops the reading. */
#define doc_error(d, ...) (doc_report((d), __VA_ARGS__), -1)

static int doc_left(const struct doc *d, size_t n) { return (size_t)(d->end - d->p) >= n; }

/* JSON: skips whitespace. */
static void dj_space(struct doc *d)
{
	while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
		d->p++;
}

/* UBJSON: the marker of the next value (consumed), skipping no-ops; -1 at
 * the end of the file. */
static int ubj_marker(struct doc *d)
{
	int m = d->implicit;
	if (m) {
		d->implicit = 0;
		return m;
	}
	while (d->p < d->end && *d->p == 'N')
		d->p++;
	return d->p < d->end ? *d->p++ : -1;
}

/* UBJSON: the next marker without consuming it (the implicit one, if set). */
static int ubj_peek(struct doc *d)
{
	if (d->implicit)
		return d->implicit;
	while (d->p < d->end && *d->p == 'N')
		d->p++;
	return d->p < d->end ? *d->p : -1;
}

/* UBJSON: an n-byte big-endian unsigned value. */
static uint64_t ubj_be(struct doc *d, int n)
{
	uint64_t v = 0;
	int i;
	for (i = 0; i < n; i++)
		v = v << 8 | d->p[i];
	d->p += n;
	return v;
}

/* UBJSON: the bytes a number with marker m takes; 0 if m is no number. */
static int ubj_width(int m)
{
	switch (m) {
	case 'i': case 'U': return 1;
	case 'I': return 2;
	case 'l': case 'd': return 4;
	case 'L': case 'D': return 8;
	default: return 0;
	}
}

/* UBJSON: the value of a number with marker m (already consumed). */
static int ubj_number(struct doc *d, int m, double *v)
{
	int n = ubj_width(m);
	uint64_t u;

	if (n == 0)
		return doc_error(d, "expected a number");
	if (!doc_left(d, (size_t)n))
		return doc_error(d, "expected %d more bytes of a number, got the end of the file", n);
	u = ubj_be(d, n);
	switch (m) {
	case 'i': *v = (int8_t)(uint8_t)u; break;
	case 'U': *v = (uint8_t)u; break;
	case 'I': *v = (int16_t)(uint16_t)u; break;
	case 'l': *v = (int32_t)(uint32_t)u; break;
	case 'L': *v = (double)(int64_t)u; break;
	case 'd': { uint32_t b = (uint32_t)u; float f; memcpy(&f, &b, 4); *v = f; break; }
	default: memcpy(v, &u, 8); break;
	}
	return 0;
}

/* UBJSON: a length (a non-negative integer value). */
static int ubj_length(struct doc *d, size_t *n)
{
	int m = ubj_marker(d);
	double v;
	if (m != 'i' && m != 'U' && m != 'I' && m != 'l' && m != 'L')
		return doc_error(d, "expected an integer length");
	if (ubj_number(d, m, &v))
		return -1;
	if (v < 0 || v > (double)(size_t)(d->end - d->p))
		return doc_error(d, "expected a length of at most the %zu bytes left, got %.0f",
				 (size_t)(d->end - d->p), v);
	*n = (size_t)v;
	return 0;
}

/* Opens the object (object = 1) or array that must come next. */
static int doc_open(struct doc *d, struct cont *c, int object)
{
	int want = object ? '{' : '[';
	c->object = object, c->first = 1, c->count = -1, c->type = 0;
	if (d->depth >= DOC_MAX_DEPTH)
		return doc_error(d, "expected at most %d levels of nesting", DOC_MAX_DEPTH);
	if (!d->ubj) {
		dj_space(d);
		if (d->p >= d->end || *d->p != want)
			return doc_error(d, "expected '%c'", want);
		d->p++;
	} else {
		if (ubj_marker(d) != want)
			return doc_error(d, "expected '%c'", want);
		if (d->p < d->end && *d->p == '$') {
			d->p++;
			/* Not Z, T or F: elements of those take no bytes, so their count
			 * could not be held to the bytes left (XGBoost never writes them). */
			if (d->p >= d->end || strchr("iUIlLdDSHC[{", *d->p) == NULL || *d->p == '\0')
				return doc_error(d, "expected a type after '$' (a number, string or container)");
			c->type = *d->p++;
			if (d->p >= d->end || *d->p != '#')
				return doc_error(d, "expected '#' after the type of a container");
		}
		if (d->p < d->end && *d->p == '#') {
			size_t n;
			d->p++;
			if (ubj_length(d, &n))
				return -1;
			c->count = (long long)n;
		}
	}
	d->depth++;
	return 0;
}

/* Is there another member or element? 1 yes, 0 no (container closed), -1 error. */
static int doc_next(struct doc *d, struct cont *c)
{
	int close = c->object ? '}' : ']';
	if (d->ubj) {
		if (c->count >= 0) {
			if (c->count == 0) {
				d->depth--;
				return 0;
			}
			c->count--;
		} else if (ubj_peek(d) == close) {
			d->p++;
			d->depth--;
			return 0;
		} else if (ubj_peek(d) < 0) {
			return doc_error(d, "expected '%c', got the end of the file", close);
		}
		if (!c->object)
			d->implicit = c->type;
		return 1;
	}
	dj_space(d);
	if (d->p < d->end && *d->p == close && c->first) {
		d->p++;
		d->depth--;
		return 0;
	}
	if (!c->first) {
		if (d->p < d->end && *d->p == close) {
			d->p++;
			d->depth--;
			return 0;
		}
		if (d->p >= d->end || *d->p != ',')
			return doc_error(d, "expected ',' or '%c'", close);
		d->p++;
		dj_space(d);
	}
	c->first = 0;
	return 1;
}

/* JSON: a string's raw bytes (escapes other than \" kept as they are: the
 * names and values we compare are plain ASCII). */
static int dj_string(struct doc *d, const unsigned char **s, size_t *n)
{
	const unsigned char *q;
	dj_space(d);
	if (d->p >= d->end || *d->p != '"')
		return doc_error(d, "expected a string");
	for (q = d->p + 1; q < d->end && *q != '"'; q++)
		if (*q == '\\' && q + 1 < d->end)
			q++;
	if (q >= d->end)
		return doc_error(d, "expected '\"' to end the string, got the end of the file");
	*s = d->p + 1;
	*n = (size_t)(q - *s);
	d->p = q + 1;
	return 0;
}

/* A string value (or, with key set, an object member's name) as a pointer
 * into the file and a length. */
static int doc_text_ref(struct doc *d, const unsigned char **s, size_t *n, int key)
{
	int m;
	if (!d->ubj)
		return dj_string(d, s, n);
	m = key ? 'S' : ubj_marker(d);
	if (m == 'C') {
		if (!doc_left(d, 1))
			return doc_error(d, "expected a character, got the end of the file");
		*n = 1;
	} else if (m != 'S' || ubj_length(d, n)) {
		return doc_error(d, "expected a string");
	}
	*s = d->p;
	d->p += *n;
	return 0;
}

/* A string value (or an object member's name) into buf, cut to cap - 1
 * bytes and NUL-terminated; *len is the full length. */
static int doc_text(struct doc *d, char *buf, size_t cap, size_t *len, int key)
{
	const unsigned char *s;
	size_t n;
	if (doc_text_ref(d, &s, &n, key))
		return -1;
	*len = n;
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

/* An object member's name, after doc_next said 1. */
static int doc_key(struct doc *d, struct cont *c, char *buf, size_t cap)
{
	size_t len;
	if (doc_text(d, buf, cap, &len, 1))
		return -1;
	if (len >= cap)
		buf[0] = '\0'; /* longer than any name we look for */
	if (d->ubj) {
		d->implicit = c->type;
		return 0;
	}
	dj_space(d);
	if (d->p >= d->end || *d->p != ':')
		return doc_error(d, "expected ':' after a member name");
	d->p++;
	return 0;
}

/* JSON: a number token, including XGBoost's NaN and Infinity spellings. */
static int dj_number(struct doc *d, double *v)
{
	char buf[SMLIB_MAX_NUMBER_LEN + 1], *end;
	const unsigned char *s;
	size_t n = 0;
	dj_space(d);
	s = d->p;
	while (s + n < d->end && n <= SMLIB_MAX_NUMBER_LEN && strchr("+-.0123456789eEINafinty", s[n]) &&
	       s[n] != '\0')
		n++;
	if (n == 0 || n > SMLIB_MAX_NUMBER_LEN)
		return doc_error(d, "expected a number");
	memcpy(buf, s, n);
	buf[n] = '\0';
	*v = strtod(buf, &end);
	if (end != buf + n)
		return doc_error(d, "expected a number, got '%.40s'", buf);
	d->p += n;
	return 0;
}

/* A number; true and false read as 1 and 0 (XGBoost 3 writes default_left
 * as booleans). */
static int doc_number(struct doc *d, double *v)
{
	int m;
	if (!d->ubj) {
		dj_space(d);
		if (doc_left(d, 4) && memcmp(d->p, "true", 4) == 0)
			return d->p += 4, *v = 1, 0;
		if (doc_left(d, 5) && memcmp(d->p, "false", 5) == 0)
			return d->p += 5, *v = 0, 0;
		return dj_number(d, v);
	}
	m = ubj_marker(d);
	if (m == 'T' || m == 'F')
		return *v = m == 'T', 0;
	return ubj_number(d, m, v);
}

/* An integer from lo to hi. */
static int doc_int(struct doc *d, double lo, double hi, const char *what, int64_t *out)
{
	double v;
	if (doc_number(d, &v))
		return -1;
	if (!(v >= lo && v <= hi) || v != floor(v))
		return doc_error(d, "expected %s, a whole number from %.0f to %.0f, got %.17g",
				 what, lo, hi, v);
	*out = (int64_t)v;
	return 0;
}

/* A float32 exactly as written: strtof on JSON text, so that no double
 * rounding happens on the way. */
static int doc_float(struct doc *d, float *out)
{
	double v;
	if (!d->ubj) {
		const unsigned char *s;
		char buf[64], *end;
		size_t n;
		dj_space(d);
		s = d->p;
		if (dj_number(d, &v))
			return -1;
		n = (size_t)(d->p - s);
		if (n < sizeof buf) {
			memcpy(buf, s, n);
			buf[n] = '\0';
			*out = strtof(buf, &end);
			return 0;
		}
	} else if (doc_number(d, &v)) {
		return -1;
	}
	*out = to_float(v);
	return 0;
}

/* Skips one value of any kind. */
static int doc_skip(struct doc *d)
{
	struct cont c;
	char key[8];
	double v;
	int m, rc;

	if (!d->ubj) {
		const unsigned char *s;
		size_t n;
		dj_space(d);
		m = d->p < d->end ? *d->p : -1;
		if (m == '"')
			return dj_string(d, &s, &n);
		if (m == 'n' && doc_left(d, 4) && memcmp(d->p, "null", 4) == 0)
			return d->p += 4, 0;
	} else {
		m = ubj_peek(d);
		if (m == 'Z' || m == 'T' || m == 'F')
			return ubj_marker(d), 0;
		if (m == 'S' || m == 'C' || m == 'H') {
			size_t len;
			ubj_marker(d);
			if (m == 'C')
				len = 1;
			else if (ubj_length(d, &len))
				return -1;
			if (!doc_left(d, len))
				return doc_error(d, "expected %zu bytes, got the end of the file", len);
			d->p += len;
			return 0;
		}
	}
	if (m == '{' || m == '[') {
		if (doc_open(d, &c, m == '{'))
			return -1;
		while ((rc = doc_next(d, &c)) == 1)
			if ((c.object && doc_key(d, &c, key, sizeof key)) || doc_skip(d))
				return -1;
		return rc;
	}
	return doc_number(d, &v);
}

/* ======================================================================== */
/* Building trees                                                            */
/* ======================================================================== */
/*
 * Every format gives a tree as parallel arrays indexed by node id: left and
 * right child (-1 for a leaf), split feature, split threshold (for a leaf:
 * its value), default direction. build_tree checks them and appends the
 * tree to the model's node array in breadth-first order, so that siblings
 * are adjacent. Only nodes reachable from the root are kept: pruning leaves
 * deleted nodes in the arrays. A node reached twice (a cycle, or a shared
 * child) is an error, so every tree is a finite tree.
 */

/* One tree as read from the file, in arrays reused from tree to tree. */
struct raw_tree {
	int64_t *left, *right, *feature, *dleft, *split_type;
	float *cond;
	size_t n_left, n_right, n_feature, n_dleft, n_split_type, n_cond;
	size_t cap_left, cap_right, cap_feature, cap_dleft, cap_split_type, cap_cond;
	int64_t num_nodes;      /* from tree_param; -1 if not given */
	int64_t size_leaf_vector;
	uint32_t *queue;        /* scratch for build_tree */
	unsigned char *seen;
	size_t cap_queue, cap_seen;
};

/* Everything the walker collects, checked and turned into a model at the end. */
struct builder {
	char objective[NAME_CAP];
	char booster[NAME_CAP];      /* gbtree, dart (gblinear is refused) */
	const unsigned char *base_score; /* as written: "5E-1", or "[...]" in XGBoost 3.1+ */
	size_t base_score_len;
	float binary_base_score;     /* the legacy binary format's, when base_score is NULL */
	int64_t num_class, num_feature, num_target, num_parallel_tree;
	int64_t best_iteration;      /* -1: not set */
	struct node *nodes;
	size_t n_nodes, cap_nodes;
	uint32_t *root;              /* first node of each tree */
	size_t n_trees, cap_root;
	int64_t *tree_info, *indptr;
	size_t n_tree_info, cap_tree_info, n_indptr, cap_indptr;
	float *weight_drop;
	size_t n_weight_drop, cap_weight_drop;
	uint32_t max_feature;        /* largest split feature used, + 1 */
	struct raw_tree t;
};

static void raw_tree_free(struct raw_tree *t)
{
	free(t->left), free(t->right), free(t->feature), free(t->dleft), free(t->split_type);
	free(t->cond), free(t->queue), free(t->seen);
}

static void builder_free(struct builder *b)
{
	free(b->nodes), free(b->root), free(b->tree_info), free(b->indptr), free(b->weight_drop);
	raw_tree_free(&b->t);
}

/* Checks the raw tree's arrays against each other; returns its node count. */
static int tree_shape(struct doc *d, struct builder *b, size_t *count)
{
	struct raw_tree *t = &b->t;
	size_t n = t->n_left;
	if (t->size_leaf_vector > 1)
		return doc_error(d, "tree %zu: expected single-target trees (size_leaf_vector 0 or 1), "
				 "got %lld: multi-target models are not supported", b->n_trees,
				 (long long)t->size_leaf_vector);
	if (n == 0 || t->n_right != n || t->n_feature != n || t->n_cond != n || t->n_dleft != n ||
	    (t->n_split_type != 0 && t->n_split_type != n) || (t->num_nodes >= 0 && (size_t)t->num_nodes != n))
		return doc_error(d, "tree %zu: expected num_nodes (%lld) entries in left_children (%zu), "
				 "right_children (%zu), split_indices (%zu), split_conditions (%zu) "
				 "and default_left (%zu)", b->n_trees, (long long)t->num_nodes, n,
				 t->n_right, t->n_feature, t->n_cond, t->n_dleft);
	if (b->n_trees >= MAX_TREES || n > MAX_NODES - b->n_nodes)
		return doc_error(d, "expected at most %lu trees and %lu nodes", MAX_TREES, MAX_NODES);
	*count = n;
	return 0;
}

/* Appends the raw tree to the model, breadth first; see the banner. */
static int build_tree(struct doc *d, struct builder *b)
{
	struct raw_tree *t = &b->t;
	size_t n = 0, head = 0, tail = 0, next;
	uint32_t base = (uint32_t)b->n_nodes;

	if (tree_shape(d, b, &n))
		return -1;
	if (grow((void **)&t->queue, &t->cap_queue, n, sizeof *t->queue, MAX_NODES) ||
	    grow((void **)&t->seen, &t->cap_seen, n, 1, MAX_NODES) ||
	    grow((void **)&b->nodes, &b->cap_nodes, b->n_nodes + n, sizeof *b->nodes, MAX_NODES) ||
	    grow((void **)&b->root, &b->cap_root, b->n_trees + 1, sizeof *b->root, MAX_TREES))
		return doc_error(d, "out of memory");
	memset(t->seen, 0, n);
	t->queue[tail++] = 0; /* the root is node 0, and goes to position 0 */
	t->seen[0] = 1;
	next = 1;
	while (head < tail) {
		uint32_t o = t->queue[head];
		struct node *out = &b->nodes[base + head];
		int64_t l = t->left[o], r = t->right[o];
		head++;
		if (t->n_split_type && t->split_type[o] != 0)
			return doc_error(d, "tree %zu, node %u: expected numerical splits, got a "
					 "categorical one (not supported)", b->n_trees, o);
		if (l == -1 && r == -1) {
			out->value = t->cond[o];
			out->info = NODE_LEAF;
			out->left = 0;
			continue;
		}
		if (l < 0 || r < 0 || (size_t)l >= n || (size_t)r >= n || t->seen[l] || t->seen[r] || l == r)
			return doc_error(d, "tree %zu, node %u: expected two new child nodes below %zu, "
					 "got %lld and %lld", b->n_trees, o, n, (long long)l, (long long)r);
		if (t->feature[o] < 0 || t->feature[o] > (int64_t)NODE_FEATURE)
			return doc_error(d, "tree %zu, node %u: expected a feature index below %u, got %lld",
					 b->n_trees, o, NODE_FEATURE, (long long)t->feature[o]);
		t->seen[l] = t->seen[r] = 1;
		t->queue[tail++] = (uint32_t)l;
		t->queue[tail++] = (uint32_t)r;
		out->value = t->cond[o];
		out->info = (uint32_t)t->feature[o] | (t->dleft[o] ? NODE_DEFAULT_LEFT : 0);
		out->left = base + (uint32_t)next;
		next += 2;
		if ((uint32_t)t->feature[o] + 1 > b->max_feature)
			b->max_feature = (uint32_t)t->feature[o] + 1;
	}
	b->root[b->n_trees++] = base;
	b->n_nodes += tail;
	return 0;
}

/* ======================================================================== */
/* The model walker                                                          */
/* ======================================================================== */
/*
 * The document, as XGBoost 1.0 to 3.x write it (members in any order; the
 * ones not listed are skipped):
 *
 *   { "version": [major, minor, patch],
 *     "learner": {
 *       "attributes": { "best_iteration": "12", ... },
 *       "learner_model_param": { "base_score": "5E-1" | "[5E-1,...]",
 *                                "num_class": "0", "num_feature": "30",
 *                                "num_target": "1" },
 *       "objective": { "name": "binary:logistic", ... },
 *       "gradient_booster": gbtree
 *                         | { "name": "dart", "gbtree": gbtree,
 *                             "weight_drop": [w, ...] } } }
 *   gbtree = { "name": "gbtree",
 *              "model": { "gbtree_model_param": { "num_parallel_tree": "1" },
 *                         "trees": [tree, ...], "tree_info": [group, ...],
 *                         "iteration_indptr": [0, ...] (2.0 and later) } }
 *   tree   = { "left_children": [..], "right_children": [..],
 *              "split_indices": [..], "split_conditions": [..],
 *              "default_left": [..], "split_type": [..],
 *              "tree_param": { "num_nodes": "7", "size_leaf_vector": "0" } }
 *
 * XGBoost writes its parameters as strings ("num_class": "3").
 */

/* An array of integers from lo to hi into a growing buffer. */
static int read_ints(struct doc *d, int64_t **buf, size_t *cap, size_t *n, double lo, double hi,
		     const char *what)
{
	struct cont c;
	int rc;
	*n = 0;
	if (doc_open(d, &c, 0))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (grow((void **)buf, cap, *n + 1, sizeof **buf, (size_t)(d->end - d->start) + 1))
			return doc_error(d, "out of memory");
		if (doc_int(d, lo, hi, what, &(*buf)[*n]))
			return -1;
		(*n)++;
	}
	return rc;
}

static int read_floats(struct doc *d, float **buf, size_t *cap, size_t *n)
{
	struct cont c;
	int rc;
	*n = 0;
	if (doc_open(d, &c, 0))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (grow((void **)buf, cap, *n + 1, sizeof **buf, (size_t)(d->end - d->start) + 1))
			return doc_error(d, "out of memory");
		if (doc_float(d, &(*buf)[*n]))
			return -1;
		(*n)++;
	}
	return rc;
}

/* A parameter written as a string holding a whole number ("3"), or as a
 * plain number. */
static int read_param(struct doc *d, const char *name, int64_t max, int64_t *out)
{
	char text[NAME_CAP], *end;
	size_t len;
	long long v;
	int m = d->ubj ? ubj_peek(d) : (dj_space(d), d->p < d->end ? *d->p : -1);
	if (m != '"' && m != 'S')
		return doc_int(d, 0, (double)max, name, out);
	if (doc_text(d, text, sizeof text, &len, 0))
		return -1;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (len == 0 || len >= sizeof text || *end != '\0' || errno || v < 0 || v > max)
		return doc_error(d, "expected %s, a whole number from 0 to %lld, got \"%s\"",
				 name, (long long)max, text);
	*out = v;
	return 0;
}

/* An object of parameters: calls read_param for the names in names[],
 * storing into outs[]; skips the rest. */
static int read_params(struct doc *d, const char *const *names, int64_t *const *outs,
		       const int64_t *maxes, size_t count)
{
	struct cont c;
	char key[NAME_CAP];
	size_t i;
	int rc;
	if (doc_open(d, &c, 1))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (doc_key(d, &c, key, sizeof key))
			return -1;
		for (i = 0; i < count && strcmp(key, names[i]) != 0; i++)
			;
		if (i < count ? read_param(d, names[i], maxes[i], outs[i]) : doc_skip(d))
			return -1;
	}
	return rc;
}

static int walk_tree(struct doc *d, struct builder *b)
{
	static const char *const names[] = {"num_nodes", "size_leaf_vector"};
	static const int64_t maxes[] = {(int64_t)MAX_NODES, 1 << 20};
	struct raw_tree *t = &b->t;
	int64_t *const outs[] = {&t->num_nodes, &t->size_leaf_vector};
	struct cont c;
	char key[NAME_CAP];
	int rc;

	t->n_left = t->n_right = t->n_feature = t->n_dleft = t->n_split_type = t->n_cond = 0;
	t->num_nodes = -1, t->size_leaf_vector = 0;
	if (doc_open(d, &c, 1))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (doc_key(d, &c, key, sizeof key))
			return -1;
		if (!strcmp(key, "left_children"))
			rc = read_ints(d, &t->left, &t->cap_left, &t->n_left, -1, INT32_MAX, "a child index");
		else if (!strcmp(key, "right_children"))
			rc = read_ints(d, &t->right, &t->cap_right, &t->n_right, -1, INT32_MAX, "a child index");
		else if (!strcmp(key, "split_indices"))
			rc = read_ints(d, &t->feature, &t->cap_feature, &t->n_feature, 0, UINT32_MAX,
				       "a feature index");
		else if (!strcmp(key, "default_left"))
			rc = read_ints(d, &t->dleft, &t->cap_dleft, &t->n_dleft, 0, 1, "0 or 1");
		else if (!strcmp(key, "split_type"))
			rc = read_ints(d, &t->split_type, &t->cap_split_type, &t->n_split_type, 0, 255,
				       "a split type");
		else if (!strcmp(key, "split_conditions"))
			rc = read_floats(d, &t->cond, &t->cap_cond, &t->n_cond);
		else if (!strcmp(key, "tree_param"))
			rc = read_params(d, names, outs, maxes, 2);
		else
			rc = doc_skip(d);
		if (rc < 0)
			return -1;
	}
	return rc < 0 ? -1 : build_tree(d, b);
}

static int walk_trees(struct doc *d, struct builder *b)
{
	struct cont c;
	int rc;
	if (doc_open(d, &c, 0))
		return -1;
	while ((rc = doc_next(d, &c)) == 1)
		if (walk_tree(d, b))
			return -1;
	return rc;
}

/* gbtree's "model": the trees and which output group each adds to. */
static int walk_gbtree_model(struct doc *d, struct builder *b)
{
	static const char *const names[] = {"num_parallel_tree"};
	static const int64_t maxes[] = {1 << 20};
	int64_t *const outs[] = {&b->num_parallel_tree};
	struct cont c;
	char key[NAME_CAP];
	int rc;

	if (doc_open(d, &c, 1))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (doc_key(d, &c, key, sizeof key))
			return -1;
		if (!strcmp(key, "trees"))
			rc = walk_trees(d, b);
		else if (!strcmp(key, "tree_info"))
			rc = read_ints(d, &b->tree_info, &b->cap_tree_info, &b->n_tree_info, 0,
				       MAX_CLASSES - 1, "an output group");
		else if (!strcmp(key, "iteration_indptr"))
			rc = read_ints(d, &b->indptr, &b->cap_indptr, &b->n_indptr, 0, MAX_TREES,
				       "a tree count");
		else if (!strcmp(key, "gbtree_model_param"))
			rc = read_params(d, names, outs, maxes, 1);
		else
			rc = doc_skip(d);
		if (rc < 0)
			return -1;
	}
	return rc;
}

/* "gradient_booster", or dart's inner "gbtree" (nested = 1). */
static int walk_booster(struct doc *d, struct builder *b, int nested)
{
	struct cont c;
	char key[NAME_CAP], name[NAME_CAP] = "";
	size_t len;
	int rc;

	if (doc_open(d, &c, 1))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (doc_key(d, &c, key, sizeof key))
			return -1;
		if (!strcmp(key, "name"))
			rc = doc_text(d, name, sizeof name, &len, 0);
		else if (!strcmp(key, "model"))
			rc = walk_gbtree_model(d, b);
		else if (!strcmp(key, "gbtree") && !nested)
			rc = walk_booster(d, b, 1);
		else if (!strcmp(key, "weight_drop") && !nested)
			rc = read_floats(d, &b->weight_drop, &b->cap_weight_drop, &b->n_weight_drop);
		else
			rc = doc_skip(d);
		if (rc < 0)
			return -1;
	}
	if (rc == 0 && nested && strcmp(name, "gbtree") != 0)
		return doc_error(d, "expected dart's \"gbtree\" to be a gbtree, got \"%s\"", name);
	if (rc == 0 && !nested)
		memcpy(b->booster, name, sizeof name);
	return rc;
}

/* "attributes": strings; best_iteration is the one that changes predictions. */
static int walk_attributes(struct doc *d, struct builder *b)
{
	struct cont c;
	char key[NAME_CAP], value[NAME_CAP], *end;
	size_t len;
	int rc;

	if (doc_open(d, &c, 1))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (doc_key(d, &c, key, sizeof key))
			return -1;
		if (strcmp(key, "best_iteration") != 0) {
			if (doc_skip(d))
				return -1;
			continue;
		}
		if (doc_text(d, value, sizeof value, &len, 0))
			return -1;
		b->best_iteration = strtoll(value, &end, 10);
		if (len == 0 || *end != '\0' || b->best_iteration < 0 || b->best_iteration > (int64_t)MAX_TREES)
			return doc_error(d, "expected best_iteration to be a whole number, got \"%s\"", value);
	}
	return rc;
}

/* "learner_model_param": base_score is kept as text (a number or a list). */
static int walk_learner_param(struct doc *d, struct builder *b)
{
	static const char *const names[] = {"num_class", "num_feature", "num_target"};
	static const int64_t maxes[] = {(int64_t)MAX_CLASSES, (int64_t)MAX_FEATURES, 1 << 20};
	int64_t *const outs[] = {&b->num_class, &b->num_feature, &b->num_target};
	struct cont c;
	char key[NAME_CAP];
	size_t i;
	int rc;

	if (doc_open(d, &c, 1))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (doc_key(d, &c, key, sizeof key))
			return -1;
		for (i = 0; i < 3 && strcmp(key, names[i]) != 0; i++)
			;
		if (i < 3)
			rc = read_param(d, names[i], maxes[i], outs[i]);
		else if (!strcmp(key, "base_score"))
			rc = doc_text_ref(d, &b->base_score, &b->base_score_len, 0);
		else
			rc = doc_skip(d);
		if (rc < 0)
			return -1;
	}
	return rc;
}

static int walk_objective(struct doc *d, struct builder *b)
{
	struct cont c;
	char key[NAME_CAP];
	size_t len;
	int rc;
	if (doc_open(d, &c, 1))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (doc_key(d, &c, key, sizeof key))
			return -1;
		if (!strcmp(key, "name") ? doc_text(d, b->objective, sizeof b->objective, &len, 0)
					 : doc_skip(d))
			return -1;
	}
	return rc;
}

static int walk_learner(struct doc *d, struct builder *b)
{
	struct cont c;
	char key[NAME_CAP];
	int rc;
	if (doc_open(d, &c, 1))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (doc_key(d, &c, key, sizeof key))
			return -1;
		if (!strcmp(key, "gradient_booster"))
			rc = walk_booster(d, b, 0);
		else if (!strcmp(key, "learner_model_param"))
			rc = walk_learner_param(d, b);
		else if (!strcmp(key, "objective"))
			rc = walk_objective(d, b);
		else if (!strcmp(key, "attributes"))
			rc = walk_attributes(d, b);
		else
			rc = doc_skip(d);
		if (rc < 0)
			return -1;
	}
	return rc;
}

/* An object holding "learner": the model document itself, or a pickled
 * Booster's snapshot {"Config": ..., "Model": {"learner": ...}}. */
static int walk_model(struct doc *d, struct builder *b, int *have)
{
	struct cont c;
	char key[NAME_CAP];
	int rc;
	if (doc_open(d, &c, 1))
		return -1;
	while ((rc = doc_next(d, &c)) == 1) {
		if (doc_key(d, &c, key, sizeof key))
			return -1;
		if (!strcmp(key, "learner") ? ((*have)++, walk_learner(d, b))
		    : !strcmp(key, "Model") ? walk_model(d, b, have)
		    : doc_skip(d))
			return -1;
	}
	return rc;
}

/* The whole document, and nothing after it. */
static int walk_document(struct doc *d, struct builder *b)
{
	int have = 0;
	if (walk_model(d, b, &have))
		return -1;
	if (have != 1)
		return doc_error(d, "expected one \"learner\" object in the model, got %d", have);
	if (!d->ubj)
		dj_space(d);
	if (d->p != d->end)
		return doc_error(d, "expected the end of the file after the model");
	return 0;
}

/* ======================================================================== */
/* The legacy binary format                                                  */
/* ======================================================================== */
/*
 * What XGBoost 1.x writes for a file name without .json or .ubj: C structs
 * as they are in memory (little-endian on every platform SageMaker runs),
 * strings as a 64-bit length and bytes. In order:
 *
 *   "binf" (1.0 and later; XGBoost 0.x starts directly with what follows)
 *   learner parameters, 136 bytes: float base_score; uint32 num_feature;
 *       int32 num_class; int32 contain_extra_attrs; int32
 *       contain_eval_metrics; uint32 major, minor; then reserved space
 *   string objective name; string booster name ("gbtree", "dart")
 *   gbtree parameters, 160 bytes: int32 num_trees, num_parallel_tree, (old
 *       num_feature, padding), int64 (old), int32 (old num_output_group),
 *       int32 size_leaf_vector; then reserved space
 *   each tree: tree parameters, 148 bytes: int32 num_roots, num_nodes,
 *       num_deleted, max_depth, num_feature, size_leaf_vector; reserved
 *     num_nodes nodes of 20 bytes: int32 parent, left, right (-1: none);
 *       uint32 feature index, top bit set when missing goes left; float
 *       threshold, or the leaf value
 *     num_nodes statistics of 16 bytes (training only; skipped)
 *     if size_leaf_vector: a 64-bit count and that many floats
 *   tree_info: num_trees int32 output groups
 *   dart only: a 64-bit count and that many float weight_drop
 *   if contain_extra_attrs: a 64-bit count of (string, string) attributes
 *   (and more that prediction does not need)
 */

#define BIN_LEARNER_PARAM 136
#define BIN_GBTREE_PARAM 160
#define BIN_TREE_PARAM 148
#define BIN_NODE 20
#define BIN_NODE_STAT 16

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int bin_need(struct doc *d, size_t n, const char *what)
{
	if (!doc_left(d, n))
		return doc_error(d, "expected %s (%zu bytes), got the end of the file after %zu",
				 what, n, (size_t)(d->end - d->p));
	return 0;
}

/* A 64-bit count of items of item_size bytes each, that must fit in the rest. */
static int bin_count(struct doc *d, size_t item_size, const char *what, size_t *n)
{
	uint64_t v;
	if (bin_need(d, 8, what))
		return -1;
	v = le32(d->p) | (uint64_t)le32(d->p + 4) << 32;
	if (v > (uint64_t)(d->end - d->p - 8) / (item_size ? item_size : 1))
		return doc_error(d, "expected %s, got a count of %llu that the file is too short for",
				 what, (unsigned long long)v);
	d->p += 8;
	*n = (size_t)v;
	return 0;
}

/* A string into buf (cut to cap - 1 bytes); returns its full length in *len. */
static int bin_string(struct doc *d, char *buf, size_t cap, const char *what, size_t *len)
{
	size_t n;
	if (bin_count(d, 1, what, &n))
		return -1;
	*len = n;
	memcpy(buf, d->p, n < cap ? n : cap - 1);
	buf[n < cap ? n : cap - 1] = '\0';
	d->p += n;
	return 0;
}

static int32_t bin_i32(const unsigned char *p) { return (int32_t)le32(p); }

static float bin_f32(const unsigned char *p)
{
	uint32_t u = le32(p);
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* One tree into b->t, then build_tree. */
static int bin_tree(struct doc *d, struct builder *b)
{
	struct raw_tree *t = &b->t;
	int32_t n;
	size_t i, limit = (size_t)(d->end - d->start) + 1;

	if (bin_need(d, BIN_TREE_PARAM, "a tree's parameters"))
		return -1;
	n = bin_i32(d->p + 4);
	t->size_leaf_vector = bin_i32(d->p + 20);
	d->p += BIN_TREE_PARAM;
	if (n <= 0 || (size_t)n > (size_t)(d->end - d->p) / (BIN_NODE + BIN_NODE_STAT))
		return doc_error(d, "tree %zu: expected num_nodes from 1 to what the file holds, got %d",
				 b->n_trees, (int)n);
	if (grow((void **)&t->left, &t->cap_left, (size_t)n, sizeof *t->left, limit) ||
	    grow((void **)&t->right, &t->cap_right, (size_t)n, sizeof *t->right, limit) ||
	    grow((void **)&t->feature, &t->cap_feature, (size_t)n, sizeof *t->feature, limit) ||
	    grow((void **)&t->dleft, &t->cap_dleft, (size_t)n, sizeof *t->dleft, limit) ||
	    grow((void **)&t->cond, &t->cap_cond, (size_t)n, sizeof *t->cond, limit))
		return doc_error(d, "out of memory");
	for (i = 0; i < (size_t)n; i++, d->p += BIN_NODE) {
		uint32_t sindex = le32(d->p + 12);
		t->left[i] = bin_i32(d->p + 4);
		t->right[i] = bin_i32(d->p + 8);
		t->feature[i] = sindex & 0x7fffffffU;
		t->dleft[i] = sindex >> 31;
		t->cond[i] = bin_f32(d->p + 16);
	}
	d->p += (size_t)n * BIN_NODE_STAT;
	t->n_left = t->n_right = t->n_feature = t->n_dleft = t->n_cond = (size_t)n;
	t->n_split_type = 0;
	t->num_nodes = n;
	if (t->size_leaf_vector != 0) {
		size_t k;
		if (bin_count(d, 4, "a leaf vector", &k))
			return -1;
		d->p += 4 * k;
	}
	return build_tree(d, b);
}

/* The attributes: best_iteration is the one that matters. */
static int bin_attributes(struct doc *d, struct builder *b)
{
	size_t n, i, klen, vlen;
	char key[NAME_CAP], value[NAME_CAP], *end;
	if (bin_count(d, 16, "the attribute count", &n))
		return -1;
	for (i = 0; i < n; i++) {
		if (bin_string(d, key, sizeof key, "an attribute name", &klen) ||
		    bin_string(d, value, sizeof value, "an attribute value", &vlen))
			return -1;
		if (strcmp(key, "best_iteration") != 0)
			continue;
		b->best_iteration = strtoll(value, &end, 10);
		if (vlen == 0 || *end != '\0' || b->best_iteration < 0 || b->best_iteration > (int64_t)MAX_TREES)
			return doc_error(d, "expected best_iteration to be a whole number, got \"%s\"", value);
	}
	return 0;
}

static int read_binary(struct doc *d, struct builder *b, int header)
{
	int32_t num_trees, extra_attrs, i;
	size_t len, n;

	if (header)
		d->p += 4; /* "binf" */
	if (bin_need(d, BIN_LEARNER_PARAM, "the learner parameters"))
		return -1;
	b->binary_base_score = bin_f32(d->p);
	b->num_feature = le32(d->p + 4);
	b->num_class = bin_i32(d->p + 8);
	extra_attrs = bin_i32(d->p + 12);
	d->p += BIN_LEARNER_PARAM;
	if (bin_string(d, b->objective, sizeof b->objective, "the objective's name", &len) ||
	    bin_string(d, b->booster, sizeof b->booster, "the booster's name", &len))
		return -1;
	if (strcmp(b->booster, "gbtree") != 0 && strcmp(b->booster, "dart") != 0)
		return 0; /* finish_model names the booster it cannot serve */
	if (bin_need(d, BIN_GBTREE_PARAM, "the gbtree parameters"))
		return -1;
	num_trees = bin_i32(d->p);
	b->num_parallel_tree = bin_i32(d->p + 4);
	d->p += BIN_GBTREE_PARAM;
	if (num_trees < 0 || (size_t)num_trees > (size_t)(d->end - d->p) / BIN_TREE_PARAM)
		return doc_error(d, "expected num_trees from 0 to what the file holds, got %d", (int)num_trees);
	for (i = 0; i < num_trees; i++)
		if (bin_tree(d, b))
			return -1;
	if (bin_need(d, 4 * (size_t)num_trees, "tree_info, the output group of each tree"))
		return -1;
	if (grow((void **)&b->tree_info, &b->cap_tree_info, (size_t)num_trees + 1, sizeof *b->tree_info,
		 MAX_TREES + 1))
		return doc_error(d, "out of memory");
	for (i = 0; i < num_trees; i++, d->p += 4)
		b->tree_info[i] = bin_i32(d->p);
	b->n_tree_info = (size_t)num_trees;
	if (!strcmp(b->booster, "dart") && num_trees > 0) {
		if (bin_count(d, 4, "dart's weight_drop", &n) ||
		    grow((void **)&b->weight_drop, &b->cap_weight_drop, n + 1, sizeof(float), MAX_TREES + 1))
			return doc_error(d, "expected dart's weight_drop");
		for (b->n_weight_drop = 0; b->n_weight_drop < n; b->n_weight_drop++, d->p += 4)
			b->weight_drop[b->n_weight_drop] = bin_f32(d->p);
	}
	return extra_attrs ? bin_attributes(d, b) : 0;
}

/* ======================================================================== */
/* Finishing the model                                                       */
/* ======================================================================== */
/*
 * Once the whole file is read: the checks that need more than one part of
 * it, then base_score to margins, dart weights into the leaves, and the
 * trees past best_iteration dropped.
 */

struct finisher {
	struct builder *b;
	struct model *m;
	const char *path;
	char *err;
	size_t err_size;
};

static int finish_error(struct finisher *f, const char *fmt, ...) SMLIB_PRINTF_LIKE(2, 3);
static int finish_error(struct finisher *f, const char *fmt, ...)
{
	char msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	smlib_format(f->err, f->err_size, "%s: %s", f->path, msg);
	return -1;
}

/* The booster, the objective and the shape. */
static int finish_kind(struct finisher *f)
{
	struct builder *b = f->b;
	struct model *m = f->m;
	size_t i;

	if (strcmp(b->booster, "gbtree") != 0 && strcmp(b->booster, "dart") != 0)
		return finish_error(f, "expected a tree booster (gbtree or dart), got \"%s\"%s", b->booster,
				    strcmp(b->booster, "gblinear") ? "" : ": linear boosters are not supported");
	for (i = 0; i < N_OBJECTIVES && strcmp(b->objective, OBJECTIVES[i].name) != 0; i++)
		;
	if (i == N_OBJECTIVES)
		return finish_error(f, "expected one of the objectives " OBJECTIVE_LIST ", got \"%s\"",
				    b->objective);
	m->obj = &OBJECTIVES[i];
	if (b->num_target > 1)
		return finish_error(f, "expected a single-target model, got num_target %lld",
				    (long long)b->num_target);
	if (b->num_class < 0 || (uint64_t)b->num_class > MAX_CLASSES)
		return finish_error(f, "expected num_class from 0 to %lu, got %lld", MAX_CLASSES,
				    (long long)b->num_class);
	if ((m->obj->link == LINK_SOFTPROB || m->obj->link == LINK_ARGMAX) && b->num_class < 1)
		return finish_error(f, "expected num_class for %s, got none", b->objective);
	if (b->num_feature < 1 || (uint64_t)b->num_feature > MAX_FEATURES)
		return finish_error(f, "expected num_feature from 1 to %lu, got %lld", MAX_FEATURES,
				    (long long)b->num_feature);
	if (b->max_feature > (uint64_t)b->num_feature)
		return finish_error(f, "expected split features below num_feature (%lld), got %u",
				    (long long)b->num_feature, b->max_feature - 1);
	m->n_features = (size_t)b->num_feature;
	m->n_groups = b->num_class > 0 ? (size_t)b->num_class : 1;
	m->n_outputs = m->obj->link == LINK_SOFTPROB ? m->n_groups : 1;
	return 0;
}

/* tree_info, dart weights, and best_iteration. */
static int finish_trees(struct finisher *f)
{
	struct builder *b = f->b;
	size_t i, keep = b->n_trees;

	if (b->n_tree_info != b->n_trees)
		return finish_error(f, "expected tree_info to name the output group of each of the %zu "
				    "trees, got %zu entries", b->n_trees, b->n_tree_info);
	for (i = 0; i < b->n_trees; i++)
		if ((size_t)b->tree_info[i] >= f->m->n_groups)
			return finish_error(f, "expected tree %zu's output group below %zu, got %lld",
					    i, f->m->n_groups, (long long)b->tree_info[i]);
	if (!strcmp(b->booster, "dart")) {
		if (b->n_weight_drop != b->n_trees)
			return finish_error(f, "expected a dart weight_drop for each of the %zu trees, "
					    "got %zu", b->n_trees, b->n_weight_drop);
		/* XGBoost multiplies each tree's output by its weight, in float:
		 * the same product, made once here. */
		for (i = 0; i < b->n_trees; i++) {
			size_t k, end = i + 1 < b->n_trees ? b->root[i + 1] : b->n_nodes;
			for (k = b->root[i]; k < end; k++)
				if (b->nodes[k].info & NODE_LEAF)
					b->nodes[k].value *= b->weight_drop[i];
		}
	}
	if (b->n_indptr > 0) { /* XGBoost 2+: where each boosting round's trees start */
		for (i = 0; i < b->n_indptr; i++)
			if (b->indptr[i] < (i ? b->indptr[i - 1] : 0) || (size_t)b->indptr[i] > b->n_trees)
				return finish_error(f, "expected iteration_indptr to rise from 0 to %zu",
						    b->n_trees);
		if ((size_t)b->indptr[b->n_indptr - 1] != b->n_trees)
			return finish_error(f, "expected iteration_indptr to end at %zu", b->n_trees);
	}
	if (b->best_iteration >= 0) { /* trees of rounds 0..best_iteration */
		size_t rounds = (size_t)b->best_iteration + 1;
		size_t per = (b->num_parallel_tree > 0 ? (size_t)b->num_parallel_tree : 1) * f->m->n_groups;
		if (b->n_indptr > 0)
			keep = rounds < b->n_indptr ? (size_t)b->indptr[rounds] : b->n_trees;
		else if (rounds < b->n_trees / per + 1)
			keep = rounds * per;
	}
	f->m->n_trees = keep < b->n_trees ? keep : b->n_trees;
	return 0;
}

/* base_score: "0.5", or "[0.5]" or one per class in XGBoost 3.1+; each
 * through the objective's inverse link, in float as XGBoost does it. */
static int finish_base(struct finisher *f)
{
	struct builder *b = f->b;
	struct model *m = f->m;
	const char *p, *e;
	size_t count = 0, g;

	m->base = malloc(m->n_groups * sizeof *m->base);
	if (m->base == NULL)
		return finish_error(f, "out of memory");
	if (b->base_score == NULL) { /* the binary format's float, or 0.5 if none */
		for (g = 0; g < m->n_groups; g++)
			m->base[g] = b->binary_base_score;
		count = 1;
	} else {
		p = (const char *)b->base_score, e = p + b->base_score_len;
		smlib_trim(&p, &e);
		if (p < e && *p == '[' && e[-1] == ']')
			p++, e--;
		while (p < e) {
			char buf[64], *end;
			const char *s = p, *se = p;
			while (se < e && *se != ',')
				se++;
			p = se + 1;
			smlib_trim(&s, &se);
			if (se == s || (size_t)(se - s) >= sizeof buf || count >= m->n_groups)
				return finish_error(f, "expected base_score to be a number, or a list of "
						    "%zu numbers", m->n_groups);
			memcpy(buf, s, (size_t)(se - s));
			buf[se - s] = '\0';
			m->base[count++] = strtof(buf, &end);
			if (*end != '\0')
				return finish_error(f, "expected base_score to be a number, got \"%s\"", buf);
		}
		if (count == 1)
			for (g = 1; g < m->n_groups; g++)
				m->base[g] = m->base[0];
	}
	if (count != 1 && count != m->n_groups)
		return finish_error(f, "expected base_score to hold 1 or %zu numbers, got %zu",
				    m->n_groups, count);
	for (g = 0; g < m->n_groups; g++) {
		float s = m->base[g];
		if (m->obj->base == BASE_LOGIT && !(s > 0 && s < 1))
			return finish_error(f, "expected base_score between 0 and 1 for %s, got %g",
					    m->obj->name, (double)s);
		if (m->obj->base == BASE_LOG && !(s > 0))
			return finish_error(f, "expected a positive base_score for %s, got %g",
					    m->obj->name, (double)s);
		if (m->obj->base == BASE_LOGIT)
			m->base[g] = -logf(1.0f / s - 1.0f);
		else if (m->obj->base == BASE_LOG)
			m->base[g] = logf(s);
	}
	return 0;
}

/* Moves the builder's arrays into the model. */
static int finish_model(struct builder *b, struct model *m, const char *path, char *err, size_t err_size)
{
	struct finisher f;
	size_t i;
	f.b = b, f.m = m, f.path = path, f.err = err, f.err_size = err_size;
	if (finish_kind(&f) || finish_trees(&f) || finish_base(&f))
		return -1;
	m->group = malloc((m->n_trees + 1) * sizeof *m->group);
	if (m->group == NULL)
		return finish_error(&f, "out of memory");
	for (i = 0; i < m->n_trees; i++)
		m->group[i] = (uint32_t)b->tree_info[i];
	m->nodes = b->nodes, b->nodes = NULL;
	m->root = b->root, b->root = NULL;
	return 0;
}

/* Which of the three formats the bytes are. */
enum model_format { MF_BINARY, MF_BINARY_BARE, MF_JSON, MF_UBJSON, MF_UNKNOWN };

/* XGBoost before 1.0 wrote the binary format without "binf": it starts
 * with the learner parameters, then the objective's name. Recognised by that
 * name: a length from 1 to 63, then bytes that an objective name has. */
static int bare_binary(const unsigned char *s, size_t n)
{
	size_t len, i;
	if (n < BIN_LEARNER_PARAM + 8 + 1)
		return 0;
	len = le32(s + BIN_LEARNER_PARAM);
	if (len == 0 || len >= NAME_CAP || le32(s + BIN_LEARNER_PARAM + 4) != 0 ||
	    n < BIN_LEARNER_PARAM + 8 + len)
		return 0;
	for (i = 0; i < len; i++) {
		int c = s[BIN_LEARNER_PARAM + 8 + i];
		if (!(c >= 'a' && c <= 'z') && c != ':' && c != '_')
			return 0;
	}
	return 1;
}

static enum model_format detect_format(const unsigned char *s, size_t n)
{
	size_t i = 0;
	if (n >= 4 && memcmp(s, "binf", 4) == 0)
		return MF_BINARY;
	if (bare_binary(s, n))
		return MF_BINARY_BARE;
	while (i < n && strchr(" \t\r\n", s[i]) && s[i] != '\0')
		i++;
	if (i + 1 >= n || s[i] != '{')
		return MF_UNKNOWN;
	if (i == 0 && strchr("iUIlL$#N", s[1]) && s[1] != '\0')
		return MF_UBJSON; /* a member name's length marker, or a count or type */
	for (i++; i < n && strchr(" \t\r\n", s[i]) && s[i] != '\0'; i++)
		;
	return i < n && (s[i] == '"' || s[i] == '}') ? MF_JSON : MF_UNKNOWN;
}

/* Pickled Boosters. */
/*
 * Many SageMaker training scripts, and the XGBoost 0.90 containers, saved
 * xgboost-model with Python's pickle.dump(booster). A pickled Booster holds
 * the model as one bytes object: a snapshot in one of the formats above
 * (the legacy binary for 0.x, UBJSON {"Config", "Model"} for 1.6 and later).
 * Nothing is run: the pickle's opcodes are only stepped over, to find the
 * largest bytes object that is a model. Protocols 3 to 5 (Python 3's
 * defaults) keep bytes as bytes; protocol 2 stores them as text, and is
 * refused with the rest.
 */

/* What follows a pickle opcode: returns the size of a fixed argument, or
 * sets *len_size (data preceded by a little-endian length of that many
 * bytes) or *lines (text to that many newlines); -1 for an unknown opcode. */
static int pickle_arg(int op, int *len_size, int *lines)
{
	static const char none[] = "(.012NRabd}el]ostu)\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98";
	*len_size = 0, *lines = 0;
	if (op != 0 && strchr(none, op))
		return 0;
	switch (op) {
	case 'K': case 'h': case 'q': case 0x80: case 0x82: return 1;
	case 'M': case 0x83: return 2;
	case 'J': case 'j': case 'r': case 0x84: return 4;
	case 'G': case 0x95: return 8;
	case 'U': case 0x8c: case 'C': case 0x8a: *len_size = 1; return 0;
	case 'T': case 'X': case 'B': case 0x8b: *len_size = 4; return 0;
	case 0x8d: case 0x8e: case 0x96: *len_size = 8; return 0;
	case 'c': case 'i': *lines = 2; return 0;
	case 'I': case 'L': case 'F': case 'S': case 'V': case 'g': case 'p': case 'P': *lines = 1; return 0;
	default: return -1;
	}
}

/* Finds the model inside a pickle: sets *s, *n to the largest bytes object
 * (opcodes B, C, 0x8e, 0x96) that holds one. Returns 0, or -1 with err set. */
static int pickle_model(const char *path, const unsigned char *p, size_t size,
			const unsigned char **s, size_t *n, char *err, size_t err_size)
{
	const unsigned char *end = p + size, *start = p;
	*s = NULL, *n = 0;
	while (p < end && *p != '.') {
		int op = *p++, len_size, lines, i;
		int fixed = pickle_arg(op, &len_size, &lines);
		uint64_t len = 0;
		if (fixed < 0) {
			smlib_format(err, err_size, "%s: byte %zu: expected a pickled XGBoost Booster, got "
				     "pickle opcode 0x%02x; write the model with save_model(\"xgboost-model.json\")",
				     path, (size_t)(p - 1 - start), (unsigned)op);
			return -1;
		}
		if ((size_t)(end - p) < (size_t)fixed + (size_t)len_size)
			break;
		for (i = len_size - 1; i >= 0; i--)
			len = len << 8 | p[i];
		p += fixed + len_size;
		for (; lines > 0; lines--) {
			const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
		}
		if (len > (uint64_t)(end - p))
			break;
		if ((op == 'B' || op == 'C' || op == 0x8e || op == 0x96) && len > *n &&
		    detect_format(p, (size_t)len) != MF_UNKNOWN)
			*s = p, *n = (size_t)len;
		p += len;
	}
	if (*s == NULL) {
		smlib_format(err, err_size, "%s: expected a pickled XGBoost Booster holding its model "
			     "as bytes, found none; write the model with save_model(\"xgboost-model.json\")",
			     path);
		return -1;
	}
	return 0;
}

/* Whether the file is the default plug-in's linear model (docs/model-format.md):
 * its first line other than blanks and '#' comments starts with
 * "smserve-linear-model". */
static int linear_model(const unsigned char *s, size_t n)
{
	static const char name[] = "smserve-linear-model";
	const unsigned char *p = s, *end = s + n;
	while (p < end) {
		const unsigned char *eol = memchr(p, '\n', (size_t)(end - p));
		const unsigned char *q = p;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		if (q < end && *q != '#' && *q != '\n')
			return (size_t)(end - q) >= sizeof name - 1 && memcmp(q, name, sizeof name - 1) == 0;
		p = eol ? eol + 1 : end;
	}
	return 0;
}

/* Reads the model file's bytes into the builder, in whichever format. */
static int read_model(const char *path, const unsigned char *buf, size_t size, struct builder *b,
		      char *err, size_t err_size)
{
	struct doc d;
	enum model_format mf = detect_format(buf, size);

	memset(&d, 0, sizeof d);
	d.start = d.p = buf;
	d.end = buf + size;
	d.path = path, d.err = err, d.err_size = err_size;
	d.ubj = mf == MF_UBJSON;
	if (mf == MF_BINARY || mf == MF_BINARY_BARE)
		return read_binary(&d, b, mf == MF_BINARY);
	if (mf != MF_UNKNOWN)
		return walk_document(&d, b);
	if (size >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5) {
		char inner[4200];
		const unsigned char *s;
		size_t n;
		if (pickle_model(path, buf, size, &s, &n, err, err_size))
			return -1;
		smlib_format(inner, sizeof inner, "%s (the model inside the pickle)", path);
		return read_model(inner, s, n, b, err, err_size);
	}
	if (linear_model(buf, size))
		smlib_format(err, err_size, "%s: expected an XGBoost model, got a linear model "
			     "(smserve-linear-model), which this build does not serve; build smserve "
			     "with the default plug-in: make MODEL=model.c", path);
	else if (size >= 4 && memcmp(buf, "bs64", 4) == 0)
		smlib_format(err, err_size, "%s: expected an XGBoost model file, got base64 (\"bs64\"); "
			     "write it with save_model(\"xgboost-model.json\")", path);
	else
		smlib_format(err, err_size, "%s: expected an XGBoost model (JSON, UBJSON, or the binary "
			     "format starting with \"binf\"), got %s", path,
			     size == 0 ? "an empty file" : "something else");
	return -1;
}

/* ======================================================================== */
/* Prediction                                                                */
/* ======================================================================== */
/*
 * XGBoost's CPU predictor, record by record: each margin starts at its base
 * margin, and each tree in order adds its leaf to its group's margin, in
 * float32. A feature is NaN when missing; the comparison is "value <
 * threshold goes left", as XGBoost's. Then the link, with the same float
 * functions XGBoost calls (expf; softmax sums in double, as XGBoost does).
 */

/* The leaf that x reaches in the tree starting at node root. */
static float tree_leaf(const struct node *nodes, uint32_t root, const float *x)
{
	const struct node *n = nodes + root;
	while (!(n->info & NODE_LEAF)) {
		float v = x[n->info & NODE_FEATURE];
		unsigned right = isnan(v) ? !(n->info & NODE_DEFAULT_LEFT) : !(v < n->value);
		n = nodes + n->left + right;
	}
	return n->value;
}

/* Sums the trees into margin[0..n_groups). */
static void margins(const struct model *m, const float *x, float *margin)
{
	size_t t, g;
	if (m->n_groups <= 1) { /* the common case (never 0), with the sum in a register */
		float sum = m->base[0];
		for (t = 0; t < m->n_trees; t++)
			sum += tree_leaf(m->nodes, m->root[t], x);
		margin[0] = sum;
		return;
	}
	for (g = 0; g < m->n_groups; g++)
		margin[g] = m->base[g];
	for (t = 0; t < m->n_trees; t++)
		margin[m->group[t]] += tree_leaf(m->nodes, m->root[t], x);
}

/* XGBoost's float sigmoid (common::Sigmoid) caps the exponent at 88.7, where
 * expf would overflow, so a margin under -88.7 gives 3.0e-39 rather than 0. */
static float sigmoid(float m)
{
	float e = 88.7f < -m ? 88.7f : -m;  /* std::min(-m, 88.7f): NaN stays NaN */
	return 1.0f / (1.0f + expf(e));
}

/* The record's answer: n_outputs numbers into out. */
static void predict(const struct model *m, const float *x, float *margin, float *out)
{
	size_t g, best = 0;
	float top;
	double sum = 0;

	margins(m, x, margin);
	switch (m->obj->link) {
	case LINK_IDENTITY:
		out[0] = margin[0];
		break;
	case LINK_SIGMOID:
		out[0] = sigmoid(margin[0]);
		break;
	case LINK_EXP:
		out[0] = expf(margin[0]);
		break;
	case LINK_HINGE:
		out[0] = margin[0] > 0.0f ? 1.0f : 0.0f;
		break;
	case LINK_SOFTPROB:
		top = margin[0];
		for (g = 1; g < m->n_groups; g++)
			top = fmaxf(margin[g], top);
		for (g = 0; g < m->n_groups; g++)
			sum += out[g] = expf(margin[g] - top);
		for (g = 0; g < m->n_groups; g++)
			out[g] /= (float)sum;
		break;
	case LINK_ARGMAX: /* the first largest, as std::max_element */
		for (g = 1; g < m->n_groups; g++)
			if (margin[g] > margin[best])
				best = g;
		out[0] = (float)best;
		break;
	}
}

/* ======================================================================== */
/* The output buffer                                                         */
/* ======================================================================== */
/*
 * As in model.c: answers are built in the writer of lib/formats.h.
 */

/* A prediction. Not finite (exp overflowed, say) is written as Python
 * writes it in SageMaker's container: nan/inf in CSV, and NaN/Infinity in
 * JSON, which Python's json module reads back. */
static void w_float(struct smlib_writer *w, float v, int json)
{
	if (isnan(v))
		smlib_put(w, json ? "NaN" : "nan", 3);
	else if (isinf(v) && json)
		smlib_put(w, v > 0 ? "Infinity" : "-Infinity", v > 0 ? 8 : 9);
	else if (isinf(v))
		smlib_put(w, v > 0 ? "inf" : "-inf", v > 0 ? 3 : 4);
	else
		w->len += format_float(w->buf + w->len, v);
}

/* ======================================================================== */
/* One record                                                                */
/* ======================================================================== */
/*
 * lib/invoke.h negotiates each request and lib/instances.h reads its
 * records, in the formats below: a feature is a float32 (XGBoost refuses
 * infinity, and a number past float32's range rounds to it, as numpy's
 * astype(float32) rounds it in SageMaker's container), and may be missing:
 * an empty CSV field, nan, JSON null, a key or libsvm index not given. A
 * dense record may be shorter than num_feature (the rest are missing), as
 * in XGBoost.
 */

static const struct smlib_service SERVICE = {
	SMLIB_BIT(SMLIB_CSV) | SMLIB_BIT(SMLIB_LIBSVM) | SMLIB_BIT(SMLIB_JSON) |
		SMLIB_BIT(SMLIB_JSONLINES),
	SMLIB_CSV, /* the default of SageMaker's XGBoost container */
	1,         /* an empty body: 204, as the container answers it */
	{1, "expected a finite number within float32's range (XGBoost refuses infinity)",
	 "feature"},
};

/* The record's features into x, as XGBoost stores them (float32), where
 * the record gives them; x is all NaN (missing) between records. */
static void set_features(const struct model *m, const struct smlib_instance *in)
{
	size_t i;
	if (in->keys == NULL)
		for (i = 0; i < in->count; i++)
			m->x[i] = to_float(in->values[i]);
	else
		for (i = 0; i < in->count; i++)
			m->x[in->keys[i]] = to_float(in->values[i]);
}

/* Puts back NaN where set_features wrote: a record costs what it holds,
 * not num_feature. */
static void clear_features(const struct model *m, const struct smlib_instance *in)
{
	size_t i;
	if (in->keys == NULL)
		for (i = 0; i < in->count; i++)
			m->x[i] = NAN;
	else
		for (i = 0; i < in->count; i++)
			m->x[in->keys[i]] = NAN;
}

/*
 * A CSV answer as SageMaker's XGBoost container writes it. In batch
 * transform (SAGEMAKER_BATCH set) each record gets a line. In real time the
 * container joins all the records with commas on one line, without a
 * newline, and keeps doing so for clients written against it (AWS's
 * notebooks read the answer with numpy.fromstring(body, sep=",")); a
 * multi-class record is then written as Python writes a list, "[p0, p1, p2]".
 * One difference, on purpose: in batch the container writes that list form
 * too, which is not CSV (a transform job joining output to input would see
 * a broken row); the plug-in writes the probabilities as plain CSV fields.
 */
static void csv_answer(const struct model *m, struct smlib_job *j)
{
	struct smlib_writer *w = &j->w;
	size_t k, n = m->n_outputs;
	int line = m->csv_lines;

	if (!line && j->answered > 0)
		SMLIB_PUT_LIT(w, ",");
	if (!line && n > 1)
		SMLIB_PUT_LIT(w, "[");
	for (k = 0; k < n; k++) {
		if (k > 0 && line)
			SMLIB_PUT_LIT(w, ",");
		else if (k > 0)
			SMLIB_PUT_LIT(w, ", ");
		w_float(w, m->out[k], 0);
	}
	if (!line && n > 1)
		SMLIB_PUT_LIT(w, "]");
	if (line)
		SMLIB_PUT_LIT(w, "\n");
}

/* Predicts one record and appends its answer. */
static int answer_record(const struct model *m, struct smlib_job *j,
			 const struct smlib_instance *in)
{
	struct smlib_writer *w = &j->w;
	size_t k;

	set_features(m, in);
	predict(m, m->x, m->margin, m->out);
	clear_features(m, in);
	smlib_record_begin(j);
	if (j->answer == SMLIB_CSV) {
		csv_answer(m, j);
	} else {
		SMLIB_PUT_LIT(w, "{\"score\":");
		if (m->n_outputs > 1)
			SMLIB_PUT_LIT(w, "[");
		for (k = 0; k < m->n_outputs; k++) {
			if (k > 0)
				SMLIB_PUT_LIT(w, ",");
			w_float(w, m->out[k], 1);
		}
		if (m->n_outputs > 1)
			SMLIB_PUT_LIT(w, "]");
		SMLIB_PUT_LIT(w, "}");
	}
	return smlib_record_end(j);
}

/* The largest answer one record can produce, so that the writer checks room
 * once per record. */
static size_t record_room(const struct model *m)
{
	return 64 + m->n_outputs * (NUMBER_TEXT + 2);
}

/* The work arrays of a request, allocated at load and reused by every
 * request, so that a request allocates nothing: in the static build,
 * musl's malloc maps and unmaps the answer buffer on every request, and its
 * pages fault in afresh each time. Each worker writes its own copy
 * (copy-on-write after the fork); requests in a worker run one at a time. */
static int alloc_work(struct model *m)
{
	size_t n = m->n_features, i;
	if (n > SIZE_MAX / sizeof(float) - m->n_groups - m->n_outputs)
		return -1;
	m->x = malloc((n + m->n_groups + m->n_outputs) * sizeof *m->x);
	if (m->x == NULL)
		return -1;
	for (i = 0; i < n; i++)
		m->x[i] = NAN;
	m->margin = m->x + n;
	m->out = m->margin + m->n_groups;
	return smlib_plugin_alloc(&m->lib, n, record_room(m));
}

/* ======================================================================== */
/* The plug-in functions                                                     */
/* ======================================================================== */

const char model_plugin_name[] = "xgboost 1.0";

model *model_load(const char *dir, char *err, size_t err_size)
{
	char path[4096];
	struct builder b;
	struct model *m;
	unsigned char *buf = NULL;
	size_t size;
	int rc = -1;
	const char *batch;

	if (err_size > 0)
		err[0] = '\0';
	memset(&b, 0, sizeof b);
	b.best_iteration = -1;
	b.binary_base_score = 0.5f; /* XGBoost's default, for a file without one */
	m = calloc(1, sizeof *m);
	if (m == NULL) {
		smlib_format(err, err_size, "%s: out of memory", dir);
		return NULL;
	}
	if (smlib_plugin_init(&m->lib, &SERVICE, err, err_size) == 0 &&
	    find_model_file(dir, path, sizeof path, err, err_size) == 0 &&
	    (buf = (unsigned char *)smlib_slurp(path, MAX_MODEL_BYTES, "", &size, err,
						err_size)) != NULL &&
	    read_model(path, buf, size, &b, err, err_size) == 0 &&
	    finish_model(&b, m, path, err, err_size) == 0)
		rc = 0;
	free(buf);
	builder_free(&b);
	if (rc != 0) {
		model_unload(m);
		return NULL;
	}
	/* As the container decides: any value but the empty one means batch. */
	batch = getenv("SAGEMAKER_BATCH");
	m->csv_lines = batch != NULL && *batch != '\0';
	if (alloc_work(m) != 0) {
		smlib_format(err, err_size, "%s: out of memory for the work arrays of %zu features",
			     path, m->n_features);
		model_unload(m);
		return NULL;
	}
	return m;
}

/* Negotiate, then read, predict and answer record by record. */
void model_invoke(model *m, const model_request *req, model_response *out)
{
	struct smlib_job j;
	struct smlib_instance in;
	int rc;

	if (!smlib_job_start(&j, &m->lib, req, out))
		return;
	while ((rc = smlib_next(&j.in, &in)) == 1)
		if ((rc = answer_record(m, &j, &in)) != 0)
			break;
	smlib_job_finish(&j, rc);
}

void model_unload(model *m)
{
	if (m == NULL)
		return;
	free(m->nodes);
	free(m->root);
	free(m->group);
	free(m->base);
	free(m->x);
	smlib_plugin_free(&m->lib);
	free(m);
}

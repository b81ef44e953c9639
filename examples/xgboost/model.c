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
 *        application/x-recordio-protobuf (lib/recordio.h; a Record's
 *        'values' tensor, dense or sparse, per record),
 *        application/json and application/jsonlines in SageMaker's common
 *        data formats ({"instances": [...]}, "features", sparse "keys"),
 *        application/x-npy (lib/npy.h; 1-D one record, 2-D a record a row)
 *   out  text/csv (the default, as in SageMaker's container)  one prediction
 *                 per line; all class probabilities, comma-separated, for
 *                 multi:softprob
 *        application/json       {"predictions":[{"score":0.25},...]}
 *        application/jsonlines  {"score":0.25} per line
 *        application/x-recordio-protobuf  a RecordIO frame per record, its
 *                 Record's label map holding "score" (or the keys of
 *                 SAGEMAKER_INFERENCE_OUTPUT) as float32 tensors
 *        application/x-npy  float64, a row per record of its "score"
 *
 * Numbers go out as the shortest decimal that reads back as the same float32,
 * so a client that parses them gets XGBoost's exact value.
 *
 * How a request flows: the whole body is read into the records' arrays (CSV
 * and libsvm here, recordio-protobuf and NPY with lib/recordio.h and
 * lib/npy.h, the JSON formats with lib/instances.h), as the container reads
 * it before predicting; then the records are predicted 64 at a time (see
 * "Prediction") and their answers appended to a 64 KiB output buffer: the
 * arrays grow as requests need, and nothing is allocated per record. A bad
 * record anywhere makes the whole answer a 400 (or 415) naming the record
 * and field; unsupported types get 415 and 406.
 *
 * Sections, in reading order: limits; the model; small helpers; numbers;
 * finding and reading the model file; the document reader (JSON and
 * UBJSON); building trees; the model walker; the legacy binary format;
 * finishing the model (and telling the formats apart, pickles included);
 * prediction; the output buffer; one record; the plug-in functions.
 */
#define _POSIX_C_SOURCE 200809L /* opendir, stat */

#include "../../model.h"
#include "../../lib/attributes.h" /* SMLIB_COLD: the loader is optimized for size */
#include "../../lib/invoke.h"  /* JSON requests: the instance reader, the answer buffer */
#include "../../lib/numtext.h" /* numbers as Python writes them */
#include "../../lib/recordio.h" /* application/x-recordio-protobuf in and out */
#include "../../lib/npy.h"      /* application/x-npy in and out (also via lib/instances.h) */

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
#define MAX_MEMBERS 64                    /* models in an ensemble directory */
#define MAX_OUTPUT_KEYS 16                /* keys in SAGEMAKER_INFERENCE_OUTPUT */
#define MAX_CUMULATIVE_RECORDS 1000       /* SMSERVE_XGBOOST_RECORDIO=cumulative: its
                                             answer grows as the square of this */

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

/* A split of a tree laid out complete (see "Prediction"): 8 bytes, so that
 * a tree of depth 6 takes 504 bytes of splits and 256 of leaves. Its
 * default direction is apart, in nan_right, read only when a value is
 * missing. */
struct split {
	float threshold; /* a value below it goes left */
	uint32_t at;     /* feature * block: where its feature's column starts in a block */
};

/* A tree as prediction reads it: complete (depth >= 0), or linked. */
struct tree {
	size_t first;    /* complete: its first split in splits; linked: its root in nodes */
	size_t leaves;   /* complete: its first leaf in leaves (2^depth of them) */
	uint32_t group;  /* the output group it adds to */
	int depth;       /* complete: its levels of splits; linked: -1 */
};

/* The answers of SageMaker's XGBoost container, as Accept names them. */
enum answer { ANS_JSON, ANS_JSONLINES, ANS_CSV, ANS_RECORDIO, ANS_NPY, N_ANSWERS };

/* The keys of SAGEMAKER_INFERENCE_OUTPUT, in the order the container writes
 * them in a JSON object. */
enum out_key {
	K_PREDICTED_LABEL, K_LABELS, K_PROBABILITY, K_PROBABILITIES, K_RAW_SCORE, K_RAW_SCORES,
	K_PREDICTED_SCORE, N_KEYS
};

/* What the environment asks for, read once at load. */
struct settings {
	int batch;               /* SAGEMAKER_BATCH true or 1: str() of each prediction */
	int csv_one_line;        /* SMSERVE_XGBOOST_CSV=one-line: images before 1.2-2 */
	int rio_cumulative;      /* SMSERVE_XGBOOST_RECORDIO=cumulative: AWS's frames */
	unsigned long max_body;  /* MAX_CONTENT_LENGTH: a larger body gets 413 */
	enum answer default_answer; /* Accept missing or * / * */
	size_t n_keys;           /* SAGEMAKER_INFERENCE_OUTPUT: 0 unset, else its keys */
	const char *mme_accept;  /* SAGEMAKER_MULTI_MODEL: the Accept for none; NULL off */
	enum out_key keys[MAX_OUTPUT_KEYS]; /* as listed (the CSV columns' order) */
};

/* A request's records as read, before any is predicted (the container reads
 * the whole body, and refuses it whole, before it predicts): row r's
 * features are the entries start[r] .. start[r+1]-1, a feature index and
 * its value; the others are missing. Kept in the handle, grown as needed. */
struct rows {
	size_t n, cap;           /* rows, and room in start (for cap + 1) */
	size_t *start;
	uint32_t *col;
	float *val;
	size_t n_entries, entries_cap;
};

struct model {
	const struct objective *obj;
	size_t n_features;   /* num_feature: inputs per record */
	size_t n_groups;     /* outputs summed separately: classes, or 1 */
	size_t n_outputs;    /* numbers per answer: n_groups for softprob, else 1 */
	size_t n_trees;      /* the trees predictions use (to best_iteration) */
	struct tree *trees;  /* n_trees, each complete or linked */
	struct node *nodes;  /* every tree's nodes, linked */
	struct split *splits;     /* the complete trees' splits, */
	unsigned char *nan_right; /* which way each sends a missing value, */
	float *leaves;            /* and their leaves */
	float *base;         /* n_groups: the starting margins */
	struct model **members;  /* an ensemble's other models (xgboost-model-1, ...) */
	size_t n_members;        /* how many: 0 for one model */
	struct settings set;     /* what the environment asks for */
	struct rows rows;        /* a request's records, as read */
	size_t block;            /* records predicted together: BLOCK_RECORDS, fewer for
	                            a model of very many features */
	float *xb;               /* n_features * block: the block's features, a column
	                            per feature, NaN between blocks */
	float *block_margin;     /* block * n_groups: their margins */
	float *block_out;        /* block * n_outputs: their answers */
	float *out;              /* n_outputs: the answer of the record being written */
	uint32_t *slot;        /* n_features, 0 between records: where a recordio
	                          row holds a feature (position + 1), for repeated keys */
	float *key_values;     /* the float32 tensors of SAGEMAKER_INFERENCE_OUTPUT's keys */
	unsigned char *sent;   /* SMSERVE_XGBOOST_RECORDIO=cumulative: the Records so far */
	size_t sent_len, sent_cap;
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
 * Writing: every number of an answer as Python writes the float64 of the
 * float32 prediction (str() and json.dumps in SageMaker's container), with
 * smlib_repr_double (lib/numtext.h): 0.8919496536254883, 2.0, 1e-05.
 */

/* ======================================================================== */
/* Finding and reading the model file                                        */
/* ======================================================================== */
/*
 * SageMaker's XGBoost container loads every file in the model directory
 * and averages their predictions. Here: "xgboost-model" alone if it exists
 * (what the container's training writes), else every regular file whose
 * name does not start with '.', in name order (model_files, with the
 * plug-in functions at the end).
 */

SMLIB_COLD static int is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
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
SMLIB_COLD static void doc_report(struct doc *d, const char *fmt, ...)
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

SMLIB_COLD static int doc_left(const struct doc *d, size_t n) { return (size_t)(d->end - d->p) >= n; }

/* JSON: skips whitespace. */
SMLIB_COLD static void dj_space(struct doc *d)
{
	while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
		d->p++;
}

/* UBJSON: the marker of the next value (consumed), skipping no-ops; -1 at
 * the end of the file. */
SMLIB_COLD static int ubj_marker(struct doc *d)
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
SMLIB_COLD static int ubj_peek(struct doc *d)
{
	if (d->implicit)
		return d->implicit;
	while (d->p < d->end && *d->p == 'N')
		d->p++;
	return d->p < d->end ? *d->p : -1;
}

/* UBJSON: an n-byte big-endian unsigned value. */
SMLIB_COLD static uint64_t ubj_be(struct doc *d, int n)
{
	uint64_t v = 0;
	int i;
	for (i = 0; i < n; i++)
		v = v << 8 | d->p[i];
	d->p += n;
	return v;
}

/* UBJSON: the bytes a number with marker m takes; 0 if m is no number. */
SMLIB_COLD static int ubj_width(int m)
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
SMLIB_COLD static int ubj_number(struct doc *d, int m, double *v)
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
SMLIB_COLD static int ubj_length(struct doc *d, size_t *n)
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
SMLIB_COLD static int doc_open(struct doc *d, struct cont *c, int object)
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
SMLIB_COLD static int doc_next(struct doc *d, struct cont *c)
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
SMLIB_COLD static int dj_string(struct doc *d, const unsigned char **s, size_t *n)
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
SMLIB_COLD static int doc_text_ref(struct doc *d, const unsigned char **s, size_t *n, int key)
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
SMLIB_COLD static int doc_text(struct doc *d, char *buf, size_t cap, size_t *len, int key)
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
SMLIB_COLD static int doc_key(struct doc *d, struct cont *c, char *buf, size_t cap)
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
SMLIB_COLD static int dj_number(struct doc *d, double *v)
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
SMLIB_COLD static int doc_number(struct doc *d, double *v)
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
SMLIB_COLD static int doc_int(struct doc *d, double lo, double hi, const char *what, int64_t *out)
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
SMLIB_COLD static int doc_float(struct doc *d, float *out)
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
SMLIB_COLD static int doc_skip(struct doc *d)
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

SMLIB_COLD static void raw_tree_free(struct raw_tree *t)
{
	free(t->left), free(t->right), free(t->feature), free(t->dleft), free(t->split_type);
	free(t->cond), free(t->queue), free(t->seen);
}

SMLIB_COLD static void builder_free(struct builder *b)
{
	free(b->nodes), free(b->root), free(b->tree_info), free(b->indptr), free(b->weight_drop);
	raw_tree_free(&b->t);
}

/* Checks the raw tree's arrays against each other; returns its node count. */
SMLIB_COLD static int tree_shape(struct doc *d, struct builder *b, size_t *count)
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
SMLIB_COLD static int build_tree(struct doc *d, struct builder *b)
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
SMLIB_COLD static int read_ints(struct doc *d, int64_t **buf, size_t *cap, size_t *n, double lo, double hi,
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

SMLIB_COLD static int read_floats(struct doc *d, float **buf, size_t *cap, size_t *n)
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
SMLIB_COLD static int read_param(struct doc *d, const char *name, int64_t max, int64_t *out)
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
SMLIB_COLD static int read_params(struct doc *d, const char *const *names, int64_t *const *outs,
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

SMLIB_COLD static int walk_tree(struct doc *d, struct builder *b)
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

SMLIB_COLD static int walk_trees(struct doc *d, struct builder *b)
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
SMLIB_COLD static int walk_gbtree_model(struct doc *d, struct builder *b)
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
SMLIB_COLD static int walk_booster(struct doc *d, struct builder *b, int nested)
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
SMLIB_COLD static int walk_attributes(struct doc *d, struct builder *b)
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
SMLIB_COLD static int walk_learner_param(struct doc *d, struct builder *b)
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

SMLIB_COLD static int walk_objective(struct doc *d, struct builder *b)
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

SMLIB_COLD static int walk_learner(struct doc *d, struct builder *b)
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
SMLIB_COLD static int walk_model(struct doc *d, struct builder *b, int *have)
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
SMLIB_COLD static int walk_document(struct doc *d, struct builder *b)
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

SMLIB_COLD static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

SMLIB_COLD static int bin_need(struct doc *d, size_t n, const char *what)
{
	if (!doc_left(d, n))
		return doc_error(d, "expected %s (%zu bytes), got the end of the file after %zu",
				 what, n, (size_t)(d->end - d->p));
	return 0;
}

/* A 64-bit count of items of item_size bytes each, that must fit in the rest. */
SMLIB_COLD static int bin_count(struct doc *d, size_t item_size, const char *what, size_t *n)
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
SMLIB_COLD static int bin_string(struct doc *d, char *buf, size_t cap, const char *what, size_t *len)
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

SMLIB_COLD static int32_t bin_i32(const unsigned char *p) { return (int32_t)le32(p); }

SMLIB_COLD static float bin_f32(const unsigned char *p)
{
	uint32_t u = le32(p);
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* One tree into b->t, then build_tree. */
SMLIB_COLD static int bin_tree(struct doc *d, struct builder *b)
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
SMLIB_COLD static int bin_attributes(struct doc *d, struct builder *b)
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

SMLIB_COLD static int read_binary(struct doc *d, struct builder *b, int header)
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
SMLIB_COLD static int finish_error(struct finisher *f, const char *fmt, ...)
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
SMLIB_COLD static int finish_kind(struct finisher *f)
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
SMLIB_COLD static int finish_trees(struct finisher *f)
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
SMLIB_COLD static int finish_base(struct finisher *f)
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

SMLIB_COLD static int lay_out_trees(struct model *m, const uint32_t *root, const uint32_t *group,
			 size_t nodes_end); /* in "Prediction" */

/* Moves the builder's arrays into the model, and lays its trees out. */
SMLIB_COLD static int finish_model(struct builder *b, struct model *m, const char *path, char *err, size_t err_size)
{
	struct finisher f;
	uint32_t *group;
	size_t i;
	int rc;
	f.b = b, f.m = m, f.path = path, f.err = err, f.err_size = err_size;
	if (finish_kind(&f) || finish_trees(&f) || finish_base(&f))
		return -1;
	group = malloc((m->n_trees + 1) * sizeof *group);
	if (group == NULL)
		return finish_error(&f, "out of memory");
	for (i = 0; i < m->n_trees; i++)
		group[i] = (uint32_t)b->tree_info[i];
	m->nodes = b->nodes, b->nodes = NULL;
	rc = lay_out_trees(m, b->root, group, m->n_trees < b->n_trees ? b->root[m->n_trees] : b->n_nodes);
	free(group);
	return rc ? finish_error(&f, "out of memory") : 0;
}

/* Which of the three formats the bytes are. */
enum model_format { MF_BINARY, MF_BINARY_BARE, MF_JSON, MF_UBJSON, MF_UNKNOWN };

/* XGBoost before 1.0 wrote the binary format without "binf": it starts
 * with the learner parameters, then the objective's name. Recognised by that
 * name: a length from 1 to 63, then bytes that an objective name has. */
SMLIB_COLD static int bare_binary(const unsigned char *s, size_t n)
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

SMLIB_COLD static enum model_format detect_format(const unsigned char *s, size_t n)
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
SMLIB_COLD static int pickle_arg(int op, int *len_size, int *lines)
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
SMLIB_COLD static int pickle_model(const char *path, const unsigned char *p, size_t size,
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
SMLIB_COLD static int linear_model(const unsigned char *s, size_t n)
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
SMLIB_COLD static int read_model(const char *path, const unsigned char *buf, size_t size, struct builder *b,
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
 * What XGBoost's CPU predictor computes: each margin starts at its base
 * margin, and each tree in order adds its leaf to its group's margin, in
 * float32. A feature is NaN when missing; a split sends a value below its
 * threshold left, and NaN the way its default_left says, as XGBoost's. Then
 * the link, with the same float functions XGBoost calls (expf; softmax sums
 * in double, as XGBoost does).
 *
 * How, faster than XGBoost's own loop. Walking a tree is a chain of
 * dependent loads (the node, the feature it names, the next node) and of
 * branches no predictor guesses; one record at a time, the processor waits
 * on every link and throws work away at every other branch. So:
 *
 *   - Records go through the model a block at a time (up to BLOCK_RECORDS),
 *     tree by tree: a tree is read once per block and stays in cache while
 *     the block's records walk it, and their walks are independent, so the
 *     processor overlaps them.
 *   - A tree of depth COMPLETE_MAX_DEPTH or less is laid out complete, as a
 *     heap: split i has its children at 2i+1 and 2i+2, and every leaf is on
 *     the bottom level (a leaf higher up fills the whole subtree below its
 *     place, so that whichever way its padding splits go, they reach it).
 *     Every record takes exactly depth steps, each one addition and no
 *     branch: i = 2i + 1 + (goes right). Deeper trees keep their links and
 *     are walked as before (they are rare: max_depth defaults to 6).
 *   - A block in which no feature is missing (dense data: most requests)
 *     skips the NaN test at every split.
 *
 * The sums are the same additions in the same order as record by record, so
 * the answers are XGBoost's to the bit.
 */

#define BLOCK_RECORDS 64          /* records predicted together */
#define BLOCK_FLOATS (1UL << 20)  /* features in a block (4 MiB), unless one record has more */
#define COMPLETE_MAX_DEPTH 8      /* deeper trees keep their links */
#define TOP_LEVELS 3              /* levels compared all at once (walk_top) */
#define TOP_SPLITS ((1 << TOP_LEVELS) - 1)

/* The leaf that a record reaches in the linked tree starting at node root;
 * its feature j is x[j * stride]. */
static float tree_leaf(const struct node *nodes, uint32_t root, const float *x, size_t stride)
{
	const struct node *n = nodes + root;
	while (!(n->info & NODE_LEAF)) {
		float v = x[(n->info & NODE_FEATURE) * stride];
		unsigned right = isnan(v) ? !(n->info & NODE_DEFAULT_LEFT) : !(v < n->value);
		n = nodes + n->left + right;
	}
	return n->value;
}

/* TOP_PATH[bits]: the node on level TOP_LEVELS that a record reaches from
 * the root of a complete tree when bit j of bits says whether it goes right
 * at split j; the same for every tree (set by top_path_init). */
static unsigned char TOP_PATH[1 << TOP_SPLITS];

static void top_path_init(void)
{
	unsigned bits, i;
	int level;
	for (bits = 0; bits < sizeof TOP_PATH; bits++) {
		for (i = 0, level = 0; level < TOP_LEVELS; level++)
			i = 2 * i + 1 + ((bits >> i) & 1);
		TOP_PATH[bits] = (unsigned char)i;
	}
}

/* The depth of the linked tree at root (0 for a lone leaf). Its nodes are in
 * breadth-first order, so each level is a run of nodes, and the next level
 * is the run after it, two children for each split in this one. */
static unsigned linked_depth(const struct node *nodes, size_t root)
{
	size_t lo = root, hi = root + 1, i, children;
	unsigned depth = 0;
	for (;;) {
		for (children = 0, i = lo; i < hi; i++)
			children += nodes[i].info & NODE_LEAF ? 0 : 2;
		if (children == 0)
			return depth;
		lo = hi, hi += children, depth++;
	}
}

/* Lays the linked subtree at n out in complete tree t, from heap position h
 * on level down; see the banner. */
static void lay_out(struct model *m, const struct tree *t, const struct node *n, size_t h,
		    unsigned level)
{
	size_t first_leaf = ((size_t)1 << t->depth) - 1;
	struct split *s = &m->splits[t->first + h];
	if ((int)level == t->depth) { /* the tree's depth is its deepest leaf's: n is a leaf */
		m->leaves[t->leaves + h - first_leaf] = n->value;
		return;
	}
	if (n->info & NODE_LEAF) { /* padding: either way leads to n */
		s->threshold = 0, s->at = 0, m->nan_right[t->first + h] = 0;
		lay_out(m, t, n, 2 * h + 1, level + 1);
		lay_out(m, t, n, 2 * h + 2, level + 1);
		return;
	}
	s->threshold = n->value;
	s->at = (uint32_t)((n->info & NODE_FEATURE) * m->block);
	m->nan_right[t->first + h] = !(n->info & NODE_DEFAULT_LEFT);
	lay_out(m, t, m->nodes + n->left, 2 * h + 1, level + 1);
	lay_out(m, t, m->nodes + n->left + 1, 2 * h + 2, level + 1);
}

/* Whether the tree at root, of depth and count nodes, is laid out complete:
 * shallow enough, and not so sparse that padding would bloat it (a complete
 * tree of depth d has 2^(d+1) - 1 places). */
static int complete_fits(unsigned depth, size_t count)
{
	return depth <= COMPLETE_MAX_DEPTH && ((size_t)2 << depth) <= 4 * count + 4;
}

/* m->trees from the linked trees: each one's group and layout. nodes_end is
 * where the last tree's nodes end. 0, or -1 when out of memory. */
static int lay_out_trees(struct model *m, const uint32_t *root, const uint32_t *group,
			 size_t nodes_end)
{
	size_t t, n_splits = 0, n_leaves = 0;
	top_path_init();
	/* A block holds BLOCK_FLOATS features, a power of two of records. */
	for (m->block = BLOCK_RECORDS; m->block > 1 && m->block * m->n_features > BLOCK_FLOATS;)
		m->block /= 2;
	if ((m->trees = calloc(m->n_trees + 1, sizeof *m->trees)) == NULL)
		return -1;
	for (t = 0; t < m->n_trees; t++) {
		struct tree *tr = &m->trees[t];
		size_t count = (t + 1 < m->n_trees ? root[t + 1] : nodes_end) - root[t];
		unsigned depth = linked_depth(m->nodes, root[t]);
		tr->group = group[t];
		tr->first = root[t];
		tr->depth = -1;
		if (!complete_fits(depth, count))
			continue;
		tr->depth = (int)depth;
		tr->first = n_splits, tr->leaves = n_leaves;
		n_splits += ((size_t)1 << depth) - 1;
		n_leaves += (size_t)1 << depth;
	}
	m->splits = malloc((n_splits + 1) * sizeof *m->splits);
	m->nan_right = malloc(n_splits + 1);
	m->leaves = malloc(n_leaves * sizeof *m->leaves + 1);
	if (m->splits == NULL || m->nan_right == NULL || m->leaves == NULL)
		return -1;
	for (t = 0; t < m->n_trees; t++)
		if (m->trees[t].depth >= 0)
			lay_out(m, &m->trees[t], m->nodes + root[t], 0, 0);
	return 0;
}

/* The top TOP_LEVELS levels of complete tree s for a full block with no
 * feature missing, without walking: every record is compared with each
 * split of those levels (a column against a threshold; the loops become
 * vector instructions, and no record waits on another), and its path read
 * from the outcomes. Leaves at[] on level TOP_LEVELS. */
static void walk_top(const struct split *s, const float *xb, size_t at[BLOCK_RECORDS])
{
	const float *col[TOP_SPLITS];
	float threshold[TOP_SPLITS];
	size_t r;
	int j;
	for (j = 0; j < TOP_SPLITS; j++)
		col[j] = xb + s[j].at, threshold[j] = s[j].threshold;
	for (r = 0; r < BLOCK_RECORDS; r++) {
		uint32_t right = 0; /* bit j: the record goes right at split j */
#pragma GCC unroll 7
		for (j = 0; j < TOP_SPLITS; j++)
			right |= (uint32_t)(col[j][r] >= threshold[j]) << j;
		at[r] = right;
	}
	for (r = 0; r < BLOCK_RECORDS; r++)
		at[r] = TOP_PATH[at[r]];
}

/* Eight records, x[0] .. x[7] of each column, from at[0] .. at[7] on the
 * given level down to the bottom of complete tree s of depth levels, when
 * none of their features is missing: adds the leaves they reach (leaf[]
 * holds the bottom level) to sum[0], sum[stride], ... The eight walks are
 * written out side by side (the pragma) so that their positions stay in
 * registers and the processor overlaps their loads. */
static void walk_eight(const struct split *s, const float *leaf, int level, int depth,
		       const float *x, const size_t at[8], float *sum, size_t stride)
{
	size_t i[8], first_leaf = ((size_t)1 << depth) - 1;
	int k;
	for (k = 0; k < 8; k++)
		i[k] = at[k];
	for (; level < depth; level++) {
#pragma GCC unroll 8
		for (k = 0; k < 8; k++) {
			const struct split *p = s + i[k];
			i[k] = 2 * i[k] + 1 + !((x + k)[p->at] < p->threshold);
		}
	}
#pragma GCC unroll 8
	for (k = 0; k < 8; k++)
		sum[k * stride] += leaf[i[k] - first_leaf];
}

/* One record, x[0] of each column, through complete tree t: the place of
 * its leaf on the bottom level. Missing values go their split's default way. */
static size_t walk_one(const struct model *m, const struct tree *t, const float *x)
{
	const struct split *s = m->splits + t->first;
	const unsigned char *nan_right = m->nan_right + t->first;
	size_t i = 0;
	int level;
	for (level = 0; level < t->depth; level++) {
		float v = x[s[i].at];
		i = 2 * i + 1 + (isnan(v) ? nan_right[i] : !(v < s[i].threshold));
	}
	return i;
}

/* The block's n records (xb: a column of m->block values per feature)
 * through tree t: adds each one's leaf to sum[r * stride]. missing: some
 * feature is NaN, so every split must check. */
static void block_tree(const struct model *m, const struct tree *t, const float *xb, size_t n,
		       int missing, float *sum, size_t stride)
{
	const struct split *s;
	const float *leaf;
	size_t at[BLOCK_RECORDS], r = 0, first_leaf;
	int level = 0;

	if (t->depth < 0) {
		for (; r < n; r++)
			sum[r * stride] += tree_leaf(m->nodes, (uint32_t)t->first, xb + r, m->block);
		return;
	}
	s = m->splits + t->first;
	leaf = m->leaves + t->leaves;
	first_leaf = ((size_t)1 << t->depth) - 1;
	if (!missing) {
		if (n == BLOCK_RECORDS && t->depth >= TOP_LEVELS)
			walk_top(s, xb, at), level = TOP_LEVELS;
		else
			memset(at, 0, sizeof at);
		for (; r + 8 <= n; r += 8)
			walk_eight(s, leaf, level, t->depth, xb + r, at + r, sum + r * stride, stride);
	}
	for (; r < n; r++) /* with missing features, or past the last eight */
		sum[r * stride] += leaf[walk_one(m, t, xb + r) - first_leaf];
}

/* XGBoost's float sigmoid (common::Sigmoid) caps the exponent at 88.7, where
 * expf would overflow, so a margin under -88.7 gives 3.0e-39 rather than 0. */
static float sigmoid(float m)
{
	float e = 88.7f < -m ? 88.7f : -m;  /* std::min(-m, 88.7f): NaN stays NaN */
	return 1.0f / (1.0f + expf(e));
}

/* One record's answer from its margins: n_outputs numbers into out. */
static void apply_link(const struct model *m, const float *margin, float *out)
{
	size_t g, best = 0;
	float top;
	double sum = 0;

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

/* The answers of the block's n records at xb (a column of m->block values
 * per feature) into m->block_out, n_outputs a record. */
static void predict_block(struct model *m, const float *xb, size_t n, int missing)
{
	size_t G = m->n_groups, r, g, t;
	float *margin = m->block_margin;

	for (r = 0; r < n; r++)
		for (g = 0; g < G; g++)
			margin[r * G + g] = m->base[g];
	for (t = 0; t < m->n_trees; t++) {
		const struct tree *tr = &m->trees[t];
		block_tree(m, tr, xb, n, missing, margin + tr->group, G);
	}
	for (r = 0; r < n; r++)
		apply_link(m, margin + r * G, m->block_out + r * m->n_outputs);
}

/* ======================================================================== */
/* Ensembles                                                                 */
/* ======================================================================== */
/*
 * A directory of several models (k-fold training writes xgboost-model-0,
 * -1, ...) is served as SageMaker's container serves it: every model
 * predicts, and the answer is the mean of their predictions in float32, as
 * np.mean computes it for float32 arrays (summed in file order, then divided
 * by the count). binary:hinge and multi:softmax answer a class: the members
 * vote, and the most common class wins, the smallest on a tie (scipy's
 * stats.mode).
 */

/* Record r of the block's answer into m->out: the model's own, or the
 * ensemble's, from what each member predicted for the block. */
static void record_answer(struct model *m, size_t r)
{
	size_t i, j, k, n = m->n_outputs, count = m->n_members + 1;
	float votes[MAX_MEMBERS + 1], best;
	size_t best_n = 0;

	memcpy(m->out, m->block_out + r * n, n * sizeof *m->out);
	if (m->n_members == 0)
		return;
	if (m->obj->link != LINK_HINGE && m->obj->link != LINK_ARGMAX) {
		for (i = 0; i < m->n_members; i++)
			for (k = 0; k < n; k++)
				m->out[k] += m->members[i]->block_out[r * n + k];
		for (k = 0; k < n; k++)
			m->out[k] /= (float)count;
		return;
	}
	votes[0] = m->out[0];
	for (i = 0; i < m->n_members; i++)
		votes[i + 1] = m->members[i]->block_out[r];
	best = votes[0];
	for (i = 0; i < count; i++) {
		size_t c = 0;
		for (j = 0; j < count; j++)
			c += votes[j] == votes[i];
		if (c > best_n || (c == best_n && votes[i] < best))
			best = votes[i], best_n = c;
	}
	m->out[0] = best;
}

/* Spreads rows first .. first + n - 1 into the block m->xb, a column per
 * feature (NaN where missing). A libsvm index given twice is summed, as scipy sums
 * it. Returns whether any of their features is missing. */
static int fill_block(struct model *m, size_t first, size_t n)
{
	const struct rows *rs = &m->rows;
	size_t r, e, filled = 0;
	int nan = 0;
	for (r = 0; r < n; r++) {
		for (e = rs->start[first + r]; e < rs->start[first + r + 1]; e++) {
			float *v = &m->xb[rs->col[e] * m->block + r];
			if (isnan(*v))
				*v = rs->val[e], filled++;
			else
				*v += rs->val[e];
			nan |= isnan(*v); /* inf + -inf */
		}
	}
	return nan || filled != n * m->n_features;
}

/* Puts NaN back where fill_block wrote, for the next block. */
static void clear_block(struct model *m, size_t first, size_t n)
{
	const struct rows *rs = &m->rows;
	size_t r, e;
	for (r = 0; r < n; r++)
		for (e = rs->start[first + r]; e < rs->start[first + r + 1]; e++)
			m->xb[rs->col[e] * m->block + r] = NAN;
}

/* Predicts rows first .. first + n - 1 (n <= m->block) with the model and
 * every member: their answers in each one's block_out. */
static void predict_rows(struct model *m, size_t first, size_t n)
{
	int missing = fill_block(m, first, n);
	size_t i;
	predict_block(m, m->xb, n, missing);
	for (i = 0; i < m->n_members; i++)
		predict_block(m->members[i], m->xb, n, missing);
	clear_block(m, first, n);
}

/* ======================================================================== */
/* Reading a request as SageMaker's container reads it                       */
/* ======================================================================== */
/*
 * The container (algorithm_mode/serve.py) reads the whole body first, and
 * refuses it whole: a body it cannot read gets 415 (not 400), a body with
 * more features than the model 400 ("Feature shape mismatch"). So every
 * record is read into m->rows before any is predicted, and a bad one
 * anywhere answers the request before Accept is even looked at.
 *
 *   text/csv   the body stripped of surrounding whitespace; the delimiter
 *              sniffed from the first line (Python's csv.Sniffer: the first
 *              of , tab ; space : present, else the most frequent
 *              character, a letter or digit meaning ','); an empty field
 *              is missing; every line must have as many fields as the
 *              first (a blank line between records is a ragged row); a
 *              field is read as Python's float() reads it (spaces around
 *              it allowed), and infinity is refused, as XGBoost refuses it.
 *   libsvm     stripped; lines split on single spaces; tokens without ':'
 *              (the label) ignored; index:value; when no index is 0, every
 *              index is shifted down by one (1-based files); a line with no
 *              pair is a record of missing values, except after the last
 *              record with one (the container builds a sparse matrix, whose
 *              rows end at the last entry).
 *   recordio   application/x-recordio-protobuf (lib/recordio.h): each
 *              Record's 'values' feature is a row (float32, float64 or
 *              int32; dense, or sparse with keys); see read_recordio.
 *   JSON       application/json and application/jsonlines, in SageMaker's
 *              common data formats (lib/instances.h): smserve's own
 *              addition (the container answers 415), with its 400s.
 *   NPY        application/x-npy (lib/npy.h): smserve's addition too (the
 *              container answers 415); see read_npy.
 */

enum body_format {
	BODY_CSV, BODY_LIBSVM, BODY_JSON, BODY_JSONLINES, BODY_RECORDIO, BODY_NPY, BODY_NONE
};

/* Python's str.isspace for ASCII (what str.strip() and float() skip). */
static int py_space(int c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static void py_strip(const char **s, const char **e)
{
	while (*s < *e && py_space((unsigned char)**s))
		(*s)++;
	while (*e > *s && py_space((unsigned char)(*e)[-1]))
		(*e)--;
}

/* Whether [s, e) is valid UTF-8 (the container decodes the body first).
 * Bodies are ASCII, nearly always: eight bytes at a time while no byte has
 * its top bit set. */
static int utf8_valid(const unsigned char *s, const unsigned char *e)
{
	while (s < e) {
		unsigned c;
		uint64_t eight;
		if (e - s >= 8 && (memcpy(&eight, s, 8), (eight & 0x8080808080808080ULL) == 0)) {
			s += 8;
			continue;
		}
		c = *s++;
		int more = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2
			 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
		if (more < 0 || e - s < more)
			return 0;
		if ((c == 0xe0 && *s < 0xa0) || (c == 0xed && *s > 0x9f) ||
		    (c == 0xf0 && *s < 0x90) || (c == 0xf4 && *s > 0x8f))
			return 0; /* overlong, surrogate, past U+10FFFF */
		for (; more > 0; more--)
			if ((*s++ & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

/* A field as Python's float() reads it: spaces around a number, or nan,
 * inf, infinity in any case with a sign. 0 with *v set, or -1. */
static int py_float(const char *s, const char *e, double *v)
{
	const char *p;
	size_t n;
	int neg, rc;
	py_strip(&s, &e);
	p = s;
	rc = smlib_parse_number(&p, e, SMLIB_NUM_CSV, v);
	if ((rc == SMLIB_NUM_OK || rc == SMLIB_NUM_RANGE) && p == e)
		return 0; /* SMLIB_NUM_RANGE: infinite, refused by the caller */
	if (rc == SMLIB_NUM_LONG)
		return -1; /* past 512 characters: refused (Python reads any length) */
	neg = s < e && *s == '-';
	if (s < e && (*s == '-' || *s == '+'))
		s++;
	n = (size_t)(e - s);
	if (smlib_equal_ci(s, n, "nan"))
		*v = NAN;
	else if (smlib_equal_ci(s, n, "inf") || smlib_equal_ci(s, n, "infinity"))
		*v = neg ? -INFINITY : INFINITY;
	else
		return -1;
	return 0;
}

/* Where the CSV field at f ends: the next delim, or the line's end eol. */
static const char *csv_end(const char *f, const char *eol, char delim)
{
	const char *e = memchr(f, delim, (size_t)(eol - f));
	return e != NULL ? e : eol;
}

/* The CSV field at f, up to the next delim or the line's end eol, read
 * into *v as py_float reads it (NaN when empty): 0 with *fe at its end, or
 * -1. Most fields are plain decimals: smlib_decimal_quick reads them in one
 * pass, and only the others are searched for their end and read again
 * (quick is 0 when the delimiter could be part of a plain decimal). */
static int csv_field(const char *f, const char *eol, char delim, int quick, const char **fe,
		     double *v)
{
	const char *e = quick ? smlib_decimal_quick(f, eol, v) : NULL;
	if (e != NULL && (e == eol || *e == delim)) {
		*fe = e;
		return 0;
	}
	*fe = e = csv_end(f, eol, delim);
	if (f == e) {
		*v = NAN; /* an empty field: missing */
		return 0;
	}
	return py_float(f, e, v) || fabs(*v) >= SMLIB_FLOAT32_INFINITE ? -1 : 0;
}

/* Reads the CSV line from *f to eol into the rows, which have room for
 * its first n_features fields: returns how many fields it has, with *f set
 * to NULL; or, at a field that is not a number, its place (counted from 1),
 * with *f at it. The rows' arrays are kept in locals here, so that the
 * compiler need not reload them after every store. */
static size_t csv_line(struct rows *r, size_t n_features, const char **f, const char *eol,
		       char delim, int quick)
{
	uint32_t *col = r->col;
	float *val = r->val;
	size_t n = r->n_entries, fields = 0;
	const char *p = *f, *fe;
	double v;

	for (;; p = fe + 1) {
		if (csv_field(p, eol, delim, quick, &fe, &v)) {
			*f = p;
			break;
		}
		if (fields < n_features && !isnan(v))
			col[n] = (uint32_t)fields, val[n++] = to_float(v);
		fields++;
		if (fe == eol) {
			*f = NULL;
			break;
		}
	}
	r->n_entries = n;
	return *f == NULL ? fields : fields + 1;
}

/* Room for one more row (and its end mark), and for need more entries. */
static int rows_room(struct rows *r, size_t need)
{
	void *p;
	if (r->n + 2 > r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1024;
		if ((p = realloc(r->start, cap * sizeof *r->start)) == NULL)
			return -1;
		r->start = p, r->cap = cap;
	}
	if (r->n_entries + need > r->entries_cap) {
		size_t cap = r->entries_cap ? r->entries_cap : 4096;
		while (cap < r->n_entries + need)
			cap *= 2;
		if (cap > UINT32_MAX || (p = realloc(r->col, cap * sizeof *r->col)) == NULL)
			return -1;
		r->col = p;
		if ((p = realloc(r->val, cap * sizeof *r->val)) == NULL)
			return -1;
		r->val = p, r->entries_cap = cap;
	}
	return 0;
}

/* Starts the next row. */
static void rows_begin(struct rows *r)
{
	r->start[r->n] = r->n_entries;
}

static void rows_end(struct rows *r)
{
	r->n++;
	r->start[r->n] = r->n_entries;
}

static void rows_add(struct rows *r, size_t col, float v)
{
	r->col[r->n_entries] = (uint32_t)col;
	r->val[r->n_entries++] = v;
}

/* The delimiter csv.Sniffer finds in the first line (its first 512
 * characters), and the container's fix-up: a letter or digit means ','. */
static char sniff_delimiter(const char *s, const char *e)
{
	static const char preferred[] = ",\t; :";
	size_t count[128] = {0}, distinct = 0, i;
	const char *p;
	int best = -1;
	if (e - s > 512)
		e = s + 512;
	for (p = s; p < e && *p != '\n'; p++)
		if ((unsigned char)*p < 127 && count[(unsigned char)*p]++ == 0)
			distinct++;
	if (distinct > 1)
		for (i = 0; preferred[i]; i++)
			if (count[(unsigned char)preferred[i]])
				return preferred[i];
	for (i = 0; i < 127; i++)
		if (count[i] && (best < 0 || count[i] >= count[best]))
			best = (int)i;
	if (best < 0 || (best >= '0' && best <= '9') || (best >= 'a' && best <= 'z') ||
	    (best >= 'A' && best <= 'Z'))
		return ',';
	return (char)best;
}

/* Reads a CSV body into m->rows: 0, or the status (415, 400) with msg set. */
static int read_csv(struct model *m, const char *s, const char *e, char *msg, size_t size)
{
	struct rows *r = &m->rows;
	size_t width = 0, line = 0;
	char delim, got[SMLIB_SHOWN + 4];
	int quick;

	if (!utf8_valid((const unsigned char *)s, (const unsigned char *)e)) {
		smlib_format(msg, size, "text/csv: expected UTF-8");
		return 415;
	}
	py_strip(&s, &e);
	if (s == e) {
		smlib_format(msg, size, "text/csv: expected at least one record, got only whitespace");
		return 415;
	}
	delim = sniff_delimiter(s, e);
	quick = delim != '.' && delim != '-';
	while (s <= e) {
		const char *eol = memchr(s, '\n', (size_t)(e - s)), *f = s;
		size_t fields = 0;
		if (eol == NULL)
			eol = e;
		line++;
		if (rows_room(r, m->n_features + 1))
			goto memory;
		rows_begin(r);
		fields = csv_line(r, m->n_features, &f, eol, delim, quick);
		if (f != NULL) {
			smlib_format(msg, size, "text/csv: line %zu, field %zu: expected a finite "
				     "number, got '%s'", line, fields, smlib_shown(got, f, csv_end(f, eol, delim)));
			return 415;
		}
		rows_end(r);
		if (line == 1)
			width = fields;
		else if (fields != width) {
			smlib_format(msg, size, "text/csv: line %zu: expected %zu fields, as the first "
				     "line, got %zu", line, width, fields);
			return 415;
		}
		s = eol + 1;
	}
	if (width > m->n_features) {
		smlib_format(msg, size, "Feature shape mismatch, expected: %zu, got %zu",
			     m->n_features, width);
		return 400;
	}
	return 0;
memory:
	smlib_format(msg, size, "out of memory for the records");
	return 413;
}

/* One "index:value" token of a libsvm line into the rows (column as given;
 * shifted later). 0, or 415 with msg set. */
static int libsvm_pair(struct model *m, const char *s, const char *colon, const char *e,
		       size_t line, size_t *max_col, size_t *min_col, char *msg, size_t size)
{
	const char *p = s, *q = colon;
	char got[SMLIB_SHOWN + 4];
	size_t col = 0;
	double v;
	py_strip(&p, &q);
	if (p < q && *p == '+')
		p++;
	if (p == q || memchr(colon + 1, ':', (size_t)(e - colon - 1)) != NULL)
		goto bad;
	for (; p < q; p++) {
		if (!smlib_is_digit(*p) || col > SMLIB_MAX_INDEX)
			goto bad;
		col = col * 10 + (size_t)(*p - '0');
	}
	if (py_float(colon + 1, e, &v) || fabs(v) >= SMLIB_FLOAT32_INFINITE)
		goto bad;
	if (col > *max_col)
		*max_col = col;
	if (col < *min_col)
		*min_col = col;
	if (!isnan(v))
		rows_add(&m->rows, col, to_float(v));
	return 0;
bad:
	smlib_format(msg, size, "text/libsvm: line %zu: expected index:value with a feature index "
		     "and a finite number, got '%s'", line, smlib_shown(got, s, e));
	return 415;
}

/* Reads a libsvm body into m->rows: 0, or the status (415, 400). */
static int read_libsvm(struct model *m, const char *s, const char *e, char *msg, size_t size)
{
	struct rows *r = &m->rows;
	size_t line = 0, max_col = 0, min_col = SIZE_MAX, last = 0, i;
	int rc;

	if (!utf8_valid((const unsigned char *)s, (const unsigned char *)e)) {
		smlib_format(msg, size, "text/libsvm: expected UTF-8");
		return 415;
	}
	py_strip(&s, &e);
	while (s <= e) {
		const char *eol = memchr(s, '\n', (size_t)(e - s)), *t = s, *te;
		size_t pairs;
		if (eol == NULL)
			eol = e;
		line++;
		if (rows_room(r, 0))
			goto memory;
		rows_begin(r);
		for (pairs = 0; t < eol; t = te + 1) {
			const char *colon;
			te = memchr(t, ' ', (size_t)(eol - t));
			if (te == NULL)
				te = eol;
			colon = memchr(t, ':', (size_t)(te - t));
			if (colon == NULL)
				continue; /* the label, or an empty token between two spaces */
			if (rows_room(r, 1))
				goto memory;
			if ((rc = libsvm_pair(m, t, colon, te, line, &max_col, &min_col, msg, size)))
				return rc;
			pairs++;
		}
		rows_end(r);
		if (pairs > 0)
			last = r->n;
		s = eol + 1;
	}
	if (last == 0) {
		smlib_format(msg, size, "text/libsvm: expected at least one index:value pair");
		return 415;
	}
	r->n = last; /* rows end at the last one with a pair, as a sparse matrix's do */
	if (min_col >= 1) {
		for (i = 0; i < r->n_entries; i++)
			r->col[i]--;
		max_col--;
	}
	if (max_col >= m->n_features) {
		smlib_format(msg, size, "Feature shape mismatch, expected: %zu, got %zu",
			     m->n_features, max_col + 1);
		return 400;
	}
	return 0;
memory:
	smlib_format(msg, size, "out of memory for the records");
	return 413;
}

/* Reads a JSON or JSON Lines body (lib/instances.h) into m->rows: 0, or 400. */
static int read_json(struct model *m, enum smlib_format f, const char *s, size_t len, char *msg,
		     size_t size)
{
	struct smlib_reader in;
	struct smlib_instance x;
	int rc;
	size_t i;

	smlib_reader_init(&in, f, s, len, &m->lib.svc->read, &m->lib.scratch);
	while ((rc = smlib_next(&in, &x)) == 1) {
		if (rows_room(&m->rows, x.count)) {
			smlib_format(msg, size, "out of memory for the records");
			return 413;
		}
		rows_begin(&m->rows);
		for (i = 0; i < x.count; i++)
			if (!isnan(x.values[i]))
				rows_add(&m->rows, x.keys ? x.keys[i] : i, to_float(x.values[i]));
		rows_end(&m->rows);
	}
	if (rc == 0 && m->rows.n > 0)
		return 0;
	smlib_format(msg, size, "%s", rc == 0 ? "expected at least one record" : in.err);
	return 400;
}

/* ---- recordio-protobuf ------------------------------------------------------ */
/*
 * As the container reads it (its recordio_protobuf.py stacks the rows with
 * numpy or scipy, then XGBoost 1.7 reads the matrix):
 *
 *   - a dense tensor's row is its values (its shape is not used); a sparse
 *     one's width is shape[0], or its largest key + 1 when it has no shape;
 *   - every row must have the same width (the rows are stacked into one
 *     matrix): 415 otherwise; a width past the model's features is 400;
 *   - when records are sparse and dense mixed, scipy converts them to one
 *     sparse matrix: a dense row's zeros become missing and a key repeated
 *     in a row is summed; when all are sparse, the last of a repeated key
 *     counts (XGBoost fills the row in order), NaN entries dropped first;
 *   - NaN is missing; a value float32 rounds to infinity is 415, as XGBoost
 *     refuses it; fewer than 8 bytes after the last record are ignored.
 *
 * lib/recordio.h is stricter than the container in a few places, each a 415
 * naming the byte offset: a record with no 'values' tensor (the container
 * skips the record, so its answer has fewer records than the request), a
 * dense tensor whose shape disagrees with its values, a key outside the
 * shape, a sparse row with no values (the container: 415 too, unless every
 * row is empty). It accepts a last record without its padding.
 */

static int rio_fail(char *msg, size_t size, const void *body, const unsigned char *at, size_t record,
		    const char *fmt, ...) SMLIB_PRINTF_LIKE(6, 7);
/* "recordio-protobuf: WHAT at byte N (record R)", as lib/recordio.h words
 * its errors; returns 415. */
static int rio_fail(char *msg, size_t size, const void *body, const unsigned char *at, size_t record,
		    const char *fmt, ...)
{
	char what[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	smlib_format(msg, size, "recordio-protobuf: %s at byte %zu (record %zu)", what,
		     (size_t)(at - (const unsigned char *)body), record);
	return 415;
}

/* A record's row width as the container's matrix has it, after checking
 * that no value is infinite as float32. 0, or 415 with msg set. */
static int rio_width(const struct smlib_rio_record *rec, const void *body, uint64_t *width,
		     char *msg, size_t size)
{
	const struct smlib_rio_tensor *t = &rec->values;
	struct smlib_rio_iter it;
	uint64_t key, max_key = 0;
	double v;
	smlib_rio_iter_init(&it, t);
	for (;;) {
		const unsigned char *at = it.v;
		if (!smlib_rio_iter_next(&it, &key, &v))
			break;
		if (fabs(v) >= SMLIB_FLOAT32_INFINITE)
			return rio_fail(msg, size, body, at, rec->index, "value %g is infinite as float32 "
					"(XGBoost refuses infinity)", v);
		if (key > max_key)
			max_key = key;
	}
	*width = t->keys == NULL ? t->n_values : t->rank > 0 ? t->shape[0] : max_key + 1;
	return 0;
}

/* Appends the record's row to m->rows; mixed: the body has sparse and dense
 * records (see above). Room for t->n_values entries was made. */
static void rio_row(struct model *m, const struct smlib_rio_tensor *t, int mixed)
{
	struct rows *r = &m->rows;
	size_t first = r->n_entries, e;
	struct smlib_rio_iter it;
	uint64_t key;
	double v;
	smlib_rio_iter_init(&it, t);
	while (smlib_rio_iter_next(&it, &key, &v)) {
		float f = to_float(v);
		uint32_t *slot;
		if (key >= m->n_features)
			continue; /* a key past shape[0] but inside a 2-D shape: XGBoost skips it */
		if (t->keys == NULL) {
			if (!isnan(f) && !(mixed && f == 0))
				rows_add(r, (size_t)key, f);
			continue;
		}
		slot = &m->slot[key];
		if (*slot == 0 && (mixed || !isnan(f))) {
			*slot = (uint32_t)(r->n_entries - first + 1);
			rows_add(r, (size_t)key, f);
		} else if (*slot != 0 && mixed) {
			r->val[first + *slot - 1] += f;
		} else if (*slot != 0 && !isnan(f)) {
			r->val[first + *slot - 1] = f;
		}
	}
	if (t->keys != NULL)
		for (e = first; e < r->n_entries; e++)
			m->slot[r->col[e]] = 0;
}

/* Reads a recordio-protobuf body into m->rows: 0, or the status (415, 400,
 * 413) with msg set. Two passes: the first checks every record and learns
 * the matrix's width and kind, the second fills the rows. */
static int read_recordio(struct model *m, const void *body, size_t len, char *msg, size_t size)
{
	struct smlib_rio_reader r;
	struct smlib_rio_record rec;
	uint64_t width = 0, w = 0;
	int rc, sparse = 0, dense = 0;

	smlib_rio_reader_init(&r, body, len, SMLIB_RIO_NEED_VALUES);
	while ((rc = smlib_rio_next(&r, &rec, msg, size)) > 0) {
		if (rio_width(&rec, body, &w, msg, size) != 0)
			return 415;
		if (rec.index == 1)
			width = w;
		else if (w != width)
			return rio_fail(msg, size, body, rec.payload - SMLIB_RIO_HEAD, rec.index,
					"a row of %llu features after rows of %llu (the records are "
					"stacked into one matrix)", (unsigned long long)w,
					(unsigned long long)width);
		sparse |= rec.values.keys != NULL;
		dense |= rec.values.keys == NULL;
	}
	/* The container stops reading where fewer than 8 bytes are left. */
	if (rc < 0 && (r.index == 0 || len - r.at >= SMLIB_RIO_HEAD))
		return 415;
	if (width > m->n_features) {
		smlib_format(msg, size, "Feature shape mismatch, expected: %zu, got %llu",
			     m->n_features, (unsigned long long)width);
		return 400;
	}
	smlib_rio_reader_init(&r, body, r.at, SMLIB_RIO_NEED_VALUES);
	while (smlib_rio_next(&r, &rec, NULL, 0) > 0) {
		if (rows_room(&m->rows, rec.values.n_values)) {
			smlib_format(msg, size, "out of memory for the records");
			return 413;
		}
		rows_begin(&m->rows);
		rio_row(m, &rec.values, sparse && dense);
		rows_end(&m->rows);
	}
	return 0;
}

/* ---- NPY ------------------------------------------------------------------- */
/*
 * application/x-npy, what numpy.save writes (the SDK's NumpySerializer): a
 * 1-D array is one record, a 2-D one a record a row; float32, float64,
 * integers or bool, little endian, C order (lib/npy.h checks the rest).
 * Read as a CSV body is: each value rounded to float32, NaN missing, a
 * value float32 rounds to infinity refused (XGBoost refuses it), fewer
 * columns than the model's features leave the rest missing, more are 400.
 * A body lib/npy.h cannot read, and an array of no records, is 415 as the
 * plug-in's other unreadable bodies are (the container's status for them),
 * with lib/npy.h's message naming the byte.
 */

/* Reads an NPY body into m->rows: 0, or the status (415, 400, 413) with msg set. */
static int read_npy(struct model *m, const void *body, size_t len, char *msg, size_t size)
{
	struct smlib_npy a;
	size_t r, c, used;

	if (smlib_npy_read(&a, body, len, msg, size) != 0)
		return 415;
	if (a.rows == 0) {
		smlib_format(msg, size, "npy: expected at least one record, got shape (0, %zu) at byte "
			     "%zu", a.cols, a.data_offset);
		return 415;
	}
	used = a.cols < m->n_features ? a.cols : m->n_features;
	for (r = 0; r < a.rows; r++) {
		if (rows_room(&m->rows, used)) {
			smlib_format(msg, size, "out of memory for the records");
			return 413;
		}
		rows_begin(&m->rows);
		for (c = 0; c < a.cols; c++) {
			double v = smlib_npy_value(&a, r, c);
			if (fabs(v) >= SMLIB_FLOAT32_INFINITE) {
				smlib_format(msg, size, "npy: value %g (record %zu, column %zu) is infinite "
					     "as float32 (XGBoost refuses infinity) at byte %zu", v, r + 1,
					     c + 1, a.data_offset + (r * a.cols + c) * a.item_size);
				return 415;
			}
			if (c < used && !isnan(v))
				rows_add(&m->rows, c, to_float(v));
		}
		rows_end(&m->rows);
	}
	if (a.cols > m->n_features) {
		smlib_format(msg, size, "Feature shape mismatch, expected: %zu, got %zu",
			     m->n_features, a.cols);
		return 400;
	}
	return 0;
}

/* Content-Type as the container reads it: lower-cased, parameters dropped
 * but label_size, which must be 1 if given; a missing one means libsvm. */
static enum body_format body_format(const char *ct, char *msg, size_t size)
{
	static const struct { const char *name; enum body_format f; } types[] = {
		{"text/csv", BODY_CSV}, {"csv", BODY_CSV}, {"text/libsvm", BODY_LIBSVM},
		{"text/x-libsvm", BODY_LIBSVM}, {"libsvm", BODY_LIBSVM},
		{"application/x-recordio-protobuf", BODY_RECORDIO},
		{"recordio-protobuf", BODY_RECORDIO}, {"application/json", BODY_JSON},
		{"application/jsonlines", BODY_JSONLINES}, {"application/x-npy", BODY_NPY},
	};
	const char *s = ct, *e = ct + strcspn(ct, ";"), *p = e;
	char got[SMLIB_SHOWN + 4];
	size_t i;
	smlib_trim(&s, &e);
	if (s == e)
		return BODY_LIBSVM;
	while (*p == ';') {
		const char *ns = p + 1, *ne, *vs;
		p = ns + strcspn(ns, ";");
		ne = ns + strcspn(ns, "=;");
		vs = ne < p ? ne + 1 : p;
		smlib_trim(&ns, &ne);
		if (smlib_equal_ci(ns, (size_t)(ne - ns), "label_size")) {
			const char *ve = p;
			smlib_trim(&vs, &ve);
			if (!smlib_equal(vs, (size_t)(ve - vs), "1")) {
				smlib_format(msg, size, "Content-Type parameter label_size: expected 1, "
					     "got '%s'", smlib_shown(got, vs, ve));
				return BODY_NONE;
			}
		}
	}
	for (i = 0; i < sizeof types / sizeof types[0]; i++)
		if (smlib_equal_ci(s, (size_t)(e - s), types[i].name))
			return types[i].f;
	smlib_format(msg, size, "Content-Type '%s' is not supported; supported: text/csv, "
		     "text/libsvm, text/x-libsvm, application/x-recordio-protobuf, application/json, "
		     "application/jsonlines, application/x-npy",
		     smlib_shown(got, s, e));
	return BODY_NONE;
}

/* ======================================================================== */
/* Accept                                                                    */
/* ======================================================================== */

static const char *const ANSWER_TYPES[N_ANSWERS] = {
	"application/json", "application/jsonlines", "text/csv", "application/x-recordio-protobuf",
	"application/x-npy"};

/* The answer Accept names, as the container reads it: the media type
 * before any ';', lower-cased; missing or * / * is dflt; anything else, a
 * list or a wildcard included, must be one of ANSWER_TYPES. N_ANSWERS if not. */
static enum answer answer_named(const char *accept, enum answer dflt)
{
	const char *s = accept, *e = accept + strcspn(accept, ";");
	int a;
	smlib_trim(&s, &e);
	if (s == e || smlib_equal(s, (size_t)(e - s), "*/*"))
		return dflt;
	for (a = 0; a < N_ANSWERS; a++)
		if (smlib_equal_ci(s, (size_t)(e - s), ANSWER_TYPES[a]))
			return (enum answer)a;
	return N_ANSWERS;
}

/* ======================================================================== */
/* Writing the answer                                                        */
/* ======================================================================== */
/*
 * As SageMaker's container (image 1.2-2 and later) lays it out, every
 * number as Python prints the float64 of the float32 (lib/numtext.h):
 *
 *   text/csv (real time)   one row per record ending in \\n: "0.25\\n", and
 *                          "p0,p1,p2\\n" for multi:softprob; with
 *                          SMSERVE_XGBOOST_CSV=one-line the layout of the
 *                          images before 1.2-2: "0.25,0.75", no newline,
 *                          a softprob record as "[p0, p1, p2]"
 *   application/json       {"predictions": [{"score": 0.25}, ...]}, spaced
 *                          as json.dumps spaces it, no newline
 *   application/jsonlines  {"score": 0.25} and \\n per record (the container
 *                          answers 500 here, by accident)
 *   batch (SAGEMAKER_BATCH) str() of each prediction and \\n, whatever the
 *                          Accept: "0.25", "[p0, p1, p2]"
 */

/* A number: Python's str (nan, inf) or, in JSON, json.dumps's (NaN, Infinity). */
static void w_number(struct smlib_writer *w, double v, int json)
{
	if (json && isnan(v))
		SMLIB_PUT_LIT(w, "NaN");
	else if (json && isinf(v))
		smlib_put(w, v > 0 ? "Infinity" : "-Infinity", v > 0 ? 8 : 9);
	else
		w->len += smlib_repr_double(v, w->buf + w->len);
}

/* The record's numbers: one, or as Python writes a list, "[a, b, c]". */
static void w_prediction(struct smlib_writer *w, const float *out, size_t n, int json)
{
	size_t k;
	if (n == 1) {
		w_number(w, out[0], json);
		return;
	}
	SMLIB_PUT_LIT(w, "[");
	for (k = 0; k < n; k++) {
		if (k > 0)
			SMLIB_PUT_LIT(w, ", ");
		w_number(w, out[k], json);
	}
	SMLIB_PUT_LIT(w, "]");
}

/* One record's answer in the plain layouts; i is its index. */
static void w_record(const struct model *m, struct smlib_writer *w, enum answer a, size_t i)
{
	size_t k, n = m->n_outputs;
	if (m->set.batch) {
		w_prediction(w, m->out, n, 0);
		SMLIB_PUT_LIT(w, "\n");
	} else if (a == ANS_JSON) {
		if (i > 0)
			SMLIB_PUT_LIT(w, ", ");
		SMLIB_PUT_LIT(w, "{\"score\": ");
		w_prediction(w, m->out, n, 1);
		SMLIB_PUT_LIT(w, "}");
	} else if (a == ANS_JSONLINES) {
		SMLIB_PUT_LIT(w, "{\"score\": ");
		w_prediction(w, m->out, n, 1);
		SMLIB_PUT_LIT(w, "}\n");
	} else if (m->set.csv_one_line) {
		if (i > 0)
			SMLIB_PUT_LIT(w, ",");
		w_prediction(w, m->out, n, 0);
	} else {
		for (k = 0; k < n; k++) {
			if (k > 0)
				SMLIB_PUT_LIT(w, ",");
			w_number(w, m->out[k], 0);
		}
		SMLIB_PUT_LIT(w, "\n");
	}
}

/* ---- Multi-model answers (handler_service.py) ------------------------------ */
/*
 * In multi-model mode AWS's container runs Multi Model Server with
 * src/sagemaker_xgboost_container/algorithm_mode/handler_service.py (and
 * mms_patch/mms_transformer.py, sagemaker-inference 1.5.5, MMS 1.1.2) instead
 * of serve.py; the bodies are read alike, the answers differ:
 *   Accept (lower-cased, whole) text/csv or csv: ",".join(map(str, preds))
 *     in real time, "\n".join(...) + "\n" with SAGEMAKER_BATCH; a
 *     multi:softprob record is str() of its list, "[p0, p1, p2]"
 *   application/json: json.dumps(preds.tolist()), "[0.25, 0.75]" (also in batch)
 *   Content-Type: the Accept as sent (or the default, when none or * / *)
 *   anything else, "json" included (sagemaker_inference's encoder has no such
 *   key), and every failure of the request, an empty body included: the
 *   transformer calls handle_error with the arguments of an older toolkit,
 *   which raises, so MMS answers 503 with its own error document below.
 */
static int read_body(struct model *m, const model_request *req, char *msg, size_t size);

static int mme_on(void)
{
	const char *v = getenv("SAGEMAKER_MULTI_MODEL");
	return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* What MMS's Job.sendError writes (Gson, pretty-printed, then a newline). */
static void mme_failed(model_response *out)
{
	static const char doc[] = "{\n  \"code\": 503,\n  \"type\": \"InternalServerException\",\n"
				  "  \"message\": \"Prediction failed\"\n}\n";
	model_response_status(out, 503);
	model_response_type(out, "application/json");
	model_response_write(out, doc, sizeof doc - 1);
}

/* Predicts every row; the answer as handler_service.py's default_output_fn. */
static void mme_answer(struct model *m, const char *accept, int json, model_response *out)
{
	struct smlib_writer w;
	size_t first, n = 0, k, r;
	int lines = !json && m->set.batch;

	w.out = out, w.buf = m->lib.buf, w.len = 0, w.cap = m->lib.buf_cap, w.refused = 0;
	model_response_type(out, accept);
	if (json)
		SMLIB_PUT_LIT(&w, "[");
	for (first = 0; first < m->rows.n && !w.refused; first += n) {
		n = m->rows.n - first < m->block ? m->rows.n - first : m->block;
		predict_rows(m, first, n);
		for (k = 0, r = first; k < n && !w.refused; k++, r++) {
			record_answer(m, k);
			smlib_room(&w, m->lib.record_room);
			if (r > 0 && !lines)
				smlib_put(&w, json ? ", " : ",", json ? 2 : 1);
			w_prediction(&w, m->out, m->n_outputs, json);
			if (lines)
				SMLIB_PUT_LIT(&w, "\n");
		}
	}
	smlib_room(&w, 4);
	if (json)
		SMLIB_PUT_LIT(&w, "]");
	smlib_flush(&w);
}

static void mme_invoke(struct model *m, const model_request *req, model_response *out)
{
	const char *accept = req->accept;
	char msg[512];
	int csv, json;

	if (*accept == '\0' || strcmp(accept, "*/*") == 0)
		accept = m->set.mme_accept;
	csv = smlib_equal_ci(accept, strlen(accept), "text/csv") ||
	      smlib_equal_ci(accept, strlen(accept), "csv");
	json = smlib_equal_ci(accept, strlen(accept), "application/json");
	if (req->body_len == 0 || read_body(m, req, msg, sizeof msg) != 0 || !(csv || json))
		mme_failed(out);
	else
		mme_answer(m, accept, json, out);
}

/* ---- SAGEMAKER_INFERENCE_OUTPUT ------------------------------------------ */
/*
 * The keys Autopilot asks for, as the container computes them for each
 * objective: binary:logistic and multi:softprob have every classification
 * key; binary:logitraw, binary:hinge and multi:softmax predicted_label,
 * labels, raw_score and raw_scores; every other objective predicted_score
 * (the container knows only reg:squarederror, reg:logistic, reg:gamma,
 * reg:absoluteerror and reg:tweedie here, and answers 500 for the others:
 * smserve gives them predicted_score too). A key that does not fit the
 * objective is NaN (nan in CSV). A one-output classifier's probabilities
 * and raw_scores are [1 - p, p], in float64.
 */

static const char *const KEY_NAMES[N_KEYS] = {
	"predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores",
	"predicted_score"};

enum kind { KIND_REGRESSION, KIND_LOGISTIC, KIND_LOGITRAW, KIND_CLASS, KIND_SOFTPROB };

static enum kind model_kind(const struct model *m)
{
	if (m->obj->link == LINK_SOFTPROB)
		return KIND_SOFTPROB;
	if (m->obj->link == LINK_HINGE || m->obj->link == LINK_ARGMAX)
		return KIND_CLASS;
	if (strcmp(m->obj->name, "binary:logistic") == 0)
		return KIND_LOGISTIC;
	if (strcmp(m->obj->name, "binary:logitraw") == 0)
		return KIND_LOGITRAW;
	return KIND_REGRESSION;
}

static int key_fits(enum kind kind, enum out_key k)
{
	switch (kind) {
	case KIND_REGRESSION: return k == K_PREDICTED_SCORE;
	case KIND_LOGISTIC: case KIND_SOFTPROB: return k != K_PREDICTED_SCORE;
	default:
		return k == K_PREDICTED_LABEL || k == K_LABELS || k == K_RAW_SCORE || k == K_RAW_SCORES;
	}
}

/* The value of key k for the record in m->out. */
static void w_key(const struct model *m, struct smlib_writer *w, enum out_key k, int json)
{
	enum kind kind = model_kind(m);
	size_t n = m->n_outputs, best = 0, c;
	double p = m->out[0];
	char text[32];

	for (c = 1; c < n; c++)
		if (m->out[c] > m->out[best])
			best = c;
	if (!key_fits(kind, k)) {
		w_number(w, NAN, json);
		return;
	}
	switch (k) {
	case K_PREDICTED_LABEL:
		if (kind == KIND_CLASS)
			w_number(w, p, json);
		else if (kind == KIND_SOFTPROB)
			w->len += (size_t)sprintf(w->buf + w->len, "%zu", best);
		else
			w->len += (size_t)sprintf(w->buf + w->len, "%d",
						  kind == KIND_LOGISTIC ? p > 0.5 : p > 0);
		break;
	case K_LABELS:
		SMLIB_PUT_LIT(w, "[");
		c = (kind == KIND_SOFTPROB || kind == KIND_CLASS) && m->n_groups > 1 ? m->n_groups : 2;
		for (best = 0; best < c; best++) {
			int len = snprintf(text, sizeof text, "%s%zu", best ? ", " : "", best);
			smlib_put(w, text, (size_t)len);
		}
		SMLIB_PUT_LIT(w, "]");
		break;
	case K_PREDICTED_SCORE:
		w_number(w, p, json);
		break;
	case K_PROBABILITY: case K_RAW_SCORE:
		w_number(w, kind == KIND_SOFTPROB ? (double)m->out[best] : p, json);
		break;
	default: /* K_PROBABILITIES, K_RAW_SCORES */
		if (kind == KIND_SOFTPROB) {
			w_prediction(w, m->out, n, json);
		} else {
			SMLIB_PUT_LIT(w, "[");
			w_number(w, 1 - p, json);
			SMLIB_PUT_LIT(w, ", ");
			w_number(w, p, json);
			SMLIB_PUT_LIT(w, "]");
		}
		break;
	}
}

/* One JSON object of the selected keys: the ones that fit in the
 * container's fixed order, then the others (NaN) as listed. */
static void w_keys_object(const struct model *m, struct smlib_writer *w)
{
	enum kind kind = model_kind(m);
	int done[N_KEYS] = {0}, pass, first = 1;
	size_t i;
	SMLIB_PUT_LIT(w, "{");
	for (pass = 0; pass < 2; pass++) {
		int k;
		for (k = 0; k < N_KEYS; k++) {
			for (i = 0; i < m->set.n_keys; i++) {
				enum out_key key = pass == 0 ? (enum out_key)k : m->set.keys[i];
				if (pass == 0 && m->set.keys[i] != key)
					continue;
				if (done[key] || key_fits(kind, key) != (pass == 0))
					continue;
				done[key] = 1;
				if (!first)
					SMLIB_PUT_LIT(w, ", ");
				first = 0;
				SMLIB_PUT_LIT(w, "\"");
				smlib_put(w, KEY_NAMES[key], strlen(KEY_NAMES[key]));
				SMLIB_PUT_LIT(w, "\": ");
				w_key(m, w, key, 1);
			}
			if (pass == 1)
				break;
		}
	}
	SMLIB_PUT_LIT(w, "}");
}

/* One record's answer with SAGEMAKER_INFERENCE_OUTPUT set. */
static void w_selected(const struct model *m, struct smlib_writer *w, enum answer a, size_t i)
{
	size_t k;
	if (a == ANS_JSON) {
		if (i > 0)
			SMLIB_PUT_LIT(w, ", ");
		w_keys_object(m, w);
		return;
	}
	if (a == ANS_JSONLINES) {
		w_keys_object(m, w);
		SMLIB_PUT_LIT(w, "\n");
		return;
	}
	if (i > 0)
		SMLIB_PUT_LIT(w, "\n"); /* rows joined, no newline after the last... */
	for (k = 0; k < m->set.n_keys; k++) {
		enum out_key key = m->set.keys[k];
		int list = key_fits(model_kind(m), key) &&
			   (key == K_LABELS || key == K_PROBABILITIES || key == K_RAW_SCORES);
		if (k > 0)
			SMLIB_PUT_LIT(w, ",");
		if (list) /* a field with commas, quoted as Python's csv module quotes it */
			SMLIB_PUT_LIT(w, "\"");
		w_key(m, w, key, 0);
		if (list)
			SMLIB_PUT_LIT(w, "\"");
	}
}

/* ---- recordio-protobuf answers -------------------------------------------- */
/*
 * One RecordIO frame per record, holding one Record whose label map has a
 * float32 tensor per key: "score" (the prediction, or a softprob record's
 * probabilities; the container answers 500 here, and SageMaker's built-in
 * algorithms answer so), or each SAGEMAKER_INFERENCE_OUTPUT key, as the
 * container writes them. Entries come in key order (the container's protobuf
 * runtime writes a map in no fixed order; sorted is Python's order for a
 * sorted dict and the golden files'). The container's encoder never empties
 * its buffer, so its frame i holds the Records of records 0 to i, which a
 * protobuf reader merges into record i (a repeated map key keeps its last
 * value): the same records, in an answer that grows as the square of their
 * count. SMSERVE_XGBOOST_RECORDIO=cumulative writes those bytes, for
 * comparisons with the container (at most MAX_CUMULATIVE_RECORDS records).
 */

/* The map keys in byte order, as the answer writes them. */
static const enum out_key SORTED_KEYS[N_KEYS] = {
	K_LABELS, K_PREDICTED_LABEL, K_PREDICTED_SCORE, K_PROBABILITIES, K_PROBABILITY, K_RAW_SCORE,
	K_RAW_SCORES};

/* The most probable class of the record in m->out (the first on a tie). */
static size_t best_class(const struct model *m)
{
	size_t c, best = 0;
	for (c = 1; c < m->n_outputs; c++)
		if (m->out[c] > m->out[best])
			best = c;
	return best;
}

/* Key k of the record in m->out as float32 values (what w_key writes as
 * text) into v; returns how many. */
static size_t key_floats(const struct model *m, enum out_key k, float *v)
{
	enum kind kind = model_kind(m);
	size_t best = best_class(m), c, n;
	float p = m->out[0];
	if (!key_fits(kind, k)) {
		v[0] = NAN;
		return 1;
	}
	switch (k) {
	case K_PREDICTED_LABEL:
		v[0] = kind == KIND_CLASS ? p : kind == KIND_SOFTPROB ? (float)best
		       : (float)(kind == KIND_LOGISTIC ? p > 0.5f : p > 0);
		return 1;
	case K_LABELS:
		n = (kind == KIND_SOFTPROB || kind == KIND_CLASS) && m->n_groups > 1 ? m->n_groups : 2;
		for (c = 0; c < n; c++)
			v[c] = (float)c;
		return n;
	case K_PROBABILITY: case K_RAW_SCORE:
		v[0] = kind == KIND_SOFTPROB ? m->out[best] : p;
		return 1;
	case K_PROBABILITIES: case K_RAW_SCORES:
		if (kind == KIND_SOFTPROB) {
			memcpy(v, m->out, m->n_outputs * sizeof *v);
			return m->n_outputs;
		}
		v[0] = to_float(1 - (double)p); /* [1 - p, p], computed in float64 */
		v[1] = p;
		return 2;
	default: /* K_PREDICTED_SCORE */
		v[0] = p;
		return 1;
	}
}

/* Whether SAGEMAKER_INFERENCE_OUTPUT lists key k. */
static int key_selected(const struct model *m, enum out_key k)
{
	size_t i;
	for (i = 0; i < m->set.n_keys; i++)
		if (m->set.keys[i] == k)
			return 1;
	return 0;
}

/* Copies n bytes to the answer, through the buffer. */
static void w_bytes(struct smlib_writer *w, const unsigned char *p, size_t n)
{
	while (n > 0 && !w->refused) {
		size_t k;
		smlib_room(w, 1);
		k = w->cap - w->len < n ? w->cap - w->len : n;
		memcpy(w->buf + w->len, p, k);
		w->len += k, p += k, n -= k;
	}
}

/* One record's answer as a RecordIO frame (the room for it was made; the
 * cumulative frames are copied through the buffer). */
static void w_rio_record(struct model *m, struct smlib_writer *w)
{
	struct smlib_rio_out o[N_KEYS];
	size_t n = 0, k, payload;
	float *v = m->key_values;
	unsigned char *p;

	memset(o, 0, sizeof o);
	if (m->set.n_keys == 0) {
		o[0].name = "score", o[0].values = m->out, o[0].n_values = m->n_outputs;
		n = 1;
	}
	for (k = 0; k < N_KEYS && m->set.n_keys > 0; k++) {
		if (!key_selected(m, SORTED_KEYS[k]))
			continue;
		o[n].name = KEY_NAMES[SORTED_KEYS[k]];
		o[n].values = v;
		o[n].n_values = key_floats(m, SORTED_KEYS[k], v);
		v += o[n++].n_values;
	}
	payload = smlib_rio_record_size(NULL, 0, o, n);
	if (!m->set.rio_cumulative) {
		p = (unsigned char *)w->buf + w->len;
		p = smlib_rio_put_frame_head(p, payload);
		p = smlib_rio_put_record(p, NULL, 0, o, n);
		w->len += (size_t)(smlib_rio_put_padding(p, payload) - (unsigned char *)(w->buf + w->len));
		return;
	}
	if (grow((void **)&m->sent, &m->sent_cap, m->sent_len + payload, 1, SMLIB_RIO_MAX_LENGTH)) {
		w->refused = 1; /* past RecordIO's length, or out of memory: cut short */
		return;
	}
	(void)smlib_rio_put_record(m->sent + m->sent_len, NULL, 0, o, n);
	m->sent_len += payload;
	(void)smlib_rio_put_frame_head((unsigned char *)w->buf + w->len, m->sent_len);
	w->len += SMLIB_RIO_HEAD;
	w_bytes(w, m->sent, m->sent_len);
	smlib_room(w, 4);
	p = (unsigned char *)w->buf + w->len;
	w->len += (size_t)(smlib_rio_put_padding(p, m->sent_len) - p);
}

/* ---- NPY answers -------------------------------------------------------------- */
/*
 * smserve's addition (the container answers 406): what numpy.save writes for
 * a float64 array of shape (records, n_outputs), C order, its rows the JSON
 * answer's "score" (the float32 prediction, exactly; multi:softprob's class
 * probabilities). The header holds the count of records, all read before
 * any is predicted, so the answer streams through the buffer. Batch or
 * not, the same array (batch's str() lines are no NPY). With
 * SAGEMAKER_INFERENCE_OUTPUT set it is 406: its keys are names with values
 * of different widths (labels, lists), which a plain array of numbers
 * cannot label.
 */

/* The header, at the start of the answer. */
static void w_npy_header(const struct model *m, struct smlib_writer *w)
{
	size_t shape[2];
	shape[0] = m->rows.n, shape[1] = m->n_outputs;
	smlib_room(w, SMLIB_NPY_HEADER_CAP);
	w->len += smlib_npy_header((unsigned char *)w->buf + w->len, SMLIB_NPY_F8, 2, shape);
}

/* The record's row: its numbers as little-endian float64 (room made). */
static void w_npy_record(const struct model *m, struct smlib_writer *w)
{
	size_t k;
	for (k = 0; k < m->n_outputs; k++) {
		double d = m->out[k];
		uint64_t bits;
		memcpy(&bits, &d, sizeof bits);
		smlib_npy_put_le((unsigned char *)w->buf + w->len, bits, 8);
		w->len += 8;
	}
}

/* The most float32 values one key can have. */
static size_t key_room(const struct model *m)
{
	size_t n = m->n_outputs > m->n_groups ? m->n_outputs : m->n_groups;
	return n > 2 ? n : 2;
}

/* The largest answer one record can produce, so that the writer checks room
 * once per record: every key, each a list of n_outputs numbers at most. */
static size_t record_room(const struct model *m)
{
	size_t n = m->n_outputs > m->n_groups ? m->n_outputs : m->n_groups;
	return 256 + (N_KEYS + 1) * (24 + (n + 2) * (SMLIB_REPR_MAX + 4)); /* NPY: 8 * n */
}

/* ======================================================================== */
/* The settings                                                              */
/* ======================================================================== */

/* SAGEMAKER_INFERENCE_OUTPUT: spaces dropped, lower-cased, split on commas. */
static int read_output_keys(struct settings *set, const char *v, char *err, size_t err_size)
{
	char word[32];
	size_t n = 0;
	const char *p;
	for (p = v;; p++) {
		if (*p == ',' || *p == '\0') {
			int k;
			word[n] = '\0';
			for (k = 0; k < N_KEYS && strcmp(word, KEY_NAMES[k]) != 0; k++)
				;
			if (k == N_KEYS || set->n_keys == MAX_OUTPUT_KEYS) {
				smlib_format(err, err_size, "SAGEMAKER_INFERENCE_OUTPUT: expected at most "
					     "%d of predicted_label, labels, probability, probabilities, "
					     "raw_score, raw_scores, predicted_score, got '%.40s'",
					     MAX_OUTPUT_KEYS, v);
				return -1;
			}
			set->keys[set->n_keys++] = (enum out_key)k;
			n = 0;
			if (*p == '\0')
				return 0;
		} else if (*p != ' ' && n + 1 < sizeof word) {
			word[n++] = (char)smlib_lower((unsigned char)*p);
		}
	}
}

static int read_settings(struct settings *set, char *err, size_t err_size)
{
	const char *batch = getenv("SAGEMAKER_BATCH"), *csv = getenv("SMSERVE_XGBOOST_CSV");
	const char *max = getenv("MAX_CONTENT_LENGTH"), *keys = getenv("SAGEMAKER_INFERENCE_OUTPUT");
	const char *dflt = getenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT");
	const char *rio = getenv("SMSERVE_XGBOOST_RECORDIO");
	char *end;

	memset(set, 0, sizeof *set);
	set->batch = batch != NULL && (strcmp(batch, "true") == 0 || strcmp(batch, "1") == 0);
	if (csv != NULL && *csv != '\0' && strcmp(csv, "one-line") != 0 && strcmp(csv, "lines") != 0) {
		smlib_format(err, err_size, "SMSERVE_XGBOOST_CSV: expected one-line or lines, got "
			     "'%.40s'", csv);
		return -1;
	}
	set->csv_one_line = csv != NULL && strcmp(csv, "one-line") == 0;
	if (rio != NULL && *rio != '\0' && strcmp(rio, "records") != 0 && strcmp(rio, "cumulative") != 0) {
		smlib_format(err, err_size, "SMSERVE_XGBOOST_RECORDIO: expected records or cumulative, "
			     "got '%.40s'", rio);
		return -1;
	}
	set->rio_cumulative = rio != NULL && strcmp(rio, "cumulative") == 0;
	set->max_body = 6291456;
	if (max != NULL && *max != '\0') {
		errno = 0;
		set->max_body = strtoul(max, &end, 10);
		if (errno || *end != '\0' || !smlib_is_digit(*max)) {
			smlib_format(err, err_size, "MAX_CONTENT_LENGTH: expected a number of bytes, got "
				     "'%.40s'", max);
			return -1;
		}
	}
	if (mme_on()) {
		/* handler_service.py: no output keys, and any default Accept
		 * (sagemaker_inference's default is application/json) */
		set->mme_accept = dflt ? dflt : "application/json";
		return 0;
	}
	set->default_answer = answer_named(dflt ? dflt : "", ANS_CSV);
	if (set->default_answer == N_ANSWERS) {
		smlib_format(err, err_size, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: expected one of "
			     "text/csv, application/json, application/jsonlines, "
			     "application/x-recordio-protobuf, application/x-npy, got '%.60s'", dflt);
		return -1;
	}
	if (keys != NULL && strspn(keys, " ") != strlen(keys) &&
	    read_output_keys(set, keys, err, err_size) != 0)
		return -1;
	if (set->n_keys > 0 && set->default_answer == ANS_NPY) {
		/* every request without an Accept would be 406 (see w_npy_header) */
		smlib_format(err, err_size, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=application/x-npy "
			     "cannot answer SAGEMAKER_INFERENCE_OUTPUT's keys; choose another answer");
		return -1;
	}
	return 0;
}

/* ======================================================================== */
/* The plug-in functions                                                     */
/* ======================================================================== */

/* JSON and JSON Lines requests are read by lib/instances.h: a feature is a
 * float32 (XGBoost refuses infinity) and may be missing (null). */
static const struct smlib_service SERVICE = {
	SMLIB_BIT(SMLIB_JSON) | SMLIB_BIT(SMLIB_JSONLINES),
	SMLIB_CSV,
	1,
	{1, "expected a finite number within float32's range (XGBoost refuses infinity)",
	 "feature"},
};

/* The work arrays of a request, allocated at load and reused by every
 * request (each worker writes its own copy after the fork; requests in a
 * worker run one at a time). */
static int alloc_work(struct model *m)
{
	size_t n = m->block * m->n_features, i;
	m->xb = malloc(n * sizeof *m->xb);
	m->block_margin = malloc(m->block * m->n_groups * sizeof *m->block_margin);
	m->block_out = malloc(m->block * m->n_outputs * sizeof *m->block_out);
	m->out = malloc(m->n_outputs * sizeof *m->out);
	if (m->xb == NULL || m->block_margin == NULL || m->block_out == NULL || m->out == NULL)
		return -1;
	for (i = 0; i < n; i++)
		m->xb[i] = NAN;
	return 0;
}

/* One model file into a new handle; NULL with err set. */
static struct model *load_one(const char *path, char *err, size_t err_size)
{
	struct builder b;
	struct model *m = calloc(1, sizeof *m);
	unsigned char *buf = NULL;
	size_t size;
	int rc = -1;

	memset(&b, 0, sizeof b);
	b.best_iteration = -1;
	b.binary_base_score = 0.5f; /* XGBoost's default, for a file without one */
	if (m == NULL) {
		smlib_format(err, err_size, "%s: out of memory", path);
		return NULL;
	}
	if ((buf = (unsigned char *)smlib_slurp(path, MAX_MODEL_BYTES, "", &size, err,
						err_size)) != NULL &&
	    read_model(path, buf, size, &b, err, err_size) == 0 &&
	    finish_model(&b, m, path, err, err_size) == 0)
		rc = 0;
	free(buf);
	builder_free(&b);
	if (rc == 0 && alloc_work(m) != 0) {
		smlib_format(err, err_size, "%s: out of memory for the work arrays of %zu features",
			     path, m->n_features);
		rc = -1;
	}
	if (rc != 0) {
		model_unload(m);
		return NULL;
	}
	return m;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Loads the ensemble's other files (names[1..n), sorted) as m's members,
 * checking that they answer the same question. 0, or -1 with err set. */
static int load_members(struct model *m, const char *dir, char **names, size_t n, char *err,
			size_t err_size)
{
	size_t i;
	m->members = calloc(n, sizeof(struct model *));
	if (m->members == NULL) {
		smlib_format(err, err_size, "%s: out of memory", dir);
		return -1;
	}
	for (i = 1; i < n; i++) {
		char path[4096];
		struct model *o;
		smlib_format(path, sizeof path, "%s/%s", dir, names[i]);
		if ((o = load_one(path, err, err_size)) == NULL)
			return -1;
		m->members[m->n_members++] = o;
		if (o->obj != m->obj || o->n_features != m->n_features || o->n_groups != m->n_groups) {
			smlib_format(err, err_size, "%s: expected a model like %s/%s to average with it "
				     "(objective %s, %zu features, %zu outputs), got %s, %zu features, "
				     "%zu outputs", path, dir, names[0], m->obj->name, m->n_features,
				     m->n_groups, o->obj->name, o->n_features, o->n_groups);
			return -1;
		}
	}
	return 0;
}

/* The model files of dir, sorted by name: "xgboost-model" alone if there,
 * else every regular file not starting with '.' (an ensemble when several,
 * as SageMaker's container loads them; SAGEMAKER_INFERENCE_ENSEMBLE=false
 * takes the first only). Returns how many (at most MAX_MEMBERS), 0 with err
 * set. The names are malloc'd. */
static size_t model_files(const char *dir, char **names, char *err, size_t err_size)
{
	const char *ensemble = getenv("SAGEMAKER_INFERENCE_ENSEMBLE");
	char path[4096];
	DIR *d;
	struct dirent *e;
	size_t n = 0, i;

	smlib_format(path, sizeof path, "%s/%s", dir, MODEL_FILE);
	if (is_file(path)) {
		names[0] = strdup(MODEL_FILE);
		return names[0] != NULL;
	}
	if ((d = opendir(dir)) == NULL) {
		smlib_format(err, err_size, "%s: expected a model directory (%s)", dir, strerror(errno));
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		int rc = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (e->d_name[0] == '.' || rc < 0 || (size_t)rc >= sizeof path || !is_file(path))
			continue;
		if (n == MAX_MEMBERS) {
			smlib_format(err, err_size, "%s: expected at most %d model files, found more",
				     dir, MAX_MEMBERS);
			n = 0;
			break;
		}
		if ((names[n] = strdup(e->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	if (n == 0 && err[0] == '\0')
		smlib_format(err, err_size, "%s: expected an XGBoost model file (%s, or files written "
			     "by save_model), found none", dir, MODEL_FILE);
	if (n == 0)
		return 0;
	qsort(names, n, sizeof *names, by_name);
	if (ensemble != NULL && (strcmp(ensemble, "false") == 0 || strcmp(ensemble, "0") == 0)) {
		for (i = 1; i < n; i++)
			free(names[i]);
		n = 1;
	}
	return n;
}

const char model_plugin_name[] = "xgboost 2.0";

model *model_load(const char *dir, char *err, size_t err_size)
{
	char *names[MAX_MEMBERS], path[4096];
	struct model *m = NULL;
	struct settings set;
	size_t n, i;

	if (err_size > 0)
		err[0] = '\0';
	if (read_settings(&set, err, err_size) != 0 || (n = model_files(dir, names, err, err_size)) == 0)
		return NULL;
	smlib_format(path, sizeof path, "%s/%s", dir, names[0]);
	if ((m = load_one(path, err, err_size)) != NULL) {
		m->set = set;
		m->lib.svc = &SERVICE;
		if (n > 1 && load_members(m, dir, names, n, err, err_size) != 0) {
			model_unload(m);
			m = NULL;
		} else if (smlib_plugin_alloc(&m->lib, m->n_features, record_room(m)) != 0 ||
			   (m->slot = calloc(m->n_features ? m->n_features : 1, sizeof *m->slot)) == NULL ||
			   (m->key_values = malloc(N_KEYS * key_room(m) * sizeof(float))) == NULL) {
			smlib_format(err, err_size, "%s: out of memory for the work arrays", path);
			model_unload(m);
			m = NULL;
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	return m;
}

/* Reads the body into m->rows: 0, or the status with msg set. */
static int read_body(struct model *m, const model_request *req, char *msg, size_t size)
{
	const char *body = (const char *)req->body, *end = body + req->body_len;
	enum body_format bf = body_format(req->content_type, msg, size);

	m->rows.n = m->rows.n_entries = 0;
	if (bf == BODY_NONE)
		return 415;
	if (rows_room(&m->rows, 0)) {
		smlib_format(msg, size, "out of memory for the records");
		return 413;
	}
	if (bf == BODY_CSV)
		return read_csv(m, body, end, msg, size);
	if (bf == BODY_LIBSVM)
		return read_libsvm(m, body, end, msg, size);
	if (bf == BODY_RECORDIO)
		return read_recordio(m, body, req->body_len, msg, size);
	if (bf == BODY_NPY)
		return read_npy(m, body, req->body_len, msg, size);
	return read_json(m, bf == BODY_JSON ? SMLIB_JSON : SMLIB_JSONLINES, body, req->body_len, msg,
			 size);
}

/* The answer's format from Accept: N_ANSWERS (406) for one not served. */
static enum answer choose_answer(const struct model *m, const char *accept)
{
	return answer_named(accept, m->set.default_answer);
}

/* Predicts every row and writes the answer in format a. */
static void answer_rows(struct model *m, enum answer a, model_response *out)
{
	struct smlib_writer w;
	size_t first, n = 0, k, r, room = m->lib.record_room;
	int json_doc = a == ANS_JSON && (m->set.n_keys > 0 || !m->set.batch);

	w.out = out, w.buf = m->lib.buf, w.len = 0, w.cap = m->lib.buf_cap, w.refused = 0;
	m->sent_len = 0;
	model_response_type(out, a == ANS_CSV ? "text/csv; charset=utf-8" : ANSWER_TYPES[a]);
	if (json_doc)
		SMLIB_PUT_LIT(&w, "{\"predictions\": [");
	if (a == ANS_NPY)
		w_npy_header(m, &w);
	for (first = 0; first < m->rows.n && !w.refused; first += n) {
		n = m->rows.n - first < m->block ? m->rows.n - first : m->block;
		predict_rows(m, first, n);
		for (k = 0, r = first; k < n && !w.refused; k++, r++) {
			record_answer(m, k);
			smlib_room(&w, room);
			if (a == ANS_NPY)
				w_npy_record(m, &w);
			else if (a == ANS_RECORDIO && (m->set.n_keys > 0 || !m->set.batch))
				w_rio_record(m, &w);
			else if (m->set.n_keys > 0)
				w_selected(m, &w, a, r);
			else
				w_record(m, &w, a, r);
		}
	}
	smlib_room(&w, 4);
	if (json_doc)
		SMLIB_PUT_LIT(&w, "]}");
	else if (m->set.n_keys > 0 && a == ANS_CSV && m->set.batch)
		SMLIB_PUT_LIT(&w, "\n");
	smlib_flush(&w);
}

/*
 * A request in the container's order: a body over MAX_CONTENT_LENGTH 413;
 * an empty one 204; Content-Type 415; the body read whole (415, or 400 for
 * more features than the model); only then Accept (406); then the answer.
 */
void model_invoke(model *m, const model_request *req, model_response *out)
{
	char msg[512];
	enum answer a;
	int rc;

	if (req->body_len > m->set.max_body) {
		smlib_format(msg, sizeof msg, "expected a body of at most %lu bytes "
			     "(MAX_CONTENT_LENGTH), got %zu", m->set.max_body, req->body_len);
		model_response_error(out, 413, msg);
		return;
	}
	if (m->set.mme_accept != NULL) {
		mme_invoke(m, req, out);
		return;
	}
	if (req->body_len == 0) {
		model_response_status(out, 204);
		return;
	}
	if ((rc = read_body(m, req, msg, sizeof msg)) != 0) {
		model_response_error(out, rc, msg);
		return;
	}
	if ((a = choose_answer(m, req->accept)) == N_ANSWERS) {
		smlib_format(msg, sizeof msg, "cannot produce Accept '%.60s'; supported: text/csv, "
			     "application/json, application/jsonlines, application/x-recordio-protobuf, "
			     "application/x-npy", req->accept);
		model_response_error(out, 406, msg);
		return;
	}
	if (a == ANS_NPY && m->set.n_keys > 0) {
		model_response_error(out, 406, "cannot produce Accept 'application/x-npy' with "
				     "SAGEMAKER_INFERENCE_OUTPUT set (its keys have no NPY layout); "
				     "supported: text/csv, application/json, application/jsonlines, "
				     "application/x-recordio-protobuf");
		return;
	}
	if (a == ANS_RECORDIO && m->set.rio_cumulative && m->set.n_keys > 0 &&
	    m->rows.n > MAX_CUMULATIVE_RECORDS) {
		smlib_format(msg, sizeof msg, "SMSERVE_XGBOOST_RECORDIO=cumulative answers at most %d "
			     "records (its answer grows as their square), got %zu; unset it for one "
			     "frame per record", MAX_CUMULATIVE_RECORDS, m->rows.n);
		model_response_error(out, 413, msg);
		return;
	}
	answer_rows(m, a, out);
}

void model_unload(model *m)
{
	size_t i;
	if (m == NULL)
		return;
	for (i = 0; i < m->n_members; i++)
		model_unload(m->members[i]);
	free(m->members);
	free(m->trees);
	free(m->nodes);
	free(m->splits);
	free(m->nan_right);
	free(m->leaves);
	free(m->base);
	free(m->xb);
	free(m->block_margin);
	free(m->block_out);
	free(m->out);
	free(m->slot);
	free(m->key_values);
	free(m->sent);
	free(m->rows.start);
	free(m->rows.col);
	free(m->rows.val);
	smlib_plugin_free(&m->lib);
	free(m);
}

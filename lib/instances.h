/*
 * lib/instances.h - a pull reader of the records in a request body: the
 * plug-in asks for the next instance and gets its features, dense or
 * sparse, already checked, or a message for the 400 that names the record.
 *
 *   text/csv                one record per line, numbers separated by commas
 *   text/libsvm             one record per line: [label] index:value ...
 *   application/json        {"instances": [instance, ...]}, other members skipped;
 *                           with r.bare_arrays set (lib/invoke.h sets it for a
 *                           plug-in whose inputs have SMLIB_JSON_ARRAYS) also a
 *                           bare array: [instance, ...] (rows, as the SDK's
 *                           JSONSerializer sends a 2-D array), or [number, ...]
 *                           (one record)
 *   application/jsonlines   one instance per line
 *   application/x-npy       a 1-D array (one record) or 2-D (a record a row);
 *                           float32, float64, integers, bool (lib/npy.h)
 *   application/x-recordio-protobuf
 *                           one record per Record: its "values" feature, a
 *                           dense or sparse tensor (lib/recordio.h)
 *   instance                [number, ...] | {"features": vector}
 *                         | {"data": {"features": vector}}
 *   vector                  [number, ...]                                  dense
 *                         | {"values": [number, ...]}                       dense
 *                         | {"keys": [...], "values": [...], "shape": [n]}  sparse
 *
 * Use:
 *
 *   at load      smlib_scratch_alloc(&s, n_features)      the reader's arrays
 *   per request  smlib_reader_init(&r, SMLIB_CSV, body, len, &options, &s);
 *                while ((rc = smlib_next(&r, &x)) == 1)
 *                        ... x.values, x.keys, x.count, x.record ...
 *                rc == 0: every record was read; rc == -1: r.err holds the
 *                400 message ("record 3, field 2: expected a number, ...")
 *
 * What a feature may be is the plug-in's to say, in struct
 * smlib_read_options: whether one may be missing (XGBoost) or not (a linear
 * model), and the largest magnitude it takes. The reader keeps nothing
 * between requests but its arrays, and allocates nothing: an instance's
 * values are in the scratch arrays until the next call. lib/invoke.h wraps
 * it in a whole request.
 */
#ifndef SMSERVE_INSTANCES_H
#define SMSERVE_INSTANCES_H

#include "formats.h"
#include "npy.h"
#include "recordio.h"

/* The body formats (and answer formats: all but libsvm, see lib/invoke.h). */
enum smlib_format {
	SMLIB_JSON, SMLIB_JSONLINES, SMLIB_CSV, SMLIB_LIBSVM, SMLIB_NPY, SMLIB_RECORDIO,
	SMLIB_FORMATS
};

/* A libsvm index is read digit by digit while it stays at most this large;
 * a longer one is quoted in the message rather than read. */
#define SMLIB_MAX_INDEX (1UL << 24)

/* The smallest magnitude float32 rounds to infinity: halfway between
 * FLT_MAX and 2^128, which rounds to even, 2^128. */
#define SMLIB_FLOAT32_INFINITE 0x1.ffffffp127

/* What the plug-in accepts as a feature. */
struct smlib_read_options {
	/* 0: every feature is a finite number, and a dense instance has exactly
	 * n_features. 1: a feature may be missing, read as NaN: JSON null, an
	 * empty CSV field, nan (CSV, libsvm, any case); a dense instance may
	 * be shorter (the rest are missing), and in a sparse one a feature
	 * not given is missing rather than zero (the plug-in's to decide). */
	int missing;
	/* NULL: a number too large for a double is "out of range". Set: the
	 * features are float32 (XGBoost's are), so numbers too large for a
	 * double read as infinite (as do inf and infinity in CSV and libsvm),
	 * and a value that float32 rounds to infinity is refused with this
	 * message: "record R, field F: <range_msg>". */
	const char *range_msg;
	/* How messages name a feature index given twice in a sparse instance:
	 * "record 1, key 2: <index_noun> 7 given twice". */
	const char *index_noun;
};

/* The reader's arrays, allocated once (at load) for n_features and reused
 * by every request: nothing is allocated per request or per record. */
struct smlib_scratch {
	size_t n_features;
	double *values;        /* an instance's values */
	double *key_numbers;   /* a sparse JSON instance's keys, as read */
	size_t *keys;          /* a sparse instance's keys, checked */
	unsigned char *seen;   /* the keys given so far; all zero between records */
};

/* 0, or -1 when memory runs out (or n_features is 0). */
static SMLIB_UNUSED int smlib_scratch_alloc(struct smlib_scratch *s, size_t n_features)
{
	size_t per = 2 * sizeof(double) + sizeof(size_t) + 1;
	char *block = n_features >= 1 && n_features <= SIZE_MAX / per ? calloc(n_features, per) : NULL;
	s->n_features = n_features;
	s->values = (double *)(void *)block;
	if (block == NULL)
		return -1;
	s->key_numbers = s->values + n_features;
	s->keys = (size_t *)(void *)(s->key_numbers + n_features);
	s->seen = (unsigned char *)(s->keys + n_features);
	return 0;
}

static SMLIB_UNUSED void smlib_scratch_free(struct smlib_scratch *s)
{
	free(s->values);
	s->values = NULL;
}

/* One instance, as smlib_next hands it over. */
struct smlib_instance {
	size_t record;        /* its 1-based number in the body, for messages */
	size_t count;         /* how many values */
	double *values;       /* dense: features 0 .. count-1 (NaN: missing);
	                       * sparse: the value of each key. The plug-in may
	                       * change them: the reader reads them no more. */
	const size_t *keys;   /* NULL: dense. Else sparse: count distinct feature
	                       * indexes (0 .. n_features-1), the others not given */
};

/* Where a JSON document's reader is (and an NPY one: START, then ROWS). */
enum { SMLIB_DOC_START, SMLIB_DOC_MEMBERS, SMLIB_DOC_INSTANCES, SMLIB_DOC_ROWS, SMLIB_DOC_END };

struct smlib_reader {
	enum smlib_format format;
	const struct smlib_read_options *opt;
	size_t n;                /* features per instance */
	double limit;            /* values this large are refused (range_msg) */
	const char *p, *end;     /* CSV, libsvm: the unread rest of the body */
	struct smlib_json js;    /* JSON, JSON Lines */
	int doc;                 /* JSON: SMLIB_DOC_* */
	int member_first, element_first, have_instances;
	int bare_arrays;         /* JSON: a bare array of rows (or one row) is read too */
	double *values, *key_numbers;
	size_t *keys;
	unsigned char *seen;
	size_t record;           /* 1-based number of the record being read */
	size_t count;            /* the instance just read: its values, */
	int sparse;              /* and whether keys came with them */
	int failed;
	char err[512];           /* the 400 message */
	/* The binary formats' state, after what every format uses. */
	struct smlib_npy npy;    /* NPY: the array, once its header is read */
	size_t row;              /* NPY: the next row */
	struct smlib_rio_reader rio; /* recordio-protobuf */
};

static SMLIB_UNUSED void smlib_reader_init(struct smlib_reader *r, enum smlib_format format,
					   const char *body, size_t len,
					   const struct smlib_read_options *opt,
					   const struct smlib_scratch *s)
{
	memset(r, 0, sizeof *r);
	r->format = format;
	r->opt = opt;
	r->n = s->n_features;
	r->limit = opt->range_msg ? SMLIB_FLOAT32_INFINITE : HUGE_VAL;
	r->p = body;
	r->end = body + len;
	r->values = s->values;
	r->key_numbers = s->key_numbers;
	r->keys = s->keys;
	r->seen = s->seen;
	r->js.start = r->js.line = r->js.p = body;
	r->js.end = body + len;
	r->js.lines = format == SMLIB_JSONLINES;
	r->js.err = r->err;
	r->js.err_size = sizeof r->err;
	r->js.record = &r->record;
	r->member_first = 1;
	smlib_rio_reader_init(&r->rio, body, len, SMLIB_RIO_NEED_VALUES);
}

/* Sets the 400 message; returns -1. */
static SMLIB_UNUSED int smlib_reader_fail(struct smlib_reader *r, const char *fmt,
					  ...) SMLIB_PRINTF_LIKE(2, 3);
static SMLIB_UNUSED int smlib_reader_fail(struct smlib_reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof r->err, fmt, ap);
	va_end(ap);
	return -1;
}

/* ======================================================================== */
/* Checks every format shares                                               */
/* ======================================================================== */

/* A value past the range (with range_msg set: no other value can be);
 * what and index name its place ("field 3"). */
static SMLIB_UNUSED int smlib_out_of_range(struct smlib_reader *r, double v, const char *what,
					   size_t index)
{
	if (!(fabs(v) >= r->limit))
		return 0;
	return smlib_reader_fail(r, "record %zu, %s %zu: %s", r->record, what, index,
				 r->opt->range_msg);
}

/* Forgets the keys of the instance being read: seen is all zero again. */
static SMLIB_UNUSED void smlib_unsee(struct smlib_reader *r, size_t count)
{
	size_t i;
	for (i = 0; i < count; i++) /* O(keys), not O(n_features) */
		r->seen[r->keys[i]] = 0;
}

/* Key k (below n) of the sparse instance being read, after the `set` keys
 * in keys[]; `what` and `index` name its place in a message ("key 3"):
 * refused if given before, and then all are forgotten. */
static SMLIB_UNUSED int smlib_see(struct smlib_reader *r, size_t k, size_t set, const char *what,
				  size_t index)
{
	if (r->seen[k]) {
		smlib_unsee(r, set);
		return smlib_reader_fail(r, "record %zu, %s %zu: %s %zu given twice", r->record, what,
					 index, r->opt->index_noun, k);
	}
	r->seen[k] = 1;
	return 0;
}

/* ======================================================================== */
/* CSV                                                                       */
/* ======================================================================== */
/*
 * One record per line; LF or CRLF; the last newline is optional. Fields are
 * numbers, with spaces and tabs around them ignored, as SageMaker's
 * containers ignore them (Python's float(" 3.5 ") reads 3.5), so "5.1, 3.5"
 * typed by hand works. No quotes. With missing values allowed, an empty
 * field and nan are missing, and a record may be shorter than n_features.
 * A blank line is a record with no features and so an error: dropping it
 * would shift every later answer against its input line in a batch
 * transform join.
 */

/* Whether p, inside [.., end), is where a field ends: a comma, or a line's
 * end (LF, or CR before LF or the end of the body). */
static SMLIB_UNUSED int smlib_csv_field_end(const char *p, const char *end)
{
	return *p == ',' || *p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n'));
}

/* The usual CSV field: a number smlib_decimal_quick reads, up to a ',', the
 * line's end or the body's. Returns the end of the field, or NULL for
 * anything else (exponents, long mantissas, errors): smlib_csv_slow decides
 * those. */
static SMLIB_UNUSED const char *smlib_csv_simple(const char *p, const char *end, double *out)
{
	p = smlib_decimal_quick(p, end, out);
	if (p == NULL || (p < end && *p != ',' && !smlib_csv_field_end(p, end)))
		return NULL;
	return p;
}

/* The words that spell a missing value (with missing values allowed) or an
 * infinite one (with range_msg set, which then refuses it), in any case. */
static SMLIB_UNUSED int smlib_csv_word(const struct smlib_reader *r, const char *s, const char *e,
			  double *out)
{
	size_t n = (size_t)(e - s);
	int neg = n > 0 && *s == '-';
	if (r->opt->missing && (smlib_equal_ci(s, n, "nan") || smlib_equal_ci(s, n, "-nan"))) {
		*out = NAN;
		return 1;
	}
	if (r->opt->range_msg == NULL)
		return 0;
	if (neg || (n > 0 && *s == '+'))
		s++, n--;
	if (smlib_equal_ci(s, n, "inf") || smlib_equal_ci(s, n, "infinity")) {
		*out = neg ? -INFINITY : INFINITY;
		return 1;
	}
	return 0;
}

/* The field [s, e) that smlib_parse_number refused (rc): a word, or the
 * message. Returns e, or NULL. */
static SMLIB_UNUSED const char *smlib_csv_bad(struct smlib_reader *r, size_t field, const char *s,
				 const char *e, int rc, double *out)
{
	char got[SMLIB_SHOWN + 4];
	const char *end = e;
	smlib_trim(&s, &e);
	if (smlib_csv_word(r, s, e, out))
		return end;
	if (rc == SMLIB_NUM_RANGE && r->opt->range_msg == NULL)
		smlib_reader_fail(r, "record %zu, field %zu: number out of range, got '%s'",
				  r->record, field, smlib_shown(got, s, e));
	else if (rc == SMLIB_NUM_LONG)
		smlib_reader_fail(r, "record %zu, field %zu: expected a number of at most %d "
				  "characters", r->record, field, SMLIB_MAX_NUMBER_LEN);
	else if (s == e)
		smlib_reader_fail(r, "record %zu, field %zu: expected a number, got an empty field",
				  r->record, field);
	else
		smlib_reader_fail(r, "record %zu, field %zu: expected a number, got '%s'",
				  r->record, field, smlib_shown(got, s, e));
	return NULL;
}

/* Any other field [s, ...): empty (missing, if allowed), or a number
 * smlib_parse_number reads between spaces or tabs (a number never runs into
 * a ',', CR or LF), or a word, or the 400 says what is wrong. Returns the
 * end of the field, or NULL. Only for a field refused is the field's end
 * looked for: doing it for every field made a long line of such fields
 * quadratic. */
static SMLIB_UNUSED const char *smlib_csv_slow(struct smlib_reader *r, size_t field, const char *s,
				  const char *end, double *out)
{
	const char *p = smlib_skip_blanks(s, end), *e;
	int rc;
	if (r->opt->missing && (p == end || smlib_csv_field_end(p, end))) {
		*out = NAN;
		return p;
	}
	rc = smlib_parse_number(&p, end, SMLIB_NUM_CSV, out);
	p = smlib_skip_blanks(p, end);
	if ((rc == SMLIB_NUM_OK || (rc == SMLIB_NUM_RANGE && r->opt->range_msg != NULL)) &&
	    (p == end || smlib_csv_field_end(p, end)))
		return p;
	for (e = s; e < end && *e != ',' && *e != '\n'; e++)
		;
	if (e > s && (e == end || *e != ',') && e[-1] == '\r')
		e--; /* the CR of a CRLF */
	return smlib_csv_bad(r, field, s, e, rc, out);
}

/* Reads the record starting at p into r->values, field by field up to the
 * end of its line. Returns where the next record starts, or NULL. The
 * line's end is found by reading up to it, not searched for first: the
 * search (memchr per line) cost musl's static build 5% of a batch. */
static SMLIB_UNUSED const char *smlib_csv_record(struct smlib_reader *r, const char *p,
						 const char *end)
{
	size_t n = r->n, i = 0;
	double extra = 0, *values = r->values; /* extra: where a field past the n-th goes */
	const char *q = smlib_skip_blanks(p, end);
	if (q == end || (smlib_csv_field_end(q, end) && *q != ',')) {
		smlib_reader_fail(r, "record %zu: expected %s%zu features, got an empty line",
				  r->record, r->opt->missing ? "up to " : "", n);
		return NULL;
	}
	for (;; i++) {
		double *v = i < n ? &values[i] : &extra;
		const char *e = smlib_csv_simple(p, end, v);
		if (e == NULL) { /* the fast path's numbers (< 10^15) are all in range */
			if ((e = smlib_csv_slow(r, i + 1, p, end, v)) == NULL)
				return NULL;
			if (i < n && smlib_out_of_range(r, *v, "field", i + 1))
				return NULL;
		}
		if (e < end && *e == ',') {
			p = e + 1;
			continue;
		}
		if (r->opt->missing ? i + 1 > n : i + 1 != n) {
			smlib_reader_fail(r, "record %zu: expected %s%zu features, got %zu", r->record,
					  r->opt->missing ? "at most " : "", n, i + 1);
			return NULL;
		}
		r->count = i + 1;
		if (e < end && *e == '\r')
			e++;                   /* CRLF, or a CR that ends the body */
		return e < end ? e + 1 : end; /* past the LF */
	}
}

static SMLIB_UNUSED int smlib_csv_next(struct smlib_reader *r)
{
	if (r->p >= r->end)
		return 0;
	r->record++;
	r->sparse = 0;
	r->p = smlib_csv_record(r, r->p, r->end);
	return r->p != NULL ? 1 : -1;
}

/* ======================================================================== */
/* libsvm                                                                    */
/* ======================================================================== */
/*
 * One record per line: an optional label, then index:value pairs separated
 * by spaces or tabs, indices from 0 as XGBoost reads them: a sparse
 * instance. The label (training files have one) is ignored, as is a ranking
 * file's qid:N. A line with only a label is an instance with no features;
 * an empty line is an error, as in CSV.
 */

/* One index:value token [s, e), token number field. */
static SMLIB_UNUSED int smlib_libsvm_pair(struct smlib_reader *r, size_t field, const char *s,
					  const char *e)
{
	const char *colon = memchr(s, ':', (size_t)(e - s)), *p;
	char got[SMLIB_SHOWN + 4];
	size_t idx = 0, n = r->n;
	double v;
	int rc;

	if (colon == NULL || colon == s)
		return smlib_reader_fail(r, "record %zu, field %zu: expected index:value, got '%s'",
					 r->record, field, smlib_shown(got, s, e));
	if (colon - s == 3 && memcmp(s, "qid", 3) == 0)
		return 0;
	for (p = s; p < colon; p++) {
		if (!smlib_is_digit(*p) || idx > SMLIB_MAX_INDEX)
			return smlib_reader_fail(r, "record %zu, field %zu: expected a feature index "
						 "from 0 to %zu, got '%s'", r->record, field, n - 1,
						 smlib_shown(got, s, colon));
		idx = idx * 10 + (size_t)(*p - '0');
	}
	if (idx >= n)
		return smlib_reader_fail(r, "record %zu, field %zu: expected a feature index from 0 "
					 "to %zu, got %zu", r->record, field, n - 1, idx);
	p = colon + 1;
	rc = smlib_parse_number(&p, e, SMLIB_NUM_CSV, &v);
	if (rc == SMLIB_NUM_LONG)
		return smlib_reader_fail(r, "record %zu, field %zu: expected a number of at most %d "
					 "characters after '%zu:'", r->record, field,
					 SMLIB_MAX_NUMBER_LEN, idx);
	if (!((rc == SMLIB_NUM_OK || (rc == SMLIB_NUM_RANGE && r->opt->range_msg != NULL)) &&
	      p == e) && !smlib_csv_word(r, colon + 1, e, &v))
		return smlib_reader_fail(r, "record %zu, field %zu: expected a number after '%zu:', "
					 "got '%s'", r->record, field, idx,
					 smlib_shown(got, colon + 1, e));
	if (smlib_out_of_range(r, v, "field", field))
		return -1;
	if (smlib_see(r, idx, r->count, "field", field))
		return -1;
	r->keys[r->count] = idx; /* at most n: the keys are distinct */
	r->values[r->count++] = v;
	return 0;
}

static SMLIB_UNUSED int smlib_libsvm_record(struct smlib_reader *r, const char *p, const char *eol)
{
	size_t field = 0;
	char got[SMLIB_SHOWN + 4];
	r->count = 0;
	while (p < eol) {
		const char *s;
		p = smlib_skip_blanks(p, eol);
		if (p == eol)
			break;
		for (s = p; p < eol && !smlib_is_blank((unsigned char)*p); p++)
			;
		field++;
		if (field == 1 && memchr(s, ':', (size_t)(p - s)) == NULL) {
			const char *q = s;
			double label;
			if (smlib_parse_number(&q, p, SMLIB_NUM_CSV, &label) != SMLIB_NUM_OK || q != p)
				return smlib_reader_fail(r, "record %zu, field 1: expected a label or "
							 "index:value, got '%s'", r->record,
							 smlib_shown(got, s, p));
			continue;
		}
		if (smlib_libsvm_pair(r, field, s, p)) {
			smlib_unsee(r, r->count);
			return -1;
		}
	}
	smlib_unsee(r, r->count);
	if (field == 0) /* empty, or only spaces: as in CSV, no record at all */
		return smlib_reader_fail(r, "record %zu: expected a label or index:value pairs, got "
					 "an empty line", r->record);
	return 0;
}

static SMLIB_UNUSED int smlib_libsvm_next(struct smlib_reader *r)
{
	const char *p = r->p, *nl, *eol;
	if (p >= r->end)
		return 0;
	nl = memchr(p, '\n', (size_t)(r->end - p));
	eol = nl ? nl : r->end;
	if (eol > p && eol[-1] == '\r')
		eol--;
	r->record++;
	r->sparse = 1;
	r->p = nl ? nl + 1 : r->end;
	return smlib_libsvm_record(r, p, eol) ? -1 : 1;
}

/* ======================================================================== */
/* JSON instances                                                            */
/* ======================================================================== */
/*
 * Read with the JSON syntax functions of lib/formats.h, each vector straight
 * into the scratch arrays; nothing is built in memory. Unknown members (such
 * as "configuration") are checked for well-formedness and skipped.
 */

/* A number (or null, with missing values allowed) where a feature belongs;
 * what and index name it in messages ("field 3", "value 2", "key 1"). */
static SMLIB_UNUSED int smlib_js_feature(struct smlib_reader *r, const char *what, size_t index,
					 double *v)
{
	struct smlib_json *s = &r->js;
	const char *start = s->p;
	int rc;

	if (r->opt->missing && s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
		s->p += 4;
		if (smlib_js_at_value_end(s)) {
			*v = NAN;
			return 0;
		}
		s->p = start;
	}
	rc = smlib_parse_number(&s->p, s->end, SMLIB_NUM_JSON, v);
	if ((rc == SMLIB_NUM_OK || (rc == SMLIB_NUM_RANGE && r->opt->range_msg != NULL)) &&
	    smlib_js_at_value_end(s))
		return 0;
	return smlib_js_number_error(s, start, rc, what, index);
}

/* An array of numbers at the reader (a '['): the first cap into dst, all
 * counted. */
static SMLIB_UNUSED int smlib_js_numbers(struct smlib_reader *r, const char *what, double *dst,
					 size_t cap, size_t *count)
{
	int first = 1, rc;
	size_t i = 0;
	double v;
	r->js.p++;
	while ((rc = smlib_js_element(&r->js, &first)) == 1) {
		if (smlib_js_feature(r, what, i + 1, &v))
			return -1;
		if (i < cap)
			dst[i] = v;
		i++;
	}
	*count = i;
	return rc;
}

/* A dense vector of count values, read into r->values: as many as the
 * options allow, each in range. */
static SMLIB_UNUSED int smlib_dense(struct smlib_reader *r, size_t count)
{
	size_t n = r->n, i;
	if (r->opt->missing ? count > n : count != n)
		return smlib_reader_fail(r, "record %zu: expected %s%zu features, got %zu", r->record,
					 r->opt->missing ? "at most " : "", n, count);
	for (i = 0; i < count; i++)
		if (smlib_out_of_range(r, r->values[i], "feature", i + 1))
			return -1;
	r->count = count;
	r->sparse = 0;
	return 0;
}

/* A sparse vector, its keys read into r->key_numbers and its values into
 * r->values. Keys must be distinct feature indexes (0-based, as in
 * SageMaker's protobuf records), one for each value. */
static SMLIB_UNUSED int smlib_sparse(struct smlib_reader *r, size_t nkeys, size_t nvals)
{
	size_t n = r->n, i;
	if (nkeys > n)
		return smlib_reader_fail(r, "record %zu: expected at most %zu keys, got %zu",
					 r->record, n, nkeys);
	if (nkeys != nvals)
		return smlib_reader_fail(r, "record %zu: expected as many values as keys, got %zu "
					 "keys and %zu values", r->record, nkeys, nvals);
	for (i = 0; i < nkeys; i++) {
		double k = r->key_numbers[i];
		if (!(k >= 0 && k < (double)n && k == floor(k)))
			return smlib_reader_fail(r, "record %zu, key %zu: expected a whole number from "
						 "0 to %zu, got %.17g", r->record, i + 1, n - 1, k);
		r->keys[i] = (size_t)k;
	}
	for (i = 0; i < nkeys; i++) {
		if (smlib_out_of_range(r, r->values[i], "value", i + 1)) {
			smlib_unsee(r, i);
			return -1;
		}
		if (smlib_see(r, r->keys[i], i, "key", i + 1))
			return -1;
	}
	smlib_unsee(r, nkeys);
	r->count = nkeys;
	r->sparse = 1;
	return 0;
}

/* The object form of a vector: {"values": [...]} (dense) or with "keys"
 * (sparse); "shape", if given, must be [n_features]. Members may come in any
 * order, so keys and values are kept until the object ends. */
static SMLIB_UNUSED int smlib_js_vector_object(struct smlib_reader *r, int depth)
{
	struct smlib_json *s = &r->js;
	size_t n = r->n, nkeys = 0, nvals = 0, nshape = 0, klen;
	int first = 1, rc, have_keys = 0, have_vals = 0, have_shape = 0;
	double shape[2];
	char key[SMLIB_KEY_CAP];

	s->p++;
	while ((rc = smlib_js_member(s, &first, key, &klen)) == 1) {
		int *have = smlib_key_is(key, klen, "keys") ? &have_keys
			  : smlib_key_is(key, klen, "values") ? &have_vals
			  : smlib_key_is(key, klen, "shape") ? &have_shape : NULL;
		if (have == NULL) {
			if (smlib_js_skip(s, depth + 1))
				return -1;
			continue;
		}
		if (*have)
			return smlib_reader_fail(r, "record %zu: \"%.*s\" given twice", r->record,
						 (int)klen, key);
		*have = 1;
		if (smlib_js_peek(s) != '[')
			return smlib_reader_fail(r, "record %zu: expected \"%.*s\" to be an array",
						 r->record, (int)klen, key);
		if (have == &have_keys)
			rc = smlib_js_numbers(r, "key", r->key_numbers, n, &nkeys);
		else if (have == &have_vals)
			rc = smlib_js_numbers(r, "value", r->values, n, &nvals);
		else
			rc = smlib_js_numbers(r, "shape entry", shape, 2, &nshape);
		if (rc < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (!have_vals)
		return smlib_reader_fail(r, "record %zu: expected a \"values\" array in the features "
					 "object", r->record);
	if (have_shape && (nshape != 1 || shape[0] != (double)n))
		return smlib_reader_fail(r, "record %zu: expected \"shape\" to be [%zu]", r->record, n);
	return have_keys ? smlib_sparse(r, nkeys, nvals) : smlib_dense(r, nvals);
}

/* A feature vector: an array of numbers, or the object form. */
static SMLIB_UNUSED int smlib_js_vector(struct smlib_reader *r, int depth)
{
	struct smlib_json *s = &r->js;
	size_t count;

	if (depth > SMLIB_JSON_MAX_DEPTH)
		return smlib_js_syntax(s, "at most 64 levels of nesting");
	if (smlib_js_peek(s) == '{')
		return smlib_js_vector_object(r, depth);
	if (smlib_js_peek(s) != '[')
		return smlib_reader_fail(r, "record %zu: expected the features as an array of "
					 "numbers or an object with \"values\"", r->record);
	if (smlib_js_numbers(r, "field", r->values, r->n, &count))
		return -1;
	return smlib_dense(r, count);
}

/* {"features": vector, ...}: the CDF "data" object, whose field for the
 * Linear Learner is named "features". */
static SMLIB_UNUSED int smlib_js_data(struct smlib_reader *r, int depth)
{
	struct smlib_json *s = &r->js;
	int first = 1, rc, got = 0;
	char key[SMLIB_KEY_CAP];
	size_t klen;

	if (smlib_js_peek(s) != '{')
		return smlib_reader_fail(r, "record %zu: expected \"data\" to be an object with "
					 "\"features\"", r->record);
	s->p++;
	while ((rc = smlib_js_member(s, &first, key, &klen)) == 1) {
		if (!smlib_key_is(key, klen, "features")) {
			if (smlib_js_skip(s, depth + 1))
				return -1;
		} else if (got++) {
			return smlib_reader_fail(r, "record %zu: \"features\" given twice", r->record);
		} else if (smlib_js_vector(r, depth + 1)) {
			return -1;
		}
	}
	if (rc == 0 && !got)
		return smlib_reader_fail(r, "record %zu: expected a \"features\" member in \"data\"",
					 r->record);
	return rc;
}

/* One instance: a plain array, {"features": ...} or {"data": {...}}; other
 * members ("configuration", ids) are skipped. */
static SMLIB_UNUSED int smlib_js_instance(struct smlib_reader *r, int depth)
{
	struct smlib_json *s = &r->js;
	int first = 1, rc, got = 0;
	char key[SMLIB_KEY_CAP];
	size_t klen;

	if (depth > SMLIB_JSON_MAX_DEPTH)
		return smlib_js_syntax(s, "at most 64 levels of nesting");
	if (smlib_js_peek(s) == '[')
		return smlib_js_vector(r, depth);
	if (smlib_js_peek(s) != '{')
		return smlib_reader_fail(r, "record %zu: expected an array of numbers or an object "
					 "with \"features\" or \"data\"", r->record);
	s->p++;
	while ((rc = smlib_js_member(s, &first, key, &klen)) == 1) {
		int features = smlib_key_is(key, klen, "features");
		if (!features && !smlib_key_is(key, klen, "data")) {
			if (smlib_js_skip(s, depth + 1))
				return -1;
			continue;
		}
		if (got++)
			return smlib_reader_fail(r, "record %zu: expected one \"features\" or \"data\" "
						 "member, got two", r->record);
		if (features ? smlib_js_vector(r, depth + 1) : smlib_js_data(r, depth + 1))
			return -1;
	}
	if (rc == 0 && !got)
		return smlib_reader_fail(r, "record %zu: expected a \"features\" or \"data\" member",
					 r->record);
	return rc;
}

/* ======================================================================== */
/* JSON and JSON Lines documents                                             */
/* ======================================================================== */

/* The document's members, from where the reader left them, up to the
 * "instances" array (1, the reader at its first element) or the end of the
 * object (0, after checking what follows). */
static SMLIB_UNUSED int smlib_json_members(struct smlib_reader *r)
{
	struct smlib_json *s = &r->js;
	char key[SMLIB_KEY_CAP];
	size_t klen;
	int rc;

	while ((rc = smlib_js_member(s, &r->member_first, key, &klen)) == 1) {
		if (!smlib_key_is(key, klen, "instances")) {
			if (smlib_js_skip(s, 2))
				return -1;
			continue;
		}
		if (r->have_instances++)
			return smlib_reader_fail(r, "\"instances\" given twice");
		if (smlib_js_peek(s) != '[')
			return smlib_reader_fail(r, "expected \"instances\" to be an array");
		s->p++;
		r->element_first = 1;
		return 1;
	}
	if (rc < 0)
		return -1;
	smlib_js_ws(s);
	if (s->p < s->end)
		return smlib_js_syntax(s, "nothing after the JSON object");
	if (!r->have_instances)
		return smlib_reader_fail(r, "expected an \"instances\" array in the JSON object");
	return 0;
}

/* The end of a bare array's document: only whitespace may follow. */
static SMLIB_UNUSED int smlib_json_bare_end(struct smlib_reader *r)
{
	struct smlib_json *s = &r->js;
	r->doc = SMLIB_DOC_END;
	smlib_js_ws(s);
	if (s->p < s->end)
		return smlib_js_syntax(s, "nothing after the JSON array");
	return 0;
}

/* A bare array at the reader (a '['), as the SDK's JSONSerializer sends a
 * numpy array or a list: [[...], [...]] (or [{...}, ...]) is a record per
 * element, [1, 2, 3] one record, [] none. Returns as smlib_json_next. */
static SMLIB_UNUSED int smlib_json_bare_start(struct smlib_reader *r)
{
	struct smlib_json *s = &r->js;
	const char *open = s->p;
	int c;
	s->p++;
	smlib_js_ws(s);
	c = smlib_js_peek(s);
	s->p = open;
	if (c == '[' || c == '{') { /* rows: the elements are instances */
		s->p++;
		r->element_first = 1;
		r->doc = SMLIB_DOC_ROWS;
		return 1;
	}
	if (c == ']') {             /* no records */
		s->p++;
		smlib_js_ws(s);
		s->p++;
		return smlib_json_bare_end(r);
	}
	r->record = 1;              /* one record: the array is its features */
	if (smlib_js_vector(r, 1))
		return -1;
	return smlib_json_bare_end(r) ? -1 : 2;
}

/* application/json: {"instances": [...]}, other members skipped (or, with
 * bare_arrays, a bare array). */
static SMLIB_UNUSED int smlib_json_next(struct smlib_reader *r)
{
	struct smlib_json *s = &r->js;
	int rc;

	if (r->doc == SMLIB_DOC_START) {
		smlib_js_ws(s);
		if (r->bare_arrays && smlib_js_peek(s) == '[') {
			rc = smlib_json_bare_start(r);
			if (rc != 1)
				return rc == 2 ? 1 : rc;
		} else if (smlib_js_peek(s) != '{') {
			return smlib_js_syntax(s, r->bare_arrays ? "a JSON object with an \"instances\" "
					       "array, or an array of rows" :
					       "a JSON object with an \"instances\" array");
		} else {
			s->p++;
			r->doc = SMLIB_DOC_MEMBERS;
		}
	}
	if (r->doc == SMLIB_DOC_ROWS) {
		rc = smlib_js_element(s, &r->element_first);
		if (rc == 1) {
			r->record++;
			return smlib_js_instance(r, 2) ? -1 : 1;
		}
		return rc < 0 ? -1 : smlib_json_bare_end(r);
	}
	for (;;) {
		if (r->doc == SMLIB_DOC_INSTANCES) {
			rc = smlib_js_element(s, &r->element_first);
			if (rc == 1) {
				r->record++;
				return smlib_js_instance(r, 3) ? -1 : 1;
			}
			if (rc < 0)
				return -1;
			r->doc = SMLIB_DOC_MEMBERS; /* more members may follow the array */
		}
		if (r->doc == SMLIB_DOC_END)
			return 0;
		rc = smlib_json_members(r);
		if (rc <= 0) {
			r->doc = SMLIB_DOC_END;
			return rc;
		}
		r->doc = SMLIB_DOC_INSTANCES;
	}
}

/* application/jsonlines: one instance per line, in any of the instance
 * forms; LF or CRLF; the last newline is optional. As for CSV, a blank line
 * is an error rather than something to skip, so that N lines in are always
 * N lines out. */
static SMLIB_UNUSED int smlib_jsonlines_next(struct smlib_reader *r)
{
	struct smlib_json *s = &r->js;

	if (s->p >= s->end)
		return 0;
	r->record++;
	s->line = s->p;
	smlib_js_ws(s);
	if (s->p == s->end || *s->p == '\n')
		return smlib_reader_fail(r, "record %zu: expected a JSON object, got an empty line",
					 r->record);
	if (smlib_js_instance(r, 1))
		return -1;
	smlib_js_ws(s);
	if (s->p < s->end) {
		if (*s->p != '\n')
			return smlib_js_syntax(s, "the end of the line after the JSON value");
		s->p++;
	}
	return 1;
}

/* ======================================================================== */
/* NPY and recordio-protobuf                                                 */
/* ======================================================================== */
/*
 * The binary formats: lib/npy.h and lib/recordio.h check the bytes (a
 * malformed header, varint, length or tensor is a 400 naming its byte
 * offset); here their numbers become instances under the same rules as
 * the text formats' (how many, missing, in range).
 */

/* One value of a binary body, feature (or value) index of the record
 * being read: a NaN is missing if the plug-in allows it, an infinity never
 * a feature; a finite value in range (float32's, with range_msg). */
static SMLIB_UNUSED int smlib_binary_value(struct smlib_reader *r, double v, const char *what,
					   size_t index)
{
	if (isnan(v) && r->opt->missing)
		return 0;
	if (!isfinite(v))
		return smlib_reader_fail(r, "record %zu, %s %zu: expected a finite number, got %s",
					 r->record, what, index, isnan(v) ? "nan"
					 : v > 0 ? "inf" : "-inf");
	return r->opt->range_msg ? smlib_out_of_range(r, v, what, index) : 0;
}

/* application/x-npy: the header read at the first call, then a record a
 * row (a 1-D array is one row). */
static SMLIB_UNUSED int smlib_npy_next(struct smlib_reader *r)
{
	struct smlib_npy npy; /* a copy, which r's messages cannot touch (for the analyzer) */
	size_t i, cols;
	if (r->doc == SMLIB_DOC_START) {
		if (smlib_npy_read(&r->npy, r->p, (size_t)(r->end - r->p), r->err, sizeof r->err))
			return -1;
		r->doc = SMLIB_DOC_ROWS;
	}
	if (r->row >= r->npy.rows)
		return 0;
	npy = r->npy;
	/* Never so (smlib_npy_read set it): said for clang's analyzer, which
	 * loses the item size and sees smlib_npy_value shift by -1. */
	if (npy.item_size < 1 || npy.item_size > 8)
		return smlib_reader_fail(r, "npy: an item size of %zu bytes", npy.item_size);
	r->record = ++r->row;
	cols = r->npy.cols;
	if (r->opt->missing ? cols > r->n : cols != r->n)
		return smlib_reader_fail(r, "record %zu: expected %s%zu features, got %zu", r->record,
					 r->opt->missing ? "at most " : "", r->n, cols);
	for (i = 0; i < cols; i++)
		r->values[i] = smlib_npy_value(&npy, r->row - 1, i);
	for (i = 0; i < cols; i++)
		if (smlib_binary_value(r, r->values[i], "field", i + 1))
			return -1;
	r->count = cols;
	r->sparse = 0;
	return 1;
}

/* A sparse 'values' tensor: keys are feature indexes, each given once. */
static SMLIB_UNUSED int smlib_rio_sparse(struct smlib_reader *r, struct smlib_rio_iter *it)
{
	uint64_t key;
	double v;
	size_t i = 0;
	r->count = 0;
	while (smlib_rio_iter_next(it, &key, &v)) {
		i++;
		if (key >= r->n) {
			smlib_unsee(r, r->count);
			return smlib_reader_fail(r, "record %zu, key %zu: expected a feature index "
						 "from 0 to %zu, got %llu", r->record, i, r->n - 1,
						 (unsigned long long)key);
		}
		if (smlib_binary_value(r, v, "value", i)) {
			smlib_unsee(r, r->count);
			return -1;
		}
		if (smlib_see(r, (size_t)key, r->count, "key", i)) /* it forgets them all */
			return -1;
		r->keys[r->count] = (size_t)key; /* at most n: the keys are distinct */
		r->values[r->count++] = v;
	}
	smlib_unsee(r, r->count);
	r->sparse = 1;
	return 0;
}

/* application/x-recordio-protobuf: a record per Record, its features the
 * 'values' tensor (dense: one value per feature; sparse: keys and values). */
static SMLIB_UNUSED int smlib_recordio_next(struct smlib_reader *r)
{
	struct smlib_rio_record rec;
	struct smlib_rio_iter it;
	uint64_t key;
	double v;
	size_t i = 0;
	int rc = smlib_rio_next(&r->rio, &rec, r->err, sizeof r->err);
	if (rc <= 0)
		return rc;
	r->record = rec.index;
	smlib_rio_iter_init(&it, &rec.values);
	if (rec.values.keys != NULL)
		return smlib_rio_sparse(r, &it) ? -1 : 1;
	if (r->opt->missing ? rec.values.n_values > r->n : rec.values.n_values != r->n)
		return smlib_reader_fail(r, "record %zu: expected %s%zu features, got %zu", r->record,
					 r->opt->missing ? "at most " : "", r->n,
					 rec.values.n_values);
	while (smlib_rio_iter_next(&it, &key, &v)) {
		if (smlib_binary_value(r, v, "field", i + 1))
			return -1;
		r->values[i++] = v;
	}
	r->count = i;
	r->sparse = 0;
	return 1;
}

/* ======================================================================== */
/* The reader                                                                */
/* ======================================================================== */

/* The next instance into *x: 1, or 0 past the last one, or -1 with r->err
 * set (and -1 from then on). */
static SMLIB_UNUSED int smlib_next(struct smlib_reader *r, struct smlib_instance *x)
{
	int rc;
	if (r->failed)
		return -1;
	switch (r->format) {
	case SMLIB_CSV: rc = smlib_csv_next(r); break;
	case SMLIB_LIBSVM: rc = smlib_libsvm_next(r); break;
	case SMLIB_JSON: rc = smlib_json_next(r); break;
	case SMLIB_NPY: rc = smlib_npy_next(r); break;
	case SMLIB_RECORDIO: rc = smlib_recordio_next(r); break;
	default: rc = smlib_jsonlines_next(r); break;
	}
	if (rc <= 0) {
		r->failed = rc < 0;
		return rc;
	}
	x->record = r->record;
	x->count = r->count;
	x->values = r->values;
	x->keys = r->sparse ? r->keys : NULL;
	return 1;
}

#endif

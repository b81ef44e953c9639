/*
 * model.c - smserve's default model: a linear learner that speaks SageMaker's
 * common data formats.
 *
 * What it computes. One linear function per output, z = W (x - mean) / scale
 * + b, then one of four links:
 *
 *   regression    score = z                       (LinearRegression, Ridge)
 *   binary        score = 1 / (1 + e^-z)          (LogisticRegression, 2 classes)
 *   multinomial   scores = softmax(z)             (LogisticRegression, 3+ classes)
 *   ovr           scores = sigmoid(z) / sum       (one-vs-rest, liblinear)
 *
 * in double precision and in scikit-learn's order of operations, so a model
 * exported by tools/export_linear.py answers here what predict and
 * predict_proba answered in Python (labels equal, scores within ~1e-15).
 *
 * Where the model comes from. model_load reads one text file,
 * <model-dir>/linear-model.txt ("smserve-linear-model 1", specified in
 * docs/model-format.md). Every problem is reported as "file:line: expected
 * ...", and the server then exits non-zero.
 *
 * What it speaks: SageMaker's "common data formats for inference" in, the
 * Linear Learner's response formats out.
 *
 *   in   text/csv                one record per line, LF or CRLF (also when
 *                                Content-Type is missing)
 *        application/json        {"instances": [...]}, each instance
 *                                {"features": [...]}, {"data": {"features":
 *                                {"values": [...]}}}, sparse {"keys", "shape",
 *                                "values"}, or a plain array [...]
 *        application/jsonlines   one instance per line
 *   out  application/json        {"predictions": [{"score": ..,
 *                                "predicted_label": ..}, ...]}
 *        application/jsonlines   one {"score": .., ...} per line
 *        text/csv                one label (or regression value) per line
 *
 * The answer's type comes from Accept (q-values honoured); a missing Accept
 * or * / * (spaced here, as the three bytes would end this comment) means
 * SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, else JSON. Numbers are
 * written as printf's "%.17g" would, so they read back as the same doubles.
 *
 * How a request flows. The body is read once, front to back: each record is
 * parsed into one scratch vector, predicted, and its answer appended to a
 * 64 KiB output buffer that goes to the server in large writes. Nothing is
 * allocated per record, so a 1,000,000-record batch costs what its bytes
 * cost. A bad record anywhere turns the whole answer into a 400 naming the
 * record and field (model_response_error discards what was written): never
 * a partial answer. Unsupported types get 415 and 406 naming the supported
 * ones.
 *
 * Sections, in reading order: limits; the model; small helpers; numbers
 * (reading and writing); loading the model file; prediction; the output
 * buffer; content negotiation; one request; CSV; JSON; JSON Lines; the
 * three plug-in functions.
 */
#include "model.h"
#include "lib/formats.h"  /* numbers, JSON, Content-Type, Accept, the answer buffer, files */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ======================================================================== */
/* Limits                                                                    */
/* ======================================================================== */

#define MODEL_FILE "linear-model.txt"     /* the one file in the model directory */
#define FORMAT_NAME "smserve-linear-model" /* first word of the file */
#define FORMAT_VERSION 1                   /* the version this file reads */

#define MAX_MODEL_BYTES (1024UL * 1024 * 1024) /* 1 GiB: far past any linear model */
#define MAX_FEATURES 16777216UL  /* 2^24: 128 MiB per weight row already */
#define MAX_LABELS 10000         /* classes; also bounds the duplicate check */
#define MAX_LABEL_LEN 64         /* bytes of one label, as in docs/model-format.md */
#define OUT_CHUNK 65536          /* bytes per model_response_write */
#define NUMBER_TEXT 32           /* room for "%.17g" of any double (24 + slack) */

/* ======================================================================== */
/* The model                                                                 */
/* ======================================================================== */

enum kind { KIND_REGRESSION, KIND_BINARY, KIND_MULTINOMIAL, KIND_OVR };
static const char *const KIND_NAME[] = {"regression", "binary", "multinomial", "ovr"};

/* The three media types, as requests name them and as answers are labelled. */
enum format { FMT_JSON, FMT_JSONLINES, FMT_CSV, FMT_COUNT };
static const char *const FORMAT_TYPE[FMT_COUNT] = {
	"application/json", "application/jsonlines", "text/csv"};
#define SUPPORTED_TYPES "application/json, application/jsonlines, text/csv"

/* A class label, rendered once at load in both spellings an answer uses. */
struct label {
	char csv[MAX_LABEL_LEN + 1];  /* as written in the model file */
	char json[MAX_LABEL_LEN + 3]; /* a number as is, anything else quoted */
	char csv_line[MAX_LABEL_LEN + 2]; /* csv and "\n", zero-padded: a CSV answer */
	size_t csv_len, json_len;
};

struct model {
	enum kind kind;
	size_t n_features;   /* inputs per record */
	size_t n_outputs;    /* weight rows: 1 (regression, binary) or one per class */
	size_t n_labels;     /* 0 for regression */
	double *weights;     /* n_outputs x n_features, row-major */
	double *intercept;   /* n_outputs */
	double *mean;        /* n_features, or NULL: inputs are not standardized */
	double *scale;       /* n_features when mean is set; all > 0 */
	struct label *labels;
	enum format default_accept; /* for Accept missing or * / * */
	size_t max_record_out;      /* bytes one record's answer can take */
	double *scratch;            /* every request's work arrays: see job_init */
	size_t out_cap;             /* bytes of the answer buffer at its end */
};

/* ======================================================================== */
/* Numbers                                                                   */
/* ======================================================================== */
/* Reading them: parse_number in lib/formats.h.
 *
 * Writing numbers: exactly what printf's "%.17g" writes (17 significant
 * digits always read back as the same double, so clients can compare exactly
 * what was computed), without printf's cost, which is most of the time of a
 * JSON answer. v = m * 2^be with m < 2^53; its 17 digits are
 *
 *   D = round(v * 10^s),  s = 16 - floor(log10 v),  10^16 <= D < 10^17
 *     = round(m * 5^s * 2^(s + be))
 *
 * m * 5^s is exact in 128 bits (two 64-bit halves) for s <= 32, so D is
 * rounded exactly (half to even, as glibc does) for 1e-16 <= |v| < 2^64,
 * which holds nearly every probability and regression value. Outside that
 * range (and for subnormals) snprintf does it.
 */

static const uint64_t POW5[28] = {
	1ULL, 5ULL, 25ULL, 125ULL, 625ULL, 3125ULL, 15625ULL, 78125ULL, 390625ULL,
	1953125ULL, 9765625ULL, 48828125ULL, 244140625ULL, 1220703125ULL, 6103515625ULL,
	30517578125ULL, 152587890625ULL, 762939453125ULL, 3814697265625ULL,
	19073486328125ULL, 95367431640625ULL, 476837158203125ULL, 2384185791015625ULL,
	11920928955078125ULL, 59604644775390625ULL, 298023223876953125ULL,
	1490116119384765625ULL, 7450580596923828125ULL};

/* The 128-bit product a * b as two 64-bit halves. */
static void mul_64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo)
{
	uint64_t a0 = a & 0xffffffffU, a1 = a >> 32, b0 = b & 0xffffffffU, b1 = b >> 32;
	uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffU) + (p10 & 0xffffffffU);
	*lo = (mid << 32) | (p00 & 0xffffffffU);
	*hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* (hi:lo) / 2^k rounded half to even, for 1 <= k <= 127; UINT64_MAX if the
 * quotient does not fit in 64 bits (never for the callers' operands). */
static uint64_t shift_round(uint64_t hi, uint64_t lo, int k)
{
	uint64_t q, rh, rl, hh, hl; /* quotient, remainder and half, as hi:lo */
	if (k < 64) {
		if (hi >> k)
			return UINT64_MAX;
		q = (lo >> k) | (hi << (64 - k));
		rh = 0, rl = lo & ((1ULL << k) - 1);
		hh = 0, hl = 1ULL << (k - 1);
	} else if (k == 64) {
		q = hi;
		rh = 0, rl = lo;
		hh = 0, hl = 1ULL << 63;
	} else {
		q = hi >> (k - 64);
		rh = hi & ((1ULL << (k - 64)) - 1), rl = lo;
		hh = 1ULL << (k - 65), hl = 0;
	}
	if (rh > hh || (rh == hh && rl > hl) || (rh == hh && rl == hl && (q & 1)))
		q++;
	return q;
}

/* The 17 digits D and decimal exponent e of v > 0 (v = D * 10^(e-16)),
 * correctly rounded; -1 outside the range where 128 bits are enough. */
static int digits17(double v, uint64_t *digits, int *exp10)
{
	uint64_t bits, m, hi, lo, d;
	int be, e, x;

	memcpy(&bits, &v, sizeof bits);
	be = (int)(bits >> 52 & 0x7ff);
	if (be == 0 || be == 0x7ff)
		return -1; /* subnormal, or not finite */
	m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
	be -= 1075;
	/* floor(log10(2^(be+52))) = floor(x * 0.30103): 78913 / 2^18 is
	 * log10(2) closely enough for |x| < 1000; it is floor(log10 v) or one
	 * less, and the loop below steps up when D comes out with 18 digits. */
	x = (be + 52) * 78913;
	e = x >= 0 ? x / 262144 : -((-x + 262143) / 262144);
	for (;; e++) {
		int s = 16 - e, t = s + be;
		if (s > 32 || be > 11)
			return -1;
		if (s >= 0) {
			mul_64(m, POW5[s > 27 ? 27 : s], &hi, &lo);
			if (s > 27) { /* times 5^(s-27) more: a 128 x 64 product */
				uint64_t h2, l2;
				mul_64(lo, POW5[s - 27], &h2, &l2);
				hi = hi * POW5[s - 27] + h2;
				lo = l2;
			}
			if (t >= 0) {
				if (hi != 0 || t >= 64 || lo > (UINT64_MAX >> t))
					return -1;
				d = lo << t;
			} else {
				d = shift_round(hi, lo, -t);
			}
		} else { /* v >= 10^17: an integer below 2^64, divided by 10^-s */
			uint64_t vi = m << be, p = 10, r;
			for (x = 1; x < -s; x++)
				p *= 10;
			d = vi / p, r = vi % p;
			if (r > p / 2 || (r == p / 2 && (d & 1)))
				d++;
		}
		if (d < 100000000000000000ULL)
			break;
	}
	if (d < 10000000000000000ULL)
		return -1; /* cannot happen; printf will know */
	*digits = d;
	*exp10 = e;
	return 0;
}

/* Writes the n low decimal digits of v into out[0..n), two at a time. */
static void put_digits(char *out, uint32_t v, int n)
{
	static const char pairs[] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	for (; n >= 2; n -= 2, v /= 100)
		memcpy(out + n - 2, pairs + 2 * (size_t)(v % 100), 2);
	if (n == 1)
		out[0] = (char)('0' + v % 10);
}

/* Writes v (finite) as printf("%.17g") would; returns the length (< 32). */
static size_t format_double(char *buf, double v)
{
	char dig[17], *p = buf;
	uint64_t d;
	int e, i, nd = 17;

	if (v == 0 || digits17(fabs(v), &d, &e) != 0) {
		int n = snprintf(buf, NUMBER_TEXT, "%.17g", v);
		return n > 0 ? (size_t)n : 0;
	}
	if (v < 0)
		*p++ = '-';
	put_digits(dig, (uint32_t)(d / 100000000), 9); /* two 32-bit halves: */
	put_digits(dig + 9, (uint32_t)(d % 100000000), 8); /* cheaper than 64-bit */
	while (nd > 1 && dig[nd - 1] == '0')
		nd--; /* %g drops trailing zeros */
	if (e < -4 || e >= 17) { /* d.ddde+XX */
		int ae = e < 0 ? -e : e;
		*p++ = dig[0];
		if (nd > 1) {
			*p++ = '.';
			memcpy(p, dig + 1, (size_t)nd - 1);
			p += nd - 1;
		}
		*p++ = 'e';
		*p++ = e < 0 ? '-' : '+';
		if (ae >= 100)
			*p++ = (char)('0' + ae / 100);
		*p++ = (char)('0' + ae / 10 % 10);
		*p++ = (char)('0' + ae % 10);
	} else if (e >= 0) { /* ddd.ddd */
		for (i = 0; i <= e; i++)
			*p++ = (char)(i < nd ? dig[i] : '0');
		if (nd > e + 1) {
			*p++ = '.';
			memcpy(p, dig + e + 1, (size_t)(nd - e - 1));
			p += nd - e - 1;
		}
	} else { /* 0.000ddd */
		*p++ = '0';
		*p++ = '.';
		for (i = 0; i < -e - 1; i++)
			*p++ = '0';
		memcpy(p, dig, (size_t)nd);
		p += nd;
	}
	return (size_t)(p - buf);
}

/* ======================================================================== */
/* Loading the model file                                                    */
/* ======================================================================== */
/*
 * The file is read whole, then line by line. Blank lines and lines whose
 * first visible character is '#' are skipped everywhere. The other lines come
 * in a fixed order, each one keyword and its values:
 *
 *   smserve-linear-model 1
 *   kind multinomial                (regression | binary | multinomial | ovr)
 *   features 4
 *   labels 0 1 2                    (classifiers only)
 *   mean ...  / scale ...           (optional, together: n_features each)
 *   intercept ...                   (n_outputs numbers)
 *   weights ...                     (n_outputs lines of n_features numbers)
 *   end
 *
 * A fixed order makes every message precise: at each line there is exactly
 * one thing (or two) the reader expects, and that is what it says.
 */

struct reader {
	const char *path;        /* for messages */
	const char *p, *end;     /* the unread rest of the file */
	const char *line, *eol;  /* the current significant line, without EOL */
	const char *cur;         /* scanning position within it */
	unsigned long line_no;   /* its number, 1-based */
	unsigned long next_no;   /* number of the line at p */
	int have_line;           /* line is loaded and not yet consumed */
	char *err;
	size_t err_size;
};

static int load_error(struct reader *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
static int load_error(struct reader *r, const char *fmt, ...)
{
	char msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	format_msg(r->err, r->err_size, "%s:%lu: %s", r->path,
		   r->have_line ? r->line_no : r->next_no, msg);
	return -1;
}

/* Loads the next significant line (skipping blanks and comments) unless one
 * is loaded already. Returns 1, or 0 at the end of the file. */
static int reader_line(struct reader *r)
{
	while (!r->have_line && r->p < r->end) {
		const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
		const char *s = r->p, *e = nl ? nl : r->end;
		r->line_no = r->next_no++;
		r->p = nl ? nl + 1 : r->end;
		if (e > s && e[-1] == '\r')
			e--;
		trim(&s, &e);
		if (s == e || *s == '#')
			continue;
		r->line = r->cur = s;
		r->eol = e;
		r->have_line = 1;
	}
	return r->have_line;
}

/* The next space-separated word of the current line; returns its length
 * (0 at the end of the line). */
static size_t reader_word(struct reader *r, const char **w)
{
	const char *p = r->cur;
	while (p < r->eol && is_space((unsigned char)*p))
		p++;
	*w = p;
	while (p < r->eol && !is_space((unsigned char)*p))
		p++;
	r->cur = p;
	return (size_t)(p - *w);
}

/* The first word of the next significant line, without consuming the line;
 * "" at the end of the file. */
static size_t reader_peek(struct reader *r, const char **w)
{
	size_t n;
	if (!reader_line(r)) {
		*w = "";
		return 0;
	}
	r->cur = r->line;
	n = reader_word(r, w);
	r->cur = r->line;
	return n;
}

/* What the current line holds, for "got ..." in messages: the line in
 * quotes, or "the end of the file". */
static const char *reader_got(struct reader *r, char buf[SHOWN_TOKEN + 6])
{
	size_t n;
	if (!r->have_line)
		return "the end of the file";
	buf[0] = '\'';
	n = 1 + strlen(shown(buf + 1, r->line, r->eol));
	buf[n] = '\'';
	buf[n + 1] = '\0';
	return buf;
}

/* Starts the line that must begin with keyword; describes it as `what`. */
static int reader_expect(struct reader *r, const char *keyword, const char *what)
{
	const char *w;
	char got[SHOWN_TOKEN + 6];
	size_t n = reader_peek(r, &w);
	if (!r->have_line || !equal_word(w, n, keyword))
		return load_error(r, "expected %s, got %s", what, reader_got(r, got));
	reader_word(r, &w);
	return 0;
}

/* The line must hold no more words. */
static int reader_done(struct reader *r, const char *what)
{
	const char *w;
	char got[SHOWN_TOKEN + 4];
	size_t n = reader_word(r, &w);
	if (n > 0)
		return load_error(r, "expected only %s, got '%s' after it", what,
				  shown(got, w, w + n));
	r->have_line = 0;
	return 0;
}

/* A whole number from 1 to max, in plain digits. */
static int reader_count(struct reader *r, const char *what, unsigned long max, size_t *out)
{
	const char *w;
	char got[SHOWN_TOKEN + 4];
	size_t n = reader_word(r, &w), i;
	unsigned long v = 0;
	for (i = 0; i < n && is_digit(w[i]) && v <= max; i++)
		v = v * 10 + (unsigned long)(w[i] - '0');
	if (n == 0 || i < n || v < 1 || v > max)
		return load_error(r, "expected %s, a whole number from 1 to %lu, got '%s'",
				  what, max, n ? shown(got, w, w + n) : "nothing");
	*out = (size_t)v;
	return reader_done(r, what);
}

/* Exactly n finite numbers after the keyword; positive ones if positive. */
static int reader_numbers(struct reader *r, const char *keyword, double *dst, size_t n,
			  int positive)
{
	const char *w;
	char got[SHOWN_TOKEN + 4];
	size_t i, len;
	for (i = 0; i < n; i++) {
		const char *p;
		len = reader_word(r, &w);
		if (len == 0)
			return load_error(r, "expected %zu numbers after '%s', got %zu",
					  n, keyword, i);
		p = w;
		if (parse_number(&p, w + len, NUM_CSV, &dst[i]) != NUM_OK || p != w + len)
			return load_error(r, "expected a finite number as value %zu of '%s', got '%s'",
					  i + 1, keyword, shown(got, w, w + len));
		if (positive && !(dst[i] > 0))
			return load_error(r, "expected a positive number as value %zu of '%s', got '%s'",
					  i + 1, keyword, shown(got, w, w + len));
	}
	len = reader_word(r, &w);
	if (len > 0)
		return load_error(r, "expected %zu numbers after '%s', got more", n, keyword);
	r->have_line = 0;
	return 0;
}

/* Whether a label spells a JSON number (then JSON answers carry it bare, so
 * iris's 0, 1, 2 arrive as numbers, as from the Linear Learner). */
static int is_json_number(const char *s, size_t n)
{
	const char *p = s;
	double v;
	return parse_number(&p, s + n, NUM_JSON, &v) != NUM_BAD && p == s + n;
}

/* "labels" and one word per class: 1-64 visible ASCII bytes without '"',
 * '\' or ',', so that a label needs no escaping in CSV or JSON. */
static int reader_labels(struct reader *r, struct model *m)
{
	const char *w;
	char got[SHOWN_TOKEN + 4];
	const char *start;
	size_t n, i, k = 0;

	if (reader_expect(r, "labels", "'labels' and one label per class"))
		return -1;
	start = r->cur;
	while (reader_word(r, &w) > 0)
		k++;
	if (k < 2 || k > MAX_LABELS || (m->kind == KIND_BINARY && k != 2))
		return load_error(r, "expected %s labels after 'labels', got %zu",
				  m->kind == KIND_BINARY ? "2" : "2 to 10000", k);
	m->labels = calloc(k, sizeof *m->labels);
	if (m->labels == NULL)
		return load_error(r, "expected memory for %zu labels (out of memory)", k);
	m->n_labels = k;
	r->cur = start;
	for (i = 0; i < k; i++) {
		struct label *l = &m->labels[i];
		size_t j;
		n = reader_word(r, &w);
		for (j = 0; j < n; j++)
			if (w[j] < 0x21 || w[j] > 0x7e || w[j] == '"' || w[j] == '\\' || w[j] == ',')
				break;
		if (n > MAX_LABEL_LEN || j < n)
			return load_error(r, "expected label %zu to be 1-64 visible ASCII characters "
					  "other than '\"', '\\' and ',', got '%s'",
					  i + 1, shown(got, w, w + n));
		memcpy(l->csv, w, n);
		memcpy(l->csv_line, w, n);
		l->csv_line[n] = '\n';
		l->csv_len = n;
		if (is_json_number(w, n)) {
			memcpy(l->json, w, n);
			l->json_len = n;
		} else {
			l->json[0] = '"';
			memcpy(l->json + 1, w, n);
			l->json[n + 1] = '"';
			l->json_len = n + 2;
		}
		for (j = 0; j < i; j++)
			if (m->labels[j].csv_len == n && memcmp(m->labels[j].csv, w, n) == 0)
				return load_error(r, "expected distinct labels, got '%s' twice",
						  l->csv);
	}
	r->have_line = 0;
	return 0;
}

/* The first line: the format's name and version. */
static int reader_header(struct reader *r)
{
	const char *w;
	char got[SHOWN_TOKEN + 4];
	size_t n;
	if (reader_expect(r, FORMAT_NAME, "'" FORMAT_NAME " 1' (the first line of a file "
			  "written by tools/export_linear.py)"))
		return -1;
	n = reader_word(r, &w);
	if (!equal_word(w, n, "1"))
		return load_error(r, "expected format version %d, got '%s' (this smserve reads "
				  "version %d only)", FORMAT_VERSION,
				  n ? shown(got, w, w + n) : "nothing", FORMAT_VERSION);
	return reader_done(r, "the version");
}

static int reader_kind(struct reader *r, struct model *m)
{
	const char *w;
	char got[SHOWN_TOKEN + 4];
	size_t n, k;
	if (reader_expect(r, "kind", "'kind' and regression, binary, multinomial or ovr"))
		return -1;
	n = reader_word(r, &w);
	for (k = 0; k < sizeof KIND_NAME / sizeof KIND_NAME[0]; k++)
		if (equal_word(w, n, KIND_NAME[k])) {
			m->kind = (enum kind)k;
			return reader_done(r, "the kind");
		}
	return load_error(r, "expected regression, binary, multinomial or ovr after 'kind', "
			  "got '%s'", n ? shown(got, w, w + n) : "nothing");
}

/* Allocates the arrays once the shape is known. The shape was bounded by
 * MAX_FEATURES and MAX_LABELS; the file size bounds it again, since every
 * weight takes at least two bytes, so a short file cannot claim gigabytes. */
static int reader_alloc(struct reader *r, struct model *m, size_t file_size,
			unsigned long features_line)
{
	size_t weights = m->n_outputs * m->n_features;
	if (weights > file_size / 2) {
		format_msg(r->err, r->err_size, "%s:%lu: expected %zu features, but the file "
			   "(%zu bytes) is too short to hold %zu weight lines of %zu numbers",
			   r->path, features_line, m->n_features, file_size, m->n_outputs,
			   m->n_features);
		return -1;
	}
	/* Never malloc(0): reader_count and reader_labels refuse zero counts, which
	 * clang's analyzer loses across those calls.
	 * NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI) */
	m->weights = malloc(weights * sizeof *m->weights);
	m->intercept = malloc(m->n_outputs * sizeof *m->intercept);
	if (m->weights == NULL || m->intercept == NULL)
		return load_error(r, "expected memory for %zu weights (out of memory)", weights);
	return 0;
}

/* Reads the body of the file after the header, in the fixed order. */
static int read_model(struct reader *r, struct model *m, size_t file_size)
{
	const char *w;
	char got[SHOWN_TOKEN + 6];
	size_t n, k;
	unsigned long features_line;

	if (reader_header(r) || reader_kind(r, m))
		return -1;
	if (reader_expect(r, "features", "'features' and the number of features"))
		return -1;
	features_line = r->line_no;
	if (reader_count(r, "the number of features", MAX_FEATURES, &m->n_features))
		return -1;
	if (m->kind != KIND_REGRESSION && reader_labels(r, m))
		return -1;
	m->n_outputs = m->kind == KIND_REGRESSION || m->kind == KIND_BINARY ? 1 : m->n_labels;
	if (reader_alloc(r, m, file_size, features_line))
		return -1;

	n = reader_peek(r, &w);
	if (equal_word(w, n, "mean")) {
		m->mean = malloc(m->n_features * sizeof *m->mean);
		m->scale = malloc(m->n_features * sizeof *m->scale);
		if (m->mean == NULL || m->scale == NULL)
			return load_error(r, "expected memory for mean and scale (out of memory)");
		reader_word(r, &w);
		if (reader_numbers(r, "mean", m->mean, m->n_features, 0) ||
		    reader_expect(r, "scale", "'scale' and one positive number per feature") ||
		    reader_numbers(r, "scale", m->scale, m->n_features, 1))
			return -1;
	}
	if (reader_expect(r, "intercept", m->mean ? "'intercept' and one number per output"
			  : "'mean' (optional) or 'intercept' and one number per output") ||
	    reader_numbers(r, "intercept", m->intercept, m->n_outputs, 0))
		return -1;
	for (k = 0; k < m->n_outputs; k++) {
		char what[96];
		format_msg(what, sizeof what, "'weights' line %zu of %zu (one number per feature)",
			   k + 1, m->n_outputs);
		if (reader_expect(r, "weights", what) ||
		    reader_numbers(r, "weights", m->weights + k * m->n_features, m->n_features, 0))
			return -1;
	}
	if (reader_expect(r, "end", "'end' after the last 'weights' line") ||
	    reader_done(r, "'end'"))
		return -1;
	if (reader_line(r))
		return load_error(r, "expected nothing after 'end', got %s", reader_got(r, got));
	return 0;
}

/* SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, checked once at start: a value this
 * model cannot produce would fail every request without Accept, so it stops
 * the server instead. */
static int default_accept(enum format *out, char *err, size_t err_size)
{
	const char *v = getenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT");
	const char *s, *e;
	char got[SHOWN_TOKEN + 4];
	int f;
	*out = FMT_JSON;
	if (v == NULL)
		return 0;
	s = v;
	e = strchr(v, ';') ? strchr(v, ';') : v + strlen(v);
	trim(&s, &e);
	if (s == e || equal_ci(s, (size_t)(e - s), "*/*"))
		return 0;
	for (f = 0; f < FMT_COUNT; f++)
		if (equal_ci(s, (size_t)(e - s), FORMAT_TYPE[f])) {
			*out = (enum format)f;
			return 0;
		}
	format_msg(err, err_size, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: expected one of "
		   SUPPORTED_TYPES ", got '%s'", shown(got, v, v + strlen(v)));
	return -1;
}

/* The largest answer one record can produce, in any output format, so that
 * the writer checks room once per record rather than once per byte. */
static size_t record_room(const struct model *m)
{
	size_t label = 0, i;
	for (i = 0; i < m->n_labels; i++)
		if (m->labels[i].json_len > label)
			label = m->labels[i].json_len;
	/* {"score":[ n x (number ,) ],"predicted_label": label }, \n; and at
	 * least a whole csv_line, of which answer_record may copy more than
	 * counts */
	size_t room = 64 + m->n_outputs * (NUMBER_TEXT + 1) + label;
	return room > sizeof m->labels->csv_line ? room : sizeof m->labels->csv_line;
}

/* ======================================================================== */
/* Prediction                                                                */
/* ======================================================================== */

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

/* Turns one record's features x (standardized in place) into the model's
 * decision values z and, for classifiers, the index of the predicted label;
 * with scores set, z then becomes the probabilities (a CSV answer of labels
 * needs none, and skipping exp() is a third of the time). Returns -1 when a
 * value is not finite (huge inputs), which JSON cannot carry.
 * The arithmetic follows scikit-learn's: decision = x.W^T + b; predict is the
 * argmax of the decision (first on ties; z > 0 for binary); predict_proba is
 * expit (binary), softmax after subtracting the max (multinomial), or expit
 * normalised by its sum (ovr). */
static int predict(const struct model *m, double *x, double *z, size_t *label, int scores)
{
	size_t n = m->n_features, k, j, best = 0;
	double sum = 0, top = -HUGE_VAL;
	int wins;

	/* do-while, not for: n >= 1 (the loader refuses 'features 0'), and at
	 * -Os (the image's build) gcc keeps a for loop's test at the top and a
	 * jump at the bottom, two branches a pass that cost a batch 13%. */
	if (m->mean != NULL) {
		j = 0;
		do
			x[j] = (x[j] - m->mean[j]) / m->scale[j];
		while (++j < n);
	}
	for (k = 0; k < m->n_outputs; k++) {
		const double *w = m->weights + k * n;
		double s = 0;
		j = 0;
		do
			s += w[j] * x[j];
		while (++j < n);
		z[k] = s + m->intercept[k];
		if (!isfinite(z[k]))
			return -1;
		/* best = z[k] > top ? k : best, without a branch: which class
		 * wins follows the data, so a branch here is mispredicted about
		 * once a record, and that alone cost a batch 15% of its speed.
		 * top holds z[best]: reading z[best] back from memory would make
		 * each class wait for the comparison before it (another 10%). */
		wins = z[k] > top;
		best ^= (best ^ k) & (0 - (size_t)wins);
		top = wins ? z[k] : top;
	}
	*label = m->kind == KIND_BINARY ? z[0] > 0 : best;
	if (!scores)
		return 0;
	switch (m->kind) {
	case KIND_REGRESSION:
		return 0;
	case KIND_BINARY:
		z[0] = sigmoid(z[0]);
		return 0;
	case KIND_MULTINOMIAL:
		for (k = 0; k < m->n_outputs; k++)
			sum += z[k] = exp(z[k] - top);
		break;
	case KIND_OVR:
		for (k = 0; k < m->n_outputs; k++)
			sum += z[k] = sigmoid(z[k]);
		break;
	}
	if (!(sum > 0)) /* ovr with every sigmoid underflowed: no distribution */
		return -1;
	for (k = 0; k < m->n_outputs; k++)
		z[k] /= sum;
	return 0;
}

/* ======================================================================== */
/* The output buffer                                                         */
/* ======================================================================== */
/*
 * Answers are built in the writer of lib/formats.h, in one buffer of
 * OUT_CHUNK bytes (or two records' worth, if larger).
 */

static void w_double(struct writer *w, double v)
{
	w->len += format_double(w->buf + w->len, v);
}

/* ======================================================================== */
/* Content negotiation                                                       */
/* ======================================================================== */

/* The input format from Content-Type. Empty means text/csv (batch transform
 * and many clients send none). Parameters are ignored except label_size,
 * which must be 0: a label column would be read as a feature. */
static int content_format(const char *ct, enum format *fmt, char *msg, size_t size)
{
	const char *s = ct, *e = ct + strcspn(ct, ";");
	char got[SHOWN_TOKEN + 4];
	int f;
	trim(&s, &e);
	*fmt = FMT_CSV;
	if (s == e)
		return 0;
	for (f = 0; f < FMT_COUNT; f++)
		if (equal_ci(s, (size_t)(e - s), FORMAT_TYPE[f]))
			break;
	if (f == FMT_COUNT) {
		format_msg(msg, size, "unsupported Content-Type '%s'; supported: text/csv, "
			   "application/json, application/jsonlines", shown(got, s, e));
		return -1;
	}
	*fmt = (enum format)f;
	return content_type_params(e, msg, size);
}

/* ======================================================================== */
/* One request                                                               */
/* ======================================================================== */
/*
 * A job carries what reading and answering one request needs: the scratch
 * vectors (allocated once per request, never per record), the writer, the
 * number of the record being read, and the 400 message if one is set.
 */

struct job {
	const struct model *m;
	enum format out_fmt;
	struct writer w;
	double *x;              /* the current record's features */
	double *z;              /* its scores */
	double *keys, *vals;    /* sparse JSON records: keys and values as read */
	unsigned char *seen;    /* sparse JSON records: keys already given */
	size_t record;          /* 1-based number of the record being read */
	size_t answered;        /* records answered so far */
	char err[512];          /* the 400 message */
};

static int fail(struct job *j, const char *fmt, ...) PRINTF_LIKE(2, 3);
static int fail(struct job *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->err, sizeof j->err, fmt, ap);
	va_end(ap);
	return -1;
}

/* The work arrays of a request, one block allocated at load (alloc_scratch)
 * and reused by every request, so that a request allocates nothing: in the
 * static build, musl's malloc maps and unmaps a block this size on every
 * request, and the pages fault in afresh each time. Each worker writes its
 * own copy (copy-on-write after the fork); requests in a worker run one at
 * a time. Layout: x (n), z (outputs), keys (n), vals (n) as doubles, then
 * seen (n bytes), then the answer buffer (out_cap bytes). */
static size_t scratch_doubles(const struct model *m)
{
	return 3 * m->n_features + m->n_outputs;
}

static int alloc_scratch(struct model *m)
{
	size_t n = m->n_features, doubles = scratch_doubles(m);
	m->out_cap = 2 * m->max_record_out > OUT_CHUNK ? 2 * m->max_record_out : OUT_CHUNK;
	if (doubles > (SIZE_MAX - n - m->out_cap) / sizeof(double))
		return -1;
	m->scratch = malloc(doubles * sizeof(double) + n + m->out_cap);
	return m->scratch ? 0 : -1;
}

static void job_init(struct job *j, const struct model *m, enum format in, model_response *out)
{
	size_t n = m->n_features;
	double *d = m->scratch;

	memset(j, 0, sizeof *j);
	j->m = m;
	j->x = d;
	j->z = d + n;
	j->keys = j->z + m->n_outputs;
	j->vals = j->keys + n;
	j->seen = (unsigned char *)(d + scratch_doubles(m));
	j->w.buf = (char *)(j->seen + n);
	if (in != FMT_CSV) /* sparse_features keeps it all-zero between records, */
		memset(j->seen, 0, n); /* but a request may end in the middle of one */
	j->w.cap = m->out_cap;
	j->w.out = out;
}

/* Predicts the record in j->x and appends its answer. */
static int answer_record(struct job *j)
{
	const struct model *m = j->m;
	struct writer *w = &j->w;
	size_t label = 0, k;

	if (predict(m, j->x, j->z, &label, j->out_fmt != FMT_CSV) != 0)
		return fail(j, "record %zu: the model's score is not a finite number "
			    "(features too large)", j->record);
	w_room(w, m->max_record_out);
	if (j->out_fmt == FMT_CSV && m->kind == KIND_REGRESSION) {
		w_double(w, j->z[0]);
		W_LIT(w, "\n");
	} else if (j->out_fmt == FMT_CSV) {
		/* A short label's line is copied as 16 bytes, though only
		 * csv_len + 1 of them count: a copy of known small size compiles
		 * to a move or two, where one of variable size is a call into libc
		 * (musl's took 15% of a batch's time for these few bytes) and one
		 * of 66 bytes a slow `rep movsb` at -Os. */
		const struct label *l = &m->labels[label];
		if (l->csv_len < 16)
			memcpy(w->buf + w->len, l->csv_line, 16);
		else
			memcpy(w->buf + w->len, l->csv_line, l->csv_len + 1);
		w->len += l->csv_len + 1;
	} else {
		if (j->out_fmt == FMT_JSON && j->answered > 0)
			W_LIT(w, ",");
		W_LIT(w, "{\"score\":");
		if (m->kind == KIND_MULTINOMIAL || m->kind == KIND_OVR) {
			W_LIT(w, "[");
			for (k = 0; k < m->n_outputs; k++) {
				if (k > 0)
					W_LIT(w, ",");
				w_double(w, j->z[k]);
			}
			W_LIT(w, "]");
		} else {
			w_double(w, j->z[0]);
		}
		if (m->kind != KIND_REGRESSION) {
			W_LIT(w, ",\"predicted_label\":");
			w_bytes(w, m->labels[label].json, m->labels[label].json_len);
		}
		W_LIT(w, "}");
		if (j->out_fmt == FMT_JSONLINES)
			W_LIT(w, "\n");
	}
	j->answered++;
	return w->refused ? -1 : 0;
}

/* ======================================================================== */
/* CSV                                                                       */
/* ======================================================================== */
/*
 * One record per line; LF or CRLF; the last newline is optional. Fields are
 * numbers only: no quotes, no empty fields (a linear model has no
 * "missing"), no nan or inf. Spaces and tabs around a number are ignored, as
 * SageMaker's containers ignore them (Python's float(" 3.5 ") reads 3.5), so
 * "5.1, 3.5" typed by hand works. A blank line is a record with no features
 * and so an error: dropping it would shift every later answer against its
 * input line in a batch transform join.
 */

/* Says what is wrong with the field starting at s (shown without the
 * blanks around it). */
static int csv_bad_field(struct job *j, size_t field, const char *s, const char *eol, int rc)
{
	const char *e = s;
	char got[SHOWN_TOKEN + 4];
	while (e < eol && *e != ',')
		e++;
	trim(&s, &e);
	if (rc == NUM_RANGE)
		return fail(j, "record %zu, field %zu: number out of range, got '%s'",
			    j->record, field, shown(got, s, e));
	if (rc == NUM_LONG)
		return fail(j, "record %zu, field %zu: expected a number of at most %d characters",
			    j->record, field, MAX_NUMBER_LEN);
	if (s == e)
		return fail(j, "record %zu, field %zu: expected a number, got an empty field",
			    j->record, field);
	return fail(j, "record %zu, field %zu: expected a number, got '%s'",
		    j->record, field, shown(got, s, e));
}

/* Whether p, inside [.., end), is where a field ends: a comma, or a line's
 * end (LF, or CR before LF or the end of the body). */
static int csv_field_end(const char *p, const char *end)
{
	return *p == ',' || *p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n'));
}

/* The usual CSV field, read in one pass: an optional '-', then at most 15
 * digits with at most one '.', up to a ',', the line's end or the body's.
 * With 15 digits m < 2^53, so m / 10^k rounds correctly (Clinger's fast
 * path, as in parse_number). Returns the end of the field, or NULL for
 * anything else (exponents, long mantissas, errors): csv_field_slow decides
 * those. Nothing here has its address taken, so the compiler keeps p, m and
 * v in registers (passing &p down to parse_number kept p in memory, and
 * every field waited on a store and a reload of it). */
static const char *csv_simple(const char *p, const char *end, double *out)
{
	uint64_t m = 0;
	int neg = 0, digits = 0, frac = -1; /* frac: digits after the '.', if any */
	double v;

	if (p < end && *p == '-')
		neg = 1, p++;
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
	if (digits == 0 || digits > 15 || (p < end && *p != ',' && !csv_field_end(p, end)))
		return NULL;
	v = (double)(int64_t)m; /* m < 2^53: exact, and a signed conversion is one instruction */
	if (frac > 0)
		v /= POW10[frac];
	*out = neg ? -v : v;
	return p;
}

/* Any other field [s, ...): parse_number reads it, between spaces or tabs
 * (a number never runs into a ',', CR or LF), or the 400 says what is wrong.
 * Returns the end of the field, or NULL. Only for the message is the line's
 * end looked for: doing it for every field made a long line of such fields
 * quadratic. */
static const char *csv_field_slow(struct job *j, size_t field, const char *s, const char *end,
				  double *out)
{
	const char *p = skip_blanks(s, end), *nl, *eol;
	int rc = parse_number(&p, end, NUM_CSV, out);
	p = skip_blanks(p, end);
	if (rc == NUM_OK && (p == end || csv_field_end(p, end)))
		return p;
	nl = memchr(s, '\n', (size_t)(end - s));
	eol = nl ? nl : end;
	if (eol > s && eol[-1] == '\r')
		eol--;
	csv_bad_field(j, field, s, eol, rc);
	return NULL;
}

/* Reads the record starting at p into j->x, field by field up to the end of
 * its line (LF or CRLF; the last line's may be missing). Returns where the
 * next record starts, or NULL. The line's end is found by reading up to it,
 * not searched for first: the search (memchr per line) cost musl's static
 * build 5% of a batch. */
static const char *csv_record(struct job *j, const char *p, const char *end)
{
	size_t n = j->m->n_features, i = 0;
	double extra = 0; /* where a field past the n-th goes; counted, then refused */
	const char *q = skip_blanks(p, end);
	if (q == end || (csv_field_end(q, end) && *q != ',')) {
		fail(j, "record %zu: expected %zu features, got an empty line", j->record, n);
		return NULL;
	}
	for (;; i++) {
		double *v = i < n ? &j->x[i] : &extra;
		const char *e = csv_simple(p, end, v);
		if (e == NULL && (e = csv_field_slow(j, i + 1, p, end, v)) == NULL)
			return NULL;
		if (e < end && *e == ',') {
			p = e + 1;
			continue;
		}
		if (i + 1 != n) {
			fail(j, "record %zu: expected %zu features, got %zu", j->record, n, i + 1);
			return NULL;
		}
		if (e < end && *e == '\r')
			e++;                   /* CRLF, or a CR that ends the body */
		return e < end ? e + 1 : end; /* past the LF */
	}
}

static int read_csv(struct job *j, const char *p, const char *end)
{
	while (p < end) {
		j->record++;
		if ((p = csv_record(j, p, end)) == NULL || answer_record(j))
			return -1;
	}
	return 0;
}

/* ======================================================================== */
/* JSON                                                                      */
/* ======================================================================== */
/*
 * The instances, read by lib/instances.h with the JSON syntax functions of
 * lib/formats.h: each is streamed into j->x as it goes; nothing is built in
 * memory. Unknown members (such as "configuration") are checked for
 * well-formedness and skipped.
 *
 *   document   {"instances": [instance, ...]}
 *   instance   [number, ...]
 *            | {"features": vector}
 *            | {"data": {"features": vector}}
 *   vector     [number, ...]                        dense
 *            | {"values": [...]}                    dense
 *            | {"keys": [...], "values": [...], "shape": [n]}   sparse
 *
 * What this model decides: a feature is a finite number (no null), a dense
 * vector has exactly n_features values, and a sparse one is zero where it
 * gives no key.
 */

/* A number where a feature belongs; `what` and `index` name it in messages
 * ("field 3", "value 2", "key 1"). */
static int js_number(struct json *s, const char *what, size_t index, double *v)
{
	const char *start = s->p;
	int rc = parse_number(&s->p, s->end, NUM_JSON, v);
	if (rc == NUM_OK && js_at_value_end(s))
		return 0;
	return js_number_error(s, start, rc, what, index);
}

/* A dense vector, read into j->vals: exactly n_features values. */
static int dense_features(struct job *j, size_t count)
{
	size_t n = j->m->n_features;
	if (count != n)
		return fail(j, "record %zu: expected %zu features, got %zu", j->record, n, count);
	memcpy(j->x, j->vals, n * sizeof *j->x);
	return 0;
}

/* A sparse vector, its keys (checked: feature indexes) and values read into
 * j->keys and j->vals: the values at their keys, zero elsewhere. */
static int sparse_features(struct job *j, size_t count)
{
	size_t i;
	memset(j->x, 0, j->m->n_features * sizeof *j->x);
	for (i = 0; i < count; i++) {
		size_t idx = (size_t)j->keys[i];
		if (j->seen[idx])
			return fail(j, "record %zu, key %zu: key %zu given twice", j->record, i + 1, idx);
		j->seen[idx] = 1;
		j->x[idx] = j->vals[i];
	}
	for (i = 0; i < count; i++) /* clear only what was set: O(keys), not O(n) */
		j->seen[(size_t)j->keys[i]] = 0;
	return 0;
}

/* The vector forms, the instance forms and the JSON and JSON Lines
 * documents around them, built on the three functions above: shared with
 * the XGBoost plug-in. */
#include "lib/instances.h"

/* ======================================================================== */
/* The plug-in functions                                                     */
/* ======================================================================== */

const char model_plugin_name[] = "linear-learner 1.0";

model *model_load(const char *dir, char *err, size_t err_size)
{
	char path[4096];
	struct model *m;
	struct reader r;
	char *text;
	size_t size;
	int rc;

	if (err_size > 0)
		err[0] = '\0';
	rc = snprintf(path, sizeof path, "%s/%s", dir, MODEL_FILE);
	if (rc < 0 || (size_t)rc >= sizeof path) {
		format_msg(err, err_size, "%s: expected a model directory path shorter than %zu bytes",
			   dir, sizeof path - sizeof MODEL_FILE - 1);
		return NULL;
	}
	m = calloc(1, sizeof *m);
	if (m == NULL) {
		format_msg(err, err_size, "%s: out of memory", path);
		return NULL;
	}
	if (default_accept(&m->default_accept, err, err_size) ||
	    (text = slurp(path, MAX_MODEL_BYTES, "; write it with tools/export_linear.py",
			  &size, err, err_size)) == NULL) {
		model_unload(m);
		return NULL;
	}
	memset(&r, 0, sizeof r);
	r.path = path;
	r.p = text;
	r.end = text + size;
	r.next_no = 1;
	r.err = err;
	r.err_size = err_size;
	rc = read_model(&r, m, size);
	free(text);
	if (rc != 0) {
		model_unload(m);
		return NULL;
	}
	m->max_record_out = record_room(m);
	if (alloc_scratch(m) != 0) {
		format_msg(err, err_size, "%s: out of memory for the work arrays of %zu features",
			   path, m->n_features);
		model_unload(m);
		return NULL;
	}
	return m;
}

void model_invoke(model *m, const model_request *req, model_response *out)
{
	enum format in, outf;
	const char *body = (const char *)req->body, *end = body + req->body_len;
	struct job j;
	char msg[512];
	int rc, f;

	if (content_format(req->content_type, &in, msg, sizeof msg)) {
		model_response_error(out, 415, msg);
		return;
	}
	f = accept_choose(req->accept, FORMAT_TYPE, FMT_COUNT, (int)m->default_accept,
			  SUPPORTED_TYPES, msg, sizeof msg);
	if (f < 0) {
		model_response_error(out, 406, msg);
		return;
	}
	outf = (enum format)f;
	if (req->body_len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
		body += 3; /* a UTF-8 byte order mark, as some editors save CSV */
	if (body == end) {
		model_response_error(out, 400, "empty body: expected at least one record");
		return;
	}
	job_init(&j, m, in, out);
	j.out_fmt = outf;
	model_response_type(out, FORMAT_TYPE[outf]);
	if (outf == FMT_JSON)
		W_LIT(&j.w, "{\"predictions\":[");
	rc = in == FMT_CSV ? read_csv(&j, body, end)
	   : in == FMT_JSON ? read_json(&j, body, end)
	   : read_jsonlines(&j, body, end);
	if (rc == 0 && outf == FMT_JSON) {
		w_room(&j.w, 4);
		W_LIT(&j.w, "]}\n");
	}
	if (rc == 0)
		w_flush(&j.w);
	else if (!j.w.refused)
		model_response_error(out, 400, j.err);
}

void model_unload(model *m)
{
	if (m == NULL)
		return;
	free(m->weights);
	free(m->intercept);
	free(m->mean);
	free(m->scale);
	free(m->labels);
	free(m->scratch);
	free(m);
}

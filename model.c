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
 *                                "values"}, or a plain array [...]; or a
 *                                bare array of rows [[...], ...], or [...]
 *        application/jsonlines   one instance per line
 *        application/x-npy       1-D (one record) or 2-D (a record a row)
 *        application/x-recordio-protobuf   a Record's "values" per record
 *   out  application/json        {"predictions": [{"score": ..,
 *                                "predicted_label": ..}, ...]}
 *        application/jsonlines   one {"score": .., ...} per line
 *        text/csv                one label (or regression value) per line,
 *                                or the columns SAGEMAKER_INFERENCE_OUTPUT
 *                                lists (predicted_label,probability,...)
 *        application/x-recordio-protobuf   a Record per record, label map
 *                                {predicted_label, score}, float32
 *        application/x-npy       float64 (records, scores per record)
 *
 * An empty body is answered 204, as the XGBoost container answers it.
 *
 * The answer's type comes from Accept (q-values honoured); a missing Accept
 * or * / * (spaced here, as the three bytes would end this comment) means
 * SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, else JSON. Numbers are
 * written as Python's repr writes them (lib/numtext.h): the shortest text
 * that reads back as the same double.
 *
 * How a request flows. lib/invoke.h negotiates it, and lib/instances.h
 * reads the body once, front to back: each record is parsed into one
 * scratch vector, predicted here, and its answer appended to a 64 KiB
 * output buffer that goes to the server in large writes. Nothing is
 * allocated per record, so a 1,000,000-record batch costs what its bytes
 * cost. A bad record anywhere turns the whole answer into a 400 naming the
 * record and field (model_response_error discards what was written): never
 * a partial answer. Unsupported types get 415 and 406 naming the supported
 * ones.
 *
 * Sections, in reading order: limits; the model; numbers (writing them);
 * loading the model file; prediction; one record's answer; what it reads
 * and answers; the three plug-in functions.
 */
#define _POSIX_C_SOURCE 200809L /* opendir, to name an XGBoost model found instead */

#include "model.h"
#include "lib/invoke.h"  /* requests: negotiation, the instance reader, the answer */
#include "lib/numtext.h" /* numbers as Python writes them */

#include <dirent.h>
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
#define NUMBER_TEXT SMLIB_REPR_MAX /* room for any double's text (lib/numtext.h) */

/* ======================================================================== */
/* The model                                                                 */
/* ======================================================================== */

enum kind { KIND_REGRESSION, KIND_BINARY, KIND_MULTINOMIAL, KIND_OVR };
static const char *const KIND_NAME[] = {"regression", "binary", "multinomial", "ovr"};

/* A class label, rendered once at load in both spellings an answer uses. */
struct label {
	char csv[MAX_LABEL_LEN + 1];  /* as written in the model file */
	char json[MAX_LABEL_LEN + 3]; /* a number as is, anything else quoted */
	char csv_line[MAX_LABEL_LEN + 2]; /* csv and "\n", zero-padded: a CSV answer */
	size_t csv_len, json_len;
	float value;  /* in a recordio answer: the number it spells, else its index */
};

/* What SAGEMAKER_INFERENCE_OUTPUT may ask a CSV answer for (the XGBoost
 * container's key names, the ones that mean something for a linear model). */
enum out_key { KEY_PREDICTED_LABEL, KEY_PROBABILITY, KEY_PROBABILITIES, KEY_LABELS,
	       KEY_PREDICTED_SCORE, N_KEYS };
static const char *const KEY_NAME[N_KEYS] = {"predicted_label", "probability", "probabilities",
					     "labels", "predicted_score"};
#define MAX_OUTPUT_KEYS 8

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
	size_t max_record_out;      /* bytes one record's answer can take */
	double *x, *z;              /* a sparse record's features, the scores: see alloc_work */
	float *zf;                  /* the scores as float32, for a recordio answer */
	size_t n_keys;              /* SAGEMAKER_INFERENCE_OUTPUT: 0 unset, else the columns */
	enum out_key keys[MAX_OUTPUT_KEYS]; /* of a CSV answer, as listed */
	char *labels_field;         /* the labels key's CSV field: "[0, 1, 2]", made at load */
	size_t labels_field_len;
	struct smlib_plugin lib;    /* the request side: lib/invoke.h */
};

/* ======================================================================== */
/* Numbers                                                                   */
/* ======================================================================== */
/* Reading them: smlib_parse_number in lib/formats.h. Writing them:
 * smlib_repr_double in lib/numtext.h, Python's repr: the shortest text that
 * reads back as the same double (so clients can compare exactly what was
 * computed), as a Python container such as the Linear Learner writes it
 * (json.dumps writes repr): 0.9731416412133416, 2.0, 1e-05. */

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

static int load_error(struct reader *r, const char *fmt, ...) SMLIB_PRINTF_LIKE(2, 3);
static int load_error(struct reader *r, const char *fmt, ...)
{
	char msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	smlib_format(r->err, r->err_size, "%s:%lu: %s", r->path,
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
		smlib_trim(&s, &e);
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
	while (p < r->eol && smlib_is_blank((unsigned char)*p))
		p++;
	*w = p;
	while (p < r->eol && !smlib_is_blank((unsigned char)*p))
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
static const char *reader_got(struct reader *r, char buf[SMLIB_SHOWN + 6])
{
	size_t n;
	if (!r->have_line)
		return "the end of the file";
	buf[0] = '\'';
	n = 1 + strlen(smlib_shown(buf + 1, r->line, r->eol));
	buf[n] = '\'';
	buf[n + 1] = '\0';
	return buf;
}

/* Starts the line that must begin with keyword; describes it as `what`. */
static int reader_expect(struct reader *r, const char *keyword, const char *what)
{
	const char *w;
	char got[SMLIB_SHOWN + 6];
	size_t n = reader_peek(r, &w);
	if (!r->have_line || !smlib_equal(w, n, keyword))
		return load_error(r, "expected %s, got %s", what, reader_got(r, got));
	reader_word(r, &w);
	return 0;
}

/* The line must hold no more words. */
static int reader_done(struct reader *r, const char *what)
{
	const char *w;
	char got[SMLIB_SHOWN + 4];
	size_t n = reader_word(r, &w);
	if (n > 0)
		return load_error(r, "expected only %s, got '%s' after it", what,
				  smlib_shown(got, w, w + n));
	r->have_line = 0;
	return 0;
}

/* A whole number from 1 to max, in plain digits. */
static int reader_count(struct reader *r, const char *what, unsigned long max, size_t *out)
{
	const char *w;
	char got[SMLIB_SHOWN + 4];
	size_t n = reader_word(r, &w), i;
	unsigned long v = 0;
	for (i = 0; i < n && smlib_is_digit(w[i]) && v <= max; i++)
		v = v * 10 + (unsigned long)(w[i] - '0');
	if (n == 0 || i < n || v < 1 || v > max)
		return load_error(r, "expected %s, a whole number from 1 to %lu, got '%s'",
				  what, max, n ? smlib_shown(got, w, w + n) : "nothing");
	*out = (size_t)v;
	return reader_done(r, what);
}

/* Exactly n finite numbers after the keyword; positive ones if positive. */
static int reader_numbers(struct reader *r, const char *keyword, double *dst, size_t n,
			  int positive)
{
	const char *w;
	char got[SMLIB_SHOWN + 4];
	size_t i, len;
	for (i = 0; i < n; i++) {
		const char *p;
		len = reader_word(r, &w);
		if (len == 0)
			return load_error(r, "expected %zu numbers after '%s', got %zu",
					  n, keyword, i);
		p = w;
		if (smlib_parse_number(&p, w + len, SMLIB_NUM_CSV, &dst[i]) != SMLIB_NUM_OK || p != w + len)
			return load_error(r, "expected a finite number as value %zu of '%s', got '%s'",
					  i + 1, keyword, smlib_shown(got, w, w + len));
		if (positive && !(dst[i] > 0))
			return load_error(r, "expected a positive number as value %zu of '%s', got '%s'",
					  i + 1, keyword, smlib_shown(got, w, w + len));
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
	return smlib_parse_number(&p, s + n, SMLIB_NUM_JSON, &v) != SMLIB_NUM_BAD && p == s + n;
}

/* "labels" and one word per class: 1-64 visible ASCII bytes without '"',
 * '\' or ',', so that a label needs no escaping in CSV or JSON. */
static int reader_labels(struct reader *r, struct model *m)
{
	const char *w;
	char got[SMLIB_SHOWN + 4];
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
					  i + 1, smlib_shown(got, w, w + n));
		memcpy(l->csv, w, n);
		memcpy(l->csv_line, w, n);
		l->csv_line[n] = '\n';
		l->csv_len = n;
		l->value = (float)i;
		if (is_json_number(w, n)) {
			memcpy(l->json, w, n);
			l->json_len = n;
			l->value = (float)strtod(l->csv, NULL);
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
	char got[SMLIB_SHOWN + 4];
	size_t n;
	if (reader_expect(r, FORMAT_NAME, "'" FORMAT_NAME " 1' (the first line of a file "
			  "written by tools/export_linear.py)"))
		return -1;
	n = reader_word(r, &w);
	if (!smlib_equal(w, n, "1"))
		return load_error(r, "expected format version %d, got '%s' (this smserve reads "
				  "version %d only)", FORMAT_VERSION,
				  n ? smlib_shown(got, w, w + n) : "nothing", FORMAT_VERSION);
	return reader_done(r, "the version");
}

static int reader_kind(struct reader *r, struct model *m)
{
	const char *w;
	char got[SMLIB_SHOWN + 4];
	size_t n, k;
	if (reader_expect(r, "kind", "'kind' and regression, binary, multinomial or ovr"))
		return -1;
	n = reader_word(r, &w);
	for (k = 0; k < sizeof KIND_NAME / sizeof KIND_NAME[0]; k++)
		if (smlib_equal(w, n, KIND_NAME[k])) {
			m->kind = (enum kind)k;
			return reader_done(r, "the kind");
		}
	return load_error(r, "expected regression, binary, multinomial or ovr after 'kind', "
			  "got '%s'", n ? smlib_shown(got, w, w + n) : "nothing");
}

/* Allocates the arrays once the shape is known. The shape was bounded by
 * MAX_FEATURES and MAX_LABELS; the file size bounds it again, since every
 * weight takes at least two bytes, so a short file cannot claim gigabytes. */
static int reader_alloc(struct reader *r, struct model *m, size_t file_size,
			unsigned long features_line)
{
	size_t weights = m->n_outputs * m->n_features;
	if (weights > file_size / 2) {
		smlib_format(r->err, r->err_size, "%s:%lu: expected %zu features, but the file "
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
	char got[SMLIB_SHOWN + 6];
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
	if (smlib_equal(w, n, "mean")) {
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
		smlib_format(what, sizeof what, "'weights' line %zu of %zu (one number per feature)",
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

/* Whether the first bytes of a file are those of an XGBoost model: the
 * legacy binary format ("binf"), JSON or UBJSON whose first member is
 * "learner" (what save_model writes), or a pickle naming xgboost. */
static int looks_like_xgboost(const char *head, size_t n)
{
	static const char *const words[] = {"learner", "xgboost"};
	size_t i, w, len;
	if (n >= 4 && memcmp(head, "binf", 4) == 0)
		return 1;
	if (n < 2 || (head[0] != '{' && (unsigned char)head[0] != 0x80))
		return 0;
	for (w = 0; w < 2; w++) {
		len = strlen(words[w]);
		for (i = 1; i + len <= n; i++)
			if (memcmp(head + i, words[w], len) == 0)
				return 1;
	}
	return 0;
}

/* The model directory holds no linear-model.txt: if it holds an XGBoost
 * model instead (xgboost-model, or a file that starts as one), err says so
 * and what to build, rather than only that linear-model.txt is missing. */
static void xgboost_instead(const char *dir, const char *path, char *err, size_t err_size)
{
	FILE *f = fopen(path, "rb");
	DIR *d;
	struct dirent *e;
	int found = 0;

	if (f != NULL || errno != ENOENT || (d = opendir(dir)) == NULL) {
		if (f != NULL)
			fclose(f);
		return;
	}
	while (!found && (e = readdir(d)) != NULL) {
		char file[4096], head[64];
		size_t n = 0;
		int rc = snprintf(file, sizeof file, "%s/%s", dir, e->d_name);
		if (e->d_name[0] == '.' || rc < 0 || (size_t)rc >= sizeof file)
			continue;
		if ((f = fopen(file, "rb")) != NULL) {
			n = fread(head, 1, sizeof head, f);
			fclose(f);
		}
		found = f != NULL && (strcmp(e->d_name, "xgboost-model") == 0 ||
				      looks_like_xgboost(head, n));
		if (found)
			smlib_format(err, err_size, "%s: expected %s, found an XGBoost model (%s), "
				     "which this build does not serve; build smserve with the "
				     "XGBoost plug-in: make MODEL=examples/xgboost/model.c",
				     dir, MODEL_FILE, e->d_name);
	}
	closedir(d);
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
	 * counts; a recordio answer is the scores' 4 bytes each and under 128
	 * of framing, an NPY one their 8 bytes each; a CSV one of the keys of
	 * SAGEMAKER_INFERENCE_OUTPUT each key's column at most */
	size_t room = 64 + m->n_outputs * (NUMBER_TEXT + 1) + label;
	size_t keys = 1, binary = 128 + 8 * m->n_outputs;
	for (i = 0; i < m->n_keys; i++)
		keys += 1 + (m->keys[i] == KEY_LABELS ? m->labels_field_len
			     : m->keys[i] == KEY_PROBABILITIES ? 4 + (m->n_outputs + 1) * (NUMBER_TEXT + 2)
			     : NUMBER_TEXT + MAX_LABEL_LEN);
	room = room > binary ? room : binary;
	room = room > keys ? room : keys;
	return room > sizeof m->labels->csv_line ? room : sizeof m->labels->csv_line;
}

/* ======================================================================== */
/* SAGEMAKER_INFERENCE_OUTPUT                                                */
/* ======================================================================== */
/*
 * The XGBoost container's setting (Autopilot sets it), for CSV answers
 * here: the columns it lists, so that batch users get probabilities beside
 * the label without JSON. Read once at load; a key this model cannot answer
 * stops the server with the keys it can, rather than a column of nan.
 */

/* Whether key k means something for this model. */
static int key_fits(const struct model *m, enum out_key k)
{
	return m->kind == KIND_REGRESSION ? k == KEY_PREDICTED_SCORE : k != KEY_PREDICTED_SCORE;
}

/* One key of the list, [s, e) (spaces dropped already, any case). */
static int output_key(struct model *m, const char *s, const char *e, char *err, size_t err_size)
{
	char got[SMLIB_SHOWN + 4];
	int k;
	const char *takes = m->kind == KIND_REGRESSION ? "predicted_score (a regression model)"
		: "predicted_label, probability, probabilities, labels (a classifier)";
	for (k = 0; k < N_KEYS; k++)
		if (smlib_equal_ci(s, (size_t)(e - s), KEY_NAME[k]))
			break;
	if (k == N_KEYS || !key_fits(m, (enum out_key)k)) {
		smlib_format(err, err_size, "SAGEMAKER_INFERENCE_OUTPUT: expected keys among %s, "
			     "got '%s'", takes, smlib_shown(got, s, e));
		return -1;
	}
	if (m->n_keys == MAX_OUTPUT_KEYS) {
		smlib_format(err, err_size, "SAGEMAKER_INFERENCE_OUTPUT: expected at most %d keys",
			     MAX_OUTPUT_KEYS);
		return -1;
	}
	m->keys[m->n_keys++] = (enum out_key)k;
	return 0;
}

/* The labels key's CSV field, the same for every record: the labels as a
 * JSON array ("[0, 1, 2]", text labels in quotes), quoted as CSV quotes a
 * field with commas (a '"' doubled). */
static int make_labels_field(struct model *m)
{
	size_t i, size = 4;
	char *p;
	for (i = 0; i < m->n_labels; i++)
		size += 2 * m->labels[i].json_len + 2;
	m->labels_field = p = malloc(size);
	if (p == NULL)
		return -1;
	*p++ = '"';
	*p++ = '[';
	for (i = 0; i < m->n_labels; i++) {
		const struct label *l = &m->labels[i];
		size_t c;
		if (i > 0)
			*p++ = ',', *p++ = ' ';
		for (c = 0; c < l->json_len; c++)
			if ((*p++ = l->json[c]) == '"')
				*p++ = '"';
	}
	*p++ = ']';
	*p++ = '"';
	m->labels_field_len = (size_t)(p - m->labels_field);
	return 0;
}

/* Reads SAGEMAKER_INFERENCE_OUTPUT (spaces dropped, case ignored, keys
 * separated by commas; unset or blank: the plain CSV answer). 0, or -1 with
 * err set. */
static int read_output_setting(struct model *m, char *err, size_t err_size)
{
	const char *v = getenv("SAGEMAKER_INFERENCE_OUTPUT"), *p;
	char word[32];
	size_t n = 0;
	if (v == NULL || strspn(v, " ") == strlen(v))
		return 0;
	for (p = v;; p++) {
		if (*p == ',' || *p == '\0') {
			if (output_key(m, word, word + n, err, err_size))
				return -1;
			n = 0;
			if (*p == '\0')
				break;
		} else if (*p != ' ' && n < sizeof word) {
			word[n++] = *p;
		}
	}
	return make_labels_field(m) ? -1 : 0;
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
	case KIND_MULTINOMIAL: /* the top class's exp(0) is 1 exactly: a third of a 3-class batch's exp() */
		for (k = 0; k < m->n_outputs; k++)
			sum += z[k] = z[k] == top ? 1.0 : exp(z[k] - top);
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
/* One record's answer                                                       */
/* ======================================================================== */
/*
 * Answers are built in the writer of lib/formats.h, in one buffer of
 * 64 KiB (or two records' worth, if larger), which lib/invoke.h frames:
 * the JSON document around the records, a ',' between them, a newline
 * after each in JSON Lines.
 */

/* v (finite: predict refuses the rest) as Python's repr writes it. */
static void w_double(struct smlib_writer *w, double v)
{
	w->len += smlib_repr_double(v, w->buf + w->len);
}

/* The record's features as predict takes them: a dense instance as it was
 * read (every feature given), a sparse one spread over zeros. */
static double *record_features(const struct model *m, const struct smlib_instance *in)
{
	size_t i;
	if (in->keys == NULL)
		return in->values;
	memset(m->x, 0, m->n_features * sizeof *m->x);
	for (i = 0; i < in->count; i++)
		m->x[in->keys[i]] = in->values[i];
	return m->x;
}

/* The columns SAGEMAKER_INFERENCE_OUTPUT lists, for the record just
 * predicted (z holds its probabilities) and its label, and a newline. */
static void answer_csv_keys(const struct model *m, struct smlib_writer *w, size_t label)
{
	size_t i, k;
	for (i = 0; i < m->n_keys; i++) {
		if (i > 0)
			SMLIB_PUT_LIT(w, ",");
		switch (m->keys[i]) {
		case KEY_PREDICTED_LABEL:
			smlib_put(w, m->labels[label].csv, m->labels[label].csv_len);
			break;
		case KEY_PROBABILITY: /* binary: P(the second label), as the score is */
			w_double(w, m->kind == KIND_BINARY ? m->z[0] : m->z[label]);
			break;
		case KEY_PROBABILITIES: /* a field with commas, quoted */
			SMLIB_PUT_LIT(w, "\"[");
			if (m->kind == KIND_BINARY) {
				w_double(w, 1 - m->z[0]); /* as predict_proba computes it */
				SMLIB_PUT_LIT(w, ", ");
				w_double(w, m->z[0]);
			}
			for (k = 0; m->kind != KIND_BINARY && k < m->n_outputs; k++) {
				if (k > 0)
					SMLIB_PUT_LIT(w, ", ");
				w_double(w, m->z[k]);
			}
			SMLIB_PUT_LIT(w, "]\"");
			break;
		case KEY_LABELS:
			smlib_put(w, m->labels_field, m->labels_field_len);
			break;
		default: /* KEY_PREDICTED_SCORE */
			w_double(w, m->z[0]);
			break;
		}
	}
	SMLIB_PUT_LIT(w, "\n");
}

/* The Linear Learner's recordio-protobuf answer: a Record whose label map
 * holds, for a classifier, "predicted_label", and "score" (the value,
 * P(the second label), or every class's probability), float32 tensors.
 * The entries come in key order, as Python's protobuf writes the map (its
 * deterministic order, and what it wrote for tests/codecs/w_linear_learner.rio). */
static void answer_recordio(const struct model *m, struct smlib_job *j, size_t label)
{
	struct smlib_rio_out out[2], *score = &out[m->kind == KIND_REGRESSION ? 0 : 1];
	size_t k, n = m->kind == KIND_MULTINOMIAL || m->kind == KIND_OVR ? m->n_outputs : 1;
	memset(out, 0, sizeof out);
	for (k = 0; k < n; k++)
		m->zf[k] = (float)m->z[k];
	if (m->kind != KIND_REGRESSION) {
		out[0].name = "predicted_label";
		out[0].values = &m->labels[label].value;
		out[0].n_values = 1;
	}
	score->name = "score";
	score->values = m->zf;
	score->n_values = n;
	smlib_rio_put_answer(j, out, m->kind == KIND_REGRESSION ? 1 : 2);
}

/* Predicts one record and appends its answer. Kept a function of its own:
 * inlined into model_invoke's loop (compilers do, as it is called once),
 * the image's build answered a CSV batch 8% slower (bench/model.sh). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int answer_record(const struct model *m, struct smlib_job *j,
			 const struct smlib_instance *in)
{
	struct smlib_writer *w = &j->w;
	size_t label = 0, k;

	if (predict(m, record_features(m, in), m->z, &label,
		    j->answer != SMLIB_CSV || m->n_keys > 0) != 0)
		return smlib_fail(j, "record %zu: the model's score is not a finite number "
				  "(features too large)", in->record);
	smlib_record_begin(j);
	if (j->answer == SMLIB_CSV && m->n_keys > 0) {
		answer_csv_keys(m, w, label);
	} else if (j->answer == SMLIB_CSV && m->kind == KIND_REGRESSION) {
		w_double(w, m->z[0]);
		SMLIB_PUT_LIT(w, "\n");
	} else if (j->answer == SMLIB_CSV) {
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
	} else if (j->answer == SMLIB_NPY) {
		smlib_npy_put_row(j, m->z, m->n_outputs);
	} else if (j->answer == SMLIB_RECORDIO) {
		answer_recordio(m, j, label);
	} else {
		SMLIB_PUT_LIT(w, "{\"score\":");
		if (m->kind == KIND_MULTINOMIAL || m->kind == KIND_OVR) {
			SMLIB_PUT_LIT(w, "[");
			for (k = 0; k < m->n_outputs; k++) {
				if (k > 0)
					SMLIB_PUT_LIT(w, ",");
				w_double(w, m->z[k]);
			}
			SMLIB_PUT_LIT(w, "]");
		} else {
			w_double(w, m->z[0]);
		}
		if (m->kind != KIND_REGRESSION) {
			SMLIB_PUT_LIT(w, ",\"predicted_label\":");
			smlib_put(w, m->labels[label].json, m->labels[label].json_len);
		}
		SMLIB_PUT_LIT(w, "}");
	}
	return smlib_record_end(j);
}

/* ======================================================================== */
/* What it reads and answers                                                 */
/* ======================================================================== */
/*
 * lib/invoke.h negotiates each request and lib/instances.h reads its
 * records; this model says which formats, and that a feature is a finite
 * number: no missing values (a linear model has no "missing"), no nan or
 * inf, exactly n_features in a dense record, zero where a sparse one gives
 * no key.
 */

static const struct smlib_service SERVICE = {
	SMLIB_BIT(SMLIB_CSV) | SMLIB_BIT(SMLIB_JSON) | SMLIB_BIT(SMLIB_JSONLINES) |
	SMLIB_BIT(SMLIB_NPY) | SMLIB_BIT(SMLIB_RECORDIO) | SMLIB_JSON_ARRAYS |
	SMLIB_ANSWER_BIT(SMLIB_NPY) | SMLIB_ANSWER_BIT(SMLIB_RECORDIO),
	SMLIB_JSON, /* the Linear Learner's default answer */
	1,          /* an empty body: 204, as SageMaker's XGBoost container answers */
	{0, NULL, "key"},
};

/* The work arrays of a request, allocated at load and reused by every
 * request, so that a request allocates nothing: in the static build,
 * musl's malloc maps and unmaps a block this size on every request, and the
 * pages fault in afresh each time. Each worker writes its own copy
 * (copy-on-write after the fork); requests in a worker run one at a time.
 * x (n_features) takes a sparse record, z (n_outputs) the scores. */
static int alloc_work(struct model *m)
{
	size_t n = m->n_features;
	if (n > SIZE_MAX / sizeof(double) - m->n_outputs)
		return -1;
	m->x = malloc((n + m->n_outputs) * sizeof *m->x);
	m->zf = malloc(m->n_outputs * sizeof *m->zf);
	if (m->x == NULL || m->zf == NULL)
		return -1;
	m->z = m->x + n;
	m->lib.answer_columns = m->n_outputs; /* an NPY answer: the scores of each record */
	return smlib_plugin_alloc(&m->lib, n, m->max_record_out);
}

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
		smlib_format(err, err_size, "%s: expected a model directory path shorter than %zu "
			     "bytes", dir, sizeof path - sizeof MODEL_FILE - 1);
		return NULL;
	}
	m = calloc(1, sizeof *m);
	if (m == NULL) {
		smlib_format(err, err_size, "%s: out of memory", path);
		return NULL;
	}
	if (smlib_plugin_init(&m->lib, &SERVICE, err, err_size)) {
		model_unload(m);
		return NULL;
	}
	text = smlib_slurp(path, MAX_MODEL_BYTES, "; write it with tools/export_linear.py", &size,
			   err, err_size);
	if (text == NULL) {
		xgboost_instead(dir, path, err, err_size);
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
	if (read_output_setting(m, err, err_size) != 0) {
		if (m->n_keys > 0 && m->labels_field == NULL)
			smlib_format(err, err_size, "%s: out of memory", path);
		model_unload(m);
		return NULL;
	}
	m->max_record_out = record_room(m);
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
	free(m->weights);
	free(m->intercept);
	free(m->mean);
	free(m->scale);
	free(m->labels);
	free(m->x);
	free(m->zf);
	free(m->labels_field);
	smlib_plugin_free(&m->lib);
	free(m);
}

/*
 * codecs_test.c - tests of lib/recordio.h and lib/npy.h against the vectors
 * in tests/codecs/ (made by tools/make_codec_vectors.py with numpy and
 * Python's protobuf; see its header for the file names and dump format).
 *
 * Every NAME.npy or NAME.rio is read from an exact heap copy (so ASan sees
 * any read past the end) and:
 *   NAME.expect  the reader must accept it, and what it read, dumped, must
 *                equal the file (values as "%.17g", map entries in key order);
 *   NAME.error   the reader must refuse it with exactly this message;
 *   w_*          the writer, given what the reader read, must write the file
 *                again byte for byte (numpy.save's and protobuf's bytes);
 *   need_*       RecordIO read with SMLIB_RIO_NEED_VALUES.
 * Every prefix of every accepted file is read too: an NPY prefix must be
 * refused; a RecordIO prefix may only give fewer records.
 * A few checks call the writers directly, as a plug-in does.
 *
 * Build and run with tests/codecs.sh. Output: "ok - ..." / "not ok - ..."
 * lines, then "N passed, N failed".
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdlib.h>

#include "../lib/npy.h"
#include "../lib/recordio.h"

#define VECTORS "tests/codecs"
#define DUMP_CAP (1 << 20)

static int n_passed, n_failed;

static void report(int passed, const char *name, const char *why)
{
	if (passed) {
		n_passed++;
		printf("ok - %s\n", name);
	} else {
		n_failed++;
		printf("not ok - %s: %s\n", name, why);
	}
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);  /* zeroed: the analyzers cannot prove every use is written first */
	if (!p) {
		perror("malloc");
		exit(2);
	}
	return p;
}

/* Reads a whole file into an exact heap copy; NULL if it does not exist. */
static unsigned char *load(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long size;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return NULL;
	}
	buf = xmalloc((size_t)size);
	*len = fread(buf, 1, (size_t)size, f);
	fclose(f);
	return buf;
}

/* A growing text for dumps. */
struct text {
	char *s;
	size_t len;
};

static void add(struct text *t, const char *fmt, ...) SMLIB_PRINTF_LIKE(2, 3);
static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(t->s + t->len, DUMP_CAP - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n < DUMP_CAP - t->len ? (size_t)n : DUMP_CAP - t->len - 1;
}

/* ======================================================================== */
/* NPY                                                                      */
/* ======================================================================== */

static void npy_dump(const struct smlib_npy *a, struct text *out)
{
	size_t r, c;
	add(out, "type=%s rank=%zu shape=%zu", SMLIB_NPY_TYPES[a->type].code, a->rank, a->shape[0]);
	if (a->rank == 2)
		add(out, ",%zu", a->shape[1]);
	add(out, "\n");
	for (r = 0; r < a->rows; r++)
		for (c = 0; c < a->cols; c++)
			add(out, "%.17g%s", smlib_npy_value(a, r, c), c + 1 < a->cols ? " " : "\n");
}

/* numpy.save's bytes again, from what was read (f4 and f8 only). */
static void npy_rewrite(const char *name, const struct smlib_npy *a, const unsigned char *file, size_t len)
{
	size_t n = a->rows * a->cols, i, need, got;
	double *values = xmalloc(n * sizeof *values);
	unsigned char *out;
	char why[160];
	for (i = 0; i < n; i++)
		values[i] = smlib_npy_value(a, i / (a->cols ? a->cols : 1), i % (a->cols ? a->cols : 1));
	need = smlib_npy_write(NULL, 0, a->type, a->rank, a->shape, values);
	out = xmalloc(need);
	got = smlib_npy_write(out, need, a->type, a->rank, a->shape, values);
	snprintf(why, sizeof why, "wrote %zu bytes, numpy.save %zu%s", got, len,
		 got == len ? " (bytes differ)" : "");
	report(got == need && got == len && memcmp(out, file, len) == 0, name, why);
	free(out);
	free(values);
}

static void npy_prefixes(const char *name, const unsigned char *file, size_t len)
{
	size_t n;
	char err[256];
	struct smlib_npy a;
	for (n = 0; n < len; n++) {
		unsigned char *copy = xmalloc(n);
		int rc;
		memcpy(copy, file, n);
		rc = smlib_npy_read(&a, copy, n, err, sizeof err);
		free(copy);
		if (rc == 0) {
			char why[64];
			snprintf(why, sizeof why, "a prefix of %zu bytes is accepted", n);
			report(0, name, why);
			return;
		}
	}
	report(1, name, "");
}

static void npy_vector(const char *base, const unsigned char *file, size_t len, const char *expect,
		       const char *error)
{
	struct smlib_npy a;
	char err[256] = "", name[300];
	struct text dump = {xmalloc(DUMP_CAP), 0};
	int rc = smlib_npy_read(&a, file, len, err, sizeof err);
	dump.s[0] = '\0';
	snprintf(name, sizeof name, "npy %s", base);
	if (error) {
		report(rc != 0 && strcmp(err, error) == 0, name, rc ? err : "accepted");
	} else {
		if (rc == 0)
			npy_dump(&a, &dump);
		report(rc == 0 && strcmp(dump.s, expect) == 0, name, rc ? err : dump.s);
		snprintf(name, sizeof name, "npy %s: every prefix refused", base);
		npy_prefixes(name, file, len);
		if (rc == 0 && strncmp(base, "w_", 2) == 0) {
			snprintf(name, sizeof name, "npy %s: written again as numpy.save does", base);
			npy_rewrite(name, &a, file, len);
		}
	}
	free(dump.s);
}

/* ======================================================================== */
/* RecordIO-protobuf                                                        */
/* ======================================================================== */

static const char *rio_type_name(enum smlib_rio_type t)
{
	static const char *const names[] = {"none", "f32", "f64", "i32", "bytes"};
	return names[t];
}

static void tensor_dump(const struct smlib_rio_tensor *t, struct text *out)
{
	struct smlib_rio_iter it;
	uint64_t key = 0;
	double value = 0;
	size_t i;
	int first = 1;
	add(out, "%s", rio_type_name(t->type));
	if (t->type == SMLIB_RIO_NONE || t->type == SMLIB_RIO_BYTES)
		return;
	add(out, " shape=");
	for (i = 0; i < t->rank; i++)
		add(out, "%s%llu", i ? "," : "", (unsigned long long)t->shape[i]);
	add(out, " keys=");
	smlib_rio_iter_init(&it, t);
	while (t->keys && smlib_rio_iter_next(&it, &key, &value))
		add(out, "%s%llu", first ? "" : ",", (unsigned long long)key), first = 0;
	add(out, " values=");
	smlib_rio_iter_init(&it, t);
	for (first = 1; smlib_rio_iter_next(&it, &key, &value); first = 0)
		add(out, "%s%.17g", first ? "" : ",", value);
}

struct name {
	const char *s;
	size_t len;
};

static int name_order(const void *a, const void *b)
{
	const struct name *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The map's entries in key order, each key once (its last entry), as
 * Python's protobuf gives the map. */
static void map_dump(const struct smlib_rio_record *rec, int which, const char *tag, struct text *out)
{
	size_t count = which == SMLIB_RIO_FEATURES ? rec->n_features : rec->n_labels, i, n = 0;
	struct name *names = xmalloc(count * sizeof *names);
	struct smlib_rio_tensor t;
	for (i = 0; i < count; i++)
		if (!smlib_rio_entry(rec, which, i, &names[i].s, &names[i].len, &t))
			add(out, " [entry %zu missing]", i);
	qsort(names, count, sizeof *names, name_order);
	for (i = 0; i < count; i++) {
		char key[512];
		if (n > 0 && name_order(&names[n - 1], &names[i]) == 0)
			continue;
		names[n++] = names[i];
		snprintf(key, sizeof key, "%.*s", (int)names[i].len, names[i].s);
		if (!smlib_rio_find(rec, which, key, &t)) {
			add(out, " [%s not found]", key);
			continue;
		}
		add(out, " %s %s ", tag, key);
		tensor_dump(&t, out);
	}
	free(names);
}

/* Reads a whole body: 0 with the dump, or -1 with err. */
static int rio_read_all(const unsigned char *body, size_t len, int flags, struct text *dump, size_t *records,
			char *err, size_t err_size)
{
	struct smlib_rio_reader r;
	struct smlib_rio_record rec;
	int rc;
	smlib_rio_reader_init(&r, body, len, flags);
	*records = 0;
	while ((rc = smlib_rio_next(&r, &rec, err, err_size)) > 0) {
		(*records)++;
		if (dump) {
			add(dump, "record %zu:", rec.index);
			map_dump(&rec, SMLIB_RIO_FEATURES, "F", dump);
			map_dump(&rec, SMLIB_RIO_LABEL, "L", dump);
			add(dump, "\n");
		}
	}
	return rc;
}

/* A writer entry holding a copy of what an entry read says. */
struct out_entry {
	struct smlib_rio_out o;
	char *name;
	float *values;
	uint64_t *keys;
};

static void out_entry_from(struct out_entry *e, const char *key, size_t key_len,
			   const struct smlib_rio_tensor *t)
{
	struct smlib_rio_iter it;
	uint64_t k = 0;
	double v = 0;
	size_t i = 0;
	e->name = xmalloc(key_len + 1);
	memcpy(e->name, key, key_len);
	e->name[key_len] = '\0';
	e->values = xmalloc(t->n_values * sizeof *e->values);
	e->keys = xmalloc(t->n_values * sizeof *e->keys);
	smlib_rio_iter_init(&it, t);
	for (i = 0; smlib_rio_iter_next(&it, &k, &v); i++) {
		e->values[i] = (float)v;
		e->keys[i] = k;
	}
	e->o.name = e->name;
	e->o.values = e->values;
	e->o.n_values = i;
	e->o.keys = t->keys ? e->keys : NULL;
	e->o.shape = t->shape;
	e->o.rank = t->rank;
}

/* Writes one record again from what was read: its entries in their order.
 * Returns the bytes written (appended at out), 0 if not all float32. */
static size_t rio_rewrite_record(const struct smlib_rio_record *rec, unsigned char *out, size_t cap)
{
	size_t nf = rec->n_features, nl = rec->n_labels, i, size = 0;
	struct out_entry *e = xmalloc((nf + nl) * sizeof *e);
	struct smlib_rio_out *o = xmalloc((nf + nl) * sizeof *o);
	struct smlib_rio_tensor t[1];
	size_t made = 0;
	int all_f32 = 1;
	for (i = 0; i < nf + nl; i++) {
		const char *key;
		size_t key_len;
		if (!smlib_rio_entry(rec, i < nf ? SMLIB_RIO_FEATURES : SMLIB_RIO_LABEL, i < nf ? i : i - nf,
				     &key, &key_len, t))
			break;
		all_f32 &= t->type == SMLIB_RIO_FLOAT32;
		/* t's shape lives in t; keep a copy per entry. */
		out_entry_from(&e[i], key, key_len, t);
		e[i].o.shape = memcpy(xmalloc(sizeof t->shape), t->shape, sizeof t->shape);
		o[i] = e[i].o;
		made++;
	}
	if (all_f32 && made == nf + nl)
		size = smlib_rio_write(out, cap, o, nf, o + nf, nl);
	for (i = 0; i < made; i++) {
		free(e[i].name);
		free(e[i].values);
		free(e[i].keys);
		free((void *)e[i].o.shape);
	}
	free(e);
	free(o);
	return all_f32 ? size : 0;
}

static void rio_rewrite(const char *name, const unsigned char *file, size_t len)
{
	struct smlib_rio_reader r;
	struct smlib_rio_record rec;
	unsigned char *out = xmalloc(len + 64);
	size_t at = 0;
	char err[256] = "", why[300];
	int rc;
	smlib_rio_reader_init(&r, file, len, 0);
	while ((rc = smlib_rio_next(&r, &rec, err, sizeof err)) > 0) {
		size_t n = rio_rewrite_record(&rec, out + at, len + 64 - at);
		if (n == 0 || n > len + 64 - at) {
			rc = -1;
			snprintf(err, sizeof err, "record %zu not written", rec.index);
			break;
		}
		at += n;
	}
	snprintf(why, sizeof why, "%s; wrote %zu bytes, Python %zu", rc ? err : "bytes differ", at, len);
	report(rc == 0 && at == len && memcmp(out, file, len) == 0, name, why);
	free(out);
}

/* Every prefix: refused, or read as fewer records (one ending between
 * records, or inside the last record's padding, is a whole body). */
static void rio_prefixes(const char *name, const unsigned char *file, size_t len, int flags, size_t whole)
{
	size_t n, records;
	char err[256], why[128];
	for (n = 0; n < len; n++) {
		unsigned char *copy = xmalloc(n);
		int rc;
		memcpy(copy, file, n);
		rc = rio_read_all(copy, n, flags, NULL, &records, err, sizeof err);
		free(copy);
		if (rc == 0 && records > whole) {
			snprintf(why, sizeof why, "a prefix of %zu bytes gives %zu records", n, records);
			report(0, name, why);
			return;
		}
	}
	report(1, name, "");
}

static void rio_vector(const char *base, const unsigned char *file, size_t len, const char *expect,
		       const char *error)
{
	char err[256] = "", name[300];
	struct text dump = {xmalloc(DUMP_CAP), 0};
	int flags = strstr(base, "need_") ? SMLIB_RIO_NEED_VALUES : 0;
	size_t records;
	int rc = rio_read_all(file, len, flags, &dump, &records, err, sizeof err);
	snprintf(name, sizeof name, "recordio %s", base);
	if (error) {
		report(rc != 0 && strcmp(err, error) == 0, name, rc ? err : "accepted");
	} else {
		dump.s[dump.len] = '\0';
		report(rc == 0 && strcmp(dump.s, expect) == 0, name, rc ? err : dump.s);
		snprintf(name, sizeof name, "recordio %s: prefixes refused or shorter", base);
		rio_prefixes(name, file, len, flags, records);
		if (rc == 0 && strncmp(base, "w_", 2) == 0) {
			snprintf(name, sizeof name, "recordio %s: written again as Python's protobuf does", base);
			rio_rewrite(name, file, len);
		}
	}
	free(dump.s);
}

/* ======================================================================== */
/* The vectors                                                              */
/* ======================================================================== */

static void run_vector(const char *file)
{
	char path[600], base[200];
	const char *dot = strrchr(file, '.');
	unsigned char *data, *expect, *error;
	size_t len, expect_len = 0, error_len = 0;
	snprintf(base, sizeof base, "%.*s", (int)(dot - file < 150 ? dot - file : 150), file);
	snprintf(path, sizeof path, VECTORS "/%s", file);
	data = load(path, &len);
	snprintf(path, sizeof path, VECTORS "/%s.expect", base);
	expect = load(path, &expect_len);
	snprintf(path, sizeof path, VECTORS "/%s.error", base);
	error = load(path, &error_len);
	if (!data || (!expect == !error)) {
		report(0, file, "needs the file and one of .expect and .error");
	} else {
		/* NUL-terminated copies of the expectations. */
		char *text = xmalloc((expect ? expect_len : error_len) + 1);
		memcpy(text, expect ? expect : error, expect ? expect_len : error_len);
		text[expect ? expect_len : error_len] = '\0';
		if (strcmp(dot, ".npy") == 0)
			npy_vector(base, data, len, expect ? text : NULL, error ? text : NULL);
		else
			rio_vector(base, data, len, expect ? text : NULL, error ? text : NULL);
		free(text);
	}
	free(data);
	free(expect);
	free(error);
}

static int string_order(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void run_vectors(void)
{
	DIR *d = opendir(VECTORS);
	struct dirent *e;
	char **files = NULL;
	size_t n = 0, i;
	if (!d) {
		report(0, VECTORS, "cannot open the directory (run from the repository root)");
		return;
	}
	while ((e = readdir(d)) != NULL) {
		const char *dot = strrchr(e->d_name, '.');
		char **grown;
		if (!dot || (strcmp(dot, ".npy") != 0 && strcmp(dot, ".rio") != 0))
			continue;
		grown = realloc(files, (n + 1) * sizeof *files);
		if (!grown)
			exit(2);
		files = grown;
		files[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(files, n, sizeof *files, string_order);
	for (i = 0; i < n; i++) {
		run_vector(files[i]);
		free(files[i]);
	}
	free(files);
	report(n > 100, "vectors found", "fewer than 100 vectors");
}

/* ======================================================================== */
/* The writers, called as a plug-in calls them                              */
/* ======================================================================== */

/* Linear Learner's answer for two records, as w_linear_learner.rio holds
 * it (labels in key order: what Python's deterministic serialization
 * writes). */
static void direct_recordio(void)
{
	static const float score[2] = {0.25f, 0.75f}, predicted[2] = {0.0f, 1.0f};
	unsigned char out[256], sentinel[256];
	size_t file_len, at = 0, need, i;
	unsigned char *file = load(VECTORS "/w_linear_learner.rio", &file_len);
	for (i = 0; i < 2; i++) {
		struct smlib_rio_out labels[2] = {
			{"predicted_label", &predicted[i], 1, NULL, NULL, 0},
			{"score", &score[i], 1, NULL, NULL, 0},
		};
		need = smlib_rio_write(NULL, 0, NULL, 0, labels, 2);
		memset(sentinel, 0xab, sizeof sentinel);
		report(smlib_rio_write(sentinel, need - 1, NULL, 0, labels, 2) == need && sentinel[0] == 0xab,
		       "recordio write: too small a buffer gives the size and writes nothing", "");
		at += smlib_rio_write(out + at, sizeof out - at, NULL, 0, labels, 2);
	}
	report(file && at == file_len && memcmp(out, file, at) == 0,
	       "recordio write: Linear Learner's score and predicted_label as Python writes them", "bytes differ");
	free(file);
}

/* A record whose payload is not a multiple of 4 bytes, without its
 * padding: the last record may omit it; another may not. */
static void unpadded_last_record(void)
{
	static const float v[1] = {1.0f};
	static const uint64_t shape[1] = {1};
	struct smlib_rio_out values = {"values", v, 1, NULL, shape, 1};
	unsigned char out[128];
	size_t payload = smlib_rio_record_size(&values, 1, NULL, 0);
	size_t one = smlib_rio_write(out, sizeof out, &values, 1, NULL, 0), records;
	char err[256] = "";
	report(payload % 4 != 0, "recordio: the test record needs padding", "payload is aligned");
	report(rio_read_all(out, 8 + payload, SMLIB_RIO_NEED_VALUES, NULL, &records, err, sizeof err) == 0 &&
	       records == 1, "recordio: the last record may omit its padding", err);
	memmove(out + 8 + payload, out, one);     /* a second record where the padding was */
	report(rio_read_all(out, 8 + payload + one, 0, NULL, &records, err, sizeof err) < 0,
	       "recordio: a record without padding followed by another is refused", "accepted");
}

/* numpy.save's bytes of a float64 matrix, from a plug-in's doubles. */
static void direct_npy(void)
{
	static const double values[6] = {1.5, -2.25, 0.1, 3.0, 1e300, -0.0};
	static const size_t shape[2] = {2, 3};
	unsigned char out[256];
	size_t file_len, n;
	unsigned char *file = load(VECTORS "/w_f8_2d.npy", &file_len);
	n = smlib_npy_write(out, sizeof out, SMLIB_NPY_F8, 2, shape, values);
	report(file && n == file_len && memcmp(out, file, n) == 0, "npy write: a float64 matrix as numpy.save writes it",
	       "bytes differ");
	report(smlib_npy_write(out, n - 1, SMLIB_NPY_F8, 2, shape, values) == n,
	       "npy write: too small a buffer gives the size", "");
	free(file);
}

int main(void)
{
	run_vectors();
	direct_recordio();
	unpadded_last_record();
	direct_npy();
	printf("%d passed, %d failed\n", n_passed, n_failed);
	return n_failed ? 1 : 0;
}

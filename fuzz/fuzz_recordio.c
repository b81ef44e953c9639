/*
 * fuzz_recordio.c - libFuzzer target for lib/recordio.h.
 *
 * Input: the first byte picks the reader's flags (bit 0:
 * SMLIB_RIO_NEED_VALUES); the rest is the body, given to the reader as an
 * exact heap copy (so ASan sees any read past the end).
 *
 * Invariants:
 *  - a refused body gets a message naming a byte offset inside the body;
 *  - every tensor of an accepted record stays inside the body, and its
 *    iterator gives exactly n_values pairs, with keys inside the shape;
 *  - each accepted record, written again by smlib_rio_write (its tensors as
 *    float32, in their order), is read back with the same entries: same
 *    keys, shapes, sparse keys, and values equal to the float32 of the
 *    originals (NaN as NaN); and smlib_rio_write wrote the size it said.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined (see fuzz/run.sh).
 */
#include <math.h>
#include <stdlib.h>

#include "../lib/recordio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *why, size_t a)
{
	fprintf(stderr, "fuzz_recordio invariant broken: %s (%zu)\n", why, a);
	abort();
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);  /* zeroed: the analyzers cannot prove every use is written first */
	if (!p)
		abort();
	return p;
}

/* The entries of one record, as the writer takes them, with their storage. */
struct copy {
	struct smlib_rio_out *out;
	float *values;
	uint64_t *keys, *shapes;
	char *names;
	size_t n_features, n;
};

/* Walks a tensor: n_values pairs, keys inside the shape; fills values and
 * keys (n_values each) when given. */
static void walk(const struct smlib_rio_tensor *t, const unsigned char *body, size_t len, float *values,
		 uint64_t *keys)
{
	struct smlib_rio_iter it;
	uint64_t key;
	double value;
	size_t i = 0;
	if (t->values && (t->values < body || t->values_end > body + len))
		fail("tensor values outside the body", t->offset);
	smlib_rio_iter_init(&it, t);
	while (smlib_rio_iter_next(&it, &key, &value)) {
		if (i >= t->n_values)
			fail("more pairs than values", i);
		if (t->rank > 0 && key >= t->size)
			fail("key outside the shape", (size_t)key);
		if (values) {
			values[i] = (float)value;
			keys[i] = key;
		}
		i++;
	}
	if (i != t->n_values && (t->type == SMLIB_RIO_FLOAT32 || t->type == SMLIB_RIO_FLOAT64 ||
				 t->type == SMLIB_RIO_INT32))
		fail("fewer pairs than values", i);
}

/* Copies the record's tensors (Bytes and empty Values left out). */
static void copy_record(const struct smlib_rio_record *rec, const unsigned char *body, size_t len,
			struct copy *c)
{
	size_t total = rec->n_features + rec->n_labels, i, values = 0, names = 0;
	struct smlib_rio_tensor t;
	const char *key;
	size_t key_len;
	for (i = 0; i < total; i++) {
		int which = i < rec->n_features ? SMLIB_RIO_FEATURES : SMLIB_RIO_LABEL;
		if (!smlib_rio_entry(rec, which, i < rec->n_features ? i : i - rec->n_features, &key, &key_len, &t))
			fail("an entry counted is not found", i);
		values += t.n_values;
		names += key_len + 1;
	}
	c->out = xmalloc(total * sizeof *c->out);
	c->values = xmalloc(values * sizeof *c->values);
	c->keys = xmalloc(values * sizeof *c->keys);
	c->shapes = xmalloc(total * SMLIB_RIO_MAX_RANK * sizeof *c->shapes);
	c->names = xmalloc(names);
	c->n = c->n_features = 0;
	for (i = 0, values = names = 0; i < total; i++) {
		int which = i < rec->n_features ? SMLIB_RIO_FEATURES : SMLIB_RIO_LABEL;
		struct smlib_rio_out *o = &c->out[c->n];
		(void)smlib_rio_entry(rec, which, i < rec->n_features ? i : i - rec->n_features, &key, &key_len, &t);
		walk(&t, body, len, c->values + values, c->keys + values);
		if (t.type == SMLIB_RIO_NONE || t.type == SMLIB_RIO_BYTES || memchr(key, '\0', key_len))
			continue;
		memcpy(c->names + names, key, key_len);
		c->names[names + key_len] = '\0';
		memcpy(c->shapes + c->n * SMLIB_RIO_MAX_RANK, t.shape, sizeof t.shape);
		o->name = c->names + names;
		o->values = c->values + values;
		o->n_values = t.n_values;
		o->keys = t.keys ? c->keys + values : NULL;
		o->shape = c->shapes + c->n * SMLIB_RIO_MAX_RANK;
		o->rank = t.rank;
		names += key_len + 1;
		values += t.n_values;
		c->n++;
		if (which == SMLIB_RIO_FEATURES)
			c->n_features++;
	}
}

static int same_float(float a, float b)
{
	uint32_t x, y;
	memcpy(&x, &a, sizeof x);
	memcpy(&y, &b, sizeof y);
	return (isnan(a) && isnan(b)) || x == y;
}

/* The written record read back must hold what was written. */
static void check_written(const struct copy *c, const unsigned char *out, size_t n)
{
	struct smlib_rio_reader r;
	struct smlib_rio_record rec;
	char err[256];
	size_t i, j;
	smlib_rio_reader_init(&r, out, n, 0);
	if (smlib_rio_next(&r, &rec, err, sizeof err) != 1)
		fail(err, 0);
	if (rec.n_features != c->n_features || rec.n_labels != c->n - c->n_features)
		fail("entries lost in writing", rec.n_features);
	for (i = 0; i < c->n; i++) {
		const struct smlib_rio_out *o = &c->out[i];
		struct smlib_rio_tensor t;
		struct smlib_rio_iter it;
		const char *key;
		size_t key_len;
		uint64_t k;
		double v;
		int which = i < c->n_features ? SMLIB_RIO_FEATURES : SMLIB_RIO_LABEL;
		if (!smlib_rio_entry(&rec, which, i < c->n_features ? i : i - c->n_features, &key, &key_len, &t) ||
		    key_len != strlen(o->name) || memcmp(key, o->name, key_len) != 0)
			fail("entry name differs", i);
		if (t.type != SMLIB_RIO_FLOAT32 || t.n_values != o->n_values || t.rank != o->rank ||
		    (t.rank && memcmp(t.shape, o->shape, t.rank * sizeof *t.shape) != 0) ||
		    (!t.keys != !(o->keys && o->n_values)))
			fail("tensor differs", i);
		smlib_rio_iter_init(&it, &t);
		for (j = 0; smlib_rio_iter_next(&it, &k, &v); j++)
			if (!same_float((float)v, o->values[j]) || (o->keys && k != o->keys[j]))
				fail("value differs", j);
	}
	if (smlib_rio_next(&r, &rec, err, sizeof err) != 0)
		fail("more than one record written", 0);
}

static void rewrite(const struct smlib_rio_record *rec, const unsigned char *body, size_t len)
{
	struct copy c;
	size_t need, got;
	unsigned char *out;
	copy_record(rec, body, len, &c);
	need = smlib_rio_write(NULL, 0, c.out, c.n_features, c.out + c.n_features, c.n - c.n_features);
	if (need == 0)
		fail("record too large to write", 0);
	out = xmalloc(need);
	got = smlib_rio_write(out, need, c.out, c.n_features, c.out + c.n_features, c.n - c.n_features);
	if (got != need || need % 4 != 0)
		fail("written size differs from the size announced", got);
	check_written(&c, out, got);
	free(out);
	free(c.out);
	free(c.values);
	free(c.keys);
	free(c.shapes);
	free(c.names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smlib_rio_reader r;
	struct smlib_rio_record rec;
	char err[256] = "";
	const char *at;
	unsigned char *body;
	int rc, flags;
	if (size == 0)
		return 0;
	flags = data[0] & 1 ? SMLIB_RIO_NEED_VALUES : 0;
	body = xmalloc(size - 1);
	memcpy(body, data + 1, size - 1);
	smlib_rio_reader_init(&r, body, size - 1, flags);
	while ((rc = smlib_rio_next(&r, &rec, err, sizeof err)) > 0) {
		if (rec.has_values)
			walk(&rec.values, body, size - 1, NULL, NULL);
		rewrite(&rec, body, size - 1);
	}
	if (rc < 0) {
		/* The last " at byte ": a message may quote the input. */
		for (at = strstr(err, " at byte "); at && strstr(at + 1, " at byte "); at = strstr(at + 1, " at byte "))
			;
		if (strncmp(err, "recordio-protobuf: ", 19) != 0 || !at || strtoull(at + 9, NULL, 10) > size - 1)
			fail(err, size);
	}
	free(body);
	return 0;
}

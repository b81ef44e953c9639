/*
 * fuzz_npy.c - libFuzzer target for lib/npy.h.
 *
 * Input: the body, given to the reader as an exact heap copy (so ASan sees
 * any read past the end).
 *
 * Invariants:
 *  - a refused body gets a message naming a byte offset inside the body;
 *  - an accepted one is 1-D or 2-D, its data ends exactly at the body's end;
 *  - written again by smlib_npy_write (float32 as float32, anything else as
 *    float64), it has the size announced, a header padded to 64 bytes, and
 *    reads back as the same shape and values (NaN as NaN).
 *
 * Build: clang -fsanitize=fuzzer,address,undefined (see fuzz/run.sh).
 */
#include <math.h>
#include <stdlib.h>

#include "../lib/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *why, size_t a)
{
	fprintf(stderr, "fuzz_npy invariant broken: %s (%zu)\n", why, a);
	abort();
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);  /* zeroed: the analyzers cannot prove every use is written first */
	if (!p)
		abort();
	return p;
}

static int same(double a, double b)
{
	uint64_t x, y;
	memcpy(&x, &a, sizeof x);
	memcpy(&y, &b, sizeof y);
	return (isnan(a) && isnan(b)) || x == y;
}

static void rewrite(const struct smlib_npy *a)
{
	enum smlib_npy_type type = a->type == SMLIB_NPY_F4 ? SMLIB_NPY_F4 : SMLIB_NPY_F8;
	size_t n = a->rows * a->cols, i, need, got;
	double *values = xmalloc(n * sizeof *values);
	unsigned char *out;
	struct smlib_npy b;
	char err[256];
	for (i = 0; i < n; i++)
		values[i] = smlib_npy_value(a, i / a->cols, i % a->cols);
	need = smlib_npy_write(NULL, 0, type, a->rank, a->shape, values);
	out = xmalloc(need);
	got = smlib_npy_write(out, need, type, a->rank, a->shape, values);
	if (got != need || got == 0)
		fail("written size differs from the size announced", got);
	if (smlib_npy_read(&b, out, got, err, sizeof err) != 0)
		fail(err, got);
	if (b.data_offset % SMLIB_NPY_ALIGN != 0 || b.rank != a->rank || b.rows != a->rows || b.cols != a->cols ||
	    b.type != type)
		fail("shape or type differs", b.data_offset);
	for (i = 0; i < n; i++)
		if (!same(smlib_npy_value(&b, i / b.cols, i % b.cols), values[i]))
			fail("value differs", i);
	free(out);
	free(values);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smlib_npy a;
	char err[256] = "";
	unsigned char *body = xmalloc(size);
	const char *at;
	memcpy(body, data, size);
	if (smlib_npy_read(&a, body, size, err, sizeof err) == 0) {
		if ((a.rank != 1 && a.rank != 2) || a.data_offset + a.rows * a.cols * a.item_size != size)
			fail("accepted array does not fill the body", size);
		rewrite(&a);
	} else {
		/* The last " at byte ": a message may quote the input. */
		for (at = strstr(err, " at byte "); at && strstr(at + 1, " at byte "); at = strstr(at + 1, " at byte "))
			;
		if (strncmp(err, "npy: ", 5) != 0 || !at || strtoull(at + 9, NULL, 10) > size)
			fail(err, size);
	}
	free(body);
	return 0;
}

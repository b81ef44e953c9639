/*
 * fuzz_chunked.c - libFuzzer target for chunked_decode.
 *
 * Input: a 3-byte control prefix, then the raw chunked body.
 *   [0..1]  split point (little endian, modulo len + 1)
 *   [2]     max_body: 0 means 2^64 - 1 (only the 16-digit cap guards the
 *           size), otherwise value * 16 bytes, so 413 is reachable
 *
 * The body is decoded three ways, feeding the decoder the way the server's
 * body_progress() does (each call sees the bytes held so far; afterwards the
 * undecoded tail is moved down next to the payload): whole, in two pieces
 * split at the chosen point, and one byte at a time. All three must give the
 * same result, status, payload and leftover bytes.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Dmain=smserve_main
 * (see fuzz/run.sh).
 */
#include "harness.h"


#define CONTROL_BYTES 3

static void fail(const char *why, size_t a, size_t b)
{
	fprintf(stderr, "fuzz_chunked invariant broken: %s (%zu, %zu)\n", why, a, b);
	abort();
}

/* The outcome of one way of feeding: the connection buffer at the end holds
 * the payload in [0, dst) and undecoded bytes in [dst, held). */
struct fed {
	int res, status;
	char *buf;
	size_t dst, held, fed;
};

/* Feeds in[0, len): a first piece of `first` bytes, then pieces of `step`
 * bytes (0: the rest at once). Each call gets an exact-size heap buffer
 * when exact is set, so ASan sees reads past the bytes held. */
static void feed(const char *in, size_t len, size_t first, size_t step, uint64_t max, int exact,
	struct fed *f)
{
	struct chunked st;
	size_t raw = 0, calls = 0;
	memset(&st, 0, sizeof st);
	memset(f, 0, sizeof *f);
	f->buf = malloc(len ? len : 1);
	if (!f->buf)
		abort();
	f->res = PARSE_MORE;
	while (f->res == PARSE_MORE && (calls == 0 || f->fed < len)) {
		size_t piece = calls++ == 0 ? first : step ? step : len - f->fed;
		char *b = f->buf;
		if (piece > len - f->fed)
			piece = len - f->fed;
		memcpy(f->buf + f->held, in + f->fed, piece);
		f->held += piece;
		f->fed += piece;
		if (exact && !(b = malloc(f->held ? f->held : 1)))
			abort();
		if (exact)
			memcpy(b, f->buf, f->held);
		f->status = 0;
		f->res = chunked_decode(&st, b, f->held, &raw, &f->dst, max, &f->status);
		if (exact) {
			memcpy(f->buf, b, f->held);
			free(b);
		}
		if (f->dst > raw || raw > f->held || st.total != f->dst || st.total > max)
			fail("decoder positions out of order", f->dst, raw);
		if (f->res == PARSE_DONE && st.state != CH_DONE)
			fail("PARSE_DONE before CH_DONE", (size_t)st.state, 0);
		if (f->res == PARSE_ERROR && f->status != 400 && f->status != 413 && f->status != 431)
			fail("unexpected error status", (size_t)f->status, 0);
		/* body_progress(): close the gap between payload and raw bytes */
		memmove(f->buf + f->dst, f->buf + raw, f->held - raw);
		f->held = f->dst + (f->held - raw);
		raw = f->dst;
	}
}

/* Byte i of what follows the body: undecoded bytes held, then bytes never
 * fed. The caller keeps i below leftover_len(). */
static size_t leftover_len(const struct fed *f, size_t len)
{
	return (f->held - f->dst) + (len - f->fed);
}

static char leftover_at(const struct fed *f, const char *in, size_t i)
{
	size_t held = f->held - f->dst;
	return i < held ? f->buf[f->dst + i] : in[f->fed + (i - held)];
}

static void compare(const struct fed *a, const struct fed *b, const char *in, size_t len,
	const char *mode)
{
	size_t i, n = leftover_len(a, len);
	if (a->res != b->res || (a->res == PARSE_ERROR && a->status != b->status)) {
		fprintf(stderr, "%s: result %d status %d, whole: result %d status %d\n", mode, b->res,
			b->status, a->res, a->status);
		fail("feeding changed the result", 0, 0);
	}
	if (a->res == PARSE_ERROR)
		return;
	if (a->dst != b->dst || memcmp(a->buf, b->buf, a->dst) != 0)
		fail("feeding changed the payload", a->dst, b->dst);
	if (a->res != PARSE_DONE)
		return;
	if (n != leftover_len(b, len))
		fail("feeding changed where the body ends", n, leftover_len(b, len));
	for (i = 0; i < n; i++)
		if (leftover_at(a, in, i) != leftover_at(b, in, i))
			fail("feeding changed the bytes after the body", i, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + CONTROL_BYTES;
	size_t len, k;
	uint64_t max;
	struct fed whole, split, bytewise;
	if (size < CONTROL_BYTES)
		return 0;
	len = size - CONTROL_BYTES;
	k = ((size_t)data[0] | (size_t)data[1] << 8) % (len + 1);
	max = data[2] ? (uint64_t)data[2] * 16 : UINT64_MAX;
	feed(in, len, len, 0, max, 1, &whole);
	feed(in, len, k, 0, max, 1, &split);
	feed(in, len, 1, 1, max, 0, &bytewise);
	compare(&whole, &split, in, len, "split");
	compare(&whole, &bytewise, in, len, "bytewise");
	free(whole.buf);
	free(split.buf);
	free(bytewise.buf);
	return 0;
}

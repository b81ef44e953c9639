/*
 * fuzz_parser.c - libFuzzer target for http_parse_head.
 *
 * Input: a 5-byte control prefix, then the request bytes.
 *   [0..1]  split point (little endian, modulo len + 1)
 *   [2..3]  pad position (little endian, modulo payload length)
 *   [4]     pad count: the byte at the pad position is repeated count * 128
 *           times, so short inputs reach the 8 KiB target and 32 KiB head
 *           limits (libFuzzer's inputs are small by default)
 *
 * The head is parsed three ways and every way must agree (same result, same
 * status, same request): whole; a prefix of split bytes on a fresh scan state
 * and then the whole with that state kept (two reads); one byte more per
 * call with the state kept (a dribbling client). Each call that may only
 * read n bytes gets an exact heap copy of n bytes, so ASan sees overreads.
 * A PARSE_DONE request must point only inside the buffer it came from.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Dmain=smserve_main
 * (see fuzz/run.sh).
 */
#include "harness.h"


#define CONTROL_BYTES 5
#define PAD_UNIT 128

static void fail(const char *why, size_t a, size_t b)
{
	fprintf(stderr, "fuzz_parser invariant broken: %s (%zu, %zu)\n", why, a, b);
	abort();
}

static char *copy_of(const char *p, size_t n)
{
	char *q = malloc(n ? n : 1);
	if (!q)
		abort();
	if (n)
		memcpy(q, p, n);
	return q;
}

/* A slice as an offset into its buffer: -1 for none, -2 for the static "/"
 * that target_path uses for an empty path. Anything else must lie inside. */
static long offset_of(struct slice s, const char *buf, size_t len)
{
	uintptr_t at = (uintptr_t)s.p, base = (uintptr_t)buf;
	if (!s.p)
		return -1;
	if (at < base || at - base > len || s.n > len - (at - base)) {
		if (s.n == 1 && s.p[0] == '/')
			return -2;
		fail("slice outside the buffer", at - base, s.n);
	}
	return (long)(at - base);
}

/* Every slice of a request, in a fixed order. */
#define MAX_SLICES (5 + MAX_ACCEPT_LINES + 2 * MAX_AMZN_HEADERS)

static size_t slices_of(const struct http_request *r, struct slice *out)
{
	size_t i, n = 0;
	out[n++] = r->method_name;
	out[n++] = r->target;
	out[n++] = r->path;
	out[n++] = r->content_type;
	out[n++] = r->custom_attributes;
	for (i = 0; i < r->accept_count && i < MAX_ACCEPT_LINES; i++)
		out[n++] = r->accept[i];
	for (i = 0; i < r->amzn_count && i < MAX_AMZN_HEADERS; i++) {
		out[n++] = r->amzn_name[i];
		out[n++] = r->amzn_value[i];
	}
	return n;
}

/* What a parse returned, with slices as offsets into its buffer. */
struct outcome {
	int result, status;
	struct http_request req;    /* scalars only: slices are in off/len */
	size_t nslices;
	long off[MAX_SLICES];
	size_t n[MAX_SLICES];
};

static void check_done(const struct http_request *req, size_t len)
{
	if (req->head_len > len || req->head_len < 4)
		fail("head_len out of range", req->head_len, len);
	if (req->target.n > MAX_TARGET_BYTES || req->minor < 0 || req->minor > 9)
		fail("target or version out of range", req->target.n, (size_t)req->minor);
	if (req->chunked && req->has_length)
		fail("both chunked and Content-Length", 0, 0);
	if (req->amzn_count > MAX_AMZN_HEADERS || req->method == M_UNKNOWN)
		fail("amzn_count or method", req->amzn_count, (size_t)req->method);
	if (req->method_name.n == 0 || req->target.n == 0 || req->path.n == 0)
		fail("empty method, target or path", req->target.n, req->path.n);
}

static void record(struct outcome *o, int r, const struct http_request *req, const char *buf, size_t len)
{
	struct slice s[MAX_SLICES];
	size_t i;
	memset(o, 0, sizeof *o);
	o->result = r;
	if (r == PARSE_ERROR) {
		o->status = req->error_status;
		if (o->status != 400 && o->status != 414 && o->status != 417 && o->status != 431 &&
		    o->status != 501 && o->status != 505)
			fail("unexpected error status", (size_t)o->status, 0);
		return;
	}
	if (r != PARSE_DONE)
		return;
	check_done(req, len);
	o->req = *req;
	o->nslices = slices_of(req, s);
	for (i = 0; i < o->nslices; i++) {
		o->off[i] = offset_of(s[i], buf, len);
		o->n[i] = s[i].n;
	}
}

static void compare(const struct outcome *a, const struct outcome *b, size_t len, const char *mode)
{
	const struct http_request *x = &a->req, *y = &b->req;
	size_t i;
	(void)len;
	if (a->result != b->result || a->status != b->status) {
		fprintf(stderr, "%s: result %d status %d, whole: result %d status %d\n", mode,
			b->result, b->status, a->result, a->status);
		fail("feeding changed the result", 0, 0);
	}
	if (a->result != PARSE_DONE)
		return;
	if (x->method != y->method || x->minor != y->minor || x->head_len != y->head_len ||
	    x->keep_alive != y->keep_alive || x->chunked != y->chunked ||
	    x->has_length != y->has_length || x->content_length != y->content_length ||
	    x->expect_continue != y->expect_continue || a->nslices != b->nslices)
		fail("feeding changed the parsed request", x->head_len, y->head_len);
	for (i = 0; i < a->nslices; i++)
		if (a->off[i] != b->off[i] || a->n[i] != b->n[i])
			fail("feeding changed a slice", i, 0);
}

/* One parse of in[0, n) on an exact copy; records the outcome. */
static int parse_n(const char *in, size_t n, struct head_scan *scan, struct outcome *o)
{
	struct http_request req;
	char *buf = copy_of(in, n);
	int r;
	memset(&req, 0, sizeof req);
	r = http_parse_head(buf, n, scan, &req);
	record(o, r, &req, buf, n);
	free(buf);
	return r;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct head_scan scan;
	struct http_request req;
	struct outcome whole, split, bytewise;
	size_t len, k;
	char *in;
	if (size < CONTROL_BYTES)
		return 0;
	in = expand(data, size, CONTROL_BYTES, 2, PAD_UNIT, &len);

	memset(&scan, 0, sizeof scan);
	parse_n(in, len, &scan, &whole);

	/* two reads: a prefix on a fresh state, then everything */
	k = ((size_t)data[0] | (size_t)data[1] << 8) % (len + 1);
	memset(&scan, 0, sizeof scan);
	if (parse_n(in, k, &scan, &split) == PARSE_MORE)
		parse_n(in, len, &scan, &split);
	compare(&whole, &split, len, "split");

	/* one byte at a time, state kept, on one buffer as the server does
	 * (exact copies here would cost O(n^2); the split above checks reads) */
	memset(&scan, 0, sizeof scan);
	memset(&bytewise, 0, sizeof bytewise);
	memset(&req, 0, sizeof req);     /* once, as conn_reset() does */
	for (k = 1; k <= len; k++) {
		int r = http_parse_head(in, k, &scan, &req);
		if (r != PARSE_MORE) {
			record(&bytewise, r, &req, in, len);
			break;
		}
	}
	compare(&whole, &bytewise, len, "bytewise");
	free(in);
	return 0;
}

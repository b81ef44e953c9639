/*
 * tests/numtext_check.c - lib/numtext.h against printf and strtod (glibc's
 * are correctly rounded) and against Python's repr.
 *
 *   numtext_check random N SEED   N random doubles (every bit pattern
 *                                 alike, so every exponent; each with both
 *                                 signs) and N random float32 patterns
 *   numtext_check edges [MANY]    the edge values: subnormals, powers of
 *                                 two and ten and their neighbours,
 *                                 integers, halfway cases, short decimals
 *                                 (MANY of each run, default 100000)
 *   numtext_check python FILE     lines "BITS REPR" (tools/make_numtext_corpus.py;
 *                                 FILE - for stdin): smlib_repr_double(BITS)
 *                                 must be REPR byte for byte
 *
 * For each double v (and float f, with strtof) it checks that
 *   - "%.17g" of v reads back as v (the oracle is sane), and so does
 *     smlib_repr_double's text, sign and all;
 *   - the digits are the shortest: no decimal one digit shorter reads back
 *     (the ones next to v one digit shorter are tried: if any shorter
 *     decimal read back, one of those would);
 *   - the digits are the nearest of their length: the correctly rounded
 *     decimal of that length (snprintf's; ties to even), or the next one up
 *     when that does not read back (at a power of two the interval is
 *     narrower below v).
 * Built with -DSMLIB_NUMTEXT_PRINTF_ONLY=1, lib/numtext.h takes its printf
 * path for every value, which is then checked the same way.
 *
 * Prints "not ok - ..." per failure (the first 20), then one line: how
 * many values were checked, failures, how many took the printf path
 * (expected: none, unless forced), the time. Exits 1 on a failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long printf_path; /* values lib/numtext.h could not decide */
#define SMLIB_NUMTEXT_ON_PRINTF_PATH() (printf_path++)
#include "../lib/numtext.h"

static unsigned long long checked, failed;

static void fail(const char *what, uint64_t bits, const char *detail)
{
	if (++failed <= 20)
		printf("not ok - %s: %016" PRIx64 " (%s)\n", what, bits, detail);
}

/* Whether d * 10^e reads back as v (a float32 when is_float). */
static int reads_back(uint64_t d, int e, double v, int is_float)
{
	return smlib_reads_back(d, e, v, is_float);
}

/* The decimal of `digits` significant digits nearest v, as d * 10^e. */
static void rounded(double v, int digits, uint64_t *d, int *e)
{
	char text[48];
	int i;
	snprintf(text, sizeof text, "%.*e", digits - 1, v);
	for (*d = 0, i = 0; text[i] != 'e'; i++)
		if (text[i] != '.')
			*d = 10 * *d + (uint64_t)(text[i] - '0');
	*e = atoi(text + i + 1) - (digits - 1);
}

/* d * 10^e with the zeros at the end of d moved to e. */
static void strip(uint64_t *d, int *e)
{
	while (*d != 0 && *d % 10 == 0) {
		*d /= 10;
		++*e;
	}
}

/* The checks of the header comment on one positive finite value. */
static void check_digits(double v, int is_float, uint64_t bits)
{
	uint64_t d, r, p10 = 1;
	int e, re, n, i;
	char why[96];

	n = is_float ? smlib_shortest_float((float)v, &d, &e) : smlib_shortest_double(v, &d, &e);
	if (d == 0 || d % 10 == 0 || n != smlib_digit_count(d) || n > (is_float ? 9 : 17)) {
		snprintf(why, sizeof why, "digits %" PRIu64 " e%d n %d", d, e, n);
		fail("malformed digits", bits, why);
		return;
	}
	if (!reads_back(d, e, v, is_float)) {
		snprintf(why, sizeof why, "%" PRIu64 "e%d", d, e);
		fail("does not read back", bits, why);
		return;
	}
	if (n > 1) { /* nothing one digit shorter reads back */
		rounded(v, n - 1, &r, &re);
		for (i = 0; i < n - 2; i++)
			p10 *= 10;
		for (i = -1; i <= 1; i++)
			if (r + (uint64_t)i > 0 && reads_back(r + (uint64_t)i, re, v, is_float)) {
				snprintf(why, sizeof why, "%" PRIu64 "e%d, yet %" PRIu64 "e%d reads back",
					 d, e, r + (uint64_t)i, re);
				fail("not the shortest", bits, why);
				return;
			}
		/* the rounding went up a decade (10.0): the largest of the decade below */
		if (r == p10 && reads_back(10 * p10 - 1, re - 1, v, is_float)) {
			fail("not the shortest (decade)", bits, "");
			return;
		}
	}
	rounded(v, n, &r, &re); /* the nearest decimal of n digits */
	if (!reads_back(r, re, v, is_float))
		r++;
	strip(&r, &re);
	if (r != d || re != e) {
		snprintf(why, sizeof why, "%" PRIu64 "e%d, expected %" PRIu64 "e%d", d, e, r, re);
		fail("not the nearest", bits, why);
	}
}

static uint64_t bits_of(double v)
{
	uint64_t b;
	memcpy(&b, &v, sizeof b);
	return b;
}

static uint32_t float_bits_of(float f)
{
	uint32_t b;
	memcpy(&b, &f, sizeof b);
	return b;
}

/* Every check on one double, both signs (bit for bit: -0.0 too). */
static void check_double(uint64_t bits)
{
	char text[SMLIB_REPR_MAX + 8], oracle[40];
	double v, back;
	int sign;
	for (sign = 0; sign < 2; sign++, bits ^= 1ULL << 63) {
		memcpy(&v, &bits, sizeof v);
		checked++;
		snprintf(oracle, sizeof oracle, "%.17g", v);
		if (strtod(oracle, NULL) != v)
			fail("%.17g does not read back (oracle)", bits, oracle);
		if (smlib_repr_double(v, text) != strlen(text) || strlen(text) >= SMLIB_REPR_MAX) {
			fail("repr length", bits, text);
			continue;
		}
		back = strtod(text, NULL);
		if (bits_of(back) != bits_of(v))
			fail("repr does not read back", bits, text);
		if (sign == 0 && v > 0)
			check_digits(v, 0, bits);
	}
}

static void check_float(uint32_t bits)
{
	char text[SMLIB_REPR_MAX + 8];
	float f, back;
	memcpy(&f, &bits, sizeof f);
	checked++;
	if (smlib_repr_float(f, text) != strlen(text) || strlen(text) >= SMLIB_REPR_MAX) {
		fail("float repr length", bits, text);
		return;
	}
	back = strtof(text, NULL);
	if (float_bits_of(back) != float_bits_of(f))
		fail("float repr does not read back", bits, text);
	if (f > 0)
		check_digits(f, 1, bits);
}

/* xorshift64*: a fixed, fast sequence of 64-bit patterns. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 2685821657736338717ULL;
}

/* The values where formatters go wrong. */
static void check_edges(uint64_t many)
{
	static const double decimals[] = {0.1, 0.2, 0.3, 1.1, 2.5, 1e-05, 0.0001, 1e16, 9.999999999999999e15,
					  1e23, 8.41e21, 5e-324, 1.7976931348623157e308,
					  2.2250738585072014e-308, 2.225073858507201e-308,
					  0.30000000000000004, 123456789012345680.0, 4.35e-299};
	uint64_t b, i;
	int e;
	for (b = 0; b < many; b++) /* the smallest subnormals */
		check_double(b);
	for (b = 0; b < many; b++) /* the largest subnormals, the smallest normals */
		check_double(0x0010000000000000ULL - many / 2 + b);
	check_double(0x7fefffffffffffffULL);
	for (e = -1074; e <= 1023; e++) { /* every power of two and its neighbours */
		b = bits_of(ldexp(1.0, e));
		for (i = 0; i < 5; i++) {
			check_double(b + i);
			if (b > i)
				check_double(b - i);
		}
	}
	for (e = -323; e <= 308; e++) { /* every power of ten and its neighbours */
		char text[16];
		snprintf(text, sizeof text, "1e%d", e);
		b = bits_of(strtod(text, NULL));
		for (i = 0; i < 3; i++) {
			check_double(b + i);
			check_double(b - i);
		}
	}
	for (i = 0; i < 10 * many; i++) /* integers */
		check_double(bits_of((double)i));
	for (i = 0; i < many; i++) { /* the top of the exact integers */
		check_double(bits_of((double)((1ULL << 53) - i)));
		check_double(bits_of((double)((1ULL << 53) + 2 * i)));
	}
	for (i = 0; i < many; i++) /* n + 1/4, n + 3/4 at spacing 1/4: two candidates tie */
		check_double(bits_of((double)(1ULL << 50) + (double)i * 0.25));
	for (i = 0; i < many; i++) /* n + 1/2 at spacing 1/2 */
		check_double(bits_of((double)(1ULL << 51) + (double)i * 0.5));
	for (i = 0; i < sizeof decimals / sizeof *decimals; i++)
		check_double(bits_of(decimals[i]));
	for (i = 0; i < many; i++) { /* short decimals: k / 1000 and k * 1e-7 */
		check_double(bits_of((double)i / 1000));
		check_double(bits_of((double)i * 1e-7));
	}
	for (e = -149; e <= 127; e++) /* floats: every power of two and its neighbours */
		for (i = 0; i < 3; i++) {
			uint32_t fb = float_bits_of(ldexpf(1.0f, e));
			check_float(fb + (uint32_t)i);
			if (fb > i)
				check_float(fb - (uint32_t)i);
		}
	for (i = 0; i < many; i++) { /* subnormal floats, the largest floats */
		check_float((uint32_t)i);
		check_float(0x7f7fffffU - (uint32_t)i);
	}
}

static void check_random(uint64_t n, uint64_t seed)
{
	uint64_t state = seed * 0x9e3779b97f4a7c15ULL + 1, i, b;
	for (i = 0; i < n; i++) {
		do
			b = next_random(&state) & 0x7fffffffffffffffULL;
		while (b >= 0x7ff0000000000000ULL); /* finite */
		check_double(b);
		b = next_random(&state) & 0x7fffffffU;
		if (b < 0x7f800000U)
			check_float((uint32_t)b);
	}
}

/* Lines "BITS REPR": the repr must match Python's byte for byte. */
static void check_python(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char line[128], text[SMLIB_REPR_MAX + 8], *end;
	uint64_t bits;
	double v;
	if (f == NULL) {
		fail("cannot open the corpus", 0, path);
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		bits = strtoull(line, &end, 16);
		if (*end != ' ') {
			fail("bad corpus line", 0, line);
			continue;
		}
		memcpy(&v, &bits, sizeof v);
		smlib_repr_double(v, text);
		checked++;
		if (strcmp(text, end + 1) != 0) {
			char why[96];
			snprintf(why, sizeof why, "Python %s, here %s", end + 1, text);
			fail("not Python's repr", bits, why);
		}
	}
	if (f != stdin)
		fclose(f);
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (argc == 4 && strcmp(argv[1], "random") == 0) {
		check_random(strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
	} else if ((argc == 2 || argc == 3) && strcmp(argv[1], "edges") == 0) {
		check_edges(argc == 3 ? strtoull(argv[2], NULL, 10) : 100000);
	} else if (argc == 3 && strcmp(argv[1], "python") == 0) {
		check_python(argv[2]);
	} else {
		fprintf(stderr, "usage: %s random N SEED | edges [MANY] | python FILE\n", argv[0]);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%llu values checked, %llu failures, %llu took the printf path, %.1f s\n", checked,
	       failed, printf_path,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return failed != 0 || checked == 0;
}

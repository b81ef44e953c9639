/*
 * bench/model_speed.c - a plug-in's own speed, with no HTTP and no worker:
 * loads a model, answers one request body many times in this process, and
 * prints the milliseconds per MB of body and the MB/s of one core.
 *
 *   cc -O2 -o model_speed bench/model_speed.c model.c -lm
 *   ./model_speed MODEL_DIR BODY_FILE [CONTENT_TYPE [ACCEPT [ROUNDS]]]
 *   ./model_speed --numbers      nanoseconds per number of lib/numtext.h's
 *                                smlib_repr_double and of snprintf("%.17g"),
 *                                on probabilities and on random doubles
 *
 * bench/model.sh builds it with each compiler and optimisation the project
 * ships and runs it on the 1 MB CSV batch of bench/run.sh; bench/json.sh
 * runs it for CSV and JSON answers side by side. The server side of
 * model.h is a stub here: the answer is counted, not kept.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../model.h"
#include "../lib/numtext.h"

struct model_response {
	int status;
	size_t bytes;        /* answer bytes written, over all rounds */
	unsigned checksum;   /* so that the compiler cannot drop the work */
};

int model_response_status(model_response *out, int status)
{
	out->status = status;
	return 0;
}

int model_response_type(model_response *out, const char *content_type)
{
	(void)out;
	(void)content_type;
	return 0;
}

int model_response_custom_attributes(model_response *out, const char *value)
{
	(void)out;
	(void)value;
	return 0;
}

int model_response_write(model_response *out, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;
	for (i = 0; i < len; i += 64)
		out->checksum += p[i];
	out->bytes += len;
	return 0;
}

int model_response_error(model_response *out, int status, const char *message)
{
	out->status = status;
	fprintf(stderr, "model_speed: the model answered %d: %s\n", status, message);
	return 0;
}

static unsigned char *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;
	if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n)) != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (f)
		fclose(f);
	*size = buf ? (size_t)n : 0;
	return buf;
}

static double seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* --numbers: 1,000,000 doubles of each kind, written 5 times over, the
 * fastest pass kept. */
static int time_numbers(void)
{
	enum { N = 1000000 };
	static double v[N];
	static const char *const kind[2] = {"probabilities in [0, 1)", "random bit patterns"};
	char text[64];
	uint64_t state = 88172645463325252ULL, bits;
	size_t sum = 0;
	int k, i, pass, way;
	for (k = 0; k < 2; k++) {
		double best[2] = {1e9, 1e9};
		for (i = 0; i < N; i++) {
			do { /* xorshift64 */
				state ^= state << 13, state ^= state >> 7, state ^= state << 17;
				bits = k == 0 ? state >> 11 : state & 0x7fffffffffffffffULL;
			} while (k == 1 && bits >= 0x7ff0000000000000ULL);
			if (k == 0)
				v[i] = (double)bits / 9007199254740992.0;
			else
				memcpy(&v[i], &bits, sizeof bits);
		}
		for (pass = 0; pass < 5; pass++)
			for (way = 0; way < 2; way++) {
				double t0 = seconds(), t;
				for (i = 0; i < N; i++)
					sum += way == 0 ? smlib_repr_double(v[i], text)
							: (size_t)snprintf(text, sizeof text, "%.17g", v[i]);
				t = (seconds() - t0) / N * 1e9;
				best[way] = t < best[way] ? t : best[way];
			}
		printf("%s: smlib_repr_double %.1f ns per number, snprintf %%.17g %.1f ns\n", kind[k],
		       best[0], best[1]);
	}
	return sum == 0;
}

int main(int argc, char **argv)
{
	char err[1024];
	model *m;
	model_request req;
	model_response out;
	unsigned char *body;
	size_t size;
	int rounds, i;
	double t0, t;

	if (argc == 2 && strcmp(argv[1], "--numbers") == 0)
		return time_numbers();
	if (argc < 3) {
		fprintf(stderr, "usage: %s MODEL_DIR BODY_FILE [CONTENT_TYPE [ACCEPT [ROUNDS]]]\n", argv[0]);
		return 2;
	}
	if ((m = model_load(argv[1], err, sizeof err)) == NULL) {
		fprintf(stderr, "model_speed: %s\n", err);
		return 1;
	}
	if ((body = read_file(argv[2], &size)) == NULL) {
		fprintf(stderr, "model_speed: cannot read %s\n", argv[2]);
		return 1;
	}
	memset(&req, 0, sizeof req);
	req.content_type = argc > 3 ? argv[3] : "text/csv";
	req.accept = argc > 4 ? argv[4] : "text/csv";
	req.custom_attributes = "";
	req.body = body;
	req.body_len = size;
	rounds = argc > 5 ? atoi(argv[5]) : 200;
	memset(&out, 0, sizeof out);
	out.status = 200;
	model_invoke(m, &req, &out);          /* warm up: caches, page faults */
	t0 = seconds();
	for (i = 0; i < rounds; i++)
		model_invoke(m, &req, &out);
	t = (seconds() - t0) / rounds;
	if (out.status != 200)
		return 1;
	printf("%.3f ms per MB, %.0f MB/s on one core (%zu answer bytes per request, checksum %u)\n",
	       t * 1e3 * 1e6 / (double)size, (double)size / t / 1e6, out.bytes / (size_t)(rounds + 1),
	       out.checksum);
	model_unload(m);
	free(body);
	return 0;
}

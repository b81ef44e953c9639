/*
 * fuzz/harness.h - what every fuzz target and tests/parser_test.c share:
 * the whole server, pulled in with its main renamed (build with
 * -Dmain=smserve_main), so the real parser and state machine are what get
 * tested; and a plug-in that is never called, since no worker is forked.
 */
#ifndef SMSERVE_FUZZ_HARNESS_H
#define SMSERVE_FUZZ_HARNESS_H

#include "../smserve.c"
#undef main

const char model_plugin_name[] = "harness stub 1.0";

model *model_load(const char *dir, char *err, size_t err_size)
{
	(void)dir;
	(void)err;
	(void)err_size;
	return NULL;
}

void model_invoke(model *m, const model_request *req, model_response *out)
{
	(void)m;
	(void)req;
	(void)out;
}

void model_unload(model *m)
{
	(void)m;
}

/* The payload after the control bytes, with one of its bytes repeated: the
 * little-endian pair at data[at] chooses the position, data[at + 2] times
 * pad_unit the count, so short fuzzer inputs reach the 8 KiB and 32 KiB
 * limits. The caller frees the result. (inline: not every target uses it) */
static inline char *expand(const uint8_t *data, size_t size, size_t control, size_t at,
	size_t pad_unit, size_t *len)
{
	const uint8_t *p = data + control;
	size_t n = size - control;
	size_t pos = n ? ((size_t)data[at] | (size_t)data[at + 1] << 8) % n : 0;
	size_t pad = n ? (size_t)data[at + 2] * pad_unit : 0;
	char *out = malloc(n + pad + 1);
	if (!out)
		abort();
	memcpy(out, p, pos);
	memset(out + pos, n ? p[pos] : 0, pad);
	memcpy(out + pos + pad, p + pos, n - pos);
	*len = n + pad;
	return out;
}

/* libFuzzer's entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

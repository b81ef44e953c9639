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

/* libFuzzer's entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

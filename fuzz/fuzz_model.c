/*
 * fuzz_model.c - libFuzzer target for a plug-in's request reader, built with
 * the plug-in it fuzzes: model.c (target fuzz_model) or
 * examples/xgboost/model.c (target fuzz_xgboost). A worker runs exactly
 * this: model_invoke on a body from the network, answering through the
 * server's own model_response functions (smserve.c is included with its
 * main renamed, so they are the real ones). A crash here would cost a
 * worker and the request a 500; a memory error could cost more.
 *
 * Input: a 1-byte control prefix, then the body.
 *   [0] bits 0-2, 6  Content-Type, from CONTENT_TYPES (bit 6 the high bit)
 *       bits 3-5, 7  Accept, from ACCEPTS (bit 7 the high bit)
 * The model is loaded once, from $FUZZ_MODEL_DIR (default models/iris);
 * fuzz/run.sh sets it and SAGEMAKER_BATCH for the XGBoost target.
 *
 * Invariants: the answer's status is one a plug-in may give for a request
 * (200, 204, 400, 406, 415) and valid; a 200 CSV answer to a CSV body
 * has a line for each record (batch transform joins them line by line); a
 * 200 NPY answer (either plug-in) is a 2-D NPY array lib/npy.h reads, a
 * row per CSV record, and the default model's recordio-protobuf one RecordIO
 * records of Records lib/recordio.h reads. (The XGBoost plug-in's batch
 * recordio answers are text lines, as AWS's container writes them.)
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Dmain=smserve_main
 * fuzz/fuzz_model.c PLUGIN.c (see fuzz/run.sh).
 */
#include "../smserve.c"
#undef main
#include "../lib/npy.h"
#include "../lib/recordio.h"

#define CONTROL_BYTES 1

static const char *const CONTENT_TYPES[16] = {
	"", "text/csv", "text/csv; charset=utf-8", "application/json", "application/jsonlines",
	"text/libsvm", "text/csv; label_size=1", "application/x-npy",
	"application/x-recordio-protobuf", "text/x-libsvm", "application/json; charset=utf-8",
	"APPLICATION/X-NPY", "application/x-recordio-protobuf; charset=binary", "application/x-npy",
	"application/x-recordio-protobuf", "application/jsonlines",
};
static const char *const ACCEPTS[16] = {
	"", "*/*", "application/json", "application/jsonlines", "text/csv",
	"text/csv;q=0.5, application/json;q=0.9", "application/x-npy", "application/*",
	"application/x-recordio-protobuf", "application/x-npy, application/json;q=0.5",
	"application/x-recordio-protobuf;q=0.9, text/csv", "text/csv", "application/x-npy",
	"application/x-recordio-protobuf", "*/*", "application/json",
};

static model *loaded;
static char *region;   /* a worker's shared region: the answer goes to its slots */

/* The answer the plug-in wrote: the first answer slot (the limit below keeps
 * every answer to one piece, so no frame is ever sent). */
static const char *answer_of(const model_response *out)
{
	return answer_slot(out->region, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *why, long value)
{
	fprintf(stderr, "fuzz_model invariant broken: %s (%ld)\n", why, value);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_MODEL_DIR");
	char err[1024] = "";
	(void)argc;
	(void)argv;
	loaded = model_load(dir ? dir : "models/iris", err, sizeof err);
	if (loaded == NULL) {
		fprintf(stderr, "fuzz_model: cannot load the model: %s\n", err);
		exit(2);
	}
	/* One piece at most: an answer past it is the plug-in's clean 500,
	 * which no 4 KiB body comes near (a record's JSON is ~100 bytes). */
	cfg.max_response = ANSWER_PIECE;
	region = map_region();
	if (!region) {
		fprintf(stderr, "fuzz_model: cannot map a region\n");
		exit(2);
	}
	return 0;
}

static size_t newlines(const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	size_t i, n = 0;
	for (i = 0; i < len; i++)
		n += p[i] == '\n';
	return n;
}

/* Records in a CSV body as the plug-ins count them: lines, the last one
 * with or without its newline. */
/* The XGBoost plug-in reads CSV as AWS's container does: the body stripped
 * of surrounding whitespace (Python's, ASCII part) first. */
static int xgboost_build(void)
{
	return strncmp(model_plugin_name, "xgboost", 7) == 0;
}

static int python_space(int c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static size_t csv_records(const unsigned char *body, size_t len)
{
	if (xgboost_build()) {
		while (len > 0 && python_space(body[0]))
			body++, len--;
		while (len > 0 && python_space(body[len - 1]))
			len--;
	}
	return newlines(body, len) + (len > 0 && body[len - 1] != '\n');
}

/* A CSV answer, whatever its parameters ("text/csv; charset=utf-8"). */
static int is_csv(const char *type)
{
	return strncmp(type, "text/csv", 8) == 0 && (type[8] == '\0' || type[8] == ';');
}

/* A 200 answer in a binary type reads back whole with lib/'s readers; rows,
 * if not (size_t)-1, is how many records an NPY answer must hold. (The
 * XGBoost target runs in batch mode, whose recordio Accept gets AWS's text
 * lines: only its NPY answers are checked.) */
static void check_binary(const model_response *out, size_t rows)
{
	char err[512];
	if (strcmp(out->type, "application/x-npy") == 0) {
		struct smlib_npy a;
		if (smlib_npy_read(&a, answer_of(out), out->len, err, sizeof err) != 0)
			fail("an NPY answer that does not read back", (long)out->len);
		if (a.rank != 2 || (rows != (size_t)-1 && a.rows != rows))
			fail("an NPY answer without a row per record", (long)a.rows);
	} else if (strcmp(out->type, "application/x-recordio-protobuf") == 0 && out->len > 0 &&
		   !xgboost_build()) {
		struct smlib_rio_reader r;
		struct smlib_rio_record rec;
		int rc;
		smlib_rio_reader_init(&r, answer_of(out), out->len, 0);
		while ((rc = smlib_rio_next(&r, &rec, err, sizeof err)) > 0)
			;
		if (rc < 0)
			fail("a recordio answer that does not read back", (long)out->len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	model_request req;
	model_response out;
	const char *ct;

	if (size < CONTROL_BYTES)
		return 0;
	memset(&req, 0, sizeof req);
	answer_begin(&out, region, -1, -1);
	ct = CONTENT_TYPES[(data[0] & 7) | ((data[0] >> 3) & 8)];
	req.content_type = ct;
	req.accept = ACCEPTS[((data[0] >> 3) & 7) | ((data[0] >> 4) & 8)];
	req.custom_attributes = "";
	req.body = data + CONTROL_BYTES;   /* libFuzzer's copy: exactly size bytes */
	req.body_len = size - CONTROL_BYTES;

	model_invoke(loaded, &req, &out);

	if (out.status_invalid)
		fail("the plug-in set an invalid status", out.bad_status);
	if (out.status != 200 && out.status != 204 && out.status != 400 && out.status != 406 &&
	    out.status != 415)
		fail("a status a request cannot cause", out.status);
	if (out.status == 200 && (ct == CONTENT_TYPES[1] || ct == CONTENT_TYPES[2]) &&
	    is_csv(out.type) &&
	    newlines(answer_of(&out), out.len) != csv_records(req.body, req.body_len))
		fail("CSV records in and lines out differ", (long)newlines(answer_of(&out), out.len));
	if (out.status == 200)
		check_binary(&out, ct == CONTENT_TYPES[1] || ct == CONTENT_TYPES[2]
			     ? csv_records(req.body, req.body_len) : (size_t)-1);
	if (out.streaming)
		fail("an answer that was sent in pieces", (long)out.sent);
	return 0;
}

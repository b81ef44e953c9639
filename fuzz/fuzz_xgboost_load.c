/*
 * fuzz_xgboost_load.c - libFuzzer target for the XGBoost plug-in's model
 * readers (JSON, UBJSON and the legacy binary format, told apart by their
 * bytes) and for prediction with whatever model they accept.
 *
 * Input: the bytes of a model file. Each input is written to
 * <temporary directory>/xgboost-model and loaded with model_load, as the
 * server loads /opt/ml/model. A model it refuses must come with a message; a
 * model it accepts is then asked for predictions on records that give some
 * features, none, and missing values, in CSV and libsvm, and on batches of
 * its width with and without holes, so that every path of the block
 * predictor walks every tree: a reader that let through a child index out
 * of range, a feature index past the record or a cycle would show here.
 *
 * Seeds: the small models of tests/xgboost/ (fuzz/run.sh copies them).
 * Build: clang -fsanitize=fuzzer,address,undefined fuzz/fuzz_xgboost_load.c
 * (see fuzz/run.sh). The plug-in is included, so its static readers are
 * the ones built here; the server is not, and the model_response functions
 * below stand in for it.
 */
#include "../examples/xgboost/model.c"

#include <unistd.h>

/* ---- the server's side of model.h, kept minimal ---- */
struct model_response {
	int status;
	size_t len;
};

int model_response_status(model_response *out, int status)
{
	if (status < 200 || status > 599)
		return -1;
	out->status = status;
	return 0;
}

int model_response_type(model_response *out, const char *content_type)
{
	(void)out;
	return content_type[0] ? 0 : -1;
}

int model_response_custom_attributes(model_response *out, const char *value)
{
	(void)out;
	(void)value;
	return 0;
}

int model_response_write(model_response *out, const void *data, size_t len)
{
	volatile const unsigned char *p = data;
	if (len > 0)
		(void)p[len - 1];  /* ASan sees a write past the plug-in's buffer */
	out->len += len;
	return 0;
}

int model_response_error(model_response *out, int status, const char *message)
{
	out->status = status;
	out->len = strlen(message);
	return 0;
}

/* ---- the target ---- */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64] = "/tmp/fuzz_xgboost_load.XXXXXX";
static char file[96];

static void broken(const char *why)
{
	fprintf(stderr, "fuzz_xgboost_load invariant broken: %s\n", why);
	abort();
}

static void remove_dir(void)
{
	unlink(file);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL) {
		perror("fuzz_xgboost_load: mkdtemp");
		exit(2);
	}
	snprintf(file, sizeof file, "%s/xgboost-model", dir);
	atexit(remove_dir);
	return 0;
}

static void predict_some(model *m)
{
	/* One RecordIO frame: a Record whose 'values' is a sparse float32
	 * tensor, keys 0 and 2 of shape [3]: 8 bytes of head, 31 of Record,
	 * and the literal's '\0' as the padding to a multiple of 4. */
	static const char rio[] = "\x0a\x23\xd7\xce" "\x1f\0\0\0"
		"\x0a\x1d" "\x0a\x06" "values" "\x12\x13" "\x12\x11"
		"\x0a\x08" "\0\0\x80\x3f" "\0\0\x20\xc0" "\x12\x02\0\x02" "\x1a\x01\x03";
	static const struct {
		const char *type, *body;
		size_t len; /* 0: strlen(body) */
		const char *accept;
	} asks[] = {
		{"text/csv", "1,,3,7,1e30\n,,,,\n-1e30,0.5,2,-0,0.25\n", 0, "text/csv"},
		{"text/csv", "-1e30,0.5,2,,3,7,1e30,-0,0.25,4,5,6,7,8,9,10,11,12,13,14,15,16\n", 0,
		 "application/x-recordio-protobuf"},
		{"text/libsvm", "0 0:1 1:-2.5 2:1e-7 5:3 7:1e38 29:-1\n1\n", 0, "text/csv"},
		{"application/json", "{\"instances\": [[1, null, 2], {\"features\": {\"keys\": [0, 2],"
				     " \"values\": [-1, 1]}}]}", 0, "text/csv"},
		{"application/x-recordio-protobuf", rio, sizeof rio, "application/x-recordio-protobuf"},
	};
	size_t i;
	for (i = 0; i < sizeof asks / sizeof asks[0]; i++) {
		model_request req;
		model_response out = {200, 0};
		memset(&req, 0, sizeof req);
		req.content_type = asks[i].type;
		req.accept = asks[i].accept;
		req.custom_attributes = "";
		req.body = (const unsigned char *)asks[i].body;
		req.body_len = asks[i].len ? asks[i].len : strlen(asks[i].body);
		model_invoke(m, &req, &out);
		if (out.status != 200 && out.status != 400)
			broken("a prediction on an accepted model failed with neither 200 nor 400");
	}
}

/* A CSV batch of 70 records of m's width (a full block of 64 and a tail of
 * 6), so that the block predictor's paths run: the top levels compared at
 * once, eight walks side by side, one by one; with holes, the paths that
 * check for missing values. */
static void predict_batch(model *m, int holes)
{
	static char body[70 * 64 * 8];
	size_t len = 0, r, j;
	model_request req;
	model_response out = {200, 0};
	if (m->n_features > 64)
		return;
	for (r = 0; r < 70; r++)
		for (j = 0; j < m->n_features; j++) {
			int v = (int)((r * 7 + j * 5) % 23) - 11;
			if (!(holes && (r + j) % 9 == 0))
				len += (size_t)snprintf(body + len, 8, "%d.5", v);
			body[len++] = j + 1 < m->n_features ? ',' : '\n';
		}
	memset(&req, 0, sizeof req);
	req.content_type = "text/csv";
	req.accept = "text/csv";
	req.custom_attributes = "";
	req.body = (const unsigned char *)body;
	req.body_len = len;
	model_invoke(m, &req, &out);
	if (out.status != 200)
		broken("a batch of the model's width was refused");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024] = "";
	FILE *f = fopen(file, "wb");
	model *m;
	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		broken("cannot write the model file");
	m = model_load(dir, err, sizeof err);
	if (m == NULL) {
		if (err[0] == '\0')
			broken("a model refused without a message");
		return 0;
	}
	predict_some(m);
	predict_batch(m, 0);
	predict_batch(m, 1);
	model_unload(m);
	return 0;
}

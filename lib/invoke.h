/*
 * lib/invoke.h - the skeleton of model_invoke for a plug-in that reads
 * records and answers one prediction each, in SageMaker's formats: content
 * negotiation, the checks on the body, the instance reader
 * (lib/instances.h) and the framing of the answer. What is left to the
 * plug-in is its model: how it predicts, and how one prediction is written.
 *
 *   static const struct smlib_service SERVICE = {...};   what it speaks
 *
 *   model_load     smlib_plugin_init(&m->lib, &SERVICE, err, err_size)
 *                  ... load the model ...
 *                  smlib_plugin_alloc(&m->lib, n_features, record_room)
 *   model_invoke   if (!smlib_job_start(&j, &m->lib, req, out))
 *                          return;              (answered: 415, 406, 400, 204)
 *                  while ((rc = smlib_next(&j.in, &x)) == 1) {
 *                          predict x;
 *                          smlib_record_begin(&j);
 *                          write one answer into j.w;
 *                          if ((rc = smlib_record_end(&j)) != 0)
 *                                  break;
 *                  }
 *                  smlib_job_finish(&j, rc);
 *   model_unload   smlib_plugin_free(&m->lib)
 *
 * A bad record anywhere turns the whole answer into a 400 naming it
 * (model_response_error discards what was written): never a partial
 * answer. The plug-in refuses a record of its own with smlib_fail.
 */
#ifndef SMSERVE_INVOKE_H
#define SMSERVE_INVOKE_H

#include "instances.h"

/* The media types of the formats, as requests name them and as answers are
 * labelled. Every plug-in answers in the first SMLIB_ANSWER_FORMATS; NPY
 * and recordio-protobuf are answers a plug-in opts in to (SMLIB_ANSWER_BIT). */
static SMLIB_UNUSED const char *const smlib_media_type[SMLIB_FORMATS] = {
	"application/json", "application/jsonlines", "text/csv", "text/libsvm",
	"application/x-npy", "application/x-recordio-protobuf"};
#define SMLIB_ANSWER_FORMATS 3
#define SMLIB_BIT(format) (1u << (format))
/* Flags in a service's inputs, besides the formats' bits: */
#define SMLIB_JSON_ARRAYS (1u << 16)  /* application/json may be a bare array of rows */
#define SMLIB_ANSWER_BIT(format) (1u << (20 + (format))) /* answers in NPY, recordio too */
#define SMLIB_ANSWER_CHUNK 65536   /* bytes per model_response_write, at least */

/* What a plug-in speaks, fixed when it is built. */
struct smlib_service {
	unsigned inputs;                 /* SMLIB_BIT(SMLIB_CSV) | ...: the bodies read
	                                  * (a missing Content-Type means CSV), and
	                                  * the flags SMLIB_JSON_ARRAYS and
	                                  * SMLIB_ANSWER_BIT(SMLIB_NPY), ...(SMLIB_RECORDIO) */
	enum smlib_format answer;        /* the answer for Accept missing or * / *,
	                                  * unless SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
	                                  * names another */
	int empty_body_204;              /* an empty body is answered 204 No Content
	                                  * (as SageMaker's XGBoost container does)
	                                  * rather than 400 */
	struct smlib_read_options read;  /* what a feature may be */
};

/* What model_load prepares for every request. */
struct smlib_plugin {
	const struct smlib_service *svc;
	enum smlib_format answer;        /* svc->answer, or the environment's */
	char inputs_list[160];           /* "text/csv, ...", for the 415 */
	char answers_list[160];          /* the default first, for the 406 */
	const char *answer_types[SMLIB_FORMATS]; /* the media types answered, for Accept: */
	enum smlib_format answer_formats[SMLIB_FORMATS]; /* their formats, */
	int n_answers;                   /* how many */
	size_t answer_columns;           /* numbers per record in an NPY answer (the plug-in's
	                                  * to set at load, if it answers NPY) */
	struct smlib_scratch scratch;    /* the reader's arrays */
	char *buf;                       /* the answer buffer */
	size_t buf_cap, record_room;
};

/* Appends ", type" (or "type" first) to list. */
static SMLIB_UNUSED void smlib_list_add(char *list, size_t size, enum smlib_format f)
{
	size_t used = strlen(list);
	smlib_format(list + used, size - used, "%s%s", used ? ", " : "", smlib_media_type[f]);
}

/* The first call of model_load: the media type lists, and the answer
 * format for Accept missing or * / * from SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT,
 * checked once at start: a value this plug-in cannot produce would fail
 * every request without Accept, so it stops the server instead. 0, or -1
 * with err set. */
static SMLIB_UNUSED int smlib_plugin_init(struct smlib_plugin *p, const struct smlib_service *svc,
					  char *err, size_t err_size)
{
	static const enum smlib_format input_order[] = {SMLIB_CSV, SMLIB_LIBSVM, SMLIB_JSON,
							SMLIB_JSONLINES, SMLIB_NPY, SMLIB_RECORDIO};
	const char *v = getenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT");
	const char *s, *e;
	char got[SMLIB_SHOWN + 4];
	size_t i;
	int f;

	memset(p, 0, sizeof *p);
	p->svc = svc;
	p->answer = svc->answer;
	for (i = 0; i < sizeof input_order / sizeof input_order[0]; i++)
		if (svc->inputs & SMLIB_BIT(input_order[i]))
			smlib_list_add(p->inputs_list, sizeof p->inputs_list, input_order[i]);
	smlib_list_add(p->answers_list, sizeof p->answers_list, svc->answer);
	for (f = 0; f < SMLIB_FORMATS; f++) {
		if (f == SMLIB_LIBSVM || (f >= SMLIB_ANSWER_FORMATS &&
					  !(svc->inputs & SMLIB_ANSWER_BIT(f))))
			continue;
		p->answer_formats[p->n_answers] = (enum smlib_format)f;
		p->answer_types[p->n_answers++] = smlib_media_type[f];
		if (f != (int)svc->answer)
			smlib_list_add(p->answers_list, sizeof p->answers_list, (enum smlib_format)f);
	}
	if (v == NULL)
		return 0;
	s = v;
	e = strchr(v, ';') ? strchr(v, ';') : v + strlen(v);
	smlib_trim(&s, &e);
	if (s == e || smlib_equal_ci(s, (size_t)(e - s), "*/*"))
		return 0;
	for (i = 0; i < (size_t)p->n_answers; i++)
		if (smlib_equal_ci(s, (size_t)(e - s), p->answer_types[i])) {
			p->answer = p->answer_formats[i];
			return 0;
		}
	smlib_format(err, err_size, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: expected one of %s, "
		     "got '%s'", p->answers_list, smlib_shown(got, v, v + strlen(v)));
	return -1;
}

/* Once the model is loaded: the reader's arrays for n_features, and an
 * answer buffer for at least two records of record_room bytes (the most
 * one record's answer can take). 0, or -1 when memory runs out. */
static SMLIB_UNUSED int smlib_plugin_alloc(struct smlib_plugin *p, size_t n_features,
					   size_t record_room)
{
	p->record_room = record_room;
	p->buf_cap = record_room <= SMLIB_ANSWER_CHUNK / 2 ? SMLIB_ANSWER_CHUNK : 2 * record_room;
	p->buf = record_room <= SIZE_MAX / 2 ? malloc(p->buf_cap) : NULL;
	if (p->buf == NULL || smlib_scratch_alloc(&p->scratch, n_features) != 0)
		return -1;
	return 0;
}

static SMLIB_UNUSED void smlib_plugin_free(struct smlib_plugin *p)
{
	smlib_scratch_free(&p->scratch);
	free(p->buf);
	p->buf = NULL;
}

/* One request: the instances in, the answer out. */
struct smlib_job {
	struct smlib_reader in;          /* in.err: the 400 message */
	struct smlib_writer w;
	enum smlib_format answer;        /* the answer's format */
	size_t room;                     /* bytes one record's answer can take */
	size_t answered;                 /* records answered so far */
	size_t records;                  /* an NPY answer: the records it holds */
};

/* The body's format from Content-Type. Empty means text/csv (batch
 * transform and many clients send none). Parameters are ignored except
 * label_size, which must be 0: a label column would be read as a feature. */
static SMLIB_UNUSED int smlib_content_format(const struct smlib_plugin *p, const char *ct,
				enum smlib_format *fmt, char *msg, size_t size)
{
	const char *s = ct, *e = ct + strcspn(ct, ";");
	char got[SMLIB_SHOWN + 4];
	int f;
	smlib_trim(&s, &e);
	*fmt = SMLIB_CSV;
	if (s == e)
		return 0;
	for (f = 0; f < SMLIB_FORMATS; f++)
		if ((p->svc->inputs & SMLIB_BIT(f)) && smlib_equal_ci(s, (size_t)(e - s),
								      smlib_media_type[f]))
			break;
	if (f == SMLIB_FORMATS && (p->svc->inputs & SMLIB_BIT(SMLIB_LIBSVM)) &&
	    smlib_equal_ci(s, (size_t)(e - s), "text/x-libsvm"))
		f = SMLIB_LIBSVM;
	if (f == SMLIB_FORMATS) {
		smlib_format(msg, size, "unsupported Content-Type '%s'; supported: %s",
			     smlib_shown(got, s, e), p->inputs_list);
		return -1;
	}
	*fmt = (enum smlib_format)f;
	return smlib_content_type_params(e, msg, size);
}

/* An NPY answer's header comes first and holds the number of records, so
 * they are counted first: in a line format, its lines (a valid body has a
 * record a line; an invalid one gets its 400 when read, and the count no
 * matter); else the body is read once (a bad record is its 400 now), and
 * the reader starts again. Not through smlib_next: a second call of it
 * keeps gcc -Os from inlining it into the plug-in's loop. 0, or -1 when
 * the request has been answered. */
static SMLIB_UNUSED int smlib_count_records(struct smlib_job *j, const struct smlib_plugin *p,
					    const char *body, size_t len, model_response *out)
{
	const char *q = body, *end = body + len;
	int rc = 0, bare = j->in.bare_arrays;
	j->records = 0;
	switch (j->in.format) {
	case SMLIB_CSV: case SMLIB_LIBSVM: case SMLIB_JSONLINES:
		while (q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL)
			q++, j->records++;
		j->records += end[-1] != '\n'; /* the last line's newline is optional */
		return 0;
	case SMLIB_NPY:
		while ((rc = smlib_npy_next(&j->in)) == 1)
			j->records++;
		break;
	case SMLIB_RECORDIO:
		while ((rc = smlib_recordio_next(&j->in)) == 1)
			j->records++;
		break;
	default:
		while ((rc = smlib_json_next(&j->in)) == 1)
			j->records++;
		break;
	}
	if (rc < 0) {
		model_response_error(out, 400, j->in.err);
		return -1;
	}
	smlib_reader_init(&j->in, j->in.format, body, len, &p->svc->read, &p->scratch);
	j->in.bare_arrays = bare;
	return 0;
}

/* Negotiates the request: 1 with the job ready (reader at the first
 * record, answer begun), or 0 when the request has been answered already:
 * 415 (Content-Type), 406 (Accept), an empty body (400, or 204 if the
 * service says so). The answer's type comes from Accept (q-values
 * honoured); a missing Accept or * / * means the plug-in's default. */
static SMLIB_UNUSED int smlib_job_start(struct smlib_job *j, const struct smlib_plugin *p,
			   const model_request *req, model_response *out)
{
	const char *body = (const char *)req->body, *end = body + req->body_len;
	enum smlib_format in;
	char msg[512];
	int f;

	if (req->body_len == 0 && p->svc->empty_body_204) { /* nothing to do */
		model_response_status(out, 204);
		return 0;
	}
	if (smlib_content_format(p, req->content_type, &in, msg, sizeof msg)) {
		model_response_error(out, 415, msg);
		return 0;
	}
	for (f = 0; p->answer_formats[f] != p->answer; f++)
		;
	f = smlib_accept_choose(req->accept, p->answer_types, p->n_answers, f, p->answers_list,
				msg, sizeof msg);
	if (f < 0) {
		model_response_error(out, 406, msg);
		return 0;
	}
	f = (int)p->answer_formats[f];
	if (in != SMLIB_NPY && in != SMLIB_RECORDIO && req->body_len >= 3 &&
	    memcmp(body, "\xEF\xBB\xBF", 3) == 0)
		body += 3; /* a UTF-8 byte order mark, as some editors save CSV */
	if (body == end) {
		if (p->svc->empty_body_204)
			model_response_status(out, 204);
		else
			model_response_error(out, 400, "empty body: expected at least one record");
		return 0;
	}
	smlib_reader_init(&j->in, in, body, (size_t)(end - body), &p->svc->read, &p->scratch);
	j->in.bare_arrays = (p->svc->inputs & SMLIB_JSON_ARRAYS) != 0;
	if (f == SMLIB_NPY && smlib_count_records(j, p, body, (size_t)(end - body), out))
		return 0;
	j->w.out = out;
	j->w.buf = p->buf;
	j->w.len = 0;
	j->w.cap = p->buf_cap;
	j->w.refused = 0;
	j->answer = (enum smlib_format)f;
	j->room = p->record_room;
	j->answered = 0;
	model_response_type(out, smlib_media_type[f]);
	if (j->answer == SMLIB_JSON)
		SMLIB_PUT_LIT(&j->w, "{\"predictions\":[");
	if (j->answer == SMLIB_NPY) {
		size_t shape[2] = {j->records, p->answer_columns};
		j->w.len = smlib_npy_header((unsigned char *)j->w.buf, SMLIB_NPY_F8, 2, shape);
	}
	return 1;
}

/* Before one record's answer: room for it, and the separator JSON needs. */
static SMLIB_UNUSED void smlib_record_begin(struct smlib_job *j)
{
	smlib_room(&j->w, j->room);
	if (j->answer == SMLIB_JSON && j->answered > 0)
		SMLIB_PUT_LIT(&j->w, ",");
}

/* A record's row of an NPY answer: n (the plug-in's answer_columns)
 * float64 numbers, little endian, as numpy.save writes them. */
static SMLIB_UNUSED void smlib_npy_put_row(struct smlib_job *j, const double *v, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		uint64_t bits;
		memcpy(&bits, &v[i], sizeof bits);
		smlib_npy_put_le((unsigned char *)j->w.buf + j->w.len, bits, 8);
		j->w.len += 8;
	}
}

/* A record's answer in recordio-protobuf: one RecordIO record holding one
 * Record whose label map is labels[0, n) (float32 tensors), which must fit
 * the room smlib_record_begin made. */
static SMLIB_UNUSED void smlib_rio_put_answer(struct smlib_job *j, const struct smlib_rio_out *labels,
					      size_t n)
{
	size_t size = smlib_rio_write((unsigned char *)j->w.buf + j->w.len, j->w.cap - j->w.len,
				      NULL, 0, labels, n);
	if (size == 0 || size > j->w.cap - j->w.len) { /* more than the plug-in's record_room */
		model_response_error(j->w.out, 500, "a record's recordio answer is larger than "
				     "its room");
		j->w.refused = 1;
		return;
	}
	j->w.len += size;
}

/* After it: 0, or -1 when the server refused the answer (too large). */
static SMLIB_UNUSED int smlib_record_end(struct smlib_job *j)
{
	if (j->answer == SMLIB_JSONLINES)
		SMLIB_PUT_LIT(&j->w, "\n");
	j->answered++;
	return j->w.refused ? -1 : 0;
}

/* Refuses the request with a 400 of the plug-in's own ("record 3: ...");
 * returns -1, for smlib_job_finish. */
static SMLIB_UNUSED int smlib_fail(struct smlib_job *j, const char *fmt,
				   ...) SMLIB_PRINTF_LIKE(2, 3);
static SMLIB_UNUSED int smlib_fail(struct smlib_job *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->in.err, sizeof j->in.err, fmt, ap);
	va_end(ap);
	return -1;
}

/* Ends the answer: rc 0 (every record answered) sends the rest; -1 turns
 * it into a 400 with the message, unless the server refused a write
 * (it then answers 500 itself). */
static SMLIB_UNUSED void smlib_job_finish(struct smlib_job *j, int rc)
{
	if (rc == 0 && j->answer == SMLIB_JSON) {
		smlib_room(&j->w, 4);
		SMLIB_PUT_LIT(&j->w, "]}\n");
	}
	if (rc == 0 && j->answer == SMLIB_NPY && j->answered != j->records) {
		model_response_error(j->w.out, 500, "the NPY answer's records changed count");
		return;
	}
	if (rc == 0)
		smlib_flush(&j->w);
	else if (!j->w.refused)
		model_response_error(j->w.out, 400, j->in.err);
}

#endif

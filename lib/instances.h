/*
 * lib/instances.h - the documents of SageMaker's JSON and JSON Lines request
 * formats (its "common data formats"), read with lib/formats.h:
 *
 *   application/json        {"instances": [instance, ...]}, other members skipped
 *   application/jsonlines   one instance per line
 *   instance                vector | {"features": vector} | {"data": {"features": vector}}
 *   vector                  [number, ...]                                  dense
 *                         | {"values": [number, ...]}                       dense
 *                         | {"keys": [...], "values": [...], "shape": [n]}  sparse
 *
 * What a number may be (null, out of range), what a dense vector of the
 * wrong length or a sparse one means, and what happens to each record belong
 * to the plug-in, so this part is included in the middle of one, after it
 * has defined:
 *
 *   struct job          with size_t record (the 1-based record number, for
 *                       messages), char err[] (the 400 message), m->n_features,
 *                       and double *keys, *vals (room for n_features each)
 *   fail(j, fmt, ...)   writes the message into j->err, evaluates to -1
 *   js_number(s, what, index, v)
 *                       reads one number where a feature belongs: 0 or -1
 *                       (js_number_error in lib/formats.h words the refusal)
 *   dense_features(j, count)
 *                       takes a dense vector's count values from j->vals
 *   sparse_features(j, count)
 *                       takes a sparse vector's count keys (whole numbers from
 *                       0 to n_features - 1, checked here) and values from
 *                       j->keys and j->vals
 *   answer_record(j)    answers the record just read: 0 or -1
 *
 * model.c and examples/xgboost/model.c include it so.
 */
#ifndef SMSERVE_INSTANCES_H
#define SMSERVE_INSTANCES_H

/* An array of numbers at s->p (a '['): the first cap into dst, all counted. */
static int js_numbers(struct json *s, const char *what, double *dst, size_t cap, size_t *count)
{
	int first = 1, rc;
	size_t i = 0;
	double v;
	s->p++;
	while ((rc = js_element(s, &first)) == 1) {
		if (js_number(s, what, i + 1, &v))
			return -1;
		if (i < cap)
			dst[i] = v;
		i++;
	}
	*count = i;
	return rc;
}

/* A sparse vector's keys must be distinct feature indexes (0-based, as in
 * SageMaker's protobuf records), one for each value; this checks all but
 * "distinct", which the plug-in's sparse_features sees as it sets them. */
static int sparse_keys_valid(struct job *j, size_t nkeys, size_t nvals)
{
	size_t n = j->m->n_features, i;
	if (nkeys > n)
		return fail(j, "record %zu: expected at most %zu keys, got %zu", j->record, n, nkeys);
	if (nkeys != nvals)
		return fail(j, "record %zu: expected as many values as keys, got %zu keys and "
			    "%zu values", j->record, nkeys, nvals);
	for (i = 0; i < nkeys; i++) {
		double k = j->keys[i];
		if (!(k >= 0 && k < (double)n && k == floor(k)))
			return fail(j, "record %zu, key %zu: expected a whole number from 0 to %zu, "
				    "got %.17g", j->record, i + 1, n - 1, k);
	}
	return 0;
}

/* The object form of a vector: {"values": [...]} (dense) or with "keys"
 * (sparse); "shape", if given, must be [n_features]. Members may come in any
 * order, so keys and values are kept until the object ends. */
static int js_vector_object(struct json *s, int depth)
{
	struct job *j = s->j;
	size_t n = j->m->n_features, nkeys = 0, nvals = 0, nshape = 0, klen;
	int first = 1, rc, have_keys = 0, have_vals = 0, have_shape = 0;
	double shape[2];
	char key[KEY_CAP];

	s->p++;
	while ((rc = js_member(s, &first, key, &klen)) == 1) {
		int *have = key_is(key, klen, "keys") ? &have_keys
			  : key_is(key, klen, "values") ? &have_vals
			  : key_is(key, klen, "shape") ? &have_shape : NULL;
		if (have == NULL) {
			if (js_skip(s, depth + 1))
				return -1;
			continue;
		}
		if (*have)
			return fail(j, "record %zu: \"%.*s\" given twice", j->record, (int)klen, key);
		*have = 1;
		if (js_peek(s) != '[')
			return fail(j, "record %zu: expected \"%.*s\" to be an array", j->record,
				    (int)klen, key);
		if (have == &have_keys)
			rc = js_numbers(s, "key", j->keys, n, &nkeys);
		else if (have == &have_vals)
			rc = js_numbers(s, "value", j->vals, n, &nvals);
		else
			rc = js_numbers(s, "shape entry", shape, 2, &nshape);
		if (rc < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (!have_vals)
		return fail(j, "record %zu: expected a \"values\" array in the features object",
			    j->record);
	if (have_shape && (nshape != 1 || shape[0] != (double)n))
		return fail(j, "record %zu: expected \"shape\" to be [%zu]", j->record, n);
	if (!have_keys)
		return dense_features(j, nvals);
	if (sparse_keys_valid(j, nkeys, nvals))
		return -1;
	return sparse_features(j, nkeys);
}

/* A feature vector: an array of numbers, or the object form. */
static int js_vector(struct json *s, int depth)
{
	struct job *j = s->j;
	size_t count;

	if (depth > JSON_MAX_DEPTH)
		return js_syntax(s, "at most 64 levels of nesting");
	if (js_peek(s) == '{')
		return js_vector_object(s, depth);
	if (js_peek(s) != '[')
		return fail(j, "record %zu: expected the features as an array of numbers or an "
			    "object with \"values\"", j->record);
	if (js_numbers(s, "field", j->vals, j->m->n_features, &count))
		return -1;
	return dense_features(j, count);
}

/* {"features": vector, ...}: the CDF "data" object, whose field for the
 * Linear Learner is named "features". */
static int js_data(struct json *s, int depth)
{
	struct job *j = s->j;
	int first = 1, rc, got = 0;
	char key[KEY_CAP];
	size_t klen;

	if (js_peek(s) != '{')
		return fail(j, "record %zu: expected \"data\" to be an object with \"features\"",
			    j->record);
	s->p++;
	while ((rc = js_member(s, &first, key, &klen)) == 1) {
		if (!key_is(key, klen, "features")) {
			if (js_skip(s, depth + 1))
				return -1;
		} else if (got++) {
			return fail(j, "record %zu: \"features\" given twice", j->record);
		} else if (js_vector(s, depth + 1)) {
			return -1;
		}
	}
	if (rc == 0 && !got)
		return fail(j, "record %zu: expected a \"features\" member in \"data\"", j->record);
	return rc;
}

/* One instance: a plain array, {"features": ...} or {"data": {...}}; other
 * members ("configuration", ids) are skipped. */
static int js_instance(struct json *s, int depth)
{
	struct job *j = s->j;
	int first = 1, rc, got = 0;
	char key[KEY_CAP];
	size_t klen;

	if (depth > JSON_MAX_DEPTH)
		return js_syntax(s, "at most 64 levels of nesting");
	if (js_peek(s) == '[')
		return js_vector(s, depth);
	if (js_peek(s) != '{')
		return fail(j, "record %zu: expected an array of numbers or an object with "
			    "\"features\" or \"data\"", j->record);
	s->p++;
	while ((rc = js_member(s, &first, key, &klen)) == 1) {
		int features = key_is(key, klen, "features"), data = key_is(key, klen, "data");
		if (!features && !data) {
			if (js_skip(s, depth + 1))
				return -1;
			continue;
		}
		if (got++)
			return fail(j, "record %zu: expected one \"features\" or \"data\" member, "
				    "got two", j->record);
		if (features ? js_vector(s, depth + 1) : js_data(s, depth + 1))
			return -1;
	}
	if (rc == 0 && !got)
		return fail(j, "record %zu: expected a \"features\" or \"data\" member", j->record);
	return rc;
}

/* application/json: {"instances": [...]}, other members skipped. */
static int read_json(struct job *j, const char *p, const char *end)
{
	struct json s;
	int first = 1, rc, have = 0;
	char key[KEY_CAP];
	size_t klen;

	memset(&s, 0, sizeof s);
	s.j = j;
	s.err = j->err;
	s.err_size = sizeof j->err;
	s.record = &j->record;
	s.start = s.line = s.p = p;
	s.end = end;
	js_ws(&s);
	if (js_peek(&s) != '{')
		return js_syntax(&s, "a JSON object with an \"instances\" array");
	s.p++;
	while ((rc = js_member(&s, &first, key, &klen)) == 1) {
		int efirst = 1, erc;
		if (!key_is(key, klen, "instances")) {
			if (js_skip(&s, 2))
				return -1;
			continue;
		}
		if (have++)
			return fail(j, "\"instances\" given twice");
		if (js_peek(&s) != '[')
			return fail(j, "expected \"instances\" to be an array");
		s.p++;
		while ((erc = js_element(&s, &efirst)) == 1) {
			j->record++;
			if (js_instance(&s, 3) || answer_record(j))
				return -1;
		}
		if (erc < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	js_ws(&s);
	if (s.p < end)
		return js_syntax(&s, "nothing after the JSON object");
	if (!have)
		return fail(j, "expected an \"instances\" array in the JSON object");
	return 0;
}

/* ======================================================================== */
/* JSON Lines                                                                */
/* ======================================================================== */
/*
 * One instance per line, in any of the instance forms above; LF or CRLF; the
 * last newline is optional. As for CSV, a blank line is an error rather than
 * something to skip, so that N lines in are always N lines out.
 */

static int read_jsonlines(struct job *j, const char *p, const char *end)
{
	struct json s;

	memset(&s, 0, sizeof s);
	s.j = j;
	s.err = j->err;
	s.err_size = sizeof j->err;
	s.record = &j->record;
	s.start = s.p = p;
	s.end = end;
	s.lines = 1;
	while (s.p < end) {
		j->record++;
		s.line = s.p;
		js_ws(&s);
		if (s.p == end || *s.p == '\n')
			return fail(j, "record %zu: expected a JSON object, got an empty line",
				    j->record);
		if (js_instance(&s, 1))
			return -1;
		js_ws(&s);
		if (s.p < end) {
			if (*s.p != '\n')
				return js_syntax(&s, "the end of the line after the JSON value");
			s.p++;
		}
		if (answer_record(j))
			return -1;
	}
	return 0;
}

#endif

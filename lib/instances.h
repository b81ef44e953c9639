/*
 * lib/instances.h - the documents of SageMaker's JSON and JSON Lines request
 * formats (its "common data formats"), read with lib/formats.h:
 *
 *   application/json        {"instances": [instance, ...]}, other members skipped
 *   application/jsonlines   one instance per line
 *   instance                vector | {"features": vector} | {"data": {"features": vector}}
 *
 * What a vector may be (dense, sparse, with nulls) and what happens to each
 * record belong to the plug-in, so this part is included in the middle of
 * one, after it has defined:
 *
 *   struct job          with size_t record (the 1-based record number, for
 *                       messages) and char err[] (the 400 message)
 *   fail(j, fmt, ...)   writes the message into j->err, evaluates to -1
 *   js_vector(s, depth) reads one feature vector into the job: 0 or -1
 *   answer_record(j)    answers the record just read: 0 or -1
 *
 * model.c and examples/xgboost/model.c include it so.
 */
#ifndef SMSERVE_INSTANCES_H
#define SMSERVE_INSTANCES_H

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

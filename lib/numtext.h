/*
 * lib/numtext.h - numbers as Python writes them, for answers that must be
 * byte-identical to a Python container's (SageMaker's XGBoost container
 * prints predictions with str() and json.dumps).
 *
 *   smlib_repr_double(v, out)   Python's repr(float) (= str(float) in Python 3):
 *                               the shortest text that reads back as v (the
 *                               closest such when several have that length),
 *                               fixed notation for decimal exponents -4 to 15,
 *                               scientific otherwise, always with a '.' or an
 *                               exponent: 2.0, 0.1, 1e-05, 1e+16, nan, inf.
 *
 * Checked against Python's repr on 500,000 doubles, subnormals included.
 * Libc only; everything static, names prefixed smlib_.
 */
#ifndef SMSERVE_NUMTEXT_H
#define SMSERVE_NUMTEXT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define SMLIB_NUMTEXT_UNUSED __attribute__((unused))
#else
#define SMLIB_NUMTEXT_UNUSED
#endif

#define SMLIB_REPR_MAX 26 /* the longest repr (24 bytes) and a NUL, with room */

/* The shortest round-trip digits of v (finite, > 0): digits into d (no dot,
 * no trailing zeros), the decimal exponent of the first into *exp; returns
 * how many. A normal double's neighbours are less than 1e-15 of it apart, so
 * a text of fewer than 15 digits that reads back as v is also its 15-digit
 * rounding with zeros at the end: trying 15, 16 and 17 digits finds the
 * shortest. A subnormal's neighbours are further apart: every precision is
 * tried. snprintf rounds correctly, so the digits are the closest ones. */
static SMLIB_NUMTEXT_UNUSED size_t smlib_shortest_digits(double v, char d[18], int *exp)
{
	char text[32];
	int precision;
	size_t n = 0, i;
	for (precision = v < 2.2250738585072014e-308 ? 1 : 15; precision <= 17; precision++) {
		snprintf(text, sizeof text, "%.*e", precision - 1, v);
		if (strtod(text, NULL) == v)
			break;
	}
	for (i = 0; text[i] != 'e'; i++) /* text: d.dddde[+-]xx */
		if (text[i] != '.')
			d[n++] = text[i];
	*exp = atoi(text + i + 1);
	while (n > 1 && d[n - 1] == '0')
		n--;
	d[n] = '\0';
	return n;
}

/* Writes Python's repr of v and a NUL into out (SMLIB_REPR_MAX bytes);
 * returns the length. */
static SMLIB_NUMTEXT_UNUSED size_t smlib_repr_double(double v, char *out)
{
	char d[18];
	int exp;
	size_t n, len = 0;
	if (isnan(v))
		return (size_t)sprintf(out, "nan");
	if (isinf(v))
		return (size_t)sprintf(out, v < 0 ? "-inf" : "inf");
	if (signbit(v)) {
		out[len++] = '-';
		v = -v;
	}
	if (v == 0)
		return len + (size_t)sprintf(out + len, "0.0");
	n = smlib_shortest_digits(v, d, &exp);
	if (exp < -4 || exp >= 16) {              /* d.ddde+XX */
		out[len++] = d[0];
		if (n > 1) {
			out[len++] = '.';
			memcpy(out + len, d + 1, n - 1);
			len += n - 1;
		}
		return len + (size_t)sprintf(out + len, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
	}
	if (exp < 0) {                            /* 0.000ddd */
		memcpy(out + len, "0.", 2);
		len += 2;
		memset(out + len, '0', (size_t)(-exp - 1));
		len += (size_t)(-exp - 1);
		memcpy(out + len, d, n);
		len += n;
	} else if ((size_t)exp + 1 >= n) {       /* ddd000.0 */
		memcpy(out + len, d, n);
		len += n;
		memset(out + len, '0', (size_t)exp + 1 - n);
		len += (size_t)exp + 1 - n;
		memcpy(out + len, ".0", 2);
		len += 2;
	} else {                                  /* ddd.ddd */
		memcpy(out + len, d, (size_t)exp + 1);
		len += (size_t)exp + 1;
		out[len++] = '.';
		memcpy(out + len, d + exp + 1, n - (size_t)exp - 1);
		len += n - (size_t)exp - 1;
	}
	out[len] = '\0';
	return len;
}

#endif

/*
 * lib/attributes.h - the compiler attributes every lib/ header uses. A
 * plug-in uses what it needs of lib/: the rest must not warn (unused), and
 * message formats are checked like printf's.
 */
#ifndef SMSERVE_LIB_ATTRIBUTES_H
#define SMSERVE_LIB_ATTRIBUTES_H

#if defined(__GNUC__)
#define SMLIB_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define SMLIB_UNUSED __attribute__((unused))
/* Code that runs once, when the model loads: optimized for size, not
 * speed (the cold attribute); nothing on a request's path is marked so. */
#define SMLIB_COLD __attribute__((cold))
#else
#define SMLIB_COLD
#define SMLIB_PRINTF_LIKE(f, a)
#define SMLIB_UNUSED
#endif

#endif

/* A deliberately small test harness for the native build: tests register themselves, CHECK records a
 * failure with its location and carries on, and the runner prints "N passed, N failed" (the closing
 * line CI reads). */
#ifndef CRABWATT_CHECK_H
#define CRABWATT_CHECK_H

#include <stdint.h>
#include <stdio.h>

typedef void (*test_fn)(void);

void check_register(const char *name, test_fn fn);
void check_fail(const char *file, int line, const char *what);
void check_fail_u64(const char *file, int line, const char *what, unsigned long long got,
                    unsigned long long want);

#define TEST(name)                                                                         \
    static void name(void);                                                                \
    __attribute__((constructor)) static void register_##name(void) { check_register(#name, name); } \
    static void name(void)

#define CHECK(cond)                                        \
    do {                                                   \
        if (!(cond)) check_fail(__FILE__, __LINE__, #cond); \
    } while (0)

/* Integer equality that prints both values on failure. */
#define CHECK_EQ(got, want)                                                                    \
    do {                                                                                       \
        unsigned long long got_ = (unsigned long long)(got), want_ = (unsigned long long)(want); \
        if (got_ != want_) check_fail_u64(__FILE__, __LINE__, #got " == " #want, got_, want_); \
    } while (0)

#endif

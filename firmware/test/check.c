#include "check.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TESTS 256

static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int test_count;
static int current_failures;

void check_register(const char *name, test_fn fn)
{
    if (test_count == MAX_TESTS) {
        fprintf(stderr, "check: more than %d tests, raise MAX_TESTS\n", MAX_TESTS);
        exit(2);
    }
    tests[test_count].name = name;
    tests[test_count].fn = fn;
    test_count++;
}

void check_fail(const char *file, int line, const char *what)
{
    current_failures++;
    /* Cap the noise from one broken loop, but always count. */
    if (current_failures <= 10) {
        printf("    %s:%d: CHECK failed: %s\n", file, line, what);
    }
}

void check_fail_u64(const char *file, int line, const char *what, unsigned long long got,
                    unsigned long long want)
{
    current_failures++;
    if (current_failures <= 10) {
        printf("    %s:%d: CHECK failed: %s (got %llu = 0x%llx, want %llu = 0x%llx)\n", file, line, what,
               got, got, want, want);
    }
}

/* Usage: runner [substring]: runs every test whose name contains the substring. */
int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0;
    int failed = 0;
    for (int k = 0; k < test_count; k++) {
        if (filter && !strstr(tests[k].name, filter)) {
            continue;
        }
        current_failures = 0;
        tests[k].fn();
        if (current_failures == 0) {
            passed++;
            printf("ok   %s\n", tests[k].name);
        } else {
            failed++;
            printf("FAIL %s (%d checks failed)\n", tests[k].name, current_failures);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
